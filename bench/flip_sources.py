"""Where the robustness report's flipped verdicts come from, and what test-time changes do to them.

The robustness goal (``detector.robustness``): at half size plus JPEG quality 50, at most 5% of
the fake / not-fake verdicts may flip. This script scores the same test images as
``python -m detector robustness --limit N`` under that condition and splits the flips:

- **region kept / region moved**: whether the face finder chose the same scored region on the
  degraded photo (within 3 pixels of the original's, scaled) or another one;
- **original region**: the degraded photo scored at the original photo's regions, scaled, so
  only its pixels changed (what a perfectly steady face finder would give);
- **shift removed (oracle)**: the degraded photo's scores with the mean shift of their logits
  (measured on these very images) taken away: the most that shifting scores back by the
  degradation's average effect could give, even knowing which degradation a photo went
  through. What remains is each image's own jitter (the "as shipped" row's ``logit_shift_sd``).

Then it tries test-time changes that make the original and the degraded crop more alike
before the network sees them (both the original's crop and the degraded one pass through
it): downscaling to 96 or 64 pixels and back, a Gaussian blur, JPEG at quality 70. And it
scores each crop through other sets of scoring views than the card's
(``ModelCard.scoring_views``, see ``ALTERNATIVE_VIEWS``), each with its own calibration,
threshold and band refitted on validation data (as ``python -m detector calibrate`` would fit
them, so each row is the detector as it would ship with those views); run it
with ``--split val`` to choose among them. With ``--second-weights`` it also
scores the mean probability of two weights folders (each framing faces as its own card says)
against the mean of their thresholds: an ensemble.

    python bench/flip_sources.py [--weights weights/] [--second-weights DIR] [--limit 300]
        [--split test] [--json reports/flip_sources.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from scipy.special import expit
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detector import evaluation  # noqa: E402
from detector.card import WEIGHTS_DIR  # noqa: E402
from detector.data import read_records  # noqa: E402
from detector.faces import Box  # noqa: E402
from detector.imaging import load_image  # noqa: E402
from detector.views import CROP_AND_MIRROR, View  # noqa: E402
from detector.pipeline import Detector  # noqa: E402
from detector.robustness import CONDITIONS, GOAL_CONDITION, Degrade, blur, jpeg  # noqa: E402
from detector.training import SHARED_DATA, refit_calibration  # noqa: E402

#: A region that moved by at most this many pixels (after scaling) counts as kept.
KEPT_TOLERANCE = 3


def _mirrored_too(*windows: tuple[float, float, float]) -> tuple[View, ...]:
    """Each ``(side, dy, dx)`` window as is and mirrored."""
    return tuple((*w, mirrored) for w in windows for mirrored in (False, True))


_WHOLE, _PX = (1.0, 0.0, 0.0), 1 / 128
_SHIFTS = tuple((1.0, dy, dx) for dy, dx in ((4 * _PX, 0.0), (-4 * _PX, 0.0), (0.0, 4 * _PX), (0.0, -4 * _PX)))

#: Scoring views compared with the card's (``ModelCard.scoring_views``): the crop alone; the
#: crop and its mirror image, unshifted (``views.CROP_AND_MIRROR``, the views shipped before
#: the mirror image was shifted); and, at 5 and 6 times their cost, the crop shifted 4 pixels
#: up, down, left and right, with or without a centre zoom to 0.9 of the side, each also
#: mirrored.
ALTERNATIVE_VIEWS: dict[str, tuple[View, ...]] = {
    "views: crop alone": ((*_WHOLE, False),),
    "views: crop + mirror": CROP_AND_MIRROR,
    "views: + 4 shifts (x5)": _mirrored_too(_WHOLE, *_SHIFTS),
    "views: + zoom, 4 shifts (x6)": _mirrored_too(_WHOLE, (0.9, 0.0, 0.0), *_SHIFTS),
}


def bottleneck(side: int, input_size: int) -> Degrade:
    """Downscales a network-sized crop to ``side`` pixels and back."""

    def apply(crop: np.ndarray) -> np.ndarray:
        small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (input_size, input_size), interpolation=cv2.INTER_LINEAR)

    return apply


def scaled(region: Box, factor: float) -> Box:
    """``region`` in the pixels of the image resized by ``factor``."""
    return Box(*(int(round(v * factor)) for v in region.as_list()))


def calibrated_for(detector: Detector, views: tuple[View, ...], data_dir: str | Path = SHARED_DATA) -> Detector:
    """The detector as it would ship scoring through ``views``: the same network and finder,
    with the calibration, threshold and band refitted on validation data through them (the
    test split is not scored here: this script measures on its own images)."""
    fitted = refit_calibration(detector.model, detector.card, data_dir, views=views, splits=("val",))
    fitted.pop("metrics")
    return Detector(detector.model, replace(detector.card, **fitted))


def image_probability(detector: Detector, image: np.ndarray, regions: list[Box],
                      view: Degrade = lambda crop: crop) -> float:
    """The image's fake probability (the highest of its regions'), each crop passed through
    ``view``."""
    crops = np.stack([view(crop) for crop in detector.crops(image, regions)])
    return float(detector.probabilities(crops).max())


def without_mean_shift(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The degraded probabilities ``after`` with the mean shift of their logits from
    ``before`` taken away (the oracle row), and each image's shift.

    Returns:
        ``(after probabilities, shifted back; after - before logits)``.
    """
    shift = evaluation.logit(after) - evaluation.logit(before)
    return expit(evaluation.logit(after) - shift.mean()), shift


