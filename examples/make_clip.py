"""Writes ``two_scenes.mp4``, the Video tab's example, from two of the example photos.

Six seconds at 10 frames a second, 1280 x 720, MPEG-4: three seconds filming
``facerec_two_people.jpg`` and three filming ``facerec_obama_and_biden.jpg``, each as a
hand-held camera would (``detector.clipmaker``: slow zoom and drift), with a cut between them,
so the tab shows faces followed through a scene and new tracks after a cut. Real photos, so
real faces: it shows what the detector says about a genuine clip.

    python examples/make_clip.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from detector.clipmaker import moving_frames, write_clip  # noqa: E402
from detector.imaging import load_image  # noqa: E402

CLIP = HERE / "two_scenes.mp4"
SCENES = ("facerec_two_people.jpg", "facerec_obama_and_biden.jpg")
FPS, SECONDS, SIZE = 10, 3, (1280, 720)


def main() -> Path:
    frames = [frame for seed, name in enumerate(SCENES, 1)
              for frame in moving_frames(load_image(HERE / name), FPS * SECONDS, size=SIZE, seed=seed)]
    return write_clip(CLIP, frames, FPS)


if __name__ == "__main__":
    print(main())
