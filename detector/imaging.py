"""Turn a path, bytes or array into an RGB uint8 image, or say clearly why not.

Every image enters the detector through :func:`load_image`, which returns an
``(H, W, 3)`` RGB ``uint8`` C-contiguous array that never shares memory with its input:

* JPEG, PNG, WebP, BMP, TIFF and GIF are decoded by OpenCV, AVIF by Pillow, HEIC/HEIF
  (iPhone photos) by pi-heif (libheif and libde265, decoders only: the larger pillow-heif's
  wheel bundles a GPL encoder). The format is read from the content, never from the file
  name; animated GIF/WebP/AVIF and multi-page TIFF give their first frame, a HEIC file its
  primary image; data after the end of the image is ignored.
* Grayscale is repeated into three channels, CMYK is converted to RGB, and 16-bit and
  float samples are scaled to 8 bits with rounding.
* Transparency is composited onto white, as a browser shows the image on a white page.
  (Dropping the alpha channel instead would show whatever colour the transparent pixels
  happen to hold, often black.)
* The EXIF orientation is applied, so a phone photo comes out upright (in AVIF and HEIC, the
  rotation and mirror boxes, which take its place).

Files are checked before any pixel is decoded: the byte count against ``max_bytes``, and
the width and height in the header against ``max_pixels`` and ``max_side``, so a small
file that claims to be a gigapixel image (a decompression bomb) is refused at once.

Anything unusable raises a subclass of :class:`ImageError` (a ``ValueError``) whose
message names the input and can be shown to a user as it is.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from pi_heif.as_plugin import HeifImageFile
from PIL import (
    AvifImagePlugin,
    BmpImagePlugin,
    ExifTags,
    GifImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

#: Most pixels accepted: a phone's full-resolution photo passes (50 MP modes are 8160-8192 x
#: 6120-6144, 50.3 MP; a 108 MP one 12000 x 9000), and so does a 61-megapixel camera's; a
#: 200-megapixel one does not. On the page, a 108 MP photo's answer raised the server's peak
#: memory by about 0.6 GB here (``python bench/large_photos.py``, docs/reliability.md).
MAX_PIXELS = 110_000_000
#: Longest side accepted, in pixels, so that very thin images stay bounded too.
MAX_SIDE = 20_000
#: Largest file or upload accepted, in bytes (100 MB).
MAX_BYTES = 100_000_000

SUPPORTED_FORMATS = ("JPEG", "PNG", "WebP", "AVIF", "HEIC", "BMP", "TIFF", "GIF")
#: File suffixes of those formats: what walking a folder takes for an image.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".avif", ".heic", ".heif", ".bmp", ".tif", ".tiff",
                            ".gif"})


class ImageError(ValueError):
    """An input that cannot be turned into an image; the message names the input."""


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The path does not exist."""


class EmptyImageError(ImageError):
    """The input holds nothing: a 0-byte file or upload, or an array without pixels."""


class NotAnImageError(ImageError):
    """Not a raster image: text, a web page, a document, a vector image, random bytes."""


class UnsupportedFormatError(ImageError):
    """A recognised image format, or array type, that is not decoded."""


class CorruptImageError(ImageError):
    """An image in a supported format whose data is damaged."""


class TruncatedImageError(CorruptImageError):
    """An image whose data stops early, as after an interrupted download."""


class ImageTooLargeError(ImageError):
    """More bytes, pixels or pixels per side than the limits allow."""


