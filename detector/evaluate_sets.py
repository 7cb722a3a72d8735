"""Score labelled sets through the whole pipeline (decode, faces, CNN) and report metrics.

This is what ``python -m detector evaluate`` runs: every image goes through
``Detector.predict`` exactly as a user's upload would, so the figures are those of the
product, not of cached training crops.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from detector import evaluation
from detector.data import read_records
from detector.pipeline import Detector


@dataclass
class Scored:
    """What the product said about one labelled image."""

    label: str | None  # the verdict; None for an unreadable file
    fake_probability: float  # the highest face's; NaN without a face or a readable file
    heat_in_face: float | None = None  # share of the largest face's Grad-CAM heat inside its box


def heat_inside_box(face) -> float | None:
    """The share of a face's Grad-CAM heat that lies inside its face box (the region scored
    is larger: ``faces.FACE_MARGIN``); ``None`` without a map or heat."""
    if face.heatmap is None or face.heatmap.sum() <= 0:
        return None
    heat, region, box = face.heatmap, face.region, face.box
    scale = heat.shape[0] / region.w
    x0, y0 = int(round((box.x - region.x) * scale)), int(round((box.y - region.y) * scale))
    x1, y1 = int(round((box.x + box.w - region.x) * scale)), int(round((box.y + box.h - region.y) * scale))
    return float(heat[max(0, y0) : y1, max(0, x0) : x1].sum() / heat.sum())


def score_records(detector: Detector, paths: list[Path], desc: str = "", gradcam: bool = False) -> list[Scored]:
    """The verdict and fake probability of each image file, as ``predict`` gives them."""
    from detector.imaging import ImageError

    out = []
    for path in tqdm(paths, desc=desc, unit="img", leave=False, disable=None):
        try:
            result = detector.predict(path, gradcam=gradcam)
        except ImageError:
            out.append(Scored(None, np.nan))
            continue
        p = np.nan if result.fake_probability is None else result.fake_probability
        heat = heat_inside_box(result.faces[0]) if gradcam and result.faces else None
        out.append(Scored(result.label, p, heat))
    return out


def verdict_shares(scored: list[Scored], labels: np.ndarray) -> dict[str, Any]:
    """Per class, the share of images given each verdict, and the count without a face.

    ``real_called_fake`` is the share of real images whose verdict is "fake": the error a
    detector must make least. Images without a face get no verdict and count apart.
    """
    verdicts = np.array([s.label for s in scored], dtype=object)
    out: dict[str, Any] = {"no_face": int(np.sum(verdicts == "no face"))}
    for y, name in ((0, "real"), (1, "fake")):
        judged = (labels == y) & np.isin(verdicts, ["fake", "real", "uncertain"])
        for verdict in ("fake", "real", "uncertain"):
            share = float(np.mean(verdicts[judged] == verdict)) if judged.any() else None
            out[f"{name}_called_{verdict}"] = share
    heat = [s.heat_in_face for s in scored if s.heat_in_face is not None]
    out["heat_in_face"] = float(np.mean(heat)) if heat else None
    return out


def evaluate_sets(
    sets: list[str],
    split: str,
    out_dir: str | Path,
    weights: str | Path | None = None,
    limit: int | None = None,
    detector: Detector | None = None,
    gradcam: bool = False,
) -> dict:
    """Evaluates the detector on one split of several sets.

    Ranking and calibration figures (ROC-AUC, ECE, ...) are over the images with a face; each
    set's row also gives the verdicts' shares per class (``verdict_shares``), how many images
    had no face, and, with ``gradcam``, the mean share of the largest face's Grad-CAM heat that
    lies inside its face box. Sets that hold one label only get a pooled row as well
    (``evaluation.with_one_label_pool``).

    Args:
        sets: Set folders.
        split: ``train``, ``val`` or ``test``.
        out_dir: Where ``metrics.json``, ``roc.png``, ``confusion_<set>.png``,
            ``reliability_<set>.png`` and ``reliability.png`` (calibration, all sets
            pooled) go.
        weights: Weights folder; the shipped one when ``None``.
        limit: Score at most this many images per label and set.
        detector: An already loaded detector (overrides ``weights``).
        gradcam: Also measure where Grad-CAM puts its heat (slower).

    Returns:
        The report: metrics per set and ``overall``, with the threshold used.
    """
    detector = detector or Detector.load(weights)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_set, judged = {}, {}
    for root in sets:
        records = [r for r in read_records(root) if r.split == split]
        if limit is not None:
            by_label = [[r for r in records if r.label == label][:limit] for label in (0, 1)]
            records = by_label[0] + by_label[1]
        scored = score_records(detector, [r.path for r in records], desc=Path(root).name, gradcam=gradcam)
        y = np.array([r.label for r in records])
        p = np.array([s.fake_probability for s in scored])
        ok = ~np.isnan(p)
        name = Path(root).name
        per_set[name] = (y[ok], p[ok])
        judged[name] = (scored, y)
    card = detector.card
    report = evaluation.report(evaluation.with_one_label_pool(per_set), card.threshold,
                               uncertain_band=card.uncertain_band, pooled=list(per_set))
    # Verdict shares for every row, the pooled ones too (a pool of one-label sets is named
    # "a + b"; overall is every set): without them a pooled row's "fakes called fake" would
    # count scores at the threshold, not verdicts.
    for name, row in [*report["sets"].items(), ("overall", report["overall"])]:
        parts = list(judged) if name == "overall" else name.split(" + ")
        row.update(verdict_shares([s for part in parts for s in judged[part][0]],
                                  np.concatenate([judged[part][1] for part in parts])))
    report["split"] = split
    report["threshold"] = card.threshold
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    evaluation.plot_roc({k: v for k, v in evaluation.with_one_label_pool(per_set).items()
                         if len(np.unique(v[0])) == 2}, out_dir / "roc.png")
    for name, (y, p) in per_set.items():
        evaluation.plot_confusion(y, p, card.threshold, out_dir / f"confusion_{name}.png", title=f"{name} ({split})")
        # One calibration serves every set: the pooled diagram alone can hide a set it fits badly.
        evaluation.plot_reliability(y, p, out_dir / f"reliability_{name}.png", title=f"{name} ({split})")
    pooled_y = np.concatenate([y for y, _ in per_set.values()])
    pooled_p = np.concatenate([p for _, p in per_set.values()])
    evaluation.plot_reliability(pooled_y, pooled_p, out_dir / "reliability.png")
    return report