def summary(y: np.ndarray, before: np.ndarray, after: np.ndarray, threshold: float) -> dict:
    """ROC-AUC before and after, its drop, and the share of verdicts at ``threshold`` that flip."""
    auc_before = evaluation.binary_metrics(y, before, threshold)["roc_auc"]
    auc_after = evaluation.binary_metrics(y, after, threshold)["roc_auc"]
    return {"roc_auc": auc_before, "roc_auc_degraded": auc_after, "auc_drop": auc_before - auc_after,
            "flip_share": float(np.mean((before >= threshold) != (after >= threshold))), "n": int(len(y))}


def score_set(root: Path, detector: Detector, second: Detector | None = None, limit: int = 300,
              degrade: Degrade = CONDITIONS[GOAL_CONDITION], split: str = "test",
              alternatives: dict[str, Detector] | None = None) -> dict[str, dict]:
    """Every row of the report for one set.

    Args:
        root: The set folder.
        detector: The detector measured.
        second: Another detector for the ensemble row, or ``None``.
        limit: At most this many images per label.
        degrade: The degradation (the robustness goal's by default).
        split: The split scored.
        alternatives: Row name -> the detector with other scoring views (``calibrated_for``).

    Returns:
        Row name -> ``summary`` figures; the "region kept" and "region moved" rows hold only
        ``flip_share`` and ``n``.
    """
    alternatives = alternatives or {}
    size = detector.card.input_size
    views = {"bottleneck 96 px": bottleneck(96, size), "bottleneck 64 px": bottleneck(64, size),
             "blur sigma 1": blur(1.0), "JPEG 70": jpeg(70)}
    records = [r for r in read_records(root) if r.split == split]
    records = [r for label in (0, 1) for r in [x for x in records if x.label == label][:limit]]
    y, moved = [], []
    probs: dict[str, list[tuple[float, float]]] = {
        name: [] for name in ["as shipped", "original region", *views, *alternatives]}
    if second is not None:
        probs["ensemble"] = []
    for record in tqdm(records, desc=root.name, unit="img", leave=False):
        image = load_image(record.path)
        degraded = degrade(image)
        factor = degraded.shape[0] / image.shape[0]
        _, regions, _ = detector.regions(image)
        _, regions_degraded, _ = detector.regions(degraded)
        at_original = [scaled(r, factor) for r in regions]
        y.append(record.label)
        moved.append(len(regions) != len(regions_degraded) or any(
            np.abs(np.subtract(a.as_list(), b.as_list())).max() > KEPT_TOLERANCE
            for a, b in zip(at_original, regions_degraded)))
        before = image_probability(detector, image, regions)
        probs["as shipped"].append((before, image_probability(detector, degraded, regions_degraded)))
        probs["original region"].append((before, image_probability(detector, degraded, at_original)))
        for name, view in views.items():
            probs[name].append((image_probability(detector, image, regions, view),
                                image_probability(detector, degraded, regions_degraded, view)))
        for name, other in alternatives.items():
            probs[name].append((image_probability(other, image, regions),
                                image_probability(other, degraded, regions_degraded)))
        if second is not None:
            other = (second.predict(image).fake_probability, second.predict(degraded).fake_probability)
            probs["ensemble"].append(tuple((a + b) / 2 for a, b in zip(probs["as shipped"][-1], other)))

    y, moved = np.array(y), np.array(moved)
    threshold = detector.card.threshold
    rows = {}
    thresholds = {name: other.card.threshold for name, other in alternatives.items()}
    if second is not None:
        thresholds["ensemble"] = (threshold + second.card.threshold) / 2
    for name, pairs in probs.items():
        t = thresholds.get(name, threshold)
        before, after = np.array(pairs).T
        rows[name] = summary(y, before, after, t)
    before, after = np.array(probs["as shipped"]).T
    shifted_back, shift = without_mean_shift(before, after)
    rows["as shipped"].update(logit_shift_mean=float(shift.mean()), logit_shift_sd=float(shift.std()),
                              logit_sd=float(evaluation.logit(before).std()))
    rows["shift removed (oracle)"] = summary(y, before, shifted_back, threshold)
    for name, keep in [("region kept", ~moved), ("region moved", moved)]:
        rows[name] = {"flip_share": float(np.mean((before[keep] >= threshold) != (after[keep] >= threshold)))
                      if keep.any() else None, "n": int(keep.sum())}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(WEIGHTS_DIR))
    parser.add_argument("--second-weights", help="a second weights folder, averaged with --weights")
    parser.add_argument("--data", default=str(SHARED_DATA))
    parser.add_argument("--sets", nargs="+", default=["dfdc_faces", "ffhq_stylegan"])
    parser.add_argument("--limit", type=int, default=300, help="images per label and set (as robustness --limit)")
    parser.add_argument("--split", default="test", help="the split scored (val: to choose, test: to report)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()

    detector = Detector.load(args.weights)
    second = Detector.load(args.second_weights) if args.second_weights else None
    alternatives = {name: calibrated_for(detector, views, args.data) for name, views in ALTERNATIVE_VIEWS.items()}
    report = {"condition": GOAL_CONDITION, "weights": args.weights, "second_weights": args.second_weights,
              "split": args.split,
              "sets": {name: score_set(Path(args.data) / name, detector, second, args.limit, split=args.split,
                                      alternatives=alternatives)
                       for name in args.sets}}
    print(f"{GOAL_CONDITION}, {args.split} splits, at most {args.limit} images per label")
    print(f"{'set':<15}{'scoring':<30}{'n':>6}{'AUC':>8}{'degraded':>10}{'flips':>8}")
    for name, rows in report["sets"].items():
        for how, row in rows.items():
            auc = f"{row['roc_auc']:8.3f}{row['roc_auc_degraded']:10.3f}" if "roc_auc" in row else " " * 18
            flips = "–" if row["flip_share"] is None else f"{row['flip_share']:.1%}"
            print(f"{name:<15}{how:<30}{row['n']:>6}{auc}{flips:>8}")
    for name, rows in report["sets"].items():
        row = rows["as shipped"]
        print(f"{name}: degrading moves the calibrated logit by {row['logit_shift_mean']:+.2f} on average, "
              f"{row['logit_shift_sd']:.2f} sd per image (the undegraded logits spread {row['logit_sd']:.2f} sd)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