def load_image(
    source: str | os.PathLike | bytes | bytearray | memoryview | np.ndarray,
    *,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
    max_bytes: int = MAX_BYTES,
) -> np.ndarray:
    """Decode a file, an upload or an array into an RGB image.

    Arrays may be ``(H, W)`` or ``(H, W, 1)`` grayscale, ``(H, W, 3)`` RGB or
    ``(H, W, 4)`` RGBA, of dtype ``uint8``, ``uint16`` (scaled by 255/65535) or float
    with values in [0, 1]. They are held to the same pixel limits as files.

    Args:
        source: A path to an image file, the bytes of one, or a NumPy array.
        max_pixels: Most pixels (width x height) accepted.
        max_side: Longest width or height accepted, in pixels.
        max_bytes: Largest file or upload accepted, in bytes.

    Returns:
        A new ``(H, W, 3)`` RGB ``uint8`` C-contiguous array, upright.

    Raises:
        ImageNotFoundError: The path does not exist.
        EmptyImageError: The file or bytes are empty, or the array has no pixels.
        NotAnImageError: The content is not a raster image, or the array's shape or
            values are not an image's.
        UnsupportedFormatError: A known image format that is not decoded (HEIC, PSD...),
            or an array dtype that is not supported.
        TruncatedImageError: The image data stops before the image ends.
        CorruptImageError: The image data is damaged.
        ImageTooLargeError: Over ``max_bytes``, ``max_pixels`` or ``max_side``.
        ImageError: The file cannot be read (permissions, I/O error).
        TypeError: ``source`` is none of the types above.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels, max_side)
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = "Uploaded data"
        data = bytes(source) if isinstance(source, memoryview) else source
        _check_bytes(len(data), name, max_bytes)
    elif isinstance(source, (str, os.PathLike)):
        name = f"File '{os.fspath(source)}'"
        data = _read_file(Path(source), name, max_bytes)
    else:
        kind = type(source).__name__
        raise TypeError(f"load_image() takes a path, bytes or a NumPy array, not {kind}")
    return _decode(data, name, max_pixels, max_side)


def _read_file(path: Path, name: str, max_bytes: int) -> bytes:
    """Read a file whose size is within ``max_bytes``, checked before reading it."""
    try:
        _check_bytes(path.stat().st_size, name, max_bytes)
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageNotFoundError(f"{name} does not exist.") from None
    except IsADirectoryError:
        raise NotAnImageError(f"{name} is a folder, not an image file.") from None
    except OSError as exc:
        raise ImageError(f"{name} cannot be read: {exc.strerror or exc}.") from exc


def _decode(data: bytes, name: str, max_pixels: int, max_side: int) -> np.ndarray:
    """Identify, check and decode the bytes of an image file."""
    if not data:
        raise EmptyImageError(f"{name} is empty (0 bytes).")
    fmt = _identify(data, name)
    complete = _COMPLETE.get(fmt)
    if complete and not complete(data):
        raise TruncatedImageError(
            f"{name} is an incomplete {fmt} image: its data stops before the image ends "
            "(was a download or copy interrupted?)."
        )
    width, height, orientation = _read_header(data, fmt, name)
    _check_pixels(width, height, name, max_pixels, max_side)

    image, bgr = _decode_pixels(data, fmt)
    if image is None or image.size == 0:
        raise CorruptImageError(f"{name} is a damaged {fmt} image that cannot be decoded.")
    image = _to_rgb(_to_uint8(image, name), bgr=bgr)
    if orientation in _ORIENTATIONS:
        image = _ORIENTATIONS[orientation](image)
    return image


def _decode_pixels(data: bytes, fmt: str) -> tuple[np.ndarray | None, bool]:
    """The stored pixels (not yet turned upright) and whether they are BGR; ``None`` if damaged."""
    if fmt in ("AVIF", "HEIC"):
        # OpenCV's AVIF reader returns 10- and 12-bit samples unscaled in 16 bits, which would
        # read as near black; Pillow's and pi-heif's scale them to 8 bits. (pi-heif also turns a
        # HEIC image by its rotation and mirror boxes; Pillow reports an AVIF's as its EXIF
        # orientation, applied by the caller.)
        try:
            with HEADER_READERS[fmt](io.BytesIO(data)) as picture:
                return np.asarray(picture.convert("RGBA" if "A" in picture.mode else "RGB")), False
        except (SyntaxError, OSError, ValueError):
            return None, False
    # IMREAD_UNCHANGED keeps alpha and 16-bit samples, which IMREAD_COLOR would drop or
    # truncate; the price is that it ignores EXIF orientation, applied by the caller instead.
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), True


# Leading bytes of the formats decoded. WebP (RIFF....WEBP) is recognised in _identify.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
# Leading bytes of image formats recognised but not decoded, so the user learns what to convert.
_UNSUPPORTED_SIGNATURES = (
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x00\x00\x01\x00", "Windows icon (ICO)"),
    (b"\xffO\xffQ", "JPEG 2000"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
)
#: Brands of ISO media files (an "ftyp" box at byte 4) that hold photos, not video.
AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
# Bytes found in text; anything else (NUL and other control codes) marks binary data.
_TEXT_BYTES = bytes(range(32, 256)) + b"\t\n\r\f\b"


def iso_photo_format(head: bytes) -> str | None:
    """``"AVIF"`` or ``"HEIC"`` for an ISO media file whose ``ftyp`` box names a photo brand
    (major or compatible), ``None`` for any other file (MP4, MOV, not ISO media)."""
    if head[4:8] != b"ftyp":
        return None
    box_end = min(int.from_bytes(head[:4], "big"), len(head), 64)
    brands = {head[i : i + 4] for i in range(8, box_end, 4)}  # major, minor, compatible
    return "AVIF" if brands & AVIF_BRANDS else "HEIC" if brands & HEIF_BRANDS else None


def _identify(data: bytes, name: str) -> str:
    """Return the format of ``data``, one of SUPPORTED_FORMATS, or raise why it has none."""
    for signature, fmt in _SIGNATURES:
        if data.startswith(signature):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"

    supported = ", ".join(SUPPORTED_FORMATS)
    unsupported = next((fmt for sig, fmt in _UNSUPPORTED_SIGNATURES if data.startswith(sig)), None)
    if data[4:8] == b"ftyp":
        if photo := iso_photo_format(data):
            return photo
        raise NotAnImageError(f"{name} is a video or audio file, not an image.")
    if unsupported:
        raise UnsupportedFormatError(
            f"{name} is in {unsupported} format, which is not supported; "
            f"please convert it to one of {supported}."
        )

    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") and b"<svg" in head:
        raise NotAnImageError(
            f"{name} is an SVG vector image; vector images are not supported, "
            "please export it as PNG or JPEG."
        )
    if head.startswith(b"%pdf"):
        what = "a PDF document"
    elif head.startswith(b"%!ps"):
        what = "a PostScript document"
    elif head.startswith(b"<") and (b"<html" in head or b"<!doctype html" in head):
        what = "a web page (HTML)"
    elif not head.translate(None, _TEXT_BYTES):
        what = "text"
    else:
        raise NotAnImageError(
            f"{name} is not a recognised image; supported formats are {supported}."
        )
    raise NotAnImageError(f"{name} is {what}, not an image.")


def _jpeg_is_complete(data: bytes) -> bool:
    """Whether an end-of-image marker follows the start of the JPEG's scan data.

    The marker segments before the scan are stepped over by their lengths, so the end
    marker of an EXIF thumbnail (a small JPEG inside the header) is not taken for the end
    of the main image. Data after the end marker is allowed.
    """
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return True  # not a marker: damaged rather than cut short, left to the decoder
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
        elif marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", pos) != -1
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return False


def _boxes_are_complete(data: bytes) -> bool:
    """Whether an ISO media file (AVIF, HEIC) holds the whole of its ``meta`` (the image's
    description) and ``mdat`` (its coded pixels) boxes; any data after both is allowed."""
    pos, seen = 0, set()
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if size == 1 and pos + 16 <= len(data):  # a 64-bit size follows the type
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - pos
        if size < 8:
            return True  # not a box: damaged rather than cut short, left to the decoder
        if pos + size > len(data):
            return False
        seen.add(kind)
        if {b"meta", b"mdat"} <= seen:
            return True
        pos += size
    return False


# Whether the data reaches the end of the image. Formats without a check here are left to
# the decoder, whose failure on cut-off data is then reported as CorruptImageError.
_COMPLETE: dict[str, Callable[[bytes], bool]] = {
    "JPEG": _jpeg_is_complete,
    "PNG": lambda data: b"\x00\x00\x00\x00IEND\xaeB`\x82" in data,
    "WebP": lambda data: len(data) >= 8 + int.from_bytes(data[4:8], "little"),
    "AVIF": _boxes_are_complete,
    "HEIC": _boxes_are_complete,
}

#: Each format's header reader: Pillow's plugin classes (and pi-heif's) read a header and the
#: metadata without decoding pixels. They are used directly, rather than through Image.open,
#: because Image.open applies Pillow's own, larger decompression-bomb limit first, with a
#: warning or an error that would hide ours.
HEADER_READERS = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
    "WebP": WebPImagePlugin.WebPImageFile,
    "AVIF": AvifImagePlugin.AvifImageFile,  # its orientation (irot/imir boxes) comes as EXIF's
    "HEIC": HeifImageFile,  # turned by its irot/imir boxes as decoded; its EXIF orientation reads 1
}


def _read_header(data: bytes, fmt: str, name: str) -> tuple[int, int, int]:
    """Return the width, height and EXIF orientation (1 if none) of an image file.

    The orientation comes from the EXIF block of JPEG, PNG and WebP files, and from an AVIF
    file's rotation and mirror boxes (which Pillow reports as EXIF's). A HEIC file is turned
    by its boxes as pi-heif decodes it, and its size is the turned image's (orientation 1). A
    TIFF file has no such block: its orientation tag is part of the TIFF header itself, and
    OpenCV's TIFF reader applies it while decoding.
    """
    try:
        with HEADER_READERS[fmt](io.BytesIO(data)) as header:
            width, height = header.size
            exif = header.info.get("exif")
    except (SyntaxError, OSError, ValueError) as exc:  # how Pillow's plugins reject a header
        raise CorruptImageError(
            f"{name} starts as {fmt} data but its header is damaged."
        ) from exc
    if not exif:
        return width, height, 1
    tags = Image.Exif()
    try:
        tags.load(exif)
    except Exception:  # damaged metadata must not make the pixels unreadable
        return width, height, 1
    return width, height, tags.get(ExifTags.Base.Orientation, 1)


def _check_bytes(size: int, name: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise ImageTooLargeError(
            f"{name} is {size:,} bytes; the limit is {max_bytes:,} bytes ({max_bytes / 1e6:g} MB)."
        )


def _check_pixels(width: int, height: int, name: str, max_pixels: int, max_side: int) -> None:
    if width * height > max_pixels or max(width, height) > max_side:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} pixels and {max_side:,} pixels per side."
        )


def _from_array(array: np.ndarray, max_pixels: int, max_side: int) -> np.ndarray:
    """Check and convert an in-memory image (see load_image for what is accepted)."""
    name = "The array"
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))):
        raise NotAnImageError(
            f"{name} has shape {array.shape}; an image is (H, W) or (H, W, 1) grayscale, "
            "(H, W, 3) RGB or (H, W, 4) RGBA."
        )
    if array.size == 0:
        raise EmptyImageError(f"{name} has no pixels (shape {array.shape}).")
    height, width = array.shape[:2]
    _check_pixels(width, height, name, max_pixels, max_side)
    # OpenCV needs contiguous rows; this also copies views with negative strides.
    return _to_rgb(_to_uint8(np.ascontiguousarray(array), name), bgr=False)


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    """Scale 16-bit and float samples to 8 bits, rounding rather than truncating."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return cv2.convertScaleAbs(image, alpha=255 / 65535)
    if image.dtype.kind == "f":
        low, high = float(image.min()), float(image.max())
        if not 0 <= low <= high <= 1:  # also false for NaN
            raise NotAnImageError(
                f"{name} holds float values from {low:g} to {high:g}; "
                "float images must lie in [0, 1]."
            )
        return cv2.convertScaleAbs(image.astype(np.float32, copy=False), alpha=255)
    raise UnsupportedFormatError(
        f"{name} has {image.dtype} pixels; supported are uint8, uint16, and floats in [0, 1]."
    )


def _to_rgb(image: np.ndarray, *, bgr: bool) -> np.ndarray:
    """Turn 8-bit gray, BGR/RGB or BGRA/RGBA into a new RGB array."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else image.copy()
    return _onto_white(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA) if bgr else image)


def _onto_white(rgba: np.ndarray) -> np.ndarray:
    """Composite an RGBA uint8 image onto a white background."""
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    # c*a + 255*(1 - a) with a in [0, 255]: exact integers with rounding, within uint16.
    a = alpha.astype(np.uint16)
    return ((rgb * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


# The EXIF orientation tag says how to turn the stored pixels to show them upright.
_ORIENTATIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda im: cv2.flip(im, 1),  # mirrored left-right
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),  # mirrored top-bottom
    5: cv2.transpose,  # mirrored along the main diagonal
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.rotate(cv2.transpose(im), cv2.ROTATE_180),  # along the other diagonal
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}
