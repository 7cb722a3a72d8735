"""Tests for detector.render: what the overlay draws, where, and at which size.

Every picture is made here: flat grey photos, so any drawn pixel stands out.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from detector import render
from detector.faces import Box, centre_box, crop_box
from detector.render import COLOURS, Mark, closeups, overlay, tag_text


def grey(height: int, width: int, level: int = 128) -> np.ndarray:
    return np.full((height, width, 3), level, np.uint8)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where two pictures differ, as an (H, W) boolean mask."""
    return (a != b).any(axis=-1)


def inside(mask: np.ndarray, region: Box) -> np.ndarray:
    """``mask`` restricted to ``region`` (clipped to the picture)."""
    out = np.zeros_like(mask)
    y0, x0 = max(region.y, 0), max(region.x, 0)
    out[y0 : region.y + region.h, x0 : region.x + region.w] = True
    return mask & out


def test_overlay_keeps_size_and_dtype_and_leaves_the_input_alone():
    photo = grey(120, 160)
    before = photo.copy()
    out = overlay(photo, [Mark(Box(50, 40, 40, 40), 0.9, "fake", np.ones((8, 8), np.float32))])
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(photo, before)
    assert changed(out, photo).any()


@pytest.mark.parametrize("label", ["fake", "real", "uncertain"])
def test_each_verdict_draws_its_colour_on_the_box_edges(label):
    box = Box(100, 80, 60, 60)
    out = overlay(grey(240, 320), [Mark(box, 0.5, label)])
    colour = COLOURS[label]
    mid_x, mid_y = box.x + box.w // 2, box.y + box.h // 2
    bottom, left, right = out[box.y + box.h - 1, mid_x], out[mid_y, box.x], out[mid_y, box.x + box.w - 1]
    for pixel in (bottom, left, right):
        assert tuple(pixel) == colour
    assert tuple(out[mid_y, mid_x]) == (128, 128, 128), "the face inside the box stays visible"
    assert set(COLOURS) == {"fake", "real", "uncertain", "no face"} and len(set(COLOURS.values())) == 4


#: How a colour-blind eye sees linear RGB (Machado, Oliveira and Fernandes 2009, severity 1).
COLOUR_BLINDNESS = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


@pytest.mark.parametrize("kind", [None, *COLOUR_BLINDNESS])
def test_the_verdicts_colours_stay_apart_to_colour_blind_eyes(kind):
    # In a crowded photo a face's tag is its number in its verdict's colour: the colours alone
    # must tell fake from real (the green that real had was a near olive beside red to a
    # deuteranope's eye: with it, this test fails).
    import cv2

    def seen(rgb: tuple[int, int, int]) -> np.ndarray:
        srgb = np.array(rgb) / 255
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        if kind:
            linear = np.clip(np.array(COLOUR_BLINDNESS[kind]) @ linear, 0, 1)
        back = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
        return cv2.cvtColor(np.float32(back).reshape(1, 1, 3), cv2.COLOR_RGB2Lab)[0, 0]  # L 0-100

    def apart(a: str, b: str) -> float:
        return float(np.linalg.norm(seen(COLOURS[a]) - seen(COLOURS[b])))  # CIE76 distance

    distances = {pair: round(apart(*pair)) for pair in [("fake", "real"), ("fake", "uncertain"), ("real", "uncertain")]}
    assert distances[("fake", "real")] > 60, distances
    assert min(distances.values()) > 25, distances  # and the tags' text differs


def test_a_heatmap_changes_pixels_inside_the_scored_region_only():
    photo = grey(300, 400)
    box = Box(150, 100, 80, 80)
    plain = overlay(photo, [Mark(box, 0.9, "fake")])
    heat = overlay(photo, [Mark(box, 0.9, "fake", np.ones((16, 16), np.float32))])
    diff = changed(plain, heat)
    region = crop_box(box)
    assert diff.any()
    assert not (diff & ~inside(np.ones_like(diff), region)).any(), "the heatmap leaked out of the region"
    # Everywhere inside the region except under the box line and the tag, the colour shows.
    assert diff.sum() > 0.6 * region.w * region.h


