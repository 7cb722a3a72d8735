"""Would two trained networks together do better than either? Run by hand on two weights folders.

Scores the cached validation and test crops of the first card's sets with each folder's
scoring network (its LiteRT copy), as ``python -m detector calibrate`` does, and averages the
two calibrated logits of each face. The pair is then calibrated as a single network is
(``evaluation.real_first_calibration``: Platt scaling with every source weighing the same, the
real-first threshold and band on validation data) and its test figures printed beside each
network's own, all through the same code. ``--reals-of SET`` adds how much more fake that
set's real faces score than every other source's, threshold-free. docs/training.md quotes its
runs on the shipped pair's members (runs H and J) and on H with run I.

    # the two networks `python train.py` trains before it fuses them (git does not keep them)
    python bench/ensemble.py weights/run/members/160 weights/run/members/192 --reals-of ffhq_stylegan
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detector import evaluation  # noqa: E402
from detector.card import ModelCard  # noqa: E402
from detector.defaults import SHARED_DATA  # noqa: E402

SPLITS = ("val", "test")


def calibrated_logits(folder: Path, data_dir: Path, names: list[str] | None = None) -> tuple[dict, dict]:
    """``{split: {set: (labels, calibrated logits)}}`` for the crops with a face of the sets
    ``names`` (the card's sets when ``None``), and the card's training config."""
    import keras

    from detector.training import card_sets, predict_logits, scoring_network

    card = ModelCard.load(folder)
    network = scoring_network(folder, card, keras.saving.load_model(folder / "model.keras", safe_mode=True, compile=False))
    sets = card_sets(card, data_dir, names=names)
    out = {}
    for split in SPLITS:
        parts = [a.split(split).with_faces() for a in sets]
        out[split] = {a.name: (a.labels, evaluation.logit(evaluation.apply_temperature(
            predict_logits(network, a.images, card.scoring_views), card.temperature, card.bias)))
            for a in parts}
    return out, card.training.get("config", {})


def figures(scored: dict, config: dict) -> dict:
    """Calibrates ``scored`` (as ``calibrated_logits`` gives) real-first on its validation
    split and reports its test split."""
    from detector.training import TrainConfig

    val = evaluation.with_one_label_pool(scored["val"])
    # The training sources: the sets with both labels and the pool of the one-label sets.
    sources = {name: (y, z) for name, (y, z) in val.items() if len(np.unique(y)) == 2}
    temperature, bias, threshold, band = evaluation.real_first_calibration(
        sources, config.get("uncertain_width", TrainConfig.uncertain_width),
        config.get("max_false_fake", TrainConfig.max_false_fake))
    test = evaluation.with_one_label_pool(scored["test"])
    out = {"threshold": threshold}
    for name, (y, z) in test.items():
        p = evaluation.apply_temperature(z, temperature, bias)
        row = {"auc": evaluation.binary_metrics(y, p, threshold)["roc_auc"] if len(np.unique(y)) == 2 else None}
        if (y == 0).any():
            row["reals_fake"] = float(np.mean(p[y == 0] >= threshold))
        if (y == 1).any():
            row["fakes_fake"] = float(np.mean(p[y == 1] >= threshold))
        out[name] = row
    return out


def reals_apart(scored: dict, name: str) -> dict[str, float]:
    """Per split, the ROC-AUC with which ``name``'s real faces score as *more fake* than every
    other source's real faces: 0.5 when a network holds that set's real photos for as real as
    the others', whatever the threshold."""
    from sklearn.metrics import roc_auc_score

    out = {}
    for split in SPLITS:
        y, z = scored[split][name]
        others = np.concatenate([w[t == 0] for n, (t, w) in scored[split].items() if n != name])
        out[split] = float(roc_auc_score(np.r_[np.zeros(len(others)), np.ones(int((y == 0).sum()))],
                                         np.r_[others, z[y == 0]]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--sets", nargs="+", help="set names in --data (default: the first card's sets); for two "
                        "leave-one-out runs, name the held-out set too: its ROC-AUC is the unseen-source figure")
    parser.add_argument("--reals-of", help="also say how much more fake this set's real faces score than the other "
                        "sources' reals, on validation and test (threshold-free)")
    args = parser.parse_args()

    first, config = calibrated_logits(args.first, args.data, args.sets)
    second, _ = calibrated_logits(args.second, args.data, args.sets)
    pair = {split: {name: (y, (z + second[split][name][1]) / 2) for name, (y, z) in first[split].items()}
            for split in SPLITS}
    for split in SPLITS:  # the same crops, in the same order, in both caches
        for name, (y, _) in first[split].items():
            if not np.array_equal(y, second[split][name][0]):
                raise SystemExit(f"{name}/{split}: the two folders' crops differ; compare runs on the same sets")
    rows = {"first": figures(first, config), "second": figures(second, config), "pair": figures(pair, config)}
    names = [n for n in rows["pair"] if n != "threshold"]
    print(f"{'':34}" + "".join(f"{k:>24}" for k in rows))
    print(f"{'threshold':34}" + "".join(f"{r['threshold']:>24.3f}" for r in rows.values()))
    for name in names:
        for key, title in (("auc", "ROC-AUC"), ("reals_fake", "reals called fake"), ("fakes_fake", "fakes called fake")):
            values = [r[name].get(key) for r in rows.values()]
            if any(v is not None for v in values):
                cells = "".join(f"{'-' if v is None else f'{v:.3f}':>24}" for v in values)
                print(f"{(name + ' ' + title)[:34]:34}{cells}")
    if args.reals_of:
        apart = [reals_apart(scored, args.reals_of) for scored in (first, second, pair)]
        for split in SPLITS:
            print(f"{(args.reals_of + ' reals apart, ' + split)[:34]:34}" + "".join(f"{a[split]:>24.3f}" for a in apart))


if __name__ == "__main__":
    main()
