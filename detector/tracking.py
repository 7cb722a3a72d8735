"""Link the faces found in successive sampled frames into tracks, one per person on screen.

    tracker = Tracker()
    for frame in frames:                                   # in time order
        ids = tracker.update(frame.index, boxes, frame.rgb)  # a track id per box
    tracker.tracks                                         # {id: Track}

A face is followed by the overlap of its box from one sampled frame to the next: at two
samples a second a talking head moves a fraction of its width, and two people rarely swap
places. Each box joins the open track whose last box it overlaps most (intersection over
union at least ``MIN_IOU``, or the centres within ``MAX_CENTRE_SHIFT`` of the face's size
for a quick move), each track takes one box per frame, and a box that joins none starts a
new track. A track missed by the face finder for up to ``MAX_GAP`` sampled frames in a row
(a turned head, motion blur) picks up where it left off. After a longer gap only a face found
again where it was lost (intersection over union at least ``REJOIN_IOU``) continues it: a
head in profile, which the finder finds in some frames only, stays one face rather than a
new one each time it is found (a FLUX portrait in profile filmed for 60 s made 7 tracks).

**Cuts.** Across a cut the boxes of two different people can overlap, so a cut closes every
open track: the faces after it start new ones, and each shot's people get their own
verdicts. A cut is a change of the whole picture, told by the colour histograms of the two
sampled frames (``is_cut``): panning, zooming and people moving keep the histogram, a new
shot does not. A fade or a cut back to an earlier shot also starts new tracks (the same
person gets a second track; nothing links tracks across shots by identity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from detector.faces import Box

#: Least intersection over union for a box to continue a track.
MIN_IOU = 0.3
#: Or: centres at most this share of the face's side apart, sizes within ``MAX_SIZE_RATIO``.
MAX_CENTRE_SHIFT = 0.5
MAX_SIZE_RATIO = 1.5
#: Sampled frames a track may go without a face and still be continued by any face near it.
MAX_GAP = 2
#: After a longer gap (until a cut), the least overlap with its last box for a face to continue
#: a track: the same place and size, not just near.
REJOIN_IOU = 0.5
#: Histogram correlation below which two sampled frames are different shots. Frames of one
#: shot half a second apart, filmed with ``detector.clipmaker``'s moves at twice the usual
#: size, correlate above 0.99; of 2,211 pairs of different photos (67 from the five real
#: sets and the examples), 88% correlate below 0.7. A missed cut (two shots of like colours)
#: leaves box overlap alone to tell the people apart; a cut seen where there is none (a
#: flash) only splits a track in two, so the threshold leans to seeing cuts.
CUT_CORRELATION = 0.7

# Hue x saturation bins of the shot signature, and the side it is computed at.
_HIST_BINS = (16, 16)
_SIGNATURE_SIDE = 160


@dataclass
class Track:
    """One face followed through the clip.

    Attributes:
        id: Its number, from 1, in order of appearance.
        samples: Indices of the sampled frames the face was found in, increasing.
        boxes: Its box in each of those frames.
    """

    id: int
    samples: list[int] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    across = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    down = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(0, across) * max(0, down)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def _near(a: Box, b: Box) -> bool:
    """Whether ``b`` is ``a`` moved quickly: similar size, centre within reach."""
    side_a, side_b = max(a.w, a.h), max(b.w, b.h)
    if max(side_a, side_b) > MAX_SIZE_RATIO * min(side_a, side_b):
        return False
    shift = np.hypot(a.x + a.w / 2 - b.x - b.w / 2, a.y + a.h / 2 - b.y - b.h / 2)
    return bool(shift <= MAX_CENTRE_SHIFT * (side_a + side_b) / 2)


def shot_signature(rgb: np.ndarray) -> np.ndarray:
    """A frame's hue-saturation histogram, normalised: what ``is_cut`` compares."""
    h, w = rgb.shape[:2]
    scale = _SIGNATURE_SIDE / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(_HIST_BINS), [0, 180, 0, 256])
    return cv2.normalize(hist, hist).astype(np.float32)


def is_cut(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether two ``shot_signature`` s belong to different shots."""
    return cv2.compareHist(before, after, cv2.HISTCMP_CORREL) < CUT_CORRELATION


class Tracker:
    """Builds tracks one sampled frame at a time (see the module's docstring)."""

    def __init__(self) -> None:
        self.tracks: dict[int, Track] = {}
        self.cuts: list[int] = []  # sample indices that start a new shot
        self._open: list[Track] = []  # the current shot's tracks: only a cut closes them
        self._signature: np.ndarray | None = None

    def update(self, sample: int, boxes: list[Box], rgb: np.ndarray | None = None) -> list[int]:
        """Adds one sampled frame's faces.

        Args:
            sample: The frame's index among the samples (increasing from call to call).
            boxes: The faces found in it.
            rgb: The frame, to tell a cut from the previous one; ``None`` assumes no cut.

        Returns:
            The track id of each box, in the order of ``boxes``.
        """
        if rgb is not None:
            signature = shot_signature(rgb)
            if self._signature is not None and is_cut(self._signature, signature):
                self.cuts.append(sample)
                self._open = []
            self._signature = signature

        # Greedy matching, best overlap first; a quick move counts below any overlap.
        pairs = []
        for i, box in enumerate(boxes):
            for j, track in enumerate(self._open):
                overlap = iou(track.boxes[-1], box)
                if sample - track.samples[-1] <= MAX_GAP + 1:
                    if overlap >= MIN_IOU or _near(track.boxes[-1], box):
                        pairs.append((overlap, i, j))
                elif overlap >= REJOIN_IOU:
                    pairs.append((overlap, i, j))
        ids: list[int | None] = [None] * len(boxes)
        taken: set[int] = set()
        for _, i, j in sorted(pairs, reverse=True):
            if ids[i] is None and j not in taken:
                ids[i] = self._open[j].id
                taken.add(j)
        for i, box in enumerate(boxes):
            if ids[i] is None:
                track = Track(len(self.tracks) + 1)
                self.tracks[track.id] = track
                self._open.append(track)
                ids[i] = track.id
            track = self.tracks[ids[i]]
            track.samples.append(sample)
            track.boxes.append(box)
        return ids  # type: ignore[return-value]
