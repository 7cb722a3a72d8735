"""Are iPhone photos (HEIC) judged as the same photos in JPEG are? Run by hand.

iPhones save HEIC by default, and the detector decodes it (``detector.imaging``, pi-heif). HEVC
leaves other traces than JPEG's blocks, and the network learned from JPEG and PNG files only.
This re-encodes every test image as HEIC at two qualities (pillow-heif's encoder, a test
requirement) and, for comparison, as JPEG at the same nominal qualities, scores each through
the whole pipeline (``detector.robustness``: faces found again) and prints per set the ROC-AUC,
its drop from the images as they are, and the share of verdicts that flip across the threshold.
docs/robustness.md quotes it.

    python bench/heic_photos.py --limit 150 --out reports/heic
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def heic(quality: int):
    """Re-encodes an RGB image as HEIC at ``quality`` and decodes it as the detector does."""
    import pillow_heif

    from detector.imaging import load_image

    def apply(image: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        pillow_heif.from_bytes("RGB", (image.shape[1], image.shape[0]), image.tobytes()).save(buffer, quality=quality)
        return load_image(buffer.getvalue())

    return apply


def main() -> None:
    from detector.defaults import SHARED_DATA, SHARED_SETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="weights folder (default weights/)")
    parser.add_argument("--sets", nargs="*", default=[str(SHARED_DATA / s) for s in SHARED_SETS])
    parser.add_argument("--limit", type=int, default=150, help="test images per set and label")
    parser.add_argument("--qualities", type=int, nargs=2, default=[80, 50], help="HEIC and JPEG qualities")
    parser.add_argument("--out", default="reports/heic", help="folder for robustness.json and its plot")
    args = parser.parse_args()

    from detector.robustness import jpeg, robustness_report

    conditions = {"none": lambda image: image}
    for quality in args.qualities:
        conditions[f"heic{quality}"] = heic(quality)
        conditions[f"jpeg{quality}"] = jpeg(quality)
    report = robustness_report(args.sets, args.out, weights=args.weights, limit=args.limit, conditions=conditions)
    names = list(conditions)[1:]
    print("ROC-AUC (its change from the images as they are) and verdicts flipped, per set and re-encoding:\n")
    print("| set | as uploaded | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 2) + "|")
    for name, rows in report["sets"].items():
        base = rows["none"]["roc_auc"]
        cells = []
        for condition in names:
            row = rows[condition]
            auc = "–" if row["auc_drop"] is None else f"{row['roc_auc']:.3f} ({-row['auc_drop']:+.3f})"
            cells.append(f"{auc}, {row['flip_share']:.1%} flipped")
        print(f"| {name} ({rows['none']['n']}) | {'–' if base is None else f'{base:.3f}'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
