"""Test clips, made in code: faces of ``../shared/data`` and ``../shared/examples`` filmed with
small moves (``detector.clipmaker``), and the broken files people upload.

Not a test module. Nothing here is committed but code: the clips are written into each
test's temporary folder from the shared images, which stay outside the repository.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import DATA, EXAMPLES
from detector.clipmaker import moving_frames, write_clip
from detector.imaging import load_image

#: Whole-head FFHQ portraits (256 px): the face finder finds every one of the first few.
PORTRAITS = DATA / "ffhq_stylegan" / "real"
TWO_PEOPLE = EXAMPLES / "facerec_obama_and_biden.jpg"
HAVE_FACES = PORTRAITS.is_dir() and TWO_PEOPLE.is_file()


def portrait(i: int = 0) -> np.ndarray:
    """The ``i``-th FFHQ portrait of the shared data, by file name."""
    return load_image(sorted(PORTRAITS.glob("*.jpg"))[i])


def one_face(path: Path, seconds: float = 3.0, fps: float = 10.0, i: int = 0, **options) -> Path:
    """A clip of one portrait, 320 x 320."""
    return write_clip(path, moving_frames(portrait(i), round(seconds * fps), size=(320, 320), seed=i), fps, **options)


def two_faces(path: Path, seconds: float = 3.0, fps: float = 10.0, size: tuple[int, int] = (640, 360)) -> Path:
    """A clip of the example photo of two people, side by side."""
    return write_clip(path, moving_frames(load_image(TWO_PEOPLE), round(seconds * fps), size=size, seed=5), fps)


def with_cut(path: Path, fps: float = 10.0) -> Path:
    """Two seconds of one portrait, a cut, two seconds of another: the faces overlap on screen."""
    shots = [moving_frames(portrait(i), round(2 * fps), size=(320, 320), seed=i) for i in (0, 3)]
    return write_clip(path, (frame for shot in shots for frame in shot), fps)


def no_face(path: Path, seconds: float = 2.0, fps: float = 10.0, **options) -> Path:
    """A clip of a sky-like gradient with a drifting sun: no face anywhere."""
    y, x = np.mgrid[0:240, 0:320]
    frames = []
    for k in range(round(seconds * fps)):
        sky = np.dstack([90 + y // 3, 140 + y // 4, np.full_like(y, 230)]).astype(np.uint8)
        sky[(x - 60 - 4 * k) ** 2 + (y - 60) ** 2 < 400] = (250, 220, 120)
        frames.append(sky)
    return write_clip(path, frames, fps, **options)


def h264(path: Path, frames: list[np.ndarray], fps: int = 10, codec: str = "libx264",
         pix_fmt: str = "yuv420p", container: str | None = None) -> Path:
    """An H.264 MP4, as phones and most sites make them (PyAV's libx264: OpenCV's own wheel
    cannot encode H.264); or, with ``codec="libx265"``, HEVC as iPhones record it (in a MOV,
    at 10 bits with ``pix_fmt="yuv420p10le"``); with ``container="h264"``, a bare stream that
    tells neither its length nor its frame rate. The container is else the file name's."""
    import av

    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def audio_only(path: Path) -> Path:
    """An MP4 holding one second of sound and no video stream."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        t = np.arange(16000) / 16000
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def rotated(source: Path, path: Path) -> Path:
    """A copy of an MP4 whose display matrix turns it 90 degrees, as a phone films portrait.

    OpenCV's writer stores no rotation, so the matrix of the track header (``tkhd``) is
    written in place: ``[0 1 0; -1 0 0; 0 0 1]`` in 16.16 fixed point.
    """
    data = bytearray(source.read_bytes())
    at = data.index(b"tkhd")
    version = data[at + 4]
    matrix = at + 8 + (20 if version == 0 else 32) + 16
    assert struct.unpack(">9i", data[matrix : matrix + 36]) == (1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))
    return path


def truncated(source: Path, path: Path, keep: float = 0.5) -> Path:
    """The first ``keep`` of a file, as an interrupted download leaves it."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def animated_gif(path: Path, frames: list[np.ndarray], ms: int = 100) -> Path:
    """An animated GIF (Pillow), ``ms`` milliseconds a frame."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms, loop=0)
    return path
