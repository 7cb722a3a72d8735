"""Does a retrain give the shipped model again? Run by hand after `python train.py --out DIR`.

Compares two weights folders (docs/training.md quotes its last run).

The ``.keras`` file's sha256 (in the model card) changes with every save, since the archive
holds the save date and Python object ids; this compares what matters: every weight array,
the calibration and threshold, and the test metrics of the two cards.

    python train.py --out /tmp/rerun
    python bench/compare_weights.py weights/ /tmp/rerun
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detector.card import ModelCard  # noqa: E402
from detector.pipeline import Detector  # noqa: E402

#: Test metrics compared, per set.
METRICS = ("roc_auc", "accuracy", "precision", "recall", "ece")


def weight_differences(first: str | Path, second: str | Path) -> list[tuple[str, float]]:
    """``(variable path, largest absolute difference)`` for every weight of two models.

    Weights are matched by position: Keras numbers the auto-named layers of the second model
    loaded in a process apart from the first's (``conv2d_1`` for ``conv2d``).

    Raises:
        ValueError: the two models' weights differ in number or shapes.
    """
    a, b = (Detector.load(folder).model for folder in (first, second))
    shapes = [[tuple(v.shape) for v in m.weights] for m in (a, b)]
    if shapes[0] != shapes[1]:
        raise ValueError(f"{first} and {second} hold different architectures")
    return [(v.path, float(np.abs(np.asarray(v) - np.asarray(w)).max())) for v, w in zip(a.weights, b.weights)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args()

    diffs = weight_differences(args.first, args.second)
    largest = max(diffs, key=lambda d: d[1])
    identical = sum(d == 0.0 for _, d in diffs)
    print(f"{identical} of {len(diffs)} weight arrays identical; largest difference {largest[1]:.3g} ({largest[0]})")
    cards = [ModelCard.load(folder) for folder in (args.first, args.second)]
    for field in ("temperature", "bias", "threshold"):
        x, y = (getattr(c, field) for c in cards)
        print(f"{field:<12}{x:10.4f}{y:10.4f}")
    print(f"{'minutes':<12}{cards[0].training['minutes']:10.1f}{cards[1].training['minutes']:10.1f}")
    for name, row in cards[0].metrics["test"]["sets"].items():
        other = cards[1].metrics["test"]["sets"].get(name, {})
        print(f"test {name}: " + ", ".join(f"{m} {row[m]:.3f} / {other.get(m, float('nan')):.3f}" for m in METRICS))


if __name__ == "__main__":
    main()
