"""Grad-CAM heatmaps for face crops, with tf-keras-vis.

Grad-CAM weighs the last convolution's feature maps (``model.GRADCAM_LAYER``) by the
gradient of the score: here the logit of the verdict the model gave (the fake logit for
a face called fake, its negative for a face called real), so the map shows the regions
that pushed the network *towards its verdict*. It shows where the network looked, not
proof of manipulation.
"""

from __future__ import annotations

import keras
import numpy as np
from tf_keras_vis.gradcam import Gradcam

from detector.model import GRADCAM_LAYER


class GradCamExplainer:
    """Builds the tf-keras-vis explainer once per model and reuses it for every call.

    Args:
        model: The detector CNN (flat Functional, with a layer named ``GRADCAM_LAYER``).

    Raises:
        ValueError: the model has no layer named ``GRADCAM_LAYER``.
    """

    def __init__(self, model: keras.Model) -> None:
        try:
            model.get_layer(GRADCAM_LAYER)
        except ValueError:
            raise ValueError(f"model {model.name!r} has no layer named {GRADCAM_LAYER!r} for Grad-CAM") from None
        # clone=False: the model is only read, and cloning a Keras 3 model per explainer
        # doubles memory for nothing.
        self._gradcam = Gradcam(model, clone=False)

    def heatmaps(self, crops: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """Grad-CAM maps for a batch of face crops.

        Args:
            crops: ``(N, S, S, 3)`` float32 pixels in 0-255, as fed to the model.
            logits: ``(N,)`` fake logits the model gave these crops (they choose the
                sign of each score).

        Returns:
            ``(N, S, S)`` float32 maps in ``[0, 1]``, each normalized to its own maximum.
        """
        if len(crops) == 0:
            return np.zeros((0, *crops.shape[1:3]), np.float32)
        signs = np.where(np.asarray(logits).reshape(-1) >= 0, 1.0, -1.0).astype(np.float32)
        cams = self._gradcam(
            lambda output: output[:, 0] * signs,
            crops.astype(np.float32),
            penultimate_layer=GRADCAM_LAYER,
            seek_penultimate_conv_layer=False,
            normalize_cam=True,
        )
        return np.nan_to_num(np.asarray(cams, np.float32)).reshape(len(crops), *crops.shape[1:3])
