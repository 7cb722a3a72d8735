"""How long the page's answer takes, and how much memory it adds, for photos of 12 to 108
megapixels: phones' full-resolution modes (50 MP: 8160-8192 x 6120-6144; 108 MP: 12000 x 9000)
against a usual 12 MP photo. Run by hand; docs/reliability.md quotes it, and the pixel limit
(``detector.imaging.MAX_PIXELS``) is set from it.

Each size runs in a fresh process: the detector is loaded and warmed up on a small photo, then
the photo (the gallery's two people, enlarged, JPEG 90) goes through what the page does with an
upload: decoded and scored with Grad-CAM (``app_common.score_upload``), the overlay and the
close-ups drawn (``render``). Printed: seconds for that, and the process's peak memory above
its warmed-up level.

    python bench/large_photos.py
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZES = ((4000, 3000), (8192, 6144), (12000, 9000))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def one(width: int, height: int) -> None:
    """Measures one size in this process and prints its line."""
    import cv2

    import app_common
    from detector import Detector
    from detector import render
    from detector.defaults import EXAMPLES

    source = cv2.imread(str(EXAMPLES / "facerec_two_people.jpg"))
    with tempfile.TemporaryDirectory() as folder:
        small, large = Path(folder) / "small.jpg", Path(folder) / "large.jpg"
        cv2.imwrite(str(small), source)
        cv2.imwrite(str(large), cv2.resize(source, (width, height), interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
        detector = Detector.load()

        def answer(path: Path) -> str:
            scored = app_common.score_upload(detector, str(path), path.name)
            if isinstance(scored, str):
                return scored
            result, rgb = scored
            render.overlay(rgb, result)
            render.closeups(rgb, result)
            return f"{result.label}, {len(result.faces)} faces"

        answer(small)  # warm-up: graphs traced, Grad-CAM built
        before = peak_mb()
        start = time.perf_counter()
        said = answer(large)
        seconds = time.perf_counter() - start
    print(f"{width} x {height} ({width * height / 1e6:.1f} MP): {seconds:.2f} s, peak memory "
          f"+{peak_mb() - before:.0f} MB (from {before:.0f} MB): {said}", flush=True)


def main() -> None:
    if len(sys.argv) == 3:
        one(int(sys.argv[1]), int(sys.argv[2]))
        return
    for width, height in SIZES:
        subprocess.run([sys.executable, __file__, str(width), str(height)], check=True)


if __name__ == "__main__":
    main()
