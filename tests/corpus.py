"""What people throw at a public demo, made in code: a corpus of bad and odd image files.

Not a test module: ``write_corpus(folder)`` writes the files, ``EXPECTED`` says which ones a
detector must refuse with an error and which ones it must score, and ``SAME_PIXELS`` pairs
files that decode to the same pixels, so their scores must be the same to the bit. The
photos come from ``../shared/examples`` when it is there (a real face, so face finding can be
checked), else from a synthetic face; nothing is downloaded.

The small builders (``encode``, ``png_claiming``, ``jpeg_claiming``) are shared with
``test_imaging.py``.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from conftest import EXAMPLES

#: A real single-face photo, and a real two-face photo for the 45-megapixel file.
FACE_PHOTO = EXAMPLES / "facerec_obama.jpg"
GROUP_PHOTO = EXAMPLES / "facerec_obama_and_biden.jpg"
#: Whether the corpus is made from real photos, whose faces the face finder must find.
REAL_PHOTOS = FACE_PHOTO.is_file() and GROUP_PHOTO.is_file()

#: Width and height of the big photo: 45.0 megapixels, under the 50-megapixel limit.
BIG_SIZE = (7940, 5669)


def encode(image: np.ndarray | Image.Image, fmt: str, **options) -> bytes:
    """Encodes an RGB array or a Pillow image with Pillow.

    Args:
        image: The image; arrays are RGB, RGBA or grayscale ``uint8``.
        fmt: A Pillow format name ("JPEG", "PNG", "GIF"...).
        **options: Pillow's save options for that format.

    Returns:
        The file's bytes.
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A complete, tiny PNG whose header claims ``width`` x ``height`` 8-bit gray pixels.

    Decoding it would allocate ``width * height`` bytes: a decompression bomb.
    """

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1000)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small, complete JPEG whose frame header is rewritten to claim ``width`` x ``height``."""
    pattern = np.kron([[0, 255], [255, 0]], np.ones((8, 8))).astype(np.uint8)
    data = bytearray(encode(pattern, "JPEG"))
    frame = data.find(b"\xff\xc0")  # baseline start-of-frame: length, precision, height, width
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _synthetic_face(height: int, width: int) -> np.ndarray:
    """A face-like drawing (head, eyes, mouth on a gradient), when no real photo is at hand."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = np.linspace(40, 200, width, dtype=np.uint8)[None, :, None]
    cx, cy, r = width // 2, height // 2, min(height, width) // 3
    cv2.ellipse(image, (cx, cy), (int(r * 0.8), r), 0, 0, 360, (205, 165, 135), -1)
    for dx in (-r // 3, r // 3):
        cv2.circle(image, (cx + dx, cy - r // 4), r // 10, (40, 30, 30), -1)
    cv2.ellipse(image, (cx, cy + r // 2), (r // 3, r // 10), 0, 0, 360, (150, 60, 60), -1)
    noise = np.random.default_rng(0).normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _photo(path: Path, synthetic_shape: tuple[int, int]) -> np.ndarray:
    """An RGB photo read from ``path``, or a synthetic face of that shape when it is missing."""
    if path.is_file():
        return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return _synthetic_face(*synthetic_shape)


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def _png(image: np.ndarray) -> bytes:
    """PNG of an RGB(A) or grayscale array of uint8 or uint16 (OpenCV keeps 16 bits)."""
    if image.ndim == 3:
        code = cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        image = cv2.cvtColor(image, code)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def _exif_rotated(face: np.ndarray) -> bytes:
    """The face photo as a phone held sideways stores it: pixels turned a quarter to the
    left, with EXIF orientation 6 ("turn 90 degrees clockwise to show")."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(np.ascontiguousarray(np.rot90(face)), "JPEG", quality=95, exif=exif.tobytes())


def _cut_out(face: np.ndarray) -> bytes:
    """The face photo as a cut-out portrait: opaque inside an ellipse, transparent around it
    with a soft edge, as an RGBA PNG."""
    h, w = face.shape[:2]
    alpha = np.zeros((h, w), np.uint8)
    cv2.ellipse(alpha, (w // 2, h // 2), (int(w * 0.45), int(h * 0.48)), 0, 0, 360, 255, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 8)
    return _png(np.dstack([face, alpha]))


def _animated_gif(face: np.ndarray) -> bytes:
    """Three frames of the face photo (the second and third darker), looping."""
    small = cv2.resize(face, (320, round(320 * face.shape[0] / face.shape[1])), interpolation=cv2.INTER_AREA)
    frames = [Image.fromarray((small * k).astype(np.uint8)) for k in (1.0, 0.7, 0.4)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)


def _trailing_garbage(face: np.ndarray) -> bytes:
    """The face JPEG followed by 20 kB of random bytes and marker-like bytes, as some
    cameras and messengers append."""
    garbage = np.random.default_rng(2).bytes(20_000) + b"\xff\xd8\xff\xe0 more \xff\xda\xff\xd9"
    return _jpeg(face) + garbage


def _big_photo(group: np.ndarray) -> bytes:
    """The two-face photo upscaled to 45 megapixels, saved as a camera would (JPEG q85)."""
    return _jpeg(cv2.resize(group, BIG_SIZE, interpolation=cv2.INTER_CUBIC), quality=85)


def _gradient(height: int, width: int) -> np.ndarray:
    """A colourful gradient (not flat, so thin images are not judged only as too flat)."""
    y, x = np.mgrid[:height, :width]
    return np.dstack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256]).astype(np.uint8)


