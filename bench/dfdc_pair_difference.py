"""How different is each DFDC fake from the real frame it was made from, and does the model see it?

DFDC fakes share their group (source video) with one real frame, aligned pixel for pixel.
The swap changes the face, not the border of the crop, so the border's difference is the
noise of the two videos' separate compression. The script prints how far the fakes are
from their real frames: the mean difference per pixel, and the ratio of the difference in
the middle half of the crop to the difference along its border.

With ``--weights`` it asks the model two questions:

- **Does it find the fakes that barely differ?** The ROC-AUC of each band of fakes (by that
  ratio) against all the split's reals. A band whose fakes the model cannot tell from reals
  scores ~0.5; if the model read only large pixel changes, AUC would rise with the ratio.
- **Does its evidence lie in the face or in the frame?** Hybrids of each pair: the fake's
  middle (half or 70% of the side, feathered) pasted into its real frame, and the real's
  middle into the fake frame, each scored against the reals. A model that reads the face
  scores the first like the fakes and the second like the reals; one that reads the video
  (its compression, its background) does the opposite.

Scores are of training-style crops (``faces.training_crop``), each the mean of the crop's
and its mirror's logit, as ``python -m detector evaluate`` scores them.

    python bench/dfdc_pair_difference.py [--split test] [--weights weights/]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detector.data import read_records  # noqa: E402
from detector.imaging import load_image  # noqa: E402
from detector.training import SHARED_DATA  # noqa: E402

#: Bands of the middle/border difference ratio the fakes are scored in.
RATIO_BANDS = ((0.0, 1.2), (1.2, 1.5), (1.5, 2.5), (2.5, np.inf))

#: Side of the pasted middle square, as a share of the crop's side.
HYBRID_SIDES = (0.5, 0.7)


def aligned_pairs(root: str, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (real, fake) RGB images of every group of ``split`` that has one of each, same size."""
    pairs = defaultdict(dict)
    for r in read_records(root):
        if r.split == split:
            pairs[r.group][r.label] = r.path
    images = [(load_image(p[0]), load_image(p[1])) for p in pairs.values() if len(p) == 2]
    return [(real, fake) for real, fake in images if real.shape == fake.shape]


def middle_mask(height: int, width: int, side: float) -> np.ndarray:
    """An ``(H, W, 1)`` mask: 1 on the middle square of ``side`` times the image, feathered."""
    mask = np.zeros((height, width), np.float32)
    top, left = int(height * (1 - side) / 2), int(width * (1 - side) / 2)
    mask[top : height - top, left : width - left] = 1.0
    return cv2.GaussianBlur(mask, (0, 0), 0.03 * height)[..., None]


def paste_middle(middle_from: np.ndarray, frame: np.ndarray, side: float) -> np.ndarray:
    """``frame`` with the middle square of ``middle_from`` pasted in."""
    mask = middle_mask(*frame.shape[:2], side)
    return (middle_from * mask + frame * (1 - mask)).round().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default=str(SHARED_DATA / "dfdc_faces"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--weights", help="also score the pairs and their hybrids with these weights")
    args = parser.parse_args()

    pairs = aligned_pairs(args.set, args.split)
    diffs, ratios = [], []
    for real, fake in pairs:
        diff = np.abs(real.astype(np.float32) - fake).mean(axis=2)
        h, w = diff.shape
        centre = diff[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].mean()
        ring = np.concatenate([diff[: h // 8].ravel(), diff[-h // 8 :].ravel(),
                               diff[:, : w // 8].ravel(), diff[:, -w // 8 :].ravel()]).mean()
        diffs.append(float(diff.mean()))
        ratios.append(float(centre / max(ring, 0.5)))
    d, ratio = np.array(diffs), np.array(ratios)
    print(f"{len(d)} aligned real/fake pairs in the {args.split} split of {Path(args.set).name}")
    print("mean |real - fake| per pixel, percentiles: " +
          ", ".join(f"p{q}={np.percentile(d, q):.1f}" for q in (5, 10, 25, 50, 75, 90)))
    for limit in (2.5, 3.0, 4.0, 5.0):
        print(f"fakes within {limit} grey levels of their real frame: {np.mean(d < limit):.1%}")
    print("middle-half difference / border difference, percentiles: " +
          ", ".join(f"p{q}={np.percentile(ratio, q):.2f}" for q in (5, 10, 25, 50)))
    for limit in (1.2, 1.5):
        print(f"fakes whose middle half differs no more than {limit}x the border noise: {np.mean(ratio < limit):.1%}")
    if args.weights:
        score_pairs(pairs, ratio, args.weights)


def score_pairs(pairs: list[tuple[np.ndarray, np.ndarray]], ratio: np.ndarray, weights: str) -> None:
    """Prints the model's ROC-AUC against the reals for each band of fakes and each hybrid."""
    from sklearn.metrics import roc_auc_score

    from detector.data import training_input
    from detector.pipeline import Detector

    detector = Detector.load(weights)
    card = detector.card

    def scores(images) -> np.ndarray:
        crops = [training_input(im, card.input_size, detector.finder, card.face_margin) for im in images]
        return detector.logits(np.stack(crops))

    reals = scores(real for real, _ in pairs)

    def auc_against_reals(logits: np.ndarray) -> float:
        return roc_auc_score(np.r_[np.zeros(len(reals)), np.ones(len(logits))], np.r_[reals, logits])

    fakes = scores(fake for _, fake in pairs)
    rows = [("all fakes", fakes)]
    for lo, hi in RATIO_BANDS:
        band = f"above {lo}x" if hi == np.inf else f"{lo}-{hi}x"
        rows.append((f"fakes whose middle differs {band} the border noise", fakes[(ratio >= lo) & (ratio < hi)]))
    for side in HYBRID_SIDES:
        for what, middle, frame in (("fake middle in the real frame", 1, 0), ("real middle in the fake frame", 0, 1)):
            rows.append((f"{what} ({side:.0%} of the side)",
                         scores(paste_middle(pair[middle], pair[frame], side) for pair in pairs)))
    print(f"\n{weights}: ROC-AUC against all {len(reals)} reals of the pairs")
    for label, logits in rows:
        print(f"{label:<56}{len(logits):6d}  {auc_against_reals(logits):.3f}")


if __name__ == "__main__":
    main()
