"""What each set's training crops look like, per label: the looks the sampler matches. Run by hand.

For every shared set (or ``--sets``) and label, the medians (and 10th and 90th percentiles) of
the columns of ``sampling.LOOK_COLUMNS`` over its training crops as they are cached, before
any matching or degradation (the face's resolution in its file, brightness, contrast,
colourfulness), and of the audit's sharpness (``log1p`` of the variance of the Laplacian,
``audit.crop_statistics``). The shortcut audit says *whether* a statistic tells a source's
labels apart; this says which way, and how each set stands against the others.
docs/unseen-fakes.md quotes it.

    python bench/set_looks.py
    python bench/set_looks.py --sets my_set/ --limit 500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    from detector.defaults import SHARED_DATA, SHARED_SETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=[str(SHARED_DATA / name) for name in SHARED_SETS])
    parser.add_argument("--limit", type=int, default=1500, help="training crops per set and label at most (default 1500)")
    args = parser.parse_args()

    import numpy as np

    from detector.audit import crop_statistics
    from detector.data import load_set
    from detector.sampling import LOOK_COLUMNS, crop_looks
    from detector.training import TrainConfig

    cfg = TrainConfig(sets=args.sets)
    columns = (*LOOK_COLUMNS, "sharpness")
    print("| set | label | crops | " + " | ".join(f"{c} (p10 / median / p90)" for c in columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    for folder in args.sets:
        train = load_set(folder, cfg.input_size, cfg.cache_dir, margin=cfg.face_margin).split("train")
        for label, name in ((0, "real"), (1, "fake")):
            rows = np.flatnonzero((train.labels == label) & train.found)
            if not len(rows):
                continue
            rows = np.random.default_rng(0).choice(rows, min(args.limit, len(rows)), replace=False)
            sharpness = [crop_statistics(crop)["sharpness"] for crop in train.images[rows]]
            looks = np.c_[crop_looks(train.images[rows], train.native[rows]), sharpness]
            cells = [" / ".join(f"{v:.3g}" for v in np.percentile(looks[:, j], [10, 50, 90])) for j in range(len(columns))]
            print(f"| {train.name} | {name} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
