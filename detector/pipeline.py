"""``Detector``: load the shipped model once, then image -> faces -> CNN -> ``Result``.

    from detector import Detector
    detector = Detector.load()
    result = detector.predict("photo.jpg", gradcam=True)
    result.fake_probability, result.label, result.faces
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detector.card import MODEL_FILE, WEIGHTS_DIR, ModelCard, WeightsError, REGENERATE_COMMAND
from detector.faces import Box, FaceFinder, centre_box, cut, cut_off_by_edge, scoring_region
from detector.imaging import load_image
from detector.lite import LITE_FILE, LiteNetwork
from detector.provenance import Declaration, declared
from detector.wording import BAND_REASON, EDGE_REASON, NO_FACE, NO_FACE_REASON, reasons_summary, verdict

#: Faces whose box is smaller than this (pixels per side) are too small to judge: the smallest
#: side at which no set's real test faces, shrunk to it, are called fake more than 5% of the time
#: (FFHQ's apart, above 5% at every size); at 40 px LFW's were 10% (``bench/face_size.py``).
MIN_JUDGE_FACE = 48

#: Crops with less pixel spread than this (std of grey levels) are too flat to judge:
#: black frames, overexposed or heavily blurred faces.
MIN_CONTRAST = 6.0

@dataclass
class FaceResult:
    """One scored face.

    Attributes:
        box: The face as found, in pixels of the input image.
        region: The square region that was scored (the face with the training margin).
        fake_probability: Calibrated probability that the face is fake.
        label: ``"fake"``, ``"real"`` or ``"uncertain"``; ``"no face"`` for the whole-image
            score of a photo without a face.
        reason: Why the label is "uncertain", else ``None``.
        heatmap: Grad-CAM map over ``region`` in ``[0, 1]``, when asked for.
    """

    box: Box
    region: Box
    fake_probability: float
    label: str
    reason: str | None = None
    heatmap: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {"box": self.box.as_list(), "fake_probability": self.fake_probability, "label": self.label}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class FaceCrops:
    """An image made ready for the network (``Detector.cut_faces``).

    Attributes:
        boxes: The faces found, largest first; the centre square when none was.
        regions: The square region scored for each.
        found: Whether faces were found (else the centre square stands in).
        crops: ``(N, S, S, 3)`` uint8: the regions at the network's input size.
        image_size: ``(width, height)`` of the image.
        declared: What the file's metadata says about generative AI (``detector.provenance``).
    """

    boxes: list[Box]
    regions: list[Box]
    found: bool
    crops: np.ndarray = field(repr=False)
    image_size: tuple[int, int]
    declared: Declaration | None = None


@dataclass
class Result:
    """The verdict on one image.

    Attributes:
        fake_probability: The highest fake probability among the faces; ``None`` when no
            face was found (the detector judges faces, see ``whole_image``).
        label: ``"fake"`` if any face is fake, else ``"uncertain"`` if any face is, else
            ``"real"``; ``"no face"`` (``wording.NO_FACE``) when no face was found.
        faces: The faces found, largest first; empty when none was found.
        whole_image: When no face was found, the score of the image's centre square:
            secondary information, not a verdict (its ``label`` is ``"no face"``).
        image_size: ``(width, height)`` of the input.
        declared: What the file's own metadata says about generative AI, when it says
            anything (``detector.provenance``): beside the verdict, never part of it.
    """

    fake_probability: float | None
    label: str
    faces: list[FaceResult]
    whole_image: FaceResult | None
    image_size: tuple[int, int]
    declared: Declaration | None = None

    @property
    def reason(self) -> str | None:
        """Why the label is "uncertain" (each uncertain face's reason) or "no face"; else ``None``
        (a "fake" photo's uncertain faces carry their reasons in ``faces``)."""
        if self.whole_image is not None:
            return NO_FACE_REASON
        if self.label != "uncertain":
            return None
        uncertain = [(i, f.reason) for i, f in enumerate(self.faces, 1) if f.label == "uncertain"]
        return reasons_summary(uncertain, numbered=len(self.faces) > 1)

    @property
    def image_score(self) -> float:
        """The highest face's fake probability, or the whole image's when no face was found:
        what an evaluation over labelled images counts (every image needs a score there)."""
        return self.fake_probability if self.whole_image is None else self.whole_image.fake_probability

    @property
    def scored(self) -> list[FaceResult]:
        """What was scored: the faces, or the whole image."""
        return self.faces if self.whole_image is None else [self.whole_image]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the CLI prints and the app returns (without the path and error fields)."""
        out = {
            "fake_probability": self.fake_probability,
            "label": self.label,
            "faces": [f.to_dict() for f in self.faces],
        }
        if self.reason:
            out["reason"] = self.reason
        if self.whole_image is not None:
            out["whole_image"] = {"fake_probability": self.whole_image.fake_probability,
                                  "box": self.whole_image.region.as_list()}
        if self.declared is not None:
            out["declared"] = self.declared.to_dict()
        return out


class Detector:
    """The deepfake face detector: a face finder and the CNN with its calibration.

    Use ``Detector.load()`` for the shipped weights.

    Args:
        model: The Keras CNN (logit output): Grad-CAM runs on it, and scoring too without
            ``lite``.
        card: The model card with input size, temperature, threshold and band.
        lite: The same network on LiteRT (``detector.lite``): scoring runs on it when given.
    """

    def __init__(self, model, card: ModelCard, lite: "LiteNetwork | None" = None) -> None:
        import tensorflow as tf

        from detector.model import view_averaged_logits

        self.model = model
        self.card = card
        self.lite = lite
        self.finder = FaceFinder()
        self._explainer = None
        size = card.input_size
        views = card.scoring_views
        signature = [tf.TensorSpec([None, size, size, 3], tf.float32)]
        # One traced graph for every batch size: Keras' predict() costs ~50-100 ms of
        # overhead per call, this costs microseconds.
        if lite is None:
            self._logits = tf.function(lambda x: view_averaged_logits(model, x, views), input_signature=signature,
                                       reduce_retracing=True)
        else:
            self._logits = lambda x: lite.view_averaged_logits(x, views)

    @classmethod
    def load(cls, weights_dir: str | Path | None = None, verify: bool = True, threads: int | None = None) -> "Detector":
        """Loads a model and its card, checking the weights' sha256 against the card.

        Args:
            weights_dir: Folder with ``model.keras`` and ``model_card.json``; the shipped
                ``weights/`` by default.
            verify: Check the sha256 (leave on: it costs ~10 ms).
            threads: CPU threads of each LiteRT forward pass; all cores by default.

        Returns:
            A ready ``Detector``.

        Raises:
            WeightsError: the weights or card are missing, altered or incompatible.
        """
        from detector.startup import import_tensorflow

        import_tensorflow()  # first, so that TensorFlow starts without its notices
        import keras

        folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        card = ModelCard.load(folder)
        path = folder / MODEL_FILE
        if verify:
            card.verify(path)
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as err:  # Keras raises many types for a bad archive
            raise WeightsError(f"cannot load weights {path}: {err}. Regenerate them with `{REGENERATE_COMMAND}`") from None
        expected = (None, card.input_size, card.input_size, 3)
        if tuple(model.input_shape) != expected or tuple(model.output_shape) != (None, 1):
            raise WeightsError(
                f"weights {path} take {model.input_shape} -> {model.output_shape}, but the card expects "
                f"{expected} -> (None, 1). Regenerate them with `{REGENERATE_COMMAND}`"
            )
        lite = None
        if card.lite_sha256:  # the card names a LiteRT copy: score on it, once it is the right file
            lite_path = folder / LITE_FILE
            if verify:
                card.verify(lite_path, card.lite_sha256)
            lite = LiteNetwork.load(lite_path, threads)
        return cls(model, card, lite)

    # -- scoring --------------------------------------------------------------------------

    def prepare(self, crop: np.ndarray) -> np.ndarray:
        """Resizes a square uint8 crop to the network's input, as the training cache did."""
        size = self.card.input_size
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)

    def crops(self, rgb: np.ndarray, regions: list[Box]) -> np.ndarray:
        """The network's ``(N, S, S, 3)`` uint8 inputs for the scored ``regions`` of an image
        (from ``regions``): each cut out and resized."""
        return np.stack([self.prepare(cut(rgb, r)) for r in regions])

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Fake logits for ``(N, S, S, 3)`` crops (uint8 or float 0-255), each the mean
        over the views the card was calibrated through (``ModelCard.scoring_views``)."""
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        return np.asarray(self._logits(np.asarray(crops, np.float32)))

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Calibrated fake probabilities for ``(N, S, S, 3)`` crops."""
        return self.calibrate(self.logits(crops))

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated fake probabilities for logits (the card's Platt scaling)."""
        z = np.asarray(logits, np.float64) / self.card.temperature + self.card.bias
        return 1.0 / (1.0 + np.exp(-z))

    def verdict(self, probability: float) -> str:
        """``fake``, ``real`` or ``uncertain`` for a calibrated probability."""
        return verdict(probability, self.card.threshold, self.card.uncertain_band)

    def predict(self, image: Any, gradcam: bool = False) -> Result:
        """Scores every face in an image.

        Args:
            image: A path, bytes, or an RGB array (see ``detector.imaging.load_image``).
            gradcam: Also compute a Grad-CAM heatmap for each scored region.

        Returns:
            The ``Result``.

        Raises:
            detector.imaging.ImageError: the input is not a usable image.
        """
        faces = self.cut_faces(image)
        logits = self.logits(faces.crops)
        maps = None
        if gradcam and faces.found:  # no face: no map to misread
            maps = self.explainer().heatmaps(faces.crops.astype(np.float32), logits)
        return self.judge(faces, logits, maps)

    def cut_faces(self, image: Any) -> "FaceCrops":
        """Everything before the network: the image read, its faces found, their crops cut.

        Args:
            image: A path, bytes, or an RGB array (see ``detector.imaging.load_image``).

        Returns:
            The ``FaceCrops``, ready for ``logits`` and then ``judge``.

        Raises:
            detector.imaging.ImageError: the input is not a usable image.
        """
        rgb = load_image(image)
        h, w = rgb.shape[:2]
        boxes, regions, found = self.regions(rgb)
        return FaceCrops(boxes, regions, found, self.crops(rgb, regions), (w, h), declared(image))

    def judge(self, faces: "FaceCrops", logits: np.ndarray, maps: list[np.ndarray] | None = None) -> Result:
        """Everything after the network: an image's verdict from its crops' logits.

        Args:
            faces: What ``cut_faces`` gave for the image.
            logits: The network's logits for ``faces.crops``, in order.
            maps: Grad-CAM heatmaps for the crops, if any.

        Returns:
            The ``Result``.
        """
        probs = self.calibrate(logits)
        if not faces.found:  # no face: the whole image's score, no verdict
            whole = FaceResult(faces.boxes[0], faces.regions[0], float(probs[0]), NO_FACE)
            return Result(None, NO_FACE, [], whole, faces.image_size, faces.declared)
        maps = [None] * len(faces.crops) if maps is None else maps
        results = []
        for box, region, crop, p, m in zip(faces.boxes, faces.regions, faces.crops, probs, maps):
            label, reason = self.verdict(float(p)), None
            if min(box.w, box.h) < MIN_JUDGE_FACE:
                label, reason = "uncertain", f"face too small to judge ({min(box.w, box.h)} px)"
            elif float(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).std()) < MIN_CONTRAST:
                label, reason = "uncertain", "face too dark, flat or blurred to judge"
            elif cut_off_by_edge(box, region, faces.image_size, self.card.face_margin):
                label, reason = "uncertain", EDGE_REASON
            elif label == "uncertain":
                reason = BAND_REASON
            results.append(FaceResult(box, region, float(p), label, reason, m))

        labels = {f.label for f in results}
        label = "fake" if "fake" in labels else "uncertain" if "uncertain" in labels else "real"
        return Result(max(f.fake_probability for f in results), label, results, None, faces.image_size, faces.declared)

    def with_finder(self, finder: FaceFinder) -> "Detector":
        """This detector with its own face finder, sharing the network and its traced graph.

        A ``FaceFinder`` serves one search at a time; threads that find faces side by side
        each take one (``detector.batch_scoring``).
        """
        twin = copy.copy(self)
        twin.finder = finder
        return twin

    def warm_up(self) -> None:
        """Traces the scoring and Grad-CAM graphs and runs the face finder once (~2 s), so
        that the first photo does not pay for it."""
        self.predict(np.full((64, 64, 3), 128, np.uint8))
        crops = np.full((1, self.card.input_size, self.card.input_size, 3), 128.0, np.float32)
        self.explainer().heatmaps(crops, self.logits(crops))

    def predict_video(self, path: str | Path, gradcam: bool = False, progress=None, **sampling):
        """Scores every face of a video, followed through the clip (``detector.video_scoring``).

        Args:
            path: A video file: MP4, MOV, WebM, MKV, AVI or animated GIF.
            gradcam: Also return the most suspicious frame with Grad-CAM maps
                (``result.suspicious``).
            progress: Called as ``progress(done, total)`` after each sampled frame.
            **sampling: ``sample_fps`` and ``max_samples`` (see ``detector.video``).

        Returns:
            A ``detector.video_scoring.VideoResult``.

        Raises:
            detector.video.VideoError: the file is not a usable video.
        """
        from detector.video_scoring import score_video

        return score_video(self, path, gradcam=gradcam, progress=progress, **sampling)

    def regions(self, rgb: np.ndarray) -> tuple[list[Box], list[Box], bool]:
        """The faces of an image and the square regions scored for them.

        Args:
            rgb: An RGB uint8 image.

        Returns:
            ``(boxes, regions, found)``: the face boxes, largest first, and their scored
            regions; when no face is found, the centre square as both, and ``found`` False.
        """
        boxes = self.finder.find(rgb)
        if boxes:
            return boxes, [scoring_region(rgb.shape, b, self.card.face_margin) for b in boxes], True
        centre = centre_box(*rgb.shape[:2])
        return [centre], [centre], False

    def explainer(self):
        """The Grad-CAM explainer, built on first use (it costs a model wrapper)."""
        if self._explainer is None:
            from detector.gradcam import GradCamExplainer

            self._explainer = GradCamExplainer(self.model)
        return self._explainer

