"""Score labelled sets through the whole pipeline (decode, faces, CNN) and report metrics.

This is what ``python -m detector evaluate`` runs: every image goes through
``Detector.predict`` exactly as a user's upload would, so the figures are those of the
product, not of cached training crops.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detector import evaluation
from detector.data import read_records
from detector.pipeline import Detector


def score_records(detector: Detector, paths: list[Path], desc: str = "") -> np.ndarray:
    """Fake probabilities of image files (``Result.image_score``: the whole image's where no
    face is found, since every labelled image counts); an unreadable file scores NaN."""
    from detector.imaging import ImageError

    out = np.full(len(paths), np.nan)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", leave=False)):
        try:
            out[i] = detector.predict(path).image_score
        except ImageError:
            pass
    return out


def evaluate_sets(
    sets: list[str],
    split: str,
    out_dir: str | Path,
    weights: str | Path | None = None,
    limit: int | None = None,
    detector: Detector | None = None,
) -> dict:
    """Evaluates the detector on one split of several sets.

    Args:
        sets: Set folders.
        split: ``train``, ``val`` or ``test``.
        out_dir: Where ``metrics.json``, ``roc.png``, ``confusion_<set>.png``,
            ``reliability_<set>.png`` and ``reliability.png`` (calibration, all sets
            pooled) go.
        weights: Weights folder; the shipped one when ``None``.
        limit: Score at most this many images per label and set.
        detector: An already loaded detector (overrides ``weights``).

    Returns:
        The report: metrics per set and ``overall``, with the threshold used.
    """
    detector = detector or Detector.load(weights)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_set = {}
    for root in sets:
        records = [r for r in read_records(root) if r.split == split]
        if limit is not None:
            by_label = [[r for r in records if r.label == label][:limit] for label in (0, 1)]
            records = by_label[0] + by_label[1]
        p = score_records(detector, [r.path for r in records], desc=Path(root).name)
        y = np.array([r.label for r in records])
        ok = ~np.isnan(p)
        per_set[Path(root).name] = (y[ok], p[ok])
    card = detector.card
    report = evaluation.report(per_set, card.threshold, uncertain_band=card.uncertain_band)
    report["split"] = split
    report["threshold"] = card.threshold
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    evaluation.plot_roc(per_set, out_dir / "roc.png")
    for name, (y, p) in per_set.items():
        evaluation.plot_confusion(y, p, card.threshold, out_dir / f"confusion_{name}.png", title=f"{name} ({split})")
        # One calibration serves every set: the pooled diagram alone can hide a set it fits badly.
        evaluation.plot_reliability(y, p, out_dir / f"reliability_{name}.png", title=f"{name} ({split})")
    pooled_y = np.concatenate([y for y, _ in per_set.values()])
    pooled_p = np.concatenate([p for _, p in per_set.values()])
    evaluation.plot_reliability(pooled_y, pooled_p, out_dir / "reliability.png")
    return report
