"""Scoring views: the windows of a face crop the network scores and averages (test-time
augmentation), kept apart from the network so that the model card can name them without
importing Keras.

A model is calibrated through one set of views, so its card records them
(``ModelCard.scoring_views``) and the ``Detector`` scores through the card's views, not
through whatever this module ships today.
"""

from __future__ import annotations

from collections.abc import Iterable

#: A scoring view: a square window of the crop, ``(side, dy, dx, mirrored)``: its side and
#: its centre's offset from the crop's centre as shares of the crop's side, and whether it
#: is seen mirrored left to right.
View = tuple[float, float, float, bool]

#: The crop and its mirror image: a face means the same mirrored, but its pixels, and the
#: noise JPEG and resizing add to them, do not, so averaging the two cancels part of that
#: noise (about 0.01 test ROC-AUC on DFDC, docs/robustness.md). Cards
#: written before they recorded their views were calibrated through these.
CROP_AND_MIRROR: tuple[View, ...] = ((1.0, 0.0, 0.0, False), (1.0, 0.0, 0.0, True))

#: The crop and its mirror image cut 1/64 of the side lower and to the right: 2 pixels of a
#: 128 px crop, half a patch of the network's 4x4 patch stem. The two passes then see the
#: face on different patch grids (and JPEG block grids), whose noise averages out further,
#: for the same network passes as ``CROP_AND_MIRROR``. Chosen on validation data: at half
#: size + JPEG 50 it flipped 6.0% of DFDC's verdicts and 6.3% of StyleGAN's, against 7.7%
#: and 8.3%, each at its own calibration; test ROC-AUC on DFDC 0.882 against 0.879
#: (docs/robustness.md, "Scoring views").
CROP_AND_SHIFTED_MIRROR: tuple[View, ...] = ((1.0, 0.0, 0.0, False), (1.0, 1 / 64, 1 / 64, True))

#: The views new models are validated and calibrated through (``train``, ``recalibrate``).
SCORING_VIEWS: tuple[View, ...] = CROP_AND_SHIFTED_MIRROR


def as_views(raw: Iterable[Iterable]) -> tuple[View, ...]:
    """Views read back from JSON lists, as hashable ``View`` tuples.

    Args:
        raw: ``[[side, dy, dx, mirrored], ...]``.

    Returns:
        The views.

    Raises:
        ValueError: a view is not four values, or the list is empty.
    """
    views = []
    for view in raw:
        values = list(view)
        if len(values) != 4:
            raise ValueError(f"a scoring view is [side, dy, dx, mirrored], not {values!r}")
        side, dy, dx, mirrored = values
        views.append((float(side), float(dy), float(dx), bool(mirrored)))
    if not views:
        raise ValueError("a model needs at least one scoring view, got none")
    return tuple(views)


def describe(views: Iterable[View]) -> str:
    """The views in words, for the model card.

    Args:
        views: The views.

    Returns:
        E.g. ``"the crop; its mirror image, window shifted (+0.0156, +0.0156) of the side
        (down, right)"``.
    """
    words = []
    for side, dy, dx, mirrored in views:
        text = "its mirror image" if mirrored else "the crop"
        if side != 1.0:
            text += f", window {side:g} of the side"
        if dy or dx:
            text += f", window shifted ({dy:+.4f}, {dx:+.4f}) of the side (down, right)"
        words.append(text)
    return "; ".join(words)
