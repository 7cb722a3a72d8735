"""Read a video file as evenly spaced RGB frames, or say clearly why not.

    info, frames = sample_frames("clip.mp4")      # checks the file, decodes nothing yet
    for frame in frames:                          # one decoded frame at a time
        frame.index, frame.t, frame.rgb

OpenCV's FFmpeg backend (bundled in the ``opencv-python-headless`` wheel) reads MP4 and MOV
(H.264, MPEG-4), WebM (VP8, VP9), AVI, MKV and animated GIF. The container is recognised by
its content, as images are, never by the file name.

Everything that can be known before decoding is checked first: the byte count, that the
content is a video container, that FFmpeg opens it, and the frame size. Frames are then
read in order and every ``1 / sample_fps`` seconds of the clip's own timestamps (variable
frame rates included) one is kept, at most ``max_samples`` of them: a clip longer than
``max_samples / sample_fps`` seconds has its samples spread over all of it instead
(``VideoInfo.spread``), so that no part goes unseen; one whose length the container does not
tell is read up to that time, and ``Frames.cut_short`` says so. Only the frame being sampled is
held in memory, so memory does not grow with the clip's length.

Frames come out upright: OpenCV applies the container's rotation (a phone's portrait clip
is stored landscape with a 90 degree display matrix); ``VideoInfo.rotation`` reports it.

Anything unusable raises a subclass of :class:`VideoError`, itself an
:class:`detector.imaging.ImageError`, so every caller that reports unusable inputs reports
these too; the message names the file and can be shown to a user as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# FFmpeg prints its own complaints ("moov atom not found") on stderr; the errors below say
# it better. Read when OpenCV first opens a video, so setting it at import is in time.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2
import numpy as np

from detector.defaults import VIDEO_MAX_FRAMES, VIDEO_SAMPLE_FPS
from detector.imaging import AVIF_BRANDS, HEIF_BRANDS, ImageError

#: Frames kept per second of video. DFDC's winning entries scored 2 to 4 frames a second;
#: faces in a clip change little within half a second.
SAMPLE_FPS = VIDEO_SAMPLE_FPS
#: Most frames kept per clip: with ``SAMPLE_FPS``, a clip up to 60 s long. A longer one gets
#: its samples spread over all of it: a swap in its third minute is seen, if less often.
MAX_SAMPLES = VIDEO_MAX_FRAMES
#: A clip too short for this many samples at ``SAMPLE_FPS`` (under 4 s, an animated GIF) is
#: sampled faster, up to every frame, so that its faces still get several looks.
MIN_SAMPLES = 8
#: Largest video file accepted, in bytes (1 GB).
MAX_VIDEO_BYTES = 1_000_000_000
#: Largest frame accepted, in pixels: 4K UHD (3840 x 2160) passes, 8K does not.
MAX_FRAME_PIXELS = 3840 * 2160

#: File name endings walked as videos in folders. GIF is both: an animated one is a video.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".ts", ".3gp", ".wmv", ".flv"})
SUPPORTED = "MP4, MOV, WebM, MKV, AVI or animated GIF"

# A frame rate outside this range is a container's placeholder, not a rate.
_PLAUSIBLE_FPS = (0.1, 1000.0)


class VideoError(ImageError):
    """A file that cannot be read as a video; the message names the file."""


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The path does not exist."""


class EmptyVideoError(VideoError):
    """The file holds nothing: 0 bytes, or a video without a single frame."""


class NotAVideoError(VideoError):
    """The content is not a video container (text, a document, random bytes)."""


class CorruptVideoError(VideoError):
    """A video container FFmpeg cannot open or decode."""


class TruncatedVideoError(CorruptVideoError):
    """A video whose data stops early, as after an interrupted download."""


class VideoTooLargeError(VideoError):
    """More bytes, or larger frames, than the limits allow."""


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a clip before and while it is read.

    Attributes:
        path: The file.
        width: Frame width in pixels, upright (after rotation).
        height: Frame height in pixels, upright.
        fps: The container's frame rate (0 when it states none).
        duration_s: Length from the container (frame count / rate); ``None`` when unknown.
        rotation: Degrees the frames are turned to stand upright (0, 90, 180 or 270).
        codec: The codec's four-character code, e.g. ``h264``, ``FMP4``, ``VP90``, ``gif``.
        sample_fps: Frames kept per second: the ``sample_fps`` asked for, faster for a short
            clip (see ``MIN_SAMPLES``), or slower for a long one (``spread``).
        scored_s: How many seconds of the clip are sampled at most.
        spread: The clip is longer than ``max_samples`` frames at the ``sample_fps`` asked
            for, so its samples are spread over all of it (``max_samples / duration_s`` a
            second).
    """

    path: Path
    width: int
    height: int
    fps: float
    duration_s: float | None
    rotation: int
    codec: str
    sample_fps: float
    scored_s: float
    spread: bool


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its index among the samples, its time in seconds, its pixels."""

    index: int
    t: float
    rgb: np.ndarray


