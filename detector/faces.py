"""Find faces in a photo and cut them with the framing the network was trained on.

The face finder is YuNet (Wu et al., libfacedetection), a 233 KB ONNX network that OpenCV's
``cv2.FaceDetectorYN`` runs; the file ships in ``third_party/`` with its licence, so nothing is
downloaded and a Space starts offline. Against the Haar cascade this project used before, it
found the same example faces plus one the cascade could not (a girl looking down), no false
boxes, every face of every training set's sample, and it is 6-30x faster
(``python bench/face_finders.py``; ``docs/FACES.md`` has the table).

Framing matters as much as the finder. Training images come framed in many ways (DFDC and
UTKFace crops are tight, FFHQ and LFW photos show the head and shoulders, text-to-image
portraits anything from a close-up to a small figure), and at run time the photo can be
anything. Training images and run-time photos are therefore cut alike: a square
``FACE_MARGIN`` times the face box's longer side, centred on the box and moved (never padded)
to stay inside the photo, shrunk to the photo's shorter side when it would not fit
(``scoring_region``). A crop never shows invented pixels (repeated borders would be a tell of
the sets whose faces fill the frame), and a face that fills its photo fills its crop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

#: The YuNet model (``third_party/README.md`` names its source and licence).
YUNET_MODEL = Path(__file__).resolve().parent.parent / "third_party" / "face_detection_yunet_s_640.onnx"

#: Side of the face crop relative to the longer side of the finder's box. YuNet's box runs
#: from the hairline to the chin, so 1.15 keeps the whole face and a thin ring around it (the
#: seam of a face swap) while leaving out most of the background, which tells sources apart
#: rather than real from fake.
FACE_MARGIN = 1.15

#: Photos are searched at this longest side at most (the model's native 640 px): a
#: 12-megapixel photo is searched as quickly as a small one, and the smallest face found is
#: about 1/64 of the photo's longest side.
DETECT_MAX_SIDE = 640

#: YuNet's confidence a face needs. 0.8 found all 12 faces of the example photos with no false
#: box; 0.9 missed a tilted head (``../shared/models/README.md``). Training sets: 100% of their
#: images have a face at 0.8, except the FLUX-LoRA fakes that are too dark to show one.
SCORE_THRESHOLD = 0.8

#: Boxes of one face overlapping more than this (IoU) are merged by the finder's NMS.
NMS_THRESHOLD = 0.3


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels of the original image: top-left corner and size."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True)
class Face:
    """A face found by ``FaceFinder.detect``.

    Attributes:
        box: The face, hairline to chin, in pixels of the image searched.
        score: The finder's confidence in ``[0, 1]``.
        landmarks: ``(5, 2)`` points: right eye, left eye, nose tip, right and left mouth
            corners (as seen in the image: "right" is the person's right, on the image's left).
            They place the features of an upright face well, but barely follow a head
            turned in the image plane (a photo turned 20 degrees moves the eye line by 3),
            so the crops are not aligned by them (``docs/FACES.md``).
    """

    box: Box
    score: float
    landmarks: np.ndarray


class FaceFinder:
    """Finds faces with YuNet through ``cv2.FaceDetectorYN``.

    Args:
        score_threshold: Confidence a face needs (see ``SCORE_THRESHOLD``).
        max_side: Longest side of the search image; larger photos are downscaled first.
        model: The YuNet ONNX file.

    Raises:
        FileNotFoundError: the model file is missing.
    """

    def __init__(
        self, score_threshold: float = SCORE_THRESHOLD, max_side: int = DETECT_MAX_SIDE, model: Path = YUNET_MODEL
    ) -> None:
        if not Path(model).is_file():
            raise FileNotFoundError(f"the YuNet face model {model} is missing (see third_party/README.md)")
        self.score_threshold = score_threshold
        self.max_side = max_side
        self._net = cv2.FaceDetectorYN.create(str(model), "", (320, 320), score_threshold, NMS_THRESHOLD, 5000)
        # The detector keeps its input size and buffers between setInputSize and detect: two
        # threads sharing it (the app scores two requests at once) must take turns.
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        """The faces in an RGB uint8 image, with landmarks, largest first.

        Args:
            image: An ``(H, W, 3)`` RGB uint8 array.

        Returns:
            The faces, in pixel coordinates of ``image``, clipped to it; empty when none.

        Raises:
            ValueError: ``image`` is not an ``(H, W, 3)`` uint8 array.
        """
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            shape, dtype = getattr(image, "shape", None), getattr(image, "dtype", type(image).__name__)
            raise ValueError(f"FaceFinder takes an (H, W, 3) uint8 RGB array, not shape {shape} dtype {dtype}")
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if min(h, w) * scale < 8:
            return []  # too thin to hold a face (and below what the network's strides accept)
        small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        with self._lock:
            self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, rows = self._net.detect(bgr)
        rows = np.zeros((0, 15), np.float32) if rows is None else rows
        # On a tiny blank input the network can return rows of inf or NaN: no face there.
        faces = [_face(row, scale, w, h) for row in rows if np.isfinite(row).all()]
        faces = [f for f in faces if f.box.w > 0 and f.box.h > 0]
        return sorted(faces, key=lambda f: f.box.w * f.box.h, reverse=True)

    def find(self, image: np.ndarray) -> list[Box]:
        """The face boxes of an RGB uint8 image, largest first (``detect`` without landmarks)."""
        return [f.box for f in self.detect(image)]


def _face(row: np.ndarray, scale: float, width: int, height: int) -> Face:
    """A ``Face`` from one row of YuNet's output (box, 5 landmarks, score) at ``scale``."""
    x, y, bw, bh = (float(v) / scale for v in row[:4])
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + bw))), min(height, int(round(y + bh)))
    landmarks = np.asarray(row[4:14], np.float32).reshape(5, 2) / scale
    return Face(Box(x0, y0, x1 - x0, y1 - y0), float(row[14]), landmarks)


