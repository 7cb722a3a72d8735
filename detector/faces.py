"""Find faces in a photo and crop them with the framing the network was trained on.

The face finder is OpenCV's frontal-face Haar cascade: its model files ship inside the
``opencv-python-headless`` wheel (``cv2.data.haarcascades``), so nothing is downloaded at run
time and a Space starts offline.

A cascade alone either misses faces or sees them in a sleeve, a hand or a streamer, depending
on how many overlapping hits it asks for. ``FaceFinder`` therefore scores each cluster of hits
by its *evidence*, the summed confidence of the cascade's last stage over the hits, and keeps
clusters with enough of it. Three more rules fix what that leaves: a padded close-up search
finds faces that fill the frame (where the cascade otherwise takes the nose and mouth for a
face), a box much smaller than the main face needs strong evidence, and a second cascade
(``alt2``) is asked only when the first finds nothing, which recovers faces with sunglasses,
a raised chin or a hand in the way. ``bench/faces_examples.py`` measures the result on the
example photos and the training sets.

Framing matters as much as the finder. The two training sets frame faces differently: DFDC
crops are tight (the cascade's box covers ~80% of the frame), FFHQ photos show the whole
head and background (the box covers ~68%). Both training images and run-time photos are
therefore cut to one canonical framing, a square ``FACE_MARGIN`` times the cascade's box,
centred on it (see ``frame_face``), so the network sees faces at run time as it saw them
in training.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

#: Side of the face crop relative to the side of the detector's box. DFDC crops are about
#: 1.25x the box and FFHQ photos 1.47x; 1.3 keeps the whole face and a little context.
FACE_MARGIN = 1.3

#: Photos are searched at this longest side at most. With ``MIN_FACE`` this sets the smallest
#: face found to 1/20 of the photo's longest side, and keeps a 12-megapixel photo as quick to
#: search as a small one.
DETECT_MAX_SIDE = 640

#: Photos smaller than this (longest side) are searched upscaled to it: the side of the
#: smallest training images (DFDC's 224 px crops), so a photo that was downscaled after the
#: fact (an upload resized by a social network) is searched at the scales its original
#: was, and the finder picks the same region more often: at half size + JPEG 50 the region
#: moved for 24 instead of 37 of 600 DFDC test photos, and 57 instead of 64 of 292 StyleGAN
#: ones (docs/robustness.md). No image of the shared training sets is smaller,
#: so their crops are unchanged. At most ``MAX_UPSCALE`` times, which covers half-size
#: uploads (the robustness goal's condition): a tiny photo blown up further is mostly
#: interpolation blur, where the cascade sees faces that are not there (and a tiny set's
#: fakes stop matching their reals' crops).
DETECT_MIN_SIDE = 224
MAX_UPSCALE = 2.0

#: Smallest face searched for, in pixels of the (rescaled) search image.
MIN_FACE = 32

#: Summed last-stage confidence a cluster of cascade hits needs to count as a face. Over the
#: example photos scaled 0.5x to 2x and stretched 5%, real faces score 3.2 (a tilted head) to
#: ~180; most false clusters (streamers, a collar, a suit) score below 3, and the few above it
#: are small beside the photo's main face, where ``BACKGROUND_RATIO`` takes them.
MIN_EVIDENCE = 3.0

#: A face less than this share of the largest face's side needs ``STRONG_EVIDENCE``: such a
#: box is someone far in the background or, more often, a sleeve or a button (0.3 of the
#: face, scoring up to 10), and it must not get a verdict of its own.
BACKGROUND_RATIO = 0.4
STRONG_EVIDENCE = 16.0

#: A box whose grey levels spread less than this (standard deviation, 0-255) is not searched
#: further: in a dark suit, histogram equalisation stretches the weave into face-like
#: patterns; a face that flat is too dark to judge anyway.
MIN_CONTRAST = 12.0

_CASCADE_FILE = "haarcascade_frontalface_default.xml"
_FALLBACK_CASCADE_FILE = "haarcascade_frontalface_alt2.xml"

#: Scale step between searched face sizes: 1.1 is OpenCV's default; 1.2 halves the search
#: time but misses tilted faces between the steps.
_SCALE_FACTOR = 1.1

#: How close two hits must be to count as the same face (OpenCV's ``groupRectangles`` eps).
_GROUP_EPS = 0.2

#: Two boxes overlapping by more than this share of the smaller one are one face found twice
#: (or a face and a box on its chin and collar, which the face outscores).
_MAX_OVERLAP = 0.15

#: A box mostly inside one this many times its side is a part of that face, not a face.
_PART_RATIO = 1.5

#: The close-up search pads the photo by this share of its longest side on every side, and
#: looks only for faces at least ``_CLOSEUP_MIN`` of its shorter side.
_CLOSEUP_PAD = 0.15
_CLOSEUP_MIN = 0.5


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels of the original image: top-left corner and size."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


class FaceFinder:
    """Finds frontal faces with OpenCV's bundled Haar cascades.

    Args:
        min_neighbors: A cluster of cascade hits needs more than this many hits to be
            considered; the evidence threshold then decides.
        max_side: Longest side of the search image; larger photos are downscaled first,
            which keeps a 12-megapixel photo fast without losing faces of useful size.
        min_side: Smaller photos are upscaled to this longest side first, at most
            ``MAX_UPSCALE`` times (see ``DETECT_MIN_SIDE``).
        min_evidence: Summed last-stage confidence a cluster needs (see ``MIN_EVIDENCE``);
            higher gives fewer false faces and misses more real ones.

    Raises:
        RuntimeError: a cascade file is missing from the OpenCV install.
    """

    def __init__(
        self, min_neighbors: int = 2, max_side: int = DETECT_MAX_SIDE, min_evidence: float = MIN_EVIDENCE,
        min_side: int = DETECT_MIN_SIDE,
    ) -> None:
        self._cascade = _load_cascade(_CASCADE_FILE)
        self._fallback = _load_cascade(_FALLBACK_CASCADE_FILE)
        self._lock = threading.Lock()
        self.min_neighbors = min_neighbors
        self.max_side = max_side
        self.min_side = min_side
        self.min_evidence = min_evidence

    def find(self, image: np.ndarray) -> list[Box]:
        """Returns the faces in an RGB uint8 image, largest first.

        Args:
            image: An ``(H, W, 3)`` RGB uint8 array.

        Returns:
            Face boxes in the pixel coordinates of ``image``; empty when there is none. The
            box of a face that fills the frame may reach a little past the border.

        Raises:
            ValueError: ``image`` is not an ``(H, W, 3)`` uint8 array.
        """
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            shape, dtype = getattr(image, "shape", None), getattr(image, "dtype", type(image).__name__)
            raise ValueError(f"FaceFinder.find() takes an (H, W, 3) uint8 RGB array, not shape {shape} dtype {dtype}")
        # OpenCV's cascades keep per-call scratch data: two threads sharing one (the app
        # scores two requests at once) corrupt each other's search. One search at a time.
        with self._lock:
            return self._find(image)

    def _find(self, image: np.ndarray) -> list[Box]:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        longest = max(grey.shape)
        if min(grey.shape) * min(1.0, self.max_side / longest) < MIN_FACE:
            return []  # too thin to hold a face; a 1-pixel side would vanish when downscaled
        scale = min(min(max(longest, self.min_side), self.max_side) / longest, MAX_UPSCALE)
        if scale != 1.0:
            resampling = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=resampling)
        equalised = cv2.equalizeHist(grey)

        def usable(box: tuple[int, int, int, int], evidence: float) -> bool:
            return evidence >= self.min_evidence and _contrast(grey, box) >= MIN_CONTRAST

        found = [(b, e) for b, e in self._clusters(equalised, MIN_FACE) if usable(b, e)]
        # A face filling the frame leaves the cascade no room around it, and the cascade then
        # sees a face in the nose and mouth alone. A padded copy, searched for large faces only
        # (a few scales, so cheap), finds the whole face; the parts then give way to it.
        pad = int(round(_CLOSEUP_PAD * max(grey.shape)))
        padded = cv2.copyMakeBorder(equalised, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        closeups = [
            ((x - pad, y - pad, w, h), e)
            for (x, y, w, h), e in self._clusters(padded, max(MIN_FACE, int(_CLOSEUP_MIN * min(grey.shape))))
        ]
        found += [(b, e) for b, e in closeups if usable(b, e) and not any(_same_face(b, f) for f, _ in found)]
        found = _merge(found)
        if found:
            largest = max(w for (_, _, w, _), _ in found)
            found = [(b, e) for b, e in found if b[2] >= BACKGROUND_RATIO * largest or e >= STRONG_EVIDENCE]
        else:
            hits, counts = self._fallback.detectMultiScale2(
                equalised, scaleFactor=_SCALE_FACTOR, minNeighbors=3, minSize=(MIN_FACE, MIN_FACE)
            )
            hit_boxes = [_ints(b) for b in hits]
            found = _merge([(b, float(n)) for b, n in zip(hit_boxes, counts) if _contrast(grey, b) >= MIN_CONTRAST])
        boxes = [Box(*(int(round(v / scale)) for v in b)) for b, _ in found]
        return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)

    def _clusters(self, grey: np.ndarray, min_size: int = MIN_FACE) -> list[tuple[tuple[int, int, int, int], float]]:
        """Clusters the cascade's raw hits and scores each cluster by its evidence."""
        hits, _, confidence = self._cascade.detectMultiScale3(
            grey,
            scaleFactor=_SCALE_FACTOR,
            minNeighbors=0,  # raw hits: the clustering below keeps each hit's confidence
            minSize=(min_size, min_size),
            outputRejectLevels=True,
        )
        if len(hits) == 0:
            return []
        hits = np.asarray(hits).reshape(-1, 4)
        groups, _ = cv2.groupRectangles(hits.tolist(), self.min_neighbors, _GROUP_EPS)
        if len(groups) == 0:
            return []
        groups = np.asarray(groups).reshape(-1, 4)
        confidence = np.asarray(confidence, np.float64).ravel()
        evidence = (_similar(hits, groups) * confidence[:, None]).sum(axis=0)
        return [(_ints(g), float(e)) for g, e in zip(groups, evidence)]


