"""Does a face's verdict in a clip depend on how long the clip is? Run by hand.

Films each photo (the gallery's real photos, or a set's first test images of one label) with
small moves as clips of several lengths (6, 60 and 180 s at 10 frames a second, at most 1280 px
wide), scores each through ``Detector.predict_video`` as a user's clip is scored, and prints
each face's verdict at each length, then how many faces each length calls fake, uncertain and
real. The video calibration
is fitted on clips of 6 frames (``python -m detector video-eval``); a 60 s clip gives 120
frames, and so does a longer one (spread over it): a pooling that grows with the number of
frames would call the same face faker the longer the clip. docs/VIDEO.md quotes it.

    python bench/clip_length.py
    python bench/clip_length.py --set sfhq_t2i --label fake --limit 7
    python bench/clip_length.py --weights DIR --seconds 6 30 --photos my_photos/
    python bench/clip_length.py --seconds 180 --max-width 640     # small faces, as in a 360p clip
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Frames per second of the clips written (the detector samples 2 of them a second).
FPS = 10
#: Widest frame written by default: larger photos are shrunk to it (even sides, as codecs want).
MAX_WIDTH = 1280


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="weights folder (default weights/)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[6.0, 60.0, 180.0], help="clip lengths")
    parser.add_argument("--photos", default=str(REPO / "examples"), help="a folder of photos (default: the gallery)")
    parser.add_argument("--set", default=None, help="instead, a set of ../shared/data: its test images")
    parser.add_argument("--label", default="real", choices=("real", "fake"), help="with --set: which label")
    parser.add_argument("--limit", type=int, default=7, help="with --set: how many images (the first by name)")
    parser.add_argument("--max-width", type=int, default=MAX_WIDTH, help="widest frame: larger photos are shrunk")
    args = parser.parse_args()

    from detector.clipmaker import moving_frames, write_clip
    from detector.data import read_records
    from detector.defaults import SHARED_DATA
    from detector.imaging import IMAGE_SUFFIXES, load_image
    from detector.pipeline import Detector
    from detector.pooling import VideoCalibration
    from detector.wording import face_phrase

    detector = Detector.load(args.weights)
    if args.set:
        records = read_records(SHARED_DATA / args.set)
        photos = [r.path for r in records if r.split == "test" and r.label == (args.label == "fake")][: args.limit]
    else:
        photos = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    calibration = VideoCalibration.of(detector.card)
    print(f"Pooling {calibration.pooling}; threshold {calibration.threshold:.3f}. Each face: verdict (fake probability).\n")
    print("| photo | " + " | ".join(f"{s:g} s" for s in args.seconds) + " |")
    print("|---" * (len(args.seconds) + 1) + "|")
    totals = {s: Counter() for s in args.seconds}
    with tempfile.TemporaryDirectory(prefix="clip-length-") as folder:
        for i, photo in enumerate(photos):
            image = load_image(photo)
            scale = min(1.0, args.max_width / image.shape[1])
            size = (int(image.shape[1] * scale) // 2 * 2, int(image.shape[0] * scale) // 2 * 2)
            cells = []
            for seconds in args.seconds:
                clip = write_clip(Path(folder) / f"{i}-{seconds:g}.mp4",
                                  moving_frames(image, round(seconds * FPS), size=size, seed=i), FPS)
                result = detector.predict_video(clip)
                clip.unlink()
                totals[seconds].update(t.label for t in result.tracks)
                cells.append("; ".join(face_phrase(t.label, t.fake_probability, t.id) for t in result.tracks) or "no face")
            print(f"| {photo.name} | " + " | ".join(cells) + " |")
    print("\n| faces | " + " | ".join(f"{s:g} s" for s in args.seconds) + " |")
    print("|---" * (len(args.seconds) + 1) + "|")
    for label in ("fake", "uncertain", "real"):
        print(f"| {label} | " + " | ".join(str(totals[s][label]) for s in args.seconds) + " |")


if __name__ == "__main__":
    main()
