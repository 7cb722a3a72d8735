"""Make short video clips from still images, as a hand-held camera would film them.

The labelled sets hold photos, not videos; the pooling measurement (``video_eval``), the
benchmark's clips and the tests film them instead: each frame is the image slightly
zoomed and shifted along a smooth path (a slow drift, never a jump), and the clip goes
through a real video codec (``cv2.VideoWriter``, MPEG-4 by default), whose compression
differs from frame to frame as in any video.

    frames = moving_frames(image, 20, size=(1280, 720), seed=1)
    write_clip("clip.mp4", frames, fps=10)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np


def cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to cover ``size`` (width, height) and cut to it, centred."""
    width, height = size
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    scaled = cv2.resize(image, (max(width, round(w * scale)), max(height, round(h * scale))),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y, x = (scaled.shape[0] - height) // 2, (scaled.shape[1] - width) // 2
    return scaled[y : y + height, x : x + width]


def moving_frames(
    images: np.ndarray | list[np.ndarray],
    n: int,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    zoom: float = 0.04,
    shift: float = 0.02,
) -> Iterator[np.ndarray]:
    """``n`` frames filming one image, or several in turn, with small smooth moves.

    Args:
        images: One RGB uint8 image, or a list filmed in turn (frame ``k`` shows image
            ``k % len(images)``), all brought to ``size``.
        n: Number of frames.
        size: ``(width, height)`` of the frames; the first image's by default.
        seed: Chooses the path of the moves.
        zoom: Largest zoom in, as a share of the frame (0.04: 4%).
        shift: Largest shift each way, as a share of the frame's side.

    Yields:
        RGB uint8 frames of ``size``. The image stays zoomed in by at least ``2 * shift`` so
        that a shift never shows anything past its border.
    """
    images = [images] if isinstance(images, np.ndarray) else list(images)
    width, height = size or (images[0].shape[1], images[0].shape[0])
    bases = [cover(image, (width, height)) for image in images]
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 2 * math.pi, 3)
    for k in range(n):
        a = 2 * math.pi * k / max(n, 2)
        z = 1 + 2 * shift + zoom * (0.5 - 0.5 * math.cos(a + phases[0]))
        dx, dy = shift * width * math.sin(a + phases[1]), shift * height * math.sin(a + phases[2])
        matrix = np.float32([[z, 0, (1 - z) * width / 2 + dx], [0, z, (1 - z) * height / 2 + dy]])
        yield cv2.warpAffine(bases[k % len(bases)], matrix, (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)


def write_clip(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, fourcc: str = "mp4v") -> Path:
    """Writes RGB frames as a video with OpenCV.

    Args:
        path: The file; its ending chooses the container (``.mp4``, ``.webm``, ``.avi``...).
        frames: RGB uint8 frames, all of one size (odd sides are cut to even, as codecs
            need).
        fps: Frames per second.
        fourcc: The codec: ``mp4v`` (MPEG-4), ``VP80``/``VP90`` (WebM), ``MJPG`` (AVI).

    Returns:
        The path.

    Raises:
        ValueError: no frames, or OpenCV cannot write this codec to this container.
    """
    path = Path(path)
    writer = None
    try:
        for frame in frames:
            frame = frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
                if not writer.isOpened():
                    raise ValueError(f"OpenCV cannot write {fourcc!r} video to {path}")
            writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError(f"no frames to write to {path}")
    return path