def _load_cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"could not load the face cascade {path!r}")
    return cascade


def _similar(hits: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``(hits, groups)`` booleans: which hit belongs to which cluster, by the closeness rule
    ``cv2.groupRectangles`` clusters with (every edge within eps of the smaller side)."""
    a, g = hits[:, None, :], groups[None, :, :]
    delta = _GROUP_EPS * (np.minimum(a[..., 2], g[..., 2]) + np.minimum(a[..., 3], g[..., 3])) / 2
    near = np.abs(a[..., :2] - g[..., :2]).max(axis=-1) <= delta
    far_near = np.abs(a[..., :2] + a[..., 2:] - g[..., :2] - g[..., 2:]).max(axis=-1) <= delta
    return near & far_near


def _ints(box) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in box)
    return x, y, w, h


def _contrast(grey: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    return float(grey[max(0, y) : y + h, max(0, x) : x + w].std())


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """Area of the intersection of two ``(x, y, w, h)`` boxes."""
    across = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    down = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, across) * max(0, down)


def _is_part(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether ``a`` is a part of the face ``b`` (an eye; the nose and mouth): mostly inside
    it and much smaller."""
    return b[2] >= _PART_RATIO * a[2] and _overlap(a, b) > 0.5 * a[2] * a[3]


def _same_face(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two boxes of similar size overlap enough to be one face found twice."""
    return _overlap(a, b) > _MAX_OVERLAP * min(a[2] * a[3], b[2] * b[3]) and not (_is_part(a, b) or _is_part(b, a))


def _merge(scored: list[tuple[tuple[int, int, int, int], float]]) -> list[tuple[tuple[int, int, int, int], float]]:
    """One box per face: parts of a larger face go, and of boxes found twice the one with
    the most evidence stays."""
    whole = [(b, s) for b, s in scored if not any(_is_part(b, other) for other, _ in scored)]
    kept: list[tuple[tuple[int, int, int, int], float]] = []
    for box, score in sorted(whole, key=lambda t: -t[1]):
        if not any(_overlap(box, k) > _MAX_OVERLAP * min(box[2] * box[3], k[2] * k[3]) for k, _ in kept):
            kept.append((box, score))
    return kept


def crop_box(box: Box, margin: float = FACE_MARGIN) -> Box:
    """The square region ``frame_face`` cuts around ``box``, in the image's pixels.

    It may reach past the image border (``frame_face`` repeats the border pixels there), so
    its corner can be negative.

    Args:
        box: A face box.
        margin: Crop side relative to the box's longer side.

    Returns:
        The square region.
    """
    side = max(1, int(round(max(box.w, box.h) * margin)))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    return Box(int(round(cx - side / 2)), int(round(cy - side / 2)), side, side)


def frame_face(image: np.ndarray, box: Box, margin: float = FACE_MARGIN) -> np.ndarray:
    """Cuts the canonical square face crop around ``box``.

    Where the square reaches past the image border, the border pixels are repeated so the
    face stays centred and unscaled, as it was in training.

    Args:
        image: An ``(H, W, 3)`` uint8 image.
        box: The face box in ``image``'s pixels.
        margin: Crop side relative to the box side.

    Returns:
        A square uint8 crop of side ``crop_box(box, margin).w`` (not yet resized).
    """
    region = crop_box(box, margin)
    x0, y0, side = region.x, region.y, region.w
    h, w = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    return image[y0 : y0 + side, x0 : x0 + side]


def centre_box(height: int, width: int) -> Box:
    """The largest centred square of a ``height`` x ``width`` image, as a ``Box``."""
    side = min(height, width)
    return Box((width - side) // 2, (height - side) // 2, side, side)


def centre_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of ``image``: what is scored when no face is found."""
    b = centre_box(*image.shape[:2])
    return image[b.y : b.y + b.h, b.x : b.x + b.w]


def training_crop(image: np.ndarray, finder: FaceFinder, margin: float = FACE_MARGIN) -> np.ndarray:
    """Reframes a training image to the run-time framing.

    A face that already fills the frame (DFDC's tight crops, where the cascade often finds
    nothing or a box that nearly fills the image) is kept whole; a face with room around it
    (FFHQ) is cut to ``frame_face``'s framing.

    Args:
        image: An RGB uint8 training image holding one face.
        finder: The face finder used at run time.
        margin: Crop side relative to the face box (the card's ``face_margin``).

    Returns:
        A square uint8 crop.
    """
    boxes = finder.find(image)
    region = scoring_region(image.shape, boxes[0], margin) if boxes else centre_box(*image.shape[:2])
    return frame_face(image, region, margin=1.0)


def scoring_region(image_shape: tuple[int, ...], box: Box, margin: float = FACE_MARGIN) -> Box:
    """The square region scored for a face, in training and at run time alike.

    Args:
        image_shape: Shape of the image the face is in.
        box: The face box.
        margin: Crop side relative to the box side.

    Returns:
        The ``crop_box`` framing, or the image's centre square when the framed face would not
        fit in the image (a face that fills the frame, as in DFDC's tight crops).
    """
    h, w = image_shape[:2]
    if max(box.w, box.h) * margin >= min(h, w):
        return centre_box(h, w)
    return crop_box(box, margin)
