"""Tests for detector.faces: faces found in real photos, and the crop geometry the network sees.

The face counts use the example photos (``../shared/examples``) and are skipped when they are
not there; everything else runs on images made in code.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from conftest import EXAMPLES, REPO
from detector.faces import FACE_MARGIN, Box, FaceFinder, centre_box, crop_box, cut, face_region, scoring_region
from detector.imaging import load_image

sys.path.insert(0, str(REPO / "bench"))
from face_finders import EXAMPLE_FACES, EXPECTED, matches  # noqa: E402


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
def test_finds_every_face_of_each_example_and_nothing_else(finder, name):
    image = example(name)
    faces = finder.detect(image)
    assert matches([f.box for f in faces], EXAMPLE_FACES[name]) == (EXPECTED[name], 0), [f.box for f in faces]
    h, w = image.shape[:2]
    for f in faces:
        b = f.box
        assert 0 <= b.x and 0 <= b.y and b.x + b.w <= w and b.y + b.h <= h, f"{name}: {b} leaves {w}x{h}"
        assert 0.8 <= f.score <= 1.0
        # The landmarks (eyes, nose, mouth corners) lie in the face, eyes above the mouth.
        inside = (f.landmarks[:, 0] >= b.x - 2) & (f.landmarks[:, 0] <= b.x + b.w + 2)
        assert inside.all() and f.landmarks[:2, 1].max() < f.landmarks[3:, 1].min()
    areas = [f.box.w * f.box.h for f in faces]
    assert areas == sorted(areas, reverse=True), "faces must come largest first"


def test_a_large_photo_is_searched_downscaled_with_the_same_faces(finder):
    small = example("facerec_two_people.jpg")
    big = cv2.resize(small, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    found_small, found_big = finder.find(small), finder.find(big)
    assert len(found_big) == len(found_small) == 2
    for s, b in zip(sorted(found_small, key=lambda b: b.x), sorted(found_big, key=lambda b: b.x)):
        assert abs(b.x - 3 * s.x) <= 0.1 * b.w and abs(b.w - 3 * s.w) <= 0.1 * b.w, (s, b)


def test_a_face_that_fills_the_frame_is_found_whole(finder):
    image = example("skimage_astronaut_eileen_collins.png")
    (face,) = finder.find(image)
    tight = cv2.resize(cut(image, face), (224, 224), interpolation=cv2.INTER_CUBIC)
    boxes = finder.find(tight)
    assert len(boxes) == 1 and boxes[0].h >= 0.8 * 224, [b.as_list() for b in boxes]


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


def test_one_finder_serves_several_threads(finder):
    photos = [example("facerec_two_people.jpg"), example("dlib_voc_2008_001322.jpg")] * 4
    alone = [finder.find(p) for p in photos]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(finder.find, photos)) == alone


def test_a_missing_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        FaceFinder(model=tmp_path / "nothing.onnx")


# -- crop geometry ------------------------------------------------------------------------


def test_crop_box_scales_with_the_margin_and_can_leave_the_image():
    assert crop_box(Box(10, 10, 100, 80), margin=1.0) == Box(10, 0, 100, 100)
    assert crop_box(Box(0, 0, 100, 100), margin=2.0) == Box(-50, -50, 200, 200)


@pytest.mark.parametrize(
    "box",
    [Box(40, 30, 50, 50), Box(0, 0, 40, 40), Box(150, 90, 50, 50), Box(80, 0, 60, 140)],
    ids=["inside", "top-left corner", "bottom-right corner", "taller than the photo allows"],
)
def test_the_scored_region_is_a_square_inside_the_image_holding_the_face(box):
    shape = (140, 200)
    region = scoring_region(shape, box)
    assert region.w == region.h == min(int(round(max(box.w, box.h) * FACE_MARGIN)), *shape)
    assert 0 <= region.x and 0 <= region.y and region.x + region.w <= 200 and region.y + region.h <= 140
    # The face's centre stays inside, and where the square has room it is centred on it.
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    assert region.x <= cx <= region.x + region.w and region.y <= cy <= region.y + region.h
    if crop_box(box) == region:
        assert abs(region.x + region.w / 2 - cx) <= 1 and abs(region.y + region.h / 2 - cy) <= 1


def test_a_face_filling_its_photo_is_scored_as_the_photo_s_largest_square():
    region = scoring_region((224, 224), Box(20, 0, 190, 224))
    assert region == Box(0, 0, 224, 224)
    assert cut(np.zeros((224, 224, 3), np.uint8), region).shape == (224, 224, 3)


@pytest.mark.parametrize("shape", [(100, 60), (60, 100), (50, 50)])
def test_centre_box_is_the_largest_centred_square(shape):
    side = min(shape)
    b = centre_box(*shape)
    assert (b.w, b.h) == (side, side)
    assert b.x == (shape[1] - side) // 2 and b.y == (shape[0] - side) // 2


class _StubFinder:
    """Returns fixed boxes, to test the framing rule without a face model."""

    def __init__(self, boxes: list[Box]) -> None:
        self.boxes = boxes

    def find(self, image: np.ndarray) -> list[Box]:
        return self.boxes


def test_a_training_image_is_framed_at_its_largest_face():
    image = np.zeros((256, 256, 3), np.uint8)
    box = Box(78, 70, 100, 100)
    assert face_region(image, _StubFinder([box, Box(0, 0, 40, 40)])) == scoring_region(image.shape, box)
    assert face_region(image, _StubFinder([box]), margin=1.6) == scoring_region(image.shape, box, 1.6)
    assert face_region(image, _StubFinder([])) is None
