"""Which part of the training recipe holds StyleGAN detection back?

Trained on ``ffhq_stylegan`` alone, the shipped recipe (``train.py --cross-set
ffhq_stylegan``) reaches a test ROC-AUC near 0.69, while the same network with flips and
JPEG re-compression only (``bench/stylegan_views.py --views resize``) reaches about 0.8.
This trains the shipped recipe on ``ffhq_stylegan`` alone with one ingredient changed at a
time, for the same number of epochs and without early stopping, and scores every model on
both sets' test splits (the DFDC column is the cross-set view: what each ingredient does
for fakes of another kind).

    python bench/stylegan_recipe.py [--epochs 30] [--no-paired] [--variants shipped light-augment ...]

About 6 minutes per variant on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detector.augment import AugmentConfig  # noqa: E402
from detector.cross_set import cross_set_report  # noqa: E402
from detector.training import TrainConfig  # noqa: E402

#: Flips and JPEG re-compression at quality 50-95 only, as in ``bench/stylegan_views.py``.
LIGHT = AugmentConfig(zoom=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0,
                      blur_prob=0.0, rescale_prob=0.0, jpeg_prob=0.6, jpeg_quality=(50, 95))

VARIANTS: dict[str, dict] = {
    "shipped": {},
    "no self-blend": {"self_blend_share": 0.0},
    "no mask head": {"mask_loss_weight": 0.0},
    "light augment": {"augment": LIGHT},
    "light augment, no self-blend": {"augment": LIGHT, "self_blend_share": 0.0},
    # Which half of the shipped augmentation costs the most: the photometric and geometric
    # changes, or the blur and downscale-upscale that the robustness goal depends on.
    "no colour or zoom": {"augment": AugmentConfig(zoom=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)},
    "no blur or rescale": {"augment": AugmentConfig(blur_prob=0.0, rescale_prob=0.0)},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=TrainConfig.seed,
                        help="another seed shows how much of a result is noise")
    parser.add_argument("--paired", action=argparse.BooleanOptionalAction, default=TrainConfig.paired,
                        help="self-blends beside their source faces (TrainConfig.paired; the README's table: --no-paired)")
    parser.add_argument("--work-dir", default=None, help="where the models go (a temporary folder by default)")
    args = parser.parse_args()

    base = TrainConfig(epochs=args.epochs, patience=args.epochs, seed=args.seed, paired=args.paired, verbose=0)
    stylegan = next(s for s in base.sets if Path(s).name == "ffhq_stylegan")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            cfg = dataclasses.replace(base, **VARIANTS[name])
            work = Path(args.work_dir or tmp) / name.replace(" ", "_").replace(",", "")
            rows[name] = cross_set_report(cfg, work, train_on=[stylegan])[f"train on {Path(stylegan).name}"]
            print(f"{name}: {rows[name]}", flush=True)

    print("\ntrained on ffhq_stylegan alone      epochs  minutes   test AUC ffhq_stylegan   test AUC dfdc_faces")
    for name, row in rows.items():
        print(f"{name:<34} {row['epochs']:6d}  {row['minutes']:7.1f}   {row['ffhq_stylegan']['roc_auc']:22.3f}"
              f"   {row['dfdc_faces']['roc_auc']:19.3f}")


if __name__ == "__main__":
    main()