def test_weak_attention_leaves_the_photo_clear():
    photo = grey(200, 200)
    box = Box(60, 60, 80, 80)
    plain = overlay(photo, [Mark(box, 0.1, "real")])
    faint = overlay(photo, [Mark(box, 0.1, "real", np.full((10, 10), 0.1, np.float32))])
    assert np.array_equal(plain, faint)


def test_a_heatmap_follows_the_given_region_and_is_clipped_at_the_border():
    photo = grey(200, 300)
    box = Box(0, 0, 60, 60)
    region = Box(-20, -20, 100, 100)  # the scored square reaches past the top-left corner
    plain = overlay(photo, [Mark(box, 0.7, "fake", None, region)])
    heat = overlay(photo, [Mark(box, 0.7, "fake", np.ones((5, 5), np.float32), region)])
    diff = changed(plain, heat)
    assert diff.any() and not (diff & ~inside(np.ones_like(diff), region)).any()


def test_a_photo_without_a_face_gets_a_corner_tag_and_no_box():
    photo = grey(200, 300)
    square = centre_box(200, 300)
    plain = overlay(photo, [Mark(None, 0.2, "no face")])
    grey_tag = (plain == COLOURS["no face"]).all(axis=-1)
    assert grey_tag[1:3, :20].all(), "the tag sits in the top-left corner"
    assert not grey_tag[100:].any() and tuple(plain[100, square.x]) == (128, 128, 128), "no frame"
    heat = overlay(photo, [Mark(None, 0.2, "no face", np.ones((7, 7), np.float32))])
    diff = changed(plain, heat)
    assert diff.any() and not (diff & ~inside(np.ones_like(diff), square)).any()
    assert tag_text(Mark(None, 0.2, "no face")) == "no face found"


def test_a_pipeline_result_is_drawn_like_its_marks():
    photo = grey(160, 200)
    heatmap = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    face = SimpleNamespace(
        box=Box(60, 50, 50, 50), region=Box(55, 45, 60, 60), fake_probability=0.8, label="fake", heatmap=heatmap
    )
    result = SimpleNamespace(faces=[face], whole_image=None, scored=[face])
    assert np.array_equal(overlay(photo, result), overlay(photo, [Mark(face.box, 0.8, "fake", heatmap, face.region)]))

    square = Box(20, 0, 160, 160)
    whole = SimpleNamespace(box=square, region=square, fake_probability=0.5, label="no face", heatmap=None)
    result = SimpleNamespace(faces=[], whole_image=whole, scored=[whole])
    assert np.array_equal(overlay(photo, result), overlay(photo, [Mark(None, 0.5, "no face", None, whole.region)]))


def test_tuples_and_face_objects_are_accepted_as_marks():
    photo = grey(120, 120)
    box = Box(30, 30, 50, 50)
    expected = overlay(photo, [Mark(box, 0.3, "real")])
    assert np.array_equal(overlay(photo, [(box, 0.3, "real")]), expected)
    obj = SimpleNamespace(box=box, fake_probability=0.3, label="real")
    assert np.array_equal(overlay(photo, [obj]), expected)


@pytest.mark.parametrize(
    "shape, box",
    [
        ((8, 8), Box(1, 1, 5, 5)),
        ((1, 1), Box(0, 0, 1, 1)),
        ((30, 500), Box(-40, -40, 120, 120)),
        ((40, 40), Box(100, 100, 10, 10)),
    ],
    ids=["tiny", "one pixel", "thin strip, box past the corner", "box off the picture"],
)
def test_tags_on_tiny_pictures_do_not_crash(shape, box):
    photo = grey(*shape)
    out = overlay(photo, [Mark(box, 0.99, "fake", np.ones((4, 4), np.float32)), Mark(None, 0.5, "no face")])
    assert out.shape == photo.shape and out.dtype == np.uint8


