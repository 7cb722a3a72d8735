"""Face finders compared: YuNet (``detector.faces``, what runs) against the Haar cascade before it.

For each finder: on the example photos, the faces found against the true count, false boxes
(found boxes that overlap no true face) and the search time; then on a sample of every training
set's images (each holds one labelled face), the share in which a face is found and the time
per image. ``docs/FACES.md`` records a run of it.

Usage (from the repo root)::

    python bench/face_finders.py                 # 200 images per set and label, 5 timed runs per photo
    python bench/face_finders.py --n 50 --runs 3

Times are wall-clock medians on however many threads OpenCV uses; both finders run in the same
process, one after the other, so compare their ratio on a busy machine. The exit status is 1
when YuNet misses an example face or finds a false one.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from haar_finder import HaarFaceFinder  # noqa: E402

from detector.bench import timings  # noqa: E402
from detector.faces import Box, FaceFinder  # noqa: E402
from detector.imaging import load_image  # noqa: E402

SHARED = REPO.parent / "shared"

#: The true faces of each example photo, as (x, y, w, h) around the face (hairline to chin),
#: and why. A found box counts as a face when its centre lies in a true face's box.
EXAMPLE_FACES: dict[str, list[tuple[int, int, int, int]]] = {
    # One frontal face, a portrait.
    "skimage_astronaut_eileen_collins.png": [(178, 62, 89, 113)],
    "facerec_obama.jpg": [(371, 91, 240, 328)],
    "facerec_biden.jpg": [(416, 176, 300, 401)],
    # Two frontal faces side by side.
    "facerec_two_people.jpg": [(241, 30, 142, 196), (786, 47, 150, 206)],
    # Obama and Biden face the camera; a girl at the bottom right looks down, her face seen
    # from above (a face all the same); a woman cut off by the right border shows no face.
    "facerec_obama_and_biden.jpg": [(1142, 360, 183, 240), (761, 396, 169, 239), (1623, 1037, 154, 195)],
    # Three people; the man on the right tilts his head (~15 degrees).
    "dlib_voc_2008_001322.jpg": [(105, 145, 68, 96), (234, 202, 62, 80), (358, 148, 80, 101)],
    # A tall man and a woman; his raised hand and her checked shirt are not faces.
    "dlib_voc_2009_004587.jpg": [(148, 33, 74, 97), (270, 274, 55, 70)],
}

#: The faces a finder must report in each example photo.
EXPECTED = {name: len(faces) for name, faces in EXAMPLE_FACES.items()}

SETS = ("dfdc_faces", "ffhq_stylegan", "lfw_faceswap", "ecuador_flux_lora", "sfhq_t2i", "utkface_wild_crops")


def matches(found: list[Box], truth: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """``(true faces found, false boxes)``: a found box is a true face's when its centre lies
    inside that face's box; each true face counts once."""
    hit, false = set(), 0
    for box in found:
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        owner = next((i for i, (x, y, w, h) in enumerate(truth) if x <= cx <= x + w and y <= cy <= y + h), None)
        if owner is None:
            false += 1
        else:
            hit.add(owner)
    return len(hit), false


def sample(data: Path, name: str, n: int) -> dict[str, list[Path]]:
    """Up to ``n`` images per label of a set, drawn with a fixed seed."""
    rows = list(csv.DictReader((data / name / "metadata.csv").open()))
    out = {}
    for label in ("real", "fake"):
        paths = [data / name / r["file"] for r in rows if r["label"] == label]
        random.Random(0).shuffle(paths)
        if paths:
            out[label] = paths[:n]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=Path, default=SHARED / "examples", help="folder of example photos")
    parser.add_argument("--data", type=Path, default=SHARED / "data", help="folder of the labelled sets")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per example photo")
    parser.add_argument("--n", type=int, default=200, help="images per set and label")
    args = parser.parse_args(argv)

    finders = {"YuNet": FaceFinder(), "Haar": HaarFaceFinder()}
    print(f"load average {os.getloadavg()[0]:.1f}; times are medians, both finders in this process")
    print("\n| finder | example faces found | false boxes | ms per photo (median over photos) |\n|---|---|---|---|")
    ok = True
    images = {name: load_image(args.examples / name) for name in EXAMPLE_FACES if (args.examples / name).is_file()}
    for label, finder in finders.items():
        found = false = 0
        ms = []
        for name, image in images.items():
            hit, wrong = matches(finder.find(image), EXAMPLE_FACES[name])
            found, false = found + hit, false + wrong
            ms.append(1000 * float(np.median(timings(lambda: finder.find(image), args.runs, warmup=1))))
            if label == "YuNet" and (hit, wrong) != (EXPECTED[name], 0):
                print(f"  YuNet on {name}: {hit}/{EXPECTED[name]} faces, {wrong} false boxes", file=sys.stderr)
                ok = False
        total = sum(EXPECTED[n] for n in images)
        print(f"| {label} | {found}/{total} | {false} | {np.median(ms):.1f} |")

    print("\n| set | label | images | YuNet: face found | Haar: face found | YuNet ms | Haar ms |\n|---|---|---|---|---|---|---|")
    for name in SETS:
        if not (args.data / name / "metadata.csv").is_file():
            continue
        for label, paths in sample(args.data, name, args.n).items():
            pictures = [load_image(p) for p in paths]
            cells = []
            for finder in finders.values():
                found = sum(bool(finder.find(p)) for p in pictures)
                ms = 1000 * float(np.median(timings(lambda: [finder.find(p) for p in pictures[:20]], 3, warmup=1))) / 20
                cells.append((found, ms))
            (yf, yms), (hf, hms) = cells
            n = len(pictures)
            print(f"| {name} | {label} | {n} | {yf / n:.1%} | {hf / n:.1%} | {yms:.1f} | {hms:.1f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
