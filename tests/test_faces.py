"""Tests for detector.faces: faces found in real photos, and the crop geometry the network sees.

The face counts use the example photos (the repo's ``examples/``, else ``../shared/examples``)
and are skipped when neither is there; everything else runs on images made in code.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.faces import (
    FACE_MARGIN,
    Box,
    FaceFinder,
    centre_box,
    centre_square,
    crop_box,
    frame_face,
    training_crop,
)
from detector.imaging import load_image

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = next(
    (p for p in (REPO / "examples", REPO.parent / "shared" / "examples") if p.is_dir()),
    REPO.parent / "shared" / "examples",
)

# True frontal-face counts, with the reason for each photo.
from bench.faces_examples import EXPECTED  # noqa: E402


@pytest.fixture(scope="module")
def finder() -> FaceFinder:
    return FaceFinder()


def example(name: str) -> np.ndarray:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip(f"example photo {path} is not available")
    return load_image(path)


# -- finding faces ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_finds_the_true_number_of_faces_in_each_example(finder, name):
    image = example(name)
    boxes = finder.find(image)
    assert len(boxes) == EXPECTED[name], f"{name}: found {[b.as_list() for b in boxes]}"
    h, w = image.shape[:2]
    for b in boxes:
        assert 0 <= b.x and 0 <= b.y and b.x + b.w <= w and b.y + b.h <= h, f"{name}: {b} leaves {w}x{h}"
        assert b.w >= 32 and abs(b.w - b.h) <= 2, f"{name}: {b} is not a square face box"
    areas = [b.w * b.h for b in boxes]
    assert areas == sorted(areas, reverse=True), "faces must come largest first"


def test_no_false_face_on_the_sleeve_or_the_streamers(finder):
    # The cascade alone sees a face at about (270, 838) in this photo: streamers by Biden's arm.
    boxes = finder.find(example("facerec_obama_and_biden.jpg"))
    assert all(b.y < 700 for b in boxes), [b.as_list() for b in boxes]


def test_a_large_photo_is_searched_downscaled_with_the_same_faces(finder):
    small = example("facerec_two_people.jpg")
    big = cv2.resize(small, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    found_small, found_big = finder.find(small), finder.find(big)
    assert len(found_big) == len(found_small) == 2
    for s, b in zip(sorted(found_small, key=lambda b: b.x), sorted(found_big, key=lambda b: b.x)):
        assert abs(b.x - 3 * s.x) <= 0.1 * b.w and abs(b.w - 3 * s.w) <= 0.1 * b.w, (s, b)


def test_a_small_photo_is_searched_upscaled_and_boxed_in_its_own_pixels(finder):
    tight = example("skimage_astronaut_eileen_collins.png")
    (face,) = finder.find(tight)
    crop = cv2.resize(tight[face.y : face.y + face.h, face.x : face.x + face.w], (224, 224), interpolation=cv2.INTER_AREA)
    small = cv2.resize(crop, (112, 112), interpolation=cv2.INTER_AREA)  # an upload at half size
    (got,) = finder.find(small)
    upscaled = cv2.resize(small, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    (expected,) = finder.find(upscaled)
    assert max(abs(g - e / 2) for g, e in zip(got.as_list(), expected.as_list())) <= 1, (got, expected)
    # Searched at the full-size photo's scales, it finds that photo's box, halved.
    (full,) = finder.find(crop)
    assert max(abs(g - f / 2) for g, f in zip(got.as_list(), full.as_list())) <= 2, (got, full)
    # At the training images' side (224 px) nothing is rescaled: training crops are unchanged.
    assert FaceFinder(min_side=1).find(crop) == [full]


def test_a_face_filling_the_frame_is_found_whole_not_in_parts(finder):
    # A tight face crop (as DFDC frames are): the cascade has no room around the face and sees
    # "faces" in the nose and mouth unless the close-up search finds the whole face.
    image = example("skimage_astronaut_eileen_collins.png")
    (face,) = finder.find(image)
    crop = image[face.y : face.y + face.h, face.x : face.x + face.w]
    tight = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_CUBIC)
    boxes = finder.find(tight)
    assert len(boxes) == 1 and boxes[0].w >= 0.8 * 256, [b.as_list() for b in boxes]


@pytest.mark.parametrize(
    "image",
    [
        np.full((240, 320, 3), 128, np.uint8),
        np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8),
        np.tile(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], (240, 1, 3)),
        np.zeros((1, 4000, 3), np.uint8),
        np.zeros((20, 20, 3), np.uint8),
    ],
    ids=["grey", "noise", "gradient", "one-pixel-high", "tiny"],
)
def test_an_image_without_a_face_gives_no_boxes(finder, image):
    assert finder.find(image) == []


@pytest.mark.parametrize(
    "bad", [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8), np.zeros((64, 64, 3), np.float32)]
)
def test_find_rejects_what_is_not_an_rgb_uint8_image(finder, bad):
    with pytest.raises(ValueError, match=str(bad.shape).replace("(", r"\(").replace(")", r"\)")):
        finder.find(bad)


# -- crop geometry ------------------------------------------------------------------------


def _marked(h: int, w: int, point: tuple[int, int]) -> np.ndarray:
    """A smooth gradient image with one white pixel at ``point`` (x, y)."""
    ys, xs = np.mgrid[0:h, 0:w]
    image = np.stack([xs * 200 // w, ys * 200 // h, np.full_like(xs, 60)], axis=-1).astype(np.uint8)
    image[point[1], point[0]] = 255
    return image


@pytest.mark.parametrize(
    "box",
    [Box(40, 30, 50, 50), Box(0, 0, 40, 40), Box(150, 90, 50, 30), Box(-10, 100, 60, 60)],
    ids=["inside", "top-left corner", "bottom-right corner, not square", "past the left edge"],
)
def test_frame_face_is_a_square_centred_on_the_box_even_at_the_border(box):
    centre = (box.x + box.w // 2, box.y + box.h // 2)
    image = _marked(140, 200, centre)
    crop = frame_face(image, box)
    side = int(round(max(box.w, box.h) * FACE_MARGIN))
    assert crop.shape == (side, side, 3) and crop.dtype == np.uint8
    region = crop_box(box)
    assert (region.w, region.h) == (side, side)
    assert np.array_equal(crop[centre[1] - region.y, centre[0] - region.x], [255, 255, 255])
    # The box centre lands in the crop's centre: the padding kept the face centred.
    ys, xs = np.nonzero((crop == 255).all(axis=-1))
    assert len(xs) == 1 and abs(xs[0] - side / 2) <= 1 and abs(ys[0] - side / 2) <= 1


def test_frame_face_repeats_the_border_outside_the_image():
    image = _marked(100, 100, (50, 50))
    crop = frame_face(image, Box(0, 0, 40, 40))  # side 52, reaching 6 px past the top and left
    assert (crop[0, 0] == image[0, 0]).all() and (crop[:6, 20] == image[0, 14]).all()


def test_crop_box_scales_with_the_margin_and_can_leave_the_image():
    assert crop_box(Box(10, 10, 100, 80), margin=1.0) == Box(10, 0, 100, 100)
    assert crop_box(Box(0, 0, 100, 100), margin=2.0) == Box(-50, -50, 200, 200)


@pytest.mark.parametrize("shape", [(100, 60), (60, 100), (50, 50)])
def test_centre_square_is_the_largest_centred_square(shape):
    image = np.arange(shape[0] * shape[1] * 3, dtype=np.uint32).reshape(*shape, 3).astype(np.uint8)
    side = min(shape)
    square = centre_square(image)
    assert square.shape == (side, side, 3)
    b = centre_box(*shape)
    assert (b.w, b.h) == (side, side)
    assert np.array_equal(square, image[b.y : b.y + side, b.x : b.x + side])
    assert b.x == (shape[1] - side) // 2 and b.y == (shape[0] - side) // 2


class _StubFinder:
    """Returns fixed boxes, to test the framing rule without a cascade."""

    def __init__(self, boxes: list[Box]) -> None:
        self.boxes = boxes

    def find(self, image: np.ndarray) -> list[Box]:
        return self.boxes


def test_training_crop_frames_a_face_with_room_around_it():
    image = _marked(256, 256, (128, 120))
    box = Box(78, 70, 100, 100)  # 1.3 x 100 = 130 < 256: room for the training framing
    crop = training_crop(image, _StubFinder([box, Box(0, 0, 40, 40)]))
    assert np.array_equal(crop, frame_face(image, box))


def test_training_crop_frames_at_the_margin_it_is_given():
    image = _marked(256, 256, (128, 120))
    box = Box(78, 70, 100, 100)
    wider = training_crop(image, _StubFinder([box]), margin=1.6)
    assert wider.shape == (160, 160, 3) and np.array_equal(wider, frame_face(image, box, margin=1.6))
    # 3 x 100 no longer fits in 256 px: the face fills the frame, the centre square is kept.
    assert np.array_equal(training_crop(image, _StubFinder([box]), margin=3.0), centre_square(image))


def test_training_crop_keeps_a_face_that_fills_the_frame_whole():
    image = _marked(224, 300, (150, 112))
    crop = training_crop(image, _StubFinder([Box(60, 20, 180, 180)]))  # 1.3 x 180 > 224
    assert np.array_equal(crop, centre_square(image))


def test_training_crop_without_a_face_is_the_centre_square(finder):
    image = np.random.default_rng(1).integers(0, 256, (120, 180, 3), dtype=np.uint8)
    assert np.array_equal(training_crop(image, finder), centre_square(image))
