"""Grad-CAM heatmaps for face crops, with tf-keras-vis.

Grad-CAM weighs the last convolution's feature maps (``model.GRADCAM_LAYER``) by the
gradient of the score: here the logit of the verdict the model gave (the fake logit for
a face called fake, its negative for a face called real), so the map shows the regions
that pushed the network *towards its verdict*. It shows where the network looked, not
proof of manipulation.

Speed: ``tf_keras_vis.gradcam.Gradcam.__call__`` applies its model modifier
(``ExtractIntermediateLayerForGradcam``) to build a new two-output model on every call,
runs it and its gradient eagerly, and upsamples with ``scipy.ndimage.zoom``. Measured on a
2-core CPU for one 128 px crop, the eager passes cost ~120 ms of the ~135. Here the same
modifier is applied once, at construction, and the forward and backward passes run as one
traced ``tf.function`` (~5 ms). The maps are then upsampled as ``zoom(order=1)`` does (a
linear interpolation that maps corner to corner), but as two small matrix products, and
scaled by tf-keras-vis's own ``normalize``: the heatmaps are ``Gradcam``'s, to float
rounding.
"""

from __future__ import annotations

from functools import lru_cache

import keras
import numpy as np
import tensorflow as tf
from tf_keras_vis.utils import normalize
from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayerForGradcam

from detector.model import GRADCAM_LAYER, gradcam_layers


class GradCamExplainer:
    """Builds the Grad-CAM graph once per model and reuses it for every call.

    A fused network (``model.fuse``) has a ``GRADCAM_LAYER`` per member: its map is the sum
    of the members' maps, each brought to the crop's size, then normalized. Its logit is a
    weighted sum of theirs, so each member's map is the Grad-CAM of its own share of it.

    Args:
        model: The detector CNN (flat Functional, with a layer named ``GRADCAM_LAYER``, or
            one per member).

    Raises:
        ValueError: the model has no such layer.
    """

    def __init__(self, model: keras.Model) -> None:
        targets = gradcam_layers(model)
        if not targets:
            raise ValueError(f"model {model.name!r} has no layer named {GRADCAM_LAYER!r} for Grad-CAM")
        # Outputs [fake logit, each target's features]; the layers (and weights) are shared
        # with ``model``, nothing is copied.
        self._cam_model = model
        for name in targets:
            self._cam_model = ExtractIntermediateLayerForGradcam(name, seek_conv_layer=False)(self._cam_model)
        size = model.input_shape[1:]
        self._cams = tf.function(
            self._class_activation_maps,
            input_signature=[tf.TensorSpec([None, *size], tf.float32), tf.TensorSpec([None], tf.float32)],
            reduce_retracing=True,
        )

    def _class_activation_maps(self, crops: tf.Tensor, signs: tf.Tensor) -> list[tf.Tensor]:
        """Grad-CAM as ``Gradcam`` computes it (ReLU of the gradient-weighted feature
        sum), at each target's resolution and not normalized: ``(N, h, w)`` per target."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(crops)
            logits, *features = self._cam_model(crops, training=False)
            scores = logits[:, 0] * signs
        grads = tape.gradient(scores, features)
        return [tf.nn.relu(tf.reduce_sum(f * tf.reduce_mean(g, axis=(1, 2), keepdims=True), axis=-1))
                for f, g in zip(features, grads)]

    def heatmaps(self, crops: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """Grad-CAM maps for a batch of face crops.

        Args:
            crops: ``(N, S, S, 3)`` float32 pixels in 0-255, as fed to the model.
            logits: ``(N,)`` fake logits the model gave these crops (they choose the
                sign of each score).

        Returns:
            ``(N, S, S)`` float32 maps in ``[0, 1]``, each normalized to its own maximum.
        """
        height, width = crops.shape[1:3]
        if len(crops) == 0:
            return np.zeros((0, height, width), np.float32)
        signs = np.where(np.asarray(logits).reshape(-1) >= 0, 1.0, -1.0).astype(np.float32)
        maps = sum(_linear_zoom(cams.shape[1], height) @ cams.numpy() @ _linear_zoom(cams.shape[2], width).T
                   for cams in self._cams(np.asarray(crops, np.float32), signs))
        return np.nan_to_num(normalize(maps)).astype(np.float32)


@lru_cache(maxsize=8)
def _linear_zoom(n_in: int, n_out: int) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix of ``scipy.ndimage.zoom(order=1)`` along one axis:
    output sample ``i`` lies at input coordinate ``i * (n_in - 1) / (n_out - 1)``."""
    matrix = np.zeros((n_out, n_in), np.float32)
    x = np.arange(n_out) * ((n_in - 1) / max(n_out - 1, 1))
    lo = np.minimum(np.floor(x).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (x - lo).astype(np.float32)
    np.add.at(matrix, (np.arange(n_out), lo), 1 - frac)
    np.add.at(matrix, (np.arange(n_out), hi), frac)
    return matrix