def sniff(head: bytes) -> str | None:
    """The kind of media the first bytes of a file announce.

    Args:
        head: The file's first bytes (64 are enough).

    Returns:
        ``"video"`` for a video container, ``"gif"`` for a GIF (a video only when
        animated), ``"image"`` for a still image format, ``None`` for anything else.
    """
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        # ISO media: MP4, MOV, 3GP; but HEIC and AVIF photos are ISO media too.
        return "image" if head[8:12] in AVIF_BRANDS | HEIF_BRANDS else "video"
    if (
        head.startswith(b"\x1a\x45\xdf\xa3")  # Matroska, WebM
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or head.startswith((b"FLV", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3", b"\x30\x26\xb2\x75"))  # FLV, MPEG-PS, ASF
        or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47)  # MPEG-TS
    ):
        return "video"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"BM", b"II*\x00", b"MM\x00*")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    ):
        return "image"
    return None


def is_video(path: str | os.PathLike) -> bool:
    """Whether a file should be scored as a video rather than as an image.

    The content decides: a video container, or a GIF with more than one frame. A file that
    is neither image nor video (or cannot be read) counts as a video when its name ends like
    one, so that ``clip.mp4`` holding text gets a video's error, not an image's.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(200)
    except OSError:
        return path.suffix.lower() in VIDEO_SUFFIXES
    kind = sniff(head)
    if kind == "gif":
        return _frame_count(path) > 1
    if kind is None:
        return path.suffix.lower() in VIDEO_SUFFIXES
    return kind == "video"


def _frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()


def sample_frames(
    path: str | os.PathLike,
    sample_fps: float = SAMPLE_FPS,
    max_samples: int = MAX_SAMPLES,
    *,
    max_bytes: int = MAX_VIDEO_BYTES,
    max_pixels: int = MAX_FRAME_PIXELS,
) -> tuple[VideoInfo, "Frames"]:
    """Opens a video, checks it, and returns its description and its sampled frames.

    The frames are decoded lazily, one at a time, as the iterator is consumed; the first
    frame is read here, so a file that opens but holds no decodable frame fails now.

    Args:
        path: A video file.
        sample_fps: Frames kept per second of the clip.
        max_samples: Most frames kept. A clip longer than ``max_samples / sample_fps``
            seconds gets them spread over its whole length; one of unknown length is read up
            to that time.
        max_bytes: Largest file accepted.
        max_pixels: Largest frame accepted (width x height).

    Returns:
        ``(info, frames)``: the ``VideoInfo`` and ``Frames``, an iterable of ``Frame``
        (upright RGB uint8) at times 0, ``1 / info.sample_fps``, ..., each the first
        frame at or after that time (``info.sample_fps`` may differ from ``sample_fps``:
        see ``VideoInfo``).

    Raises:
        VideoNotFoundError: the path does not exist.
        EmptyVideoError: the file is empty, or holds no frame.
        NotAVideoError: the content is not a video (text, a document, unknown bytes).
        CorruptVideoError: FFmpeg cannot open the container or decode its first frame.
        TruncatedVideoError: the container's index is missing, as when a download stopped.
        VideoTooLargeError: over ``max_bytes`` or ``max_pixels``.
        ValueError: ``sample_fps`` or ``max_samples`` is not positive.
    """
    if not sample_fps > 0 or max_samples < 1:
        raise ValueError(f"sample_fps and max_samples must be positive, not {sample_fps!r} and {max_samples!r}")
    path = Path(path)
    name = f"File '{path}'"
    head = _read_head(path, name, max_bytes)
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)  # a file FFmpeg refuses gets the error below, not a warning
    try:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    finally:
        logging.setLogLevel(level)
    if not capture.isOpened():
        raise _why_not_opened(path, head, name)
    try:
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        info = _describe(capture, path, sample_fps, max_samples)
        if info.width * info.height > max_pixels:
            raise VideoTooLargeError(
                f"{name} has frames of {info.width}x{info.height} = {info.width * info.height:,} pixels; "
                f"the limit is {max_pixels:,} pixels (4K)."
            )
        ok, first = capture.read()
        if not ok or first is None:
            raise EmptyVideoError(f"{name} is a video without a frame that can be decoded.")
    except BaseException:
        capture.release()
        raise
    return info, Frames(capture, first, info, max_samples)


def _read_head(path: Path, name: str, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise NotAVideoError(f"{name} is a folder, not a video file.")
        with open(path, "rb") as f:
            head = f.read(200)
    except FileNotFoundError:
        raise VideoNotFoundError(f"{name} does not exist.") from None
    except OSError as exc:
        raise VideoError(f"{name} cannot be read: {exc.strerror or exc}.") from exc
    if size == 0:
        raise EmptyVideoError(f"{name} is empty (0 bytes).")
    if size > max_bytes:
        raise VideoTooLargeError(f"{name} is {size:,} bytes; the limit is {max_bytes:,} bytes ({max_bytes / 1e6:g} MB).")
    return head


def _why_not_opened(path: Path, head: bytes, name: str) -> VideoError:
    """The error for a file FFmpeg could not open, from what its first bytes say it is."""
    kind = sniff(head)
    if kind == "video":
        index = _iso_index(path) if head[4:8] == b"ftyp" else None
        if index == b"":
            # An MP4 or MOV writes its index (the moov box) last, as OpenCV does: without it,
            # a cut-off download cannot be opened at all.
            return TruncatedVideoError(
                f"{name} is an incomplete or damaged MP4/MOV video: its index is missing "
                "(was a download or copy interrupted?)."
            )
        if index is not None and b"vide" not in index:
            return CorruptVideoError(f"{name} looks like a video file but holds no video stream (sound only?).")
        return CorruptVideoError(f"{name} looks like a video, but it is damaged or in a codec that cannot be decoded.")
    if kind == "image":
        return NotAVideoError(f"{name} is a still image, not a video; score it as an image.")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"%pdf"):
        what = "a PDF document"
    elif text.startswith(b"<") and (b"<html" in text or b"<!doctype" in text):
        what = "a web page (HTML)"
    elif all(32 <= b < 256 or b in b"\t\n\r\f\b" for b in head):
        what = "text"
    else:
        what = "not a recognised video"
    return NotAVideoError(f"{name} is {what}, not a video; supported videos are {SUPPORTED}.")


def _iso_index(path: Path, most: int = 64_000_000) -> bytes | None:
    """The ``moov`` box (the index of tracks) of an MP4/MOV file, found by walking its
    top-level boxes; ``b""`` when the file has none, ``None`` when it is too large to read."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        at = 0
        while at + 8 <= size:
            f.seek(at)
            header = f.read(16)
            length, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if length == 1 and len(header) == 16:
                length = int.from_bytes(header[8:16], "big")
            elif length == 0:
                length = size - at
            if length < 8:
                return b""  # damaged box sizes: as good as no index
            if kind == b"moov":
                if length > most:
                    return None
                f.seek(at)
                return f.read(length)
            at += length
    return b""


