"""Tests for detector.imaging: every input form, and every way an input can be bad.

All images are made here, in code: NumPy patterns encoded with OpenCV or Pillow (HEIC with
pillow-heif's encoder, a test requirement only: the detector decodes HEIC with pi-heif).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageOps

from corpus import encode, jpeg_claiming, png_claiming
from detector import imaging
from detector.imaging import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedFormatError,
    load_image,
)

pillow_heif.register_heif_opener()  # lets Pillow write "HEIF" files for the tests
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
QUADRANTS = (RED, GREEN, BLUE, WHITE)  # top-left, top-right, bottom-left, bottom-right


def quadrants(height: int = 40, width: int = 60) -> np.ndarray:
    """An RGB image of four coloured quadrants: tells apart all 8 flips and rotations."""
    image = np.empty((height, width, 3), np.uint8)
    image[: height // 2, : width // 2] = RED
    image[: height // 2, width // 2 :] = GREEN
    image[height // 2 :, : width // 2] = BLUE
    image[height // 2 :, width // 2 :] = WHITE
    return image


def centres(image: np.ndarray) -> np.ndarray:
    """The centre pixel of each quadrant, away from the edges that JPEG blurs."""
    height, width = image.shape[:2]
    return np.array([image[y * height // 4, x * width // 4] for y in (1, 3) for x in (1, 3)])


def assert_quadrants(image: np.ndarray, colours=QUADRANTS, tol: int = 0) -> None:
    np.testing.assert_allclose(centres(image).astype(float), np.array(colours, float), atol=tol)


def assert_rgb_image(image: np.ndarray, shape: tuple[int, int]) -> None:
    assert image.shape == (*shape, 3)
    assert image.dtype == np.uint8
    assert image.flags.c_contiguous


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- every supported format and colour form ------------------------------------------------

FORMATS = {  # our name: Pillow format, save options, tolerance for lossy coding
    "JPEG": ("JPEG", {"quality": 95}, 12),
    "PNG": ("PNG", {}, 0),
    "WebP": ("WEBP", {"lossless": True}, 0),
    "AVIF": ("AVIF", {"quality": 95}, 4),
    "HEIC": ("HEIF", {"quality": 95}, 6),
    "BMP": ("BMP", {}, 0),
    "TIFF": ("TIFF", {}, 0),
    "GIF": ("GIF", {}, 0),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("as_path", [False, True], ids=["bytes", "path"])
def test_each_format_decodes_to_rgb(fmt, as_path, tmp_path):
    pil_format, options, tol = FORMATS[fmt]
    data = encode(quadrants(), pil_format, **options)
    source = write(tmp_path, f"image.{fmt.lower()}", data) if as_path else data

    image = load_image(source)

    assert_rgb_image(image, (40, 60))
    assert_quadrants(image, tol=tol)


def test_str_path_bytearray_and_memoryview_are_accepted(tmp_path):
    data = encode(quadrants(), "PNG")
    path = write(tmp_path, "image.png", data)
    for source in (str(path), bytearray(data), memoryview(data)):
        assert_quadrants(load_image(source))


@pytest.mark.parametrize("pil_format, tol", [("PNG", 0), ("JPEG", 2), ("TIFF", 0), ("BMP", 0)])
def test_grayscale_is_repeated_into_three_channels(pil_format, tol):
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))
    data = encode(Image.fromarray(gray, "L"), pil_format, quality=100)

    image = load_image(data)

    assert_rgb_image(image, gray.shape)
    assert (image == image[..., :1]).all()
    np.testing.assert_allclose(image[..., 0], gray, atol=tol)


def test_rgba_is_composited_onto_white():
    rgba = np.array(
        [
            [(255, 0, 0, 255), (0, 0, 0, 0), (255, 0, 0, 128)],  # opaque, clear black, half red
            [(0, 0, 255, 255), (12, 34, 56, 0), (0, 0, 0, 51)],  # opaque, clear, 20% black
        ],
        np.uint8,
    )
    image = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))

    expected = [[RED, WHITE, (255, 127, 127)], [BLUE, WHITE, (204, 204, 204)]]
    np.testing.assert_array_equal(image, np.array(expected, np.uint8))


def test_transparent_heic_is_composited_onto_white():
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:, :16] = (0, 0, 255, 255)  # opaque blue beside clear black

    image = load_image(encode(Image.fromarray(rgba, "RGBA"), "HEIF", quality=100))

    np.testing.assert_allclose(image[16, [4, 28]].astype(float), [BLUE, WHITE], atol=6)


def test_gray_with_alpha_is_composited_onto_white():
    gray_alpha = np.array([[(100, 255), (100, 0), (0, 102)]], np.uint8)  # opaque, clear, 40% black

    image = load_image(encode(Image.fromarray(gray_alpha, "LA"), "PNG"))

    np.testing.assert_array_equal(image[0], [(100,) * 3, (255,) * 3, (153,) * 3])


def test_opaque_alpha_channel_keeps_colours():
    rgba = np.dstack([quadrants(), np.full((40, 60), 255, np.uint8)])
    assert_quadrants(load_image(encode(Image.fromarray(rgba, "RGBA"), "TIFF")))


# Scaling by 255/65535 rounds: 255 -> 1 and 32896 -> 128, where a shift by 8 bits gives 0, 128.
SIXTEEN_BIT = np.array([[0, 255, 32896, 65535]], np.uint16)
EIGHT_BIT_RGB = np.dstack([np.array([[0, 1, 128, 255]], np.uint8)] * 3)


@pytest.mark.parametrize("ext", [".png", ".tiff"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_files_are_scaled_with_rounding(ext, channels):
    planes = [SIXTEEN_BIT] * min(channels, 3) + [np.full_like(SIXTEEN_BIT, 65535)] * (channels == 4)
    ok, data = cv2.imencode(ext, np.dstack(planes) if channels > 1 else SIXTEEN_BIT)
    assert ok

    np.testing.assert_array_equal(load_image(data.tobytes()), EIGHT_BIT_RGB)


@pytest.mark.parametrize("pil_format, tol", [("JPEG", 12), ("TIFF", 0)])
def test_cmyk_is_converted_to_rgb(pil_format, tol):
    data = encode(Image.fromarray(quadrants()).convert("CMYK"), pil_format, quality=95)
    with Image.open(io.BytesIO(data)) as written:
        assert written.mode == "CMYK"

    assert_quadrants(load_image(data), tol=tol)


# --- orientation -------------------------------------------------------------------------


def with_orientation(image: np.ndarray, orientation: int, pil_format: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, pil_format, exif=exif.tobytes(), quality=95, lossless=True)


@pytest.mark.parametrize("pil_format, tol", [("JPEG", 12), ("PNG", 0), ("WEBP", 0), ("TIFF", 0), ("AVIF", 4),
                                             ("HEIF", 6)])
@pytest.mark.parametrize("turns, orientation", [(1, 6), (-1, 8), (2, 3)], ids=["6", "8", "3"])
def test_exif_rotated_image_comes_out_upright(pil_format, tol, turns, orientation):
    upright = quadrants(60, 40)
    # Store the pixels turned the other way, as a camera held sideways does, and tag them.
    stored = np.ascontiguousarray(np.rot90(upright, turns))

    image = load_image(with_orientation(stored, orientation, pil_format))

    assert_rgb_image(image, (60, 40))
    assert_quadrants(image, tol=tol)


@pytest.mark.parametrize("pil_format", ["PNG", "JPEG", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(pil_format, orientation):
    data = with_orientation(quadrants(), orientation, pil_format)
    with Image.open(io.BytesIO(data)) as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))

    image = load_image(data)

    assert image.shape == expected.shape
    assert_quadrants(image, centres(expected), tol=3)


def test_avif_rotation_box_turns_the_image_upright():
    # Pillow writes an EXIF orientation of 6 into AVIF's own rotation box (irot), which
    # OpenCV's reader ignores: the image must still come out upright.
    data = with_orientation(np.ascontiguousarray(np.rot90(quadrants(60, 40), 1)), 6, "AVIF")
    assert b"irot" in data

    image = load_image(data)

    assert_rgb_image(image, (60, 40))
    assert_quadrants(image, tol=4)


@pytest.mark.parametrize("depth", [10, 12])
def test_high_bit_depth_avif_keeps_its_brightness(depth):
    # HDR phone photos and some generators' exports store 10 or 12 bits per sample.
    top = (1 << depth) - 1
    stored = np.zeros((32, 32, 3), np.uint16)
    stored[:, :16], stored[:, 16:] = top // 5, top * 9 // 10
    ok, data = cv2.imencode(".avif", stored, [cv2.IMWRITE_AVIF_DEPTH, depth, cv2.IMWRITE_AVIF_QUALITY, 100])
    assert ok

    image = load_image(data.tobytes())

    np.testing.assert_allclose(image[16, [4, 28]].astype(float), [[51] * 3, [230] * 3], atol=3)


def test_ten_bit_heic_keeps_its_brightness():
    # iPhones from the 12 on store HDR photos at 10 bits per sample.
    stored = np.zeros((32, 32, 3), np.uint16)
    stored[:, :16], stored[:, 16:] = 1023 // 5, 1023 * 9 // 10
    heif = pillow_heif.from_bytes(mode="RGB;16", size=(32, 32), data=(stored << 6).astype("<u2").tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=100)

    image = load_image(buffer.getvalue())

    np.testing.assert_allclose(image[16, [4, 28]].astype(float), [[51] * 3, [230] * 3], atol=3)


def test_damaged_exif_is_ignored():
    data = encode(quadrants(), "JPEG", quality=95, exif=b"Exif\x00\x00not a tiff header")
    assert_quadrants(load_image(data), tol=12)


# --- frames, trailing data, names --------------------------------------------------------


@pytest.mark.parametrize("pil_format, tol", [("GIF", 0), ("WEBP", 0), ("AVIF", 2)])
def test_animation_gives_its_first_frame(pil_format, tol):
    frames = [Image.new("RGB", (10, 8), colour) for colour in (RED, BLUE, GREEN)]
    data = encode(frames[0], pil_format, save_all=True, append_images=frames[1:], lossless=True)
    with Image.open(io.BytesIO(data)) as written:
        assert written.n_frames == 3

    image = load_image(data)

    assert_rgb_image(image, (8, 10))
    np.testing.assert_allclose(image.reshape(-1, 3), np.tile(RED, (80, 1)), atol=tol)


def test_multi_page_tiff_gives_its_first_page():
    pages = [Image.new("RGB", (10, 8), colour) for colour in (GREEN, RED)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert (load_image(data) == GREEN).all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_data_after_the_image_is_ignored(fmt):
    pil_format, options, _ = FORMATS[fmt]
    data = encode(quadrants(), pil_format, **options)
    trailing = b"\xff\xda trailing \x00 bytes \xff\xd8" * 100  # marker-like bytes too

    np.testing.assert_array_equal(load_image(data + trailing), load_image(data))


@pytest.mark.parametrize(
    "pil_format, name",
    [("PNG", "photo.jpg"), ("JPEG", "photo.png"), ("WEBP", "photo.gif"), ("BMP", "photo")],
)
def test_format_comes_from_content_not_name(pil_format, name, tmp_path):
    path = write(tmp_path, name, encode(quadrants(), pil_format, quality=95))
    assert_quadrants(load_image(path), tol=12)


# --- tiny, thin and big images -----------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (1, 5000), (5000, 1), (2, 20_000)])
@pytest.mark.parametrize("pil_format", ["PNG", "JPEG"])
def test_tiny_and_thin_images_decode(shape, pil_format):
    colour = (10, 200, 60)
    image = load_image(encode(np.full((*shape, 3), colour, np.uint8), pil_format, quality=100))

    assert_rgb_image(image, shape)
    np.testing.assert_allclose(image.reshape(-1, 3).mean(0), colour, atol=4)


def test_45_megapixel_photo_is_accepted():
    height, width = 5625, 8000  # 45.0 megapixels; gray keeps the encoding quick
    gray = np.zeros((height, width), np.uint8)
    gray[:, width // 2 :] = 200
    ok, data = cv2.imencode(".jpg", gray)
    assert ok

    image = load_image(data.tobytes())

    assert_rgb_image(image, (height, width))
    assert image[100, 100].tolist() == [0, 0, 0]
    assert abs(int(image[-100, -100, 0]) - 200) <= 2


@pytest.mark.parametrize("width, height", [(8192, 6144), (8160, 6144), (12000, 9000)],
                         ids=["phone-50MP", "pixel-50MP", "phone-108MP"])
def test_a_phone_s_full_resolution_photo_is_not_refused_as_too_large(width, height):
    # The header passes the limits; the made-up file's pixel data is then found missing.
    with pytest.raises(CorruptImageError, match="damaged PNG"):
        load_image(png_claiming(width, height))


@pytest.mark.parametrize(
    "data, size",
    [
        (png_claiming(60_000, 60_000), "60000x60000"),  # 3.6 gigapixels in 74 bytes
        (png_claiming(12800, 9000), "12800x9000"),  # 115.2 megapixels, just over the limit
        (png_claiming(25_000, 1), "25000x1"),  # few pixels, but longer than the longest side
        (jpeg_claiming(65_000, 65_000), "65000x65000"),
    ],
    ids=["png-bomb", "png-115MP", "png-too-wide", "jpeg-bomb"],
)
def test_oversized_header_is_refused_before_decoding(data, size, monkeypatch):
    def must_not_decode(*args):
        raise AssertionError("cv2.imdecode was called")

    monkeypatch.setattr(imaging.cv2, "imdecode", must_not_decode)
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match=size):
        load_image(data)
    assert time.perf_counter() - start < 0.5


def test_oversized_heic_is_refused_before_decoding(monkeypatch):
    data = encode(quadrants(48, 64), "HEIF")
    monkeypatch.setattr(imaging, "_decode_pixels", lambda *args: pytest.fail("the pixels were decoded"))

    with pytest.raises(ImageTooLargeError, match="64x48"):  # its header read, its pixels not
        load_image(data, max_pixels=1000)


def test_limits_can_be_lowered_and_raised(tmp_path):
    data = encode(quadrants(10, 20), "PNG")
    path = write(tmp_path, "image.png", data)

    with pytest.raises(ImageTooLargeError, match="20x10 = 200 pixels; the limit is 199 pixels"):
        load_image(data, max_pixels=199)
    with pytest.raises(ImageTooLargeError, match="19 pixels per side"):
        load_image(data, max_side=19)
    with pytest.raises(ImageTooLargeError, match=f"data is {len(data)} bytes; the limit is"):
        load_image(data, max_bytes=len(data) - 1)
    with pytest.raises(ImageTooLargeError, match=f"image.png' is {len(data)} bytes"):
        load_image(path, max_bytes=len(data) - 1)
    assert_quadrants(load_image(data, max_pixels=200, max_side=20, max_bytes=len(data)))
    # Allowed more pixels, the 115-megapixel header passes, and its too-short data is decoded.
    with pytest.raises(CorruptImageError, match="damaged PNG"):
        load_image(png_claiming(12800, 9000), max_pixels=120_000_000)


# --- bad files and uploads: every message names its input --------------------------------


def random_bytes() -> bytes:
    data = np.random.default_rng(0).bytes(2000)
    assert not data.startswith((b"\xff", b"\x89", b"GIF", b"BM", b"II", b"MM", b"RIFF", b"8BPS"))
    return data


def cut(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


NOISE = np.random.default_rng(1).integers(0, 256, (64, 80, 3), np.uint8)
JPEG, PNG = encode(NOISE, "JPEG"), encode(NOISE, "PNG")


def with_zeroed_description(pil_format: str) -> bytes:
    """An AVIF or HEIC file of the right length whose meta box (what the image is, where its
    pixels are) is zeroed after its size and type."""
    data = encode(NOISE, pil_format)
    meta = data.find(b"meta") + 4
    return data[:meta] + bytes(100) + data[meta + 100 :]
# The comment holds an end-of-image marker, as the thumbnail in a camera's EXIF block does.
JPEG_WITH_INNER_END = encode(NOISE, "JPEG", comment=b"\xff\xd8 thumbnail \xff\xd9")
PNG_SIGNATURE, PNG_END = b"\x89PNG\r\n\x1a\n", b"\x00\x00\x00\x00IEND\xaeB`\x82"
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(100)
HEIC_HEAD = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100)
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>'
HTML = b"<!DOCTYPE html>\n<html><body><img src='photo.jpg'></body></html>"

BAD_INPUTS = {  # data, error, part of the message
    "empty": (b"", EmptyImageError, "is empty"),
    "text": (b"Just a note.\nNot a photo.\n", NotAnImageError, "is text, not an image"),
    "html": (HTML, NotAnImageError, "is a web page"),
    "svg": (SVG, NotAnImageError, "vector images are not supported"),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", NotAnImageError, "is a PDF document"),
    "mp4": (MP4, NotAnImageError, "is a video"),
    "random": (random_bytes(), NotAnImageError, "not a recognised image"),
    "psd": (b"8BPS\x00\x01" + bytes(40), UnsupportedFormatError, "Photoshop"),
    "ico": (encode(quadrants(16, 16), "ICO"), UnsupportedFormatError, "ICO"),
    "jpeg2000": (encode(quadrants(), "JPEG2000"), UnsupportedFormatError, "JPEG 2000"),
    "jpeg-half": (cut(JPEG, 0.5), TruncatedImageError, "incomplete JPEG"),
    "jpeg-no-end": (JPEG[:-2], TruncatedImageError, "incomplete JPEG"),
    "jpeg-header-only": (JPEG[:300], TruncatedImageError, "incomplete JPEG"),
    "jpeg-inner-end": (cut(JPEG_WITH_INNER_END, 0.8), TruncatedImageError, "incomplete JPEG"),
    "png-half": (cut(PNG, 0.5), TruncatedImageError, "incomplete PNG"),
    "png-no-end": (PNG[: -len(PNG_END)], TruncatedImageError, "incomplete PNG"),
    "webp-half": (cut(encode(quadrants(), "WEBP"), 0.5), TruncatedImageError, "incomplete WebP"),
    "avif-half": (cut(encode(NOISE, "AVIF"), 0.5), TruncatedImageError, "incomplete AVIF"),
    "avif-no-pixels": (encode(NOISE, "AVIF")[:400], TruncatedImageError, "incomplete AVIF"),
    "avif-bad-header": (with_zeroed_description("AVIF"), CorruptImageError, "AVIF data but its header is damaged"),
    "heic-half": (cut(encode(NOISE, "HEIF"), 0.5), TruncatedImageError, "incomplete HEIC"),
    "heic-header-only": (HEIC_HEAD, TruncatedImageError, "incomplete HEIC"),
    "heic-bad-header": (with_zeroed_description("HEIF"), CorruptImageError, "HEIC data but its header is damaged"),
    "gif-half": (cut(encode(quadrants(), "GIF"), 0.5), CorruptImageError, "damaged GIF"),
    "bmp-half": (cut(encode(quadrants(), "BMP"), 0.5), CorruptImageError, "damaged BMP"),
    "tiff-half": (cut(encode(quadrants(), "TIFF"), 0.5), CorruptImageError, "damaged TIFF"),
    "png-bad-header": (PNG_SIGNATURE + bytes(30) + PNG_END, CorruptImageError, "header is damaged"),
    "png-bomb": (png_claiming(60_000, 60_000), ImageTooLargeError, "60000x60000"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_upload_is_refused_with_a_clear_message(case):
    data, error, message = BAD_INPUTS[case]
    with pytest.raises(error, match=message) as caught:
        load_image(data)
    assert str(caught.value).startswith("Uploaded data ")


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_file_is_refused_naming_its_path(case, tmp_path):
    data, error, message = BAD_INPUTS[case]
    path = write(tmp_path, "photo.jpg", data)
    with pytest.raises(error, match=message) as caught:
        load_image(path)
    assert str(caught.value).startswith(f"File '{path}' ")


def test_missing_file_is_reported_with_its_path(tmp_path):
    path = tmp_path / "nowhere" / "photo.jpg"
    with pytest.raises(ImageNotFoundError, match="photo.jpg' does not exist") as caught:
        load_image(path)
    assert isinstance(caught.value, FileNotFoundError)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(NotAnImageError, match="is a folder"):
        load_image(tmp_path)


@pytest.mark.parametrize(
    "error",
    [
        ImageNotFoundError,
        EmptyImageError,
        NotAnImageError,
        UnsupportedFormatError,
        CorruptImageError,
        TruncatedImageError,
        ImageTooLargeError,
    ],
)
def test_every_error_is_an_image_error(error):
    assert issubclass(error, ImageError) and issubclass(error, ValueError)


def test_other_source_types_are_a_type_error():
    with pytest.raises(TypeError, match="not int"):
        load_image(42)


# --- arrays ------------------------------------------------------------------------------

GRAY = np.array([[0, 64], [128, 255]], np.uint8)
GRAY_RGB = np.dstack([GRAY] * 3)
HOLES = np.array([[0, 255], [255, 0]], np.uint8)  # an alpha channel with two clear pixels


@pytest.mark.parametrize(
    "array, expected",
    [
        pytest.param(GRAY, GRAY_RGB, id="gray"),
        pytest.param(GRAY[..., None], GRAY_RGB, id="gray-1-channel"),
        pytest.param(GRAY_RGB, GRAY_RGB, id="rgb"),
        pytest.param(np.dstack([GRAY_RGB, np.full_like(GRAY, 255)]), GRAY_RGB, id="rgba-opaque"),
        pytest.param(
            np.dstack([GRAY_RGB, HOLES]), np.dstack([[[255, 64], [128, 255]]] * 3), id="rgba"
        ),
        pytest.param(GRAY.astype(np.uint16) * 257, GRAY_RGB, id="uint16"),
        pytest.param(SIXTEEN_BIT, EIGHT_BIT_RGB, id="uint16-rounding"),
        pytest.param(GRAY / 255, GRAY_RGB, id="float64"),
        pytest.param((GRAY / 255).astype(np.float32), GRAY_RGB, id="float32"),
        pytest.param((GRAY / 255).astype(np.float16), GRAY_RGB, id="float16"),
        pytest.param(np.array([[0.5, 0.002]]), [[[128] * 3, [1] * 3]], id="float-rounding"),
        pytest.param(GRAY_RGB[:, ::-1].copy()[:, ::-1], GRAY_RGB, id="reversed-view"),
    ],
)
def test_arrays_are_converted(array, expected):
    image = load_image(array)

    np.testing.assert_array_equal(image, np.asarray(expected, np.uint8))
    assert image.dtype == np.uint8 and image.flags.c_contiguous
    assert not np.shares_memory(image, array)


def test_rgb_array_keeps_its_channel_order():
    assert_quadrants(load_image(quadrants()))


@pytest.mark.parametrize(
    "array, error, message",
    [
        (np.zeros(5, np.uint8), NotAnImageError, r"shape \(5,\)"),
        (np.zeros((4, 4, 2), np.uint8), NotAnImageError, r"shape \(4, 4, 2\)"),
        (np.zeros((4, 4, 5), np.uint8), NotAnImageError, r"shape \(4, 4, 5\)"),
        (np.zeros((2, 4, 4, 3), np.uint8), NotAnImageError, r"shape \(2, 4, 4, 3\)"),
        (np.zeros((0, 4, 3), np.uint8), EmptyImageError, "no pixels"),
        (np.zeros((4, 4), np.int64), UnsupportedFormatError, "int64"),
        (np.zeros((4, 4), np.int8), UnsupportedFormatError, "int8"),
        (np.zeros((4, 4), bool), UnsupportedFormatError, "bool"),
        (np.zeros((4, 4), complex), UnsupportedFormatError, "complex128"),
        (np.zeros((4, 4), object), UnsupportedFormatError, "object"),
        (np.array([[0.0, 255.0]]), NotAnImageError, "from 0 to 255"),
        (np.array([[-0.5, 0.5]]), NotAnImageError, "from -0.5 to 0.5"),
        (np.array([[np.nan, 0.5]]), NotAnImageError, "nan"),
        (np.zeros((1, 20_001), np.uint8), ImageTooLargeError, "20001x1 = 20,001 pixels"),
    ],
)
def test_bad_arrays_are_refused(array, error, message):
    with pytest.raises(error, match=message) as caught:
        load_image(array)
    assert str(caught.value).startswith("The array ")
