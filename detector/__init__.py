"""An open deepfake face detector: real/fake scores per face, with Grad-CAM maps that show why.

    from detector import Detector
    result = Detector.load().predict("photo.jpg", gradcam=True)

The package imports TensorFlow only when a model is loaded, so ``detector.imaging`` and
``detector.render`` stay quick to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from detector.card import WeightsError
from detector.imaging import ImageError

if TYPE_CHECKING:
    from detector.pipeline import Detector, FaceResult, Result

__all__ = ["Detector", "FaceResult", "ImageError", "Result", "WeightsError"]


def __getattr__(name: str):
    # Lazy: importing the pipeline pulls in TensorFlow (~3 s).
    if name in ("Detector", "FaceResult", "Result"):
        from detector import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'detector' has no attribute {name!r}")