def _describe(capture: cv2.VideoCapture, path: Path, sample_fps: float, max_samples: int) -> VideoInfo:
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    if not _PLAUSIBLE_FPS[0] <= fps <= _PLAUSIBLE_FPS[1]:
        fps = 0.0
    count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
    duration = count / fps if fps and count > 0 else None
    if duration and sample_fps * duration < MIN_SAMPLES:
        sample_fps = min(MIN_SAMPLES / duration, fps)
    spread = bool(duration) and sample_fps * duration > max_samples
    if spread:
        sample_fps = max_samples / duration
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC) or 0)
    codec = fourcc.to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ") if fourcc > 0 else "?"
    return VideoInfo(
        path=path,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=fps,
        duration_s=duration,
        rotation=int(capture.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360,
        codec=codec,
        sample_fps=sample_fps,
        scored_s=max_samples / sample_fps,
        spread=spread,
    )


class Frames:
    """The sampled frames of an open clip, decoded one at a time as they are iterated.

    After the iteration, ``cut_short`` says whether the clip went on past the last sample
    that ``max_samples`` allowed, and ``last_t`` is the time of the last frame decoded.
    The frames in between the samples are decoded without being converted (``grab``).
    """

    def __init__(self, capture: cv2.VideoCapture, first: np.ndarray, info: VideoInfo, max_samples: int) -> None:
        self._capture, self._first = capture, first
        self.info, self.max_samples = info, max_samples
        self.cut_short = False
        self.last_t = 0.0

    def __iter__(self) -> Iterator[Frame]:
        capture, bgr, position, taken = self._capture, self._first, 0, 0
        self._first = None
        if bgr is None:
            return  # iterated once already: the capture is closed
        try:
            while True:
                t = self.last_t = _timestamp(capture, position, self.info.fps)
                if t >= taken / self.info.sample_fps - 1e-6:
                    if taken >= self.max_samples:
                        self.cut_short = True
                        return
                    if bgr is None:
                        ok, bgr = capture.retrieve()
                        if not ok:
                            return  # a damaged frame at the end: keep what was read
                    yield Frame(taken, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                    taken += 1
                bgr = None
                if not capture.grab():
                    return
                position += 1
        finally:
            capture.release()

    def close(self) -> None:
        """Releases the file (iterating to the end does it too)."""
        self._first = None
        self._capture.release()


def _timestamp(capture: cv2.VideoCapture, position: int, fps: float) -> float:
    """Seconds into the clip of the frame just read: the container's timestamp, or the
    frame's position over the frame rate when the container keeps none."""
    ms = capture.get(cv2.CAP_PROP_POS_MSEC)
    if position > 0 and ms <= 0 and fps:
        return position / fps
    return max(ms, 0.0) / 1000.0