def crop_box(box: Box, margin: float = FACE_MARGIN) -> Box:
    """The square of side ``margin`` times the box's longer side, centred on the box.

    It may reach past the image border; ``scoring_region`` is the square actually cut.

    Args:
        box: A face box.
        margin: Crop side relative to the box's longer side.

    Returns:
        The square region.
    """
    side = max(1, int(round(max(box.w, box.h) * margin)))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    return Box(int(round(cx - side / 2)), int(round(cy - side / 2)), side, side)


def scoring_region(image_shape: tuple[int, ...], box: Box, margin: float = FACE_MARGIN) -> Box:
    """The square region scored for a face, in training and at run time alike.

    Args:
        image_shape: Shape of the image the face is in.
        box: The face box.
        margin: Crop side relative to the box's longer side.

    Returns:
        ``crop_box``'s square, shrunk to the image's shorter side if larger, and moved the
        least distance that puts it inside the image.
    """
    h, w = image_shape[:2]
    region = crop_box(box, margin)
    side = min(region.w, h, w)
    x = region.x + (region.w - side) // 2
    y = region.y + (region.h - side) // 2
    return Box(int(np.clip(x, 0, w - side)), int(np.clip(y, 0, h - side)), side, side)


#: A face in a wider photo is cut off by its edge when its square had to move more than this
#: share of its side to fit in (``edge_shift``). Training crops are each photo's
#: largest face, whole; a bystander half out of the frame is nothing like them: of the LFW
#: test photos' real faces so cut, 5 of 16 scored at the fake threshold or above, against 5
#: of 156 whole ones (validation: 2 of 14 against 4 of 177; ``bench/edge_faces.py``).
MAX_EDGE_SHIFT = 0.1
#: ... unless the face fills the photo (its square at least this share of the shorter
#: side): a face crop's or a close portrait's edges cut the margin, not the face, as in
#: the training sets (DFDC and UTKFace crops), which the rule leaves alone.
EDGE_RULE_FACE_SHARE = 0.6


def edge_shift(box: Box, region: Box, margin: float = FACE_MARGIN) -> float:
    """How far ``scoring_region`` had to move a face's square to keep it inside the image, as
    a share of its side: 0 for a face clear of the edges. A whole face can touch an edge
    with at most about ``(margin - 1) / 2 / margin`` (0.065 at 1.15); more means the image's
    edge cuts through the face (its box is clipped to the image)."""
    ideal = crop_box(box, margin)
    return max(abs(ideal.x - region.x), abs(ideal.y - region.y)) / region.w


def cut_off_by_edge(box: Box, region: Box, image_size: tuple[int, int], margin: float = FACE_MARGIN) -> bool:
    """Whether a face in a wider photo is cut off by the photo's edge (``MAX_EDGE_SHIFT``).

    Args:
        box: The face box.
        region: Its scoring region (``scoring_region``).
        image_size: ``(width, height)`` of the photo.
        margin: The card's face margin.
    """
    return region.w < EDGE_RULE_FACE_SHARE * min(image_size) and edge_shift(box, region, margin) > MAX_EDGE_SHIFT


def cut(image: np.ndarray, region: Box) -> np.ndarray:
    """The pixels of ``region`` (a square inside the image, as ``scoring_region`` gives)."""
    return image[region.y : region.y + region.h, region.x : region.x + region.w]


def centre_box(height: int, width: int) -> Box:
    """The largest centred square of a ``height`` x ``width`` image, as a ``Box``."""
    side = min(height, width)
    return Box((width - side) // 2, (height - side) // 2, side, side)


def face_region(image: np.ndarray, finder: FaceFinder, margin: float = FACE_MARGIN) -> Box | None:
    """The scored region of a training image's face: its largest face, or ``None`` if none.

    A training image holds one labelled face; where the finder sees several (a bystander in
    an LFW press photo), the largest is the labelled one.

    Args:
        image: An RGB uint8 training image.
        finder: The face finder used at run time.
        margin: Crop side relative to the face box (the card's ``face_margin``).

    Returns:
        The region, or ``None`` when no face is found.
    """
    boxes = finder.find(image)
    return scoring_region(image.shape, boxes[0], margin) if boxes else None
