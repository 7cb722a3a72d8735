"""The overlay people see: Grad-CAM blended over the photo, each face boxed and tagged.

Pure drawing with NumPy and OpenCV (no TensorFlow): it takes a ``pipeline.Result`` (or
anything with the same fields) and never scores anything itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

#: Box and tag colours (RGB) by verdict: red fake, green real, amber uncertain.
COLOURS = {"fake": (220, 38, 38), "real": (22, 163, 74), "uncertain": (245, 158, 11)}

#: Heatmap values below this are left transparent, so the photo stays readable.
HEAT_FLOOR = 0.15


class Box(Protocol):
    x: int
    y: int
    w: int
    h: int


class Scored(Protocol):
    box: Box
    region: Box
    fake_probability: float
    label: str
    heatmap: np.ndarray | None


class ResultLike(Protocol):
    faces: Sequence[Scored]
    whole_image: Scored | None


def _paste_heatmap(canvas: np.ndarray, heatmap: np.ndarray, region: Box, alpha: float) -> None:
    """Blends a colour-mapped heatmap over ``region`` of ``canvas`` (in place), clipping the
    parts of the region that lie outside the image."""
    h, w = canvas.shape[:2]
    side = max(1, region.w)
    heat = cv2.resize(heatmap.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    x0, y0 = max(region.x, 0), max(region.y, 0)
    x1, y1 = min(region.x + side, w), min(region.y + side, h)
    if x1 <= x0 or y1 <= y0:
        return
    heat = heat[y0 - region.y : y1 - region.y, x0 - region.x : x1 - region.x]
    colour = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)[..., ::-1]
    weight = (alpha * np.clip((heat - HEAT_FLOOR) / (1 - HEAT_FLOOR), 0, 1))[..., None]
    patch = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = np.uint8(patch * (1 - weight) + colour * weight + 0.5)


def _draw_tag(canvas: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float) -> None:
    """A filled label with white text whose bottom-left corner is at (x, y), kept inside the image."""
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    pad = max(2, round(th * 0.3))
    h, w = canvas.shape[:2]
    x = int(np.clip(x, 0, max(0, w - tw - 2 * pad)))
    y = int(np.clip(y, th + 2 * pad, h))
    cv2.rectangle(canvas, (x, y - th - 2 * pad), (x + tw + 2 * pad, y), colour, -1)
    cv2.putText(canvas, text, (x + pad, y - pad), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def overlay(image: np.ndarray, result: ResultLike, max_side: int = 1600, alpha: float = 0.5) -> np.ndarray:
    """Draws a result over its photo.

    Args:
        image: The RGB uint8 photo the result was computed on.
        result: A ``pipeline.Result``: its faces (or whole-image score), each with a box,
            the scored region, a probability, a verdict and optionally a Grad-CAM heatmap.
        max_side: Larger photos are shrunk to this longest side first (the page shows them
            smaller anyway, and drawing stays fast).
        alpha: Opacity of the heatmap where it is strongest.

    Returns:
        The RGB uint8 overlay, at most ``max_side`` pixels on its longest side.

    Raises:
        ValueError: ``image`` is not an ``(H, W, 3)`` uint8 array.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"overlay needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    scale = min(1.0, max_side / max(image.shape[:2]))
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()

    def scaled(box: Box) -> Box:
        return _Rect(round(box.x * scale), round(box.y * scale), max(1, round(box.w * scale)), max(1, round(box.h * scale)))

    scored = list(result.faces) or ([result.whole_image] if result.whole_image is not None else [])
    for item in scored:
        if item.heatmap is not None:
            _paste_heatmap(canvas, item.heatmap, scaled(item.region), alpha)

    text_scale = max(0.4, min(canvas.shape[:2]) / 1000)
    line = max(2, round(min(canvas.shape[:2]) / 250))
    for number, item in enumerate(scored, start=1):
        colour = COLOURS.get(item.label, COLOURS["uncertain"])
        percent = f"{item.label} {100 * item.fake_probability:.0f}% fake"
        if result.faces:
            b = scaled(item.box)
            cv2.rectangle(canvas, (b.x, b.y), (b.x + b.w, b.y + b.h), colour, line)
            # The number matches the face's row in the app's table.
            _draw_tag(canvas, f"{number}: {percent}", b.x, b.y - line, colour, text_scale)
        else:
            _draw_tag(canvas, f"no face found, whole image: {percent}", line, canvas.shape[0] - line, colour, text_scale)
    return canvas


class _Rect:
    """A plain box (x, y, w, h) in overlay pixels."""

    __slots__ = ("x", "y", "w", "h")

    def __init__(self, x: int, y: int, w: int, h: int) -> None:
        self.x, self.y, self.w, self.h = x, y, w, h