def test_a_tag_wider_than_the_picture_is_shrunk_to_fit_not_cut_off():
    out = overlay(grey(100, 90), [Mark(Box(30, 60, 30, 30), 0.5, "uncertain")])  # "1: uncertain (50% fake)"
    amber = (out == COLOURS["uncertain"]).all(axis=-1)
    rows = np.nonzero(amber[:, 0])[0]  # the tag starts at the left edge
    assert len(rows) >= 5
    # The tag ends in its own padding: its last column is plain tag colour, no letter cut in two.
    assert amber[rows, -1].all()


def test_neighbouring_faces_tags_do_not_cover_each_other():
    # Two faces side by side, the second a little lower (as in a group photo): its tag, wider
    # than its box, would sit over the first face's tag.
    photo = grey(400, 600)
    first = Mark(Box(300, 150, 80, 80), 0.07, "real")
    second = Mark(Box(200, 165, 80, 80), 0.56, "uncertain")
    alone = overlay(photo, [first], max_side=None)
    both = overlay(photo, [first, second], max_side=None)
    first_tag = changed(alone, photo) & (np.arange(400) < first.box.y)[:, None]
    assert first_tag.sum() > 500
    assert (both[first_tag] == alone[first_tag]).all(), "the first face's tag is whole"
    amber_rows = np.nonzero((both == COLOURS["uncertain"]).all(axis=-1).sum(axis=1) > 100)[0]
    assert len(amber_rows) >= 10, "the second face's tag is drawn"
    # It moved below its box rather than anywhere else.
    assert amber_rows.min() > second.box.y + second.box.h - 2


def test_in_a_crowded_group_photo_no_tag_covers_a_face_and_numbers_stand_in_for_words():
    # A row of six faces 20 px apart: each tag's words are wider than a face and its gap.
    photo = grey(300, 400)
    marks = [Mark(Box(20 + 60 * i, 120, 40, 40), 0.1, "real") for i in range(6)]
    out = overlay(photo, marks, max_side=None)
    for m in marks:
        face = Box(m.box.x + 3, m.box.y + 3, m.box.w - 6, m.box.h - 6)  # inside the box's lines
        assert not inside(changed(out, photo), face).any(), f"a tag covers the face at {m.box}"
    def tag_columns(picture: np.ndarray) -> int:  # columns holding a tag above or below the row
        green = (picture == COLOURS["real"]).all(axis=-1)
        return int((green & ~np.isin(np.arange(300), range(117, 163))[:, None]).any(axis=0).sum())

    words = tag_columns(overlay(photo, marks[:1], max_side=None))  # one face has room for its words
    assert words > 100 and tag_columns(out) < words, "six number tags take less room than one of words"


def test_each_face_gets_a_close_up_of_its_scored_square_with_heatmap_box_and_caption():
    photo = grey(600, 800)
    photo[100:300, 100:300] = (200, 180, 160)  # the first face's square, as it was scored
    first = Mark(Box(120, 120, 160, 160), 0.93, "fake", np.ones((8, 8), np.float32), Box(100, 100, 200, 200))
    second = Mark(Box(740, 550, 80, 80), 0.12, "real")  # its square reaches past the photo's corner
    (one, one_caption), (two, two_caption) = closeups(photo, [first, second], side=100)
    assert one.shape == two.shape == (100, 100, 3) and one.dtype == np.uint8
    assert (one_caption, two_caption) == ("1: fake (93% fake)", "2: real (12% fake)")
    assert (np.abs(one[50, 50].astype(int) - (200, 180, 160)).sum() > 60), "the heatmap over the face"
    assert tuple(one[50, 10]) == COLOURS["fake"], "the face box, scaled into the close-up (x = 20 * 100 / 200)"
    assert tuple(two[50, 50]) == (128, 128, 128) and tuple(two[95, 95]) == (0, 0, 0), "black past the border"
    assert (two == COLOURS["real"]).all(axis=-1).any()
    assert [c for _, c in closeups(photo, [first], numbers=[7])] == ["7: fake (93% fake)"]
    assert closeups(photo, [Mark(None, 0.2, "no face")]) == [], "a photo without a face has no close-up"


