"""How far each quantization of the scoring copy strays from the Keras network, and how fast it
runs: the measure behind ``lite.FLOAT_SIDE_SHARE``. Run by hand.

    python bench/quantization.py                 # weights/, test splits of ../shared/data
    python bench/quantization.py --weights runs/x --per-set 300

For each copy (all float32; int8 but the layers at >= 1/2, 1/4 or 1/8 of the input's side;
all int8), on every set's test faces (one view, the crop): the correlation of its logits with
the Keras network's, their 99th-percentile and largest difference, the set's ROC-AUC, and
the copy's time per window relative to the all-float copy, timed in turns in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: The copies compared: name -> ``float_side_share`` (``None``: no quantization at all).
COPIES = {"float32": None, "int8 below 1/2 (shipped)": 1 / 2, "int8 below 1/4": 1 / 4, "int8 below 1/8": 1 / 8,
          "int8": 2.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(REPO / "weights"))
    parser.add_argument("--per-set", type=int, default=600, help="test faces per set at most")
    args = parser.parse_args()

    from detector.startup import import_tensorflow

    import_tensorflow()
    import keras
    from sklearn.metrics import roc_auc_score

    from detector.card import MODEL_FILE, ModelCard
    from detector.lite import FLOAT_SIDE_SHARE, LiteNetwork, export
    from detector.sampling import group_sources
    from detector.training import card_sets, representative_crops

    card = ModelCard.load(args.weights)
    model = keras.saving.load_model(Path(args.weights) / MODEL_FILE, safe_mode=True, compile=False)
    sets = card_sets(card)
    rng = np.random.default_rng(0)
    sources = [s.select(rng.permutation(len(s.images))[:args.per_set])
               for s in group_sources([a.split("test").with_faces() for a in sets])]
    reference = {s.name: model.predict(s.images.astype(np.float32), batch_size=64, verbose=0).reshape(-1) for s in sources}
    representative = representative_crops(sets, seed=card.training.get("config", {}).get("seed", 0))
    timing = sources[0].images[:128].astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        copies = {name: LiteNetwork.load(export(model, Path(tmp) / f"{i}.tflite", None if share is None else representative,
                                                share or FLOAT_SIDE_SHARE))
                  for i, (name, share) in enumerate(COPIES.items())}
    times = {name: [] for name in copies}
    for _ in range(5):  # in turns, so that the machine's load falls on every copy alike
        for name, net in copies.items():
            started = time.perf_counter()
            net(timing)
            times[name].append(time.perf_counter() - started)
    base = np.median(times["float32"])
    print(f"{args.weights}: {len(timing)} windows timed 5 times in turns; per set, logits against Keras' and ROC-AUC")
    for name, net in copies.items():
        cells = []
        for s in sources:
            z, ref = net(s.images.astype(np.float32)), reference[s.name]
            auc = f" AUC {roc_auc_score(s.labels, ref):.3f}->{roc_auc_score(s.labels, z):.3f}" if len(set(s.labels)) == 2 else ""
            d = np.abs(z - ref)
            cells.append(f"{s.name}: r {np.corrcoef(z, ref)[0, 1]:.4f}, |d| p99 {np.quantile(d, 0.99):.2f} max {d.max():.2f}{auc}")
        print(f"\n{name}: {1000 * np.median(times[name]) / len(timing):.2f} ms/window, {base / np.median(times[name]):.2f}x the float32 copy")
        print("  " + "\n  ".join(cells))


if __name__ == "__main__":
    main()
