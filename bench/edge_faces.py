"""Faces cut off by the photo's edge: how their verdicts compare with whole faces'. Run by hand.

Scores a split of each set through the ``Detector`` and counts, per set and class, the faces
``faces.cut_off_by_edge`` flags and those it does not, with how many of each score at or above
the card's threshold (what they would be called without the rule: "fake"). The rule
(``faces.MAX_EDGE_SHIFT``) and docs/training.md quote it.

    python bench/edge_faces.py                 # the validation split
    python bench/edge_faces.py --split test
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="weights folder (default weights/)")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    args = parser.parse_args()

    from detector.data import read_records
    from detector.defaults import SHARED_DATA, SHARED_SETS
    from detector.faces import cut_off_by_edge
    from detector.imaging import ImageError
    from detector.pipeline import Detector

    detector = Detector.load(args.weights)
    print(f"{'set':<20} {'class':<5} {'cut-off faces':>14} {'at/above threshold':>19} {'whole faces':>12} {'at/above threshold':>19}")
    for name in SHARED_SETS:
        counts = {label: Counter() for label in ("real", "fake")}
        for record in read_records(SHARED_DATA / name):
            if record.split != args.split:
                continue
            try:
                result = detector.predict(record.path)
            except ImageError:
                continue
            tally = counts["fake" if record.label else "real"]
            for face in result.faces:
                kind = "cut" if cut_off_by_edge(face.box, face.region, result.image_size, detector.card.face_margin) else "whole"
                tally[kind] += 1
                tally[kind + " high"] += face.fake_probability >= detector.card.threshold
        for label, c in counts.items():
            if c["cut"] + c["whole"]:
                print(f"{name:<20} {label:<5} {c['cut']:>14} {c['cut high']:>19} {c['whole']:>12} {c['whole high']:>19}")


if __name__ == "__main__":
    main()
