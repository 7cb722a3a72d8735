"""How different is each DFDC fake from the real frame it was made from?

DFDC fakes share their group (source video) with one real frame, aligned pixel for pixel.
The swap changes the face, not the border of the crop, so the border's difference is the
noise of the two videos' separate compression. Where the face centre differs no more than
the border does, the "fake" frame carries no visible manipulation, and no single-image
detector can tell it from its real frame: this bounds what any detector can reach here.

    python bench/dfdc_pair_difference.py [--split test]
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
from detector.training import SHARED_DATA  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default=str(SHARED_DATA / "dfdc_faces"))
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    pairs = defaultdict(dict)
    for r in read_records(args.set):
        if r.split == args.split:
            pairs[r.group][r.label] = r.path
    diffs, ratios = [], []
    for pair in pairs.values():
        if len(pair) == 2:
            real, fake = (cv2.imread(str(pair[k])).astype(np.float32) for k in (0, 1))
            if real.shape == fake.shape:
                diff = np.abs(real - fake).mean(axis=2)
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
    print("face-centre difference / border difference, percentiles: " +
          ", ".join(f"p{q}={np.percentile(ratio, q):.2f}" for q in (5, 10, 25, 50)))
    for limit in (1.2, 1.5):
        print(f"fakes whose face differs no more than {limit}x the border noise: {np.mean(ratio < limit):.1%}")


if __name__ == "__main__":
    main()