TEXT = b"Holiday photos\n- beach.jpg\n- mountains.jpg\nSee you soon!\n"
HTML = (
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
    b"<body><h1>Not Found</h1><img src='/photo.png'></body></html>\n"
)
SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="240" viewBox="0 0 200 240">\n'
    b'  <ellipse cx="100" cy="120" rx="80" ry="100" fill="#e0b090"/>\n'
    b'  <circle cx="70" cy="100" r="8"/><circle cx="130" cy="100" r="8"/>\n'
    b'  <path d="M60 170 Q100 200 140 170" stroke="#903030" stroke-width="6" fill="none"/>\n'
    b"</svg>\n"
)

Photos = tuple[np.ndarray, np.ndarray]  # the face photo and the two-face photo, RGB
# name: (what a detector must do with it, how to make its bytes from the photos).
_CORPUS: dict[str, tuple[str, Callable[[Photos], bytes]]] = {
    # Good, ordinary photos: the reference the variants below are compared with.
    "photo.jpg": ("score", lambda p: _jpeg(p[0])),
    "photo.png": ("score", lambda p: _png(p[0])),
    # Not images, whatever their names say.
    "empty.jpg": ("error", lambda p: b""),
    "notes.jpg": ("error", lambda p: TEXT),
    "page.png": ("error", lambda p: HTML),
    "random.jpg": ("error", lambda p: np.random.default_rng(1).bytes(5000)),
    "vector.svg": ("error", lambda p: SVG),
    # Damaged images, as after an interrupted download.
    "truncated.jpg": ("error", lambda p: (d := _jpeg(p[0]))[: len(d) // 2]),
    "truncated.png": ("error", lambda p: (d := _png(p[0]))[: len(d) // 2]),
    # Decompression bombs: tiny files whose headers claim gigapixels.
    "bomb_60000x60000.png": ("error", lambda p: png_claiming(60_000, 60_000)),
    "bomb_30000x30000.jpg": ("error", lambda p: jpeg_claiming(30_000, 30_000)),
    # Tiny and extreme shapes.
    "pixel_1x1.png": ("score", lambda p: _png(np.array([[[180, 120, 90]]], np.uint8))),
    "thin_3000x1.png": ("score", lambda p: _png(_gradient(1, 3000))),
    "thin_1x3000.png": ("score", lambda p: _png(_gradient(3000, 1))),
    # Unusual but valid encodings.
    "animated.gif": ("score", lambda p: _animated_gif(p[0])),
    "sixteen_bit.png": ("score", lambda p: _png(p[0].astype(np.uint16) * 257)),
    "grayscale.jpg": ("score", lambda p: _jpeg(cv2.cvtColor(p[0], cv2.COLOR_RGB2GRAY))),
    "cut_out_rgba.png": ("score", lambda p: _cut_out(p[0])),
    "cmyk.jpg": ("score", lambda p: encode(Image.fromarray(p[0]).convert("CMYK"), "JPEG", quality=90)),
    "exif_rotated.jpg": ("score", lambda p: _exif_rotated(p[0])),
    "trailing_garbage.jpg": ("score", lambda p: _trailing_garbage(p[0])),
    "png_named.jpg": ("score", lambda p: _png(p[0])),
    "big_45mp.jpg": ("score", lambda p: _big_photo(p[1])),
}

#: Corpus file name -> "error" (must be refused with a clear message) or "score".
EXPECTED: dict[str, str] = {name: expected for name, (expected, _) in _CORPUS.items()}

#: Files that decode to exactly the pixels of another corpus file (16-bit values are the
#: 8-bit ones times 257, the garbage comes after the JPEG's end): same scores, to the bit.
SAME_PIXELS: dict[str, str] = {
    "trailing_garbage.jpg": "photo.jpg",
    "png_named.jpg": "photo.png",
    "sixteen_bit.png": "photo.png",
}


def write_corpus(folder: str | Path) -> dict[str, Path]:
    """Writes every corpus file into ``folder`` (made if missing).

    Args:
        folder: Where to write; the files are named as in ``EXPECTED``.

    Returns:
        Name -> path of each file written, in the order of ``EXPECTED``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    photos = (_photo(FACE_PHOTO, (1137, 910)), _photo(GROUP_PHOTO, (1428, 2000)))
    paths = {}
    for name, (_, build) in _CORPUS.items():
        paths[name] = folder / name
        paths[name].write_bytes(build(photos))
    return paths
