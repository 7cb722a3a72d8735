"""Overlay pictures for ``python -m detector predict --overlays DIR``: where the network looked,
for photos scored from the command line.

The page shows every photo with its faces boxed, tagged and covered by their Grad-CAM maps
(``detector.render.overlay``); ``predict`` on a folder prints verdicts only. With
``--overlays DIR`` each image it scores also gets that picture, as a PNG under ``DIR`` at the
input's own path (``photos/a.jpg`` -> ``DIR/photos/a.jpg.png``), and its JSON record names it
(``"overlay"``). The picture is drawn from the very verdicts the record holds
(``batch_scoring.finish`` adds the Grad-CAM maps to them). A video gets its most suspicious frame,
as the page's Video tab draws it: its faces tagged with their tracks' verdicts (``clip.mp4`` ->
``DIR/clip.mp4.png``); a clip without a face gets none.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from detector import render
from detector.imaging import load_image
from detector.provenance import DRAWN_KEY, DRAWN_TEXT

if TYPE_CHECKING:
    from detector.pipeline import Result
    from detector.video_scoring import SuspiciousFrame


def overlay_path(out_dir: str | Path, path: str | Path) -> Path:
    """Where the overlay of ``path`` goes: its path under ``out_dir``, with ``.png`` added.

    An absolute path loses its root and a relative one its ``..`` parts, so every overlay
    stays inside ``out_dir``; the input's own suffix stays, so ``a.jpg`` and ``a.png`` do not
    share one.
    """
    parts = [p for p in Path(path).parts if p not in ("..", ".") and p != Path(path).anchor]
    return Path(out_dir).joinpath(*parts).with_name(Path(path).name + ".png")


def write_overlay(path: str | Path, result: "Result", out_dir: str | Path) -> Path:
    """Writes the overlay of an image that was scored with Grad-CAM maps.

    Args:
        path: The image file (decoded again: the pipeline keeps only its face crops).
        result: Its ``Result``, with the faces' heatmaps.
        out_dir: The folder the overlays go under (``overlay_path``).

    Returns:
        The PNG written.

    Raises:
        detector.imaging.ImageError: the file is not a usable image.
        OSError: the PNG cannot be written.
    """
    return save_png(render.overlay(load_image(path), result), overlay_path(out_dir, path))


def write_frame_overlay(path: str | Path, frame: "SuspiciousFrame", out_dir: str | Path) -> Path:
    """Writes a video's most suspicious frame with its faces' Grad-CAM maps, boxes and tags.

    Args:
        path: The video file (it names the PNG).
        frame: Its ``VideoResult.suspicious``.
        out_dir: The folder the overlays go under (``overlay_path``).

    Returns:
        The PNG written.

    Raises:
        OSError: the PNG cannot be written.
    """
    return save_png(render.overlay(frame.rgb, frame.marks, numbers=frame.numbers), overlay_path(out_dir, path))


def save_png(picture: np.ndarray, target: Path) -> Path:
    """Writes an RGB picture the detector drew as a PNG at ``target`` (its folder made), with
    the detector's mark in it (``provenance.DRAWN_TEXT``: dropped back into the detector, it is
    named as its own drawing), and returns ``target``.

    Raises:
        OSError: the PNG cannot be written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"cannot encode {target}")
    target.write_bytes(with_text(png.tobytes(), DRAWN_KEY, DRAWN_TEXT))
    return target


def with_text(png: bytes, key: str, text: str) -> bytes:
    """A PNG with a ``tEXt`` chunk (``key``, ``text``: Latin-1) after its header chunk, which
    is its first 33 bytes (signature 8, IHDR 25)."""
    data = key.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = len(data).to_bytes(4, "big") + b"tEXt" + data + zlib.crc32(b"tEXt" + data).to_bytes(4, "big")
    return png[:33] + chunk + png[33:]
