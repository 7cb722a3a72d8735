"""Draw a verdict on a photo: Grad-CAM heatmaps over the scored regions, boxes and tags.

Pure drawing with NumPy and OpenCV, no model and no TensorFlow, so the app imports it in
milliseconds and its tests need nothing but arrays::

    from detector import render
    picture = render.overlay(rgb, result)                     # a pipeline Result
    picture = render.overlay(rgb, [render.Mark(box, 0.93, "fake", heatmap)])

Sizes scale with the picture (line width, tag height), so a tag reads the same on a 500-pixel
photo and on a 12-megapixel one; very large photos are shrunk to ``max_side`` first, which also
keeps the app's page light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import cv2
import numpy as np

from detector.faces import Box, centre_box, crop_box
from detector.wording import NO_FACE, face_phrase

if TYPE_CHECKING:  # for the annotations only: the pipeline imports TensorFlow lazily, render never
    from detector.pipeline import Result

#: Box and tag colours (RGB) by verdict: red fake, blue real, amber uncertain, grey when no
#: face was found (no verdict). Blue, not green, for real: to a red-green colour-blind eye (one
#: man in twelve) the green and red boxes and number tags were two near olives; with this blue
#: they stay far apart (tests/test_render.py simulates the three kinds and measures the distance).
COLOURS = {"fake": (220, 38, 38), "real": (37, 99, 235), "uncertain": (245, 158, 11), NO_FACE: (82, 82, 91)}

#: Tag text colour on each tag colour: near-black on amber, white on the others.
_TEXT_COLOURS = {"fake": (255, 255, 255), "real": (255, 255, 255), "uncertain": (24, 24, 27), NO_FACE: (255, 255, 255)}

#: Longest side of the drawn picture: larger photos are shrunk to it (``None`` keeps them).
MAX_SIDE = 1600

#: Side of a face's close-up (``closeups``), in pixels.
CLOSEUP_SIDE = 224

#: Opacity of the heatmap where it is strongest.
HEATMAP_ALPHA = 0.55

#: Heatmap values below LOW are not coloured at all; opacity grows to full at HIGH. The face
#: stays visible where the network did not look.
_HEAT_LOW, _HEAT_HIGH = 0.2, 0.8

_FONT = cv2.FONT_HERSHEY_DUPLEX


class Mark(NamedTuple):
    """One scored face, or the whole image, to draw.

    Attributes:
        box: The face box in pixels of the photo; ``None`` when no face was found and the
            whole image (its centre square) was scored.
        fake_probability: Probability that the face is fake, in ``[0, 1]``.
        label: The verdict: ``"fake"``, ``"real"`` or ``"uncertain"``; ``"no face"`` for the
            whole image of a photo without a face.
        heatmap: Grad-CAM map in ``[0, 1]`` over ``region`` (any resolution), or ``None``.
        region: The square that was scored and that the heatmap covers, in pixels of the
            photo (it may reach past the border). ``None`` means the training framing around
            the box (``detector.faces.crop_box``), or the centre square for the whole image.
    """

    box: Box | None
    fake_probability: float
    label: str
    heatmap: np.ndarray | None = None
    region: Box | None = None


def overlay(
    image: np.ndarray,
    faces: Result | Sequence[Mark | tuple | Any],
    *,
    max_side: int | None = MAX_SIDE,
    alpha: float = HEATMAP_ALPHA,
    numbers: Sequence[int] | None = None,
) -> np.ndarray:
    """Draws the verdict for every scored face on a copy of the photo.

    Each face gets its heatmap blended over the region that was scored, a box in its
    verdict's colour and a tag with its number (the order given: the app's table's), its
    verdict and its fake probability, as the page and the CLI write them
    (``detector.wording``): ``1: fake (93% fake)``, ``2: real (12% fake)``. No tag covers a face
    or another tag: in a crowded group photo, where the words do not all find room beside their
    faces, each tag is the face's number alone (the table and close-ups give the words). A
    photo without a face gets the tag ``no face found`` in its top-left corner, and no box,
    verdict or percentage (a heatmap, if one is given, is drawn over the scored centre square).

    Args:
        image: The photo, an ``(H, W, 3)`` RGB uint8 array.
        faces: What was scored: a ``detector.pipeline.Result`` (its faces, or its whole-image
            score), or a sequence of ``Mark`` or of tuples in ``Mark``'s field order, or of
            objects with ``Mark``'s attributes (``FaceResult``).
        max_side: Longest side of the returned picture; larger photos are shrunk to it.
            ``None`` keeps the photo's size.
        alpha: Opacity of the heatmap where it is strongest, in ``[0, 1]``.
        numbers: The number on each face's tag (a video's track ids); 1, 2, ... by default.

    Returns:
        An RGB uint8 picture: the photo's size, or shrunk to ``max_side``.

    Raises:
        ValueError: the image is not RGB uint8, or a face has an unknown label, a probability
            outside ``[0, 1]``, or a heatmap that is not 2-D; or ``max_side``/``alpha`` is
            out of range.
    """
    _check_picture("overlay", image, alpha)
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels or None, not {max_side!r}")
    marks = [_checked(m) for m in _marks(faces)]

    height, width = image.shape[:2]
    scale = 1.0 if max_side is None else min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        canvas = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    else:
        canvas = image.copy()

    # Regions are worked out on the photo, where the pipeline cut them, then scaled.
    placed = []
    for m in marks:
        region = _region(m, height, width)
        placed.append((m, _scaled(m.box, scale) if m.box is not None else None, _scaled(region, scale)))

    style = _Style.for_size(*canvas.shape[:2])
    for m, _, region in placed:  # heatmaps first: boxes and tags stay sharp on top
        if m.heatmap is not None:
            _blend_heatmap(canvas, m.heatmap, region, alpha)
    tags = []
    for m, box, region in placed:
        colour = COLOURS[m.label]
        if box is None:  # no face: no frame that could pass for one, a tag in the corner
            tags.append((m, Box(0, 0, *canvas.shape[1::-1]), True))
        else:
            _rectangle(canvas, box, colour, style.line)
            tags.append((m, box, False))
    # Tags last, so that no box crosses one. A tag covers no other face and no other tag: where
    # the words do not all find room beside their faces (a crowded group photo), every face
    # gets its number alone, in its verdict's colour (the table and close-ups give the words).
    numbered = list(zip(numbers or range(1, len(tags) + 1), tags))
    faces = [box for _, box, _ in placed if box is not None]
    words = [(tag_text(m, n), anchor, inside) for n, (m, anchor, inside) in numbered]
    layout = _lay_out_tags(words, faces, canvas.shape, style, crowded=False)
    if layout is None:
        texts = [(text if inside else str(n), anchor, inside) for (text, anchor, inside), (n, _) in zip(words, numbered)]
        layout = _lay_out_tags(texts, faces, canvas.shape, style, crowded=True)
    for (_, (m, _, _)), (text, place, font_scale) in zip(numbered, layout):
        _draw_tag(canvas, text, place, font_scale, m.label, style)
    return canvas


def closeups(
    image: np.ndarray,
    faces: Result | Sequence[Mark | tuple | Any],
    *,
    side: int = CLOSEUP_SIDE,
    alpha: float = HEATMAP_ALPHA,
    numbers: Sequence[int] | None = None,
) -> list[tuple[np.ndarray, str]]:
    """Each face up close: the square the network scored, at ``side`` pixels, with its heatmap
    and its box in its verdict's colour, and its tag's words as a caption.

    On a group photo or a 12-megapixel one the overlay is shrunk to fit the page and a face's
    heatmap shrinks with it to a few pixels; here every face is as large as any other.

    Args:
        image: The photo, an ``(H, W, 3)`` RGB uint8 array.
        faces: What was scored, as ``overlay`` takes it; a photo without a face gives none.
        side: Side of each close-up, in pixels.
        alpha: Opacity of the heatmap where it is strongest, in ``[0, 1]``.
        numbers: The number in each face's caption; 1, 2, ... by default.

    Returns:
        ``(picture, caption)`` per face, in the order given: ``(side, side, 3)`` RGB uint8
        pictures (where the region reaches past the photo's border, black) and captions such
        as ``"1: fake (93% fake)"``.

    Raises:
        ValueError: as ``overlay`` (for ``alpha``), or ``side`` is under 8 pixels.
    """
    _check_picture("closeups", image, alpha)
    if side < 8:
        raise ValueError(f"side must be at least 8 pixels, not {side!r}")
    height, width = image.shape[:2]
    marks = [_checked(m) for m in _marks(faces) if m.box is not None]
    style = _Style.for_size(side, side)
    out = []
    for number, m in zip(numbers or range(1, len(marks) + 1), marks):
        region = _region(m, height, width)
        patch = np.zeros((region.h, region.w, 3), np.uint8)
        x0, y0 = max(region.x, 0), max(region.y, 0)
        x1, y1 = min(region.x + region.w, width), min(region.y + region.h, height)
        if x1 > x0 and y1 > y0:
            patch[y0 - region.y : y1 - region.y, x0 - region.x : x1 - region.x] = image[y0:y1, x0:x1]
        shrink = region.w > side
        canvas = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        if m.heatmap is not None:
            _blend_heatmap(canvas, m.heatmap, Box(0, 0, side, side), alpha)
        scale = side / region.w
        box = Box(m.box.x - region.x, m.box.y - region.y, m.box.w, m.box.h)
        _rectangle(canvas, _scaled(box, scale), COLOURS[m.label], max(2, style.line // 2))
        out.append((canvas, tag_text(m, number)))
    return out


def tag_text(mark: Mark, number: int | None = None) -> str:
    """The tag's words (ASCII: OpenCV's fonts have nothing else).

    Args:
        mark: A scored face, or the whole image of a photo without a face.
        number: The face's number, shown first; ignored for the whole image.

    Returns:
        For example ``"1: fake (93% fake)"``, ``"2: real (12% fake)"``,
        ``"uncertain (55% fake)"``, and ``"no face found"`` for the whole image.
    """
    if mark.box is None or mark.label == NO_FACE:
        return "no face found"
    return face_phrase(mark.label, float(mark.fake_probability), number)


def _check_picture(caller: str, image: Any, alpha: float) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape, dtype = getattr(image, "shape", None), getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"{caller}() takes an (H, W, 3) uint8 RGB array, not shape {shape} dtype {dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], not {alpha!r}")


def _region(mark: Mark, height: int, width: int) -> Box:
    """The square the network scored for ``mark`` in a ``height`` x ``width`` photo."""
    return mark.region or (crop_box(mark.box) if mark.box is not None else centre_box(height, width))


def _marks(faces: Result | Sequence[Mark | tuple | Any]) -> list[Mark]:
    """The marks to draw from a pipeline ``Result`` or a sequence of faces."""
    if hasattr(faces, "scored") and hasattr(faces, "whole_image"):  # a pipeline Result
        whole = faces.whole_image
        if whole is not None:
            return [Mark(None, whole.fake_probability, whole.label, whole.heatmap, whole.region)]
        faces = faces.faces
    marks = []
    for face in faces:
        if isinstance(face, Mark):
            marks.append(face)
        elif isinstance(face, tuple):
            marks.append(Mark(*face))
        else:
            heatmap, region = getattr(face, "heatmap", None), getattr(face, "region", None)
            marks.append(Mark(face.box, face.fake_probability, face.label, heatmap, region))
    return marks


def _checked(mark: Mark) -> Mark:
    if mark.label not in COLOURS:
        raise ValueError(f"unknown label {mark.label!r}: expected one of {sorted(COLOURS)}")
    p = mark.fake_probability
    if not (isinstance(p, (int, float, np.floating)) and 0.0 <= float(p) <= 1.0):
        raise ValueError(f"fake_probability must be in [0, 1], not {p!r}")
    if mark.heatmap is not None and np.ndim(mark.heatmap) != 2:
        raise ValueError(f"a heatmap must be 2-D (rows, columns), not shape {np.shape(mark.heatmap)}")
    return mark


def _scaled(box: Box, scale: float) -> Box:
    if scale == 1.0:
        return box
    return Box(
        int(round(box.x * scale)), int(round(box.y * scale)), max(1, round(box.w * scale)), max(1, round(box.h * scale))
    )


class _Style(NamedTuple):
    """Line width and tag text size for one picture size."""

    line: int
    font_scale: float
    text_thickness: int
    pad: int

    @classmethod
    def for_size(cls, height: int, width: int) -> "_Style":
        # Sized on the picture's area, not its longest side, so a panorama's tags do not
        # outgrow its height: 12 px text on a 500x375 photo, 35 px on 1600x1200.
        text_height = max(12.0, 0.025 * math.sqrt(height * width))
        (_, unit), _ = cv2.getTextSize("Hg", _FONT, 1.0, 1)
        return cls(
            line=max(2, round(text_height / 6)),
            font_scale=text_height / unit,
            text_thickness=max(1, round(text_height / 14)),
            pad=max(2, round(text_height / 4)),
        )


def _rectangle(canvas: np.ndarray, box: Box, colour: tuple[int, int, int], thickness: int) -> None:
    cv2.rectangle(canvas, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), colour, thickness, cv2.LINE_AA)


def _blend_heatmap(canvas: np.ndarray, heatmap: np.ndarray, region: Box, alpha: float) -> None:
    """Blends a colour-mapped heatmap over ``region`` of ``canvas``, in place; the part of the
    region outside the picture is dropped."""
    height, width = canvas.shape[:2]
    x0, y0 = max(region.x, 0), max(region.y, 0)
    x1, y1 = min(region.x + region.w, width), min(region.y + region.h, height)
    if x1 <= x0 or y1 <= y0:
        return
    heat = np.nan_to_num(np.asarray(heatmap, np.float32)).clip(0.0, 1.0)
    heat = cv2.resize(heat, (region.w, region.h), interpolation=cv2.INTER_LINEAR)
    heat = heat[y0 - region.y : y1 - region.y, x0 - region.x : x1 - region.x]
    colours = cv2.applyColorMap(np.round(heat * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
    weight = (alpha * ((heat - _HEAT_LOW) / (_HEAT_HIGH - _HEAT_LOW)).clip(0.0, 1.0))[..., None]
    patch = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = np.round(patch + weight * (colours - patch)).astype(np.uint8)


def _lay_out_tags(
    tags: Sequence[tuple[str, Box, bool]], faces: Sequence[Box], shape: tuple[int, ...], style: _Style, crowded: bool
) -> list[tuple[str, Box, float]] | None:
    """Where each tag goes: ``(text, place, font scale)`` per ``(text, anchor, inside)``, in order.

    A tag goes above its anchor when there is room, else below it, else inside its top edge (a
    face that fills the photo; the whole image's tag always goes there), wherever it overlaps no
    other face and no tag placed before it. Unless ``crowded``, ``None`` when a tag finds no
    such place; when ``crowded``, it may also go further above or below, and where nothing is
    free it goes inside its anchor's top edge all the same.
    """
    height, width = shape[:2]
    half = style.line // 2  # the box's line is centred on its edge
    placed: list[tuple[str, Box, float]] = []
    for text, anchor, inside in tags:
        tag_w, tag_h, font_scale = _tag_shape(text, width, style)
        above, below = anchor.y - half - tag_h, anchor.y + anchor.h + half
        tops = [] if inside else [above, below]
        if crowded and not inside:
            tops += [t for k in range(1, len(tags) + 1) for t in (above - k * tag_h, below + k * tag_h)]
        tops = [t for t in tops if 0 <= t <= height - tag_h] + [anchor.y + half]
        left = min(max(anchor.x - half, 0), max(width - tag_w, 0))
        places = [Box(left, min(max(top, 0), max(height - tag_h, 0)), tag_w, tag_h) for top in tops]
        avoid = [place for _, place, _ in placed] + [face for face in faces if face != anchor]
        place = next((p for p in places if not any(_overlap(p, other) for other in avoid)), None)
        if place is None and not crowded:
            return None
        placed.append((text, place or places[-1], font_scale))
    return placed


def _draw_tag(canvas: np.ndarray, text: str, place: Box, font_scale: float, label: str, style: _Style) -> None:
    """A filled tag in ``label``'s colour at ``place``, with ``text`` on it."""
    (_, text_h), _ = cv2.getTextSize(text, _FONT, font_scale, style.text_thickness)
    cv2.rectangle(canvas, (place.x, place.y), (place.x + place.w - 1, place.y + place.h - 1), COLOURS[label], cv2.FILLED)
    origin = (place.x + style.pad, place.y + style.pad + text_h)
    cv2.putText(canvas, text, origin, _FONT, font_scale, _TEXT_COLOURS[label], style.text_thickness, cv2.LINE_AA)


def _tag_shape(text: str, width: int, style: _Style) -> tuple[int, int, float]:
    """``(tag width, tag height, font scale)`` of ``text``'s tag; a tag wider than the picture (a
    long tag on a narrow picture) gets a smaller font rather than being cut off."""
    font_scale = style.font_scale
    (text_w, _), _ = cv2.getTextSize(text, _FONT, font_scale, style.text_thickness)
    if text_w + 2 * style.pad > width:
        font_scale *= max(width - 2 * style.pad, 1) / text_w
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, font_scale, style.text_thickness)
    return text_w + 2 * style.pad, text_h + baseline + 2 * style.pad, font_scale


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h