def test_large_photos_are_shrunk_to_max_side_with_the_boxes():
    photo = grey(2000, 3000)
    box = Box(1200, 800, 600, 600)
    out = overlay(photo, [Mark(box, 0.9, "fake")], max_side=1500)
    assert out.shape == (1000, 1500, 3)
    assert tuple(out[(box.y + box.h) // 2 - 1, 750]) == COLOURS["fake"], "the box is drawn at half scale"
    assert overlay(photo, [], max_side=None).shape == photo.shape
    assert overlay(grey(500, 400), [], max_side=1600).shape == (500, 400, 3), "small photos keep their size"


def _sizes(side: int) -> tuple[int, int]:
    """Bottom line width and tag height of a box drawn on a grey ``side``-wide 4:3 photo."""
    photo = grey(side * 3 // 4, side)
    box = Box(side * 2 // 5, side * 2 // 5, side // 5, side // 5)
    out = overlay(photo, [Mark(box, 0.9, "fake")], max_side=None)
    lower = out[box.y + box.h // 2 :, box.x + box.w // 2]
    line = int((lower == COLOURS["fake"]).all(axis=-1).sum())
    tag = int(changed(out, photo)[: box.y].any(axis=1).sum())
    return line, tag


def test_lines_and_tags_grow_with_the_picture():
    (small_line, small_tag), (large_line, large_tag) = _sizes(500), _sizes(4000)
    assert small_line >= 2 and small_tag >= 16, "readable on a 500-pixel photo"
    assert 5 <= large_line / small_line <= 10 and 5 <= large_tag / small_tag <= 10  # 8x the size


@pytest.mark.parametrize(
    "mark, words",
    [
        (Mark(Box(0, 0, 9, 9), 0.934, "fake"), "fake (93% fake)"),
        (Mark(Box(0, 0, 9, 9), 0.2951, "real"), "real (30% fake)"),  # the fake probability, never "real 70%"
        (Mark(Box(0, 0, 9, 9), 0.55, "uncertain"), "uncertain (55% fake)"),
    ],
)
def test_tag_text_states_the_verdict_and_the_fake_probability(mark, words):
    assert tag_text(mark) == words
    assert tag_text(mark, 2) == f"2: {words}"
    assert tag_text(mark).isascii()


@pytest.mark.parametrize(
    "faces, message",
    [
        ([Mark(Box(0, 0, 9, 9), 0.5, "deepfake")], "deepfake"),
        ([Mark(Box(0, 0, 9, 9), 1.5, "fake")], "1.5"),
        ([Mark(Box(0, 0, 9, 9), 0.5, "fake", np.ones((4, 4, 3)))], r"\(4, 4, 3\)"),
    ],
)
def test_bad_marks_are_refused_with_the_bad_value(faces, message):
    with pytest.raises(ValueError, match=message):
        overlay(grey(20, 20), faces)


def test_a_bad_image_or_setting_is_refused():
    with pytest.raises(ValueError, match="float32"):
        overlay(np.zeros((20, 20, 3), np.float32), [])
    with pytest.raises(ValueError, match="0"):
        overlay(grey(20, 20), [], max_side=0)
    with pytest.raises(ValueError, match="1.2"):
        overlay(grey(20, 20), [], alpha=1.2)
    with pytest.raises(ValueError, match="float32"):
        closeups(np.zeros((20, 20, 3), np.float32), [])
    with pytest.raises(ValueError, match="side must be at least 8 pixels, not 4"):
        closeups(grey(20, 20), [], side=4)


def test_render_imports_no_tensorflow():
    code = "import sys, detector.render; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=render.__file__.rsplit("/detector/", 1)[0]).returncode == 0
