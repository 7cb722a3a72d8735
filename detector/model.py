"""The CNN: a small residual network designed from scratch for face-swap artifacts on a CPU.

Why this shape:
- Swap artifacts (blending seams, smoothed skin, colour mismatch) live in fine detail, yet
  full-resolution layers are what makes a CNN slow on a CPU (a 3x3 full-resolution stem and
  four stages cost 0.81 GFLOPs per 128 px crop; this design 0.21, see ``flops``). The stem is a
  4x4 "patchify" convolution with stride 4 and 48 filters: a linear map of each 4x4x3
  pixel patch that keeps all its detail, with no full-resolution activations.
- Residual stages with BatchNorm train quickly and stably from scratch on ~20k faces.
- Plain 3x3 convolutions, not depthwise-separable ones: on a 2-core CPU, oneDNN's dense
  convolutions run faster per FLOP than depthwise ones.
- Global average pooling and a single dense unit keep the head tiny, so the network's
  capacity goes into the features Grad-CAM looks at.

The model is one flat Functional graph (no nested sub-model) so that tf-keras-vis can reach
its last convolution, named ``GRADCAM_LAYER``. It takes raw pixel values (0-255) and
normalizes inside, so callers never have to know the preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from detector.defaults import INPUT_SIZE  # noqa: F401 (re-exported: the side of the shipped crop)
from detector.views import View

#: Name of the last convolution: what Grad-CAM explains.
GRADCAM_LAYER = "gradcam_target"


def _conv_bn(x, filters: int, strides: int = 1, name: str | None = None):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _residual_stage(x, filters: int, blocks: int, name: str, last: bool = False):
    """A stride-2 stage of ``blocks`` residual units (two 3x3 convs each); its output
    layer is called ``name``."""
    for i in range(blocks):
        strides = 2 if i == 0 else 1
        shortcut = x
        if strides != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
            shortcut = layers.BatchNormalization()(shortcut)
        y = _conv_bn(x, filters, strides)
        is_target = last and i == blocks - 1
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                          name=GRADCAM_LAYER if is_target else None)(y)
        y = layers.BatchNormalization()(y)
        x = layers.ReLU(name=name if i == blocks - 1 else None)(layers.Add()([shortcut, y]))
    return x


def make_model(
    input_size: int = INPUT_SIZE,
    widths: Sequence[int] = (64, 128, 256),
    blocks: Sequence[int] = (2, 2, 2),
    stem_width: int = 48,
    stem_stride: int = 4,
    dropout: float = 0.3,
) -> keras.Model:
    """Builds the detector CNN.

    Args:
        input_size: Side of the square RGB input, in pixels.
        widths: Filters of each residual stage; each stage halves the resolution.
        blocks: Residual units per stage, one entry per ``widths`` entry.
        stem_width: Filters of the stem convolution.
        stem_stride: 1 for a full-resolution 3x3 stem; k > 1 for a "patchify" stem, a
            k x k convolution with stride k that maps each pixel patch linearly (it loses
            no detail when ``stem_width >= 3 * k * k``) at a fraction of the cost.
        dropout: Dropout rate before the classifier.

    Returns:
        An uncompiled ``keras.Model`` mapping ``(N, S, S, 3)`` pixels in 0-255 to the
        ``(N, 1)`` fake-class logit.

    Raises:
        ValueError: ``widths`` and ``blocks`` differ in length, or ``input_size`` is too
            small for the number of stages.
    """
    if len(widths) != len(blocks) or not widths:
        raise ValueError(f"widths {tuple(widths)} and blocks {tuple(blocks)} must be non-empty and equally long")
    if input_size < stem_stride * 2 ** len(widths):
        raise ValueError(f"input_size {input_size} is too small for {len(widths)} stages")

    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    if stem_stride == 1:
        x = _conv_bn(x, stem_width)
    else:
        x = layers.Conv2D(stem_width, stem_stride, strides=stem_stride, use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    for i, (w, n) in enumerate(zip(widths, blocks)):
        x = _residual_stage(x, w, n, name=f"stage{i + 1}", last=i == len(widths) - 1)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    # One logit, not a sigmoid: calibration (Platt scaling) and a numerically stable loss both
    # want the logit, and Grad-CAM scores it directly.
    outputs = layers.Dense(1, name="fake_logit")(x)
    return keras.Model(inputs, outputs, name="deepfake_cnn")


def view_averaged_logits(model: keras.Model, images, views: Sequence[View]):
    """Fake logits of ``(N, S, S, 3)`` images, each the mean over ``views`` of the image
    (test-time augmentation).

    Training, calibration, evaluation and the ``Detector`` all score through this function.
    Windows that reach past the crop's edge see it mirrored there (at most 1/16 of the side).

    Args:
        model: A network from ``make_model``.
        images: A float tensor or array of pixels 0-255.
        views: The views, each ``(side, dy, dx, mirrored)`` (see ``detector.views``); a
            model's card names those it was calibrated through.

    Returns:
        A ``(N,)`` tensor of logits.

    Raises:
        ValueError: a window reaches more than 1/16 of the side past the crop's edge.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images, tf.float32)
    size = images.shape[1]
    reach = max(max(abs(dy), abs(dx)) + side / 2 - 0.5 for side, dy, dx, _ in views)
    if reach > 1 / 16:
        raise ValueError(f"scoring views {list(views)} reach {reach:.3f} of the side past the crop, more than 1/16")
    if all((side, dy, dx) == (1.0, 0.0, 0.0) for side, dy, dx, _ in views):
        # The whole crop, as is or mirrored: no resampling at all.
        windows = tf.concat([tf.reverse(images, axis=[2]) if mirrored else images for *_, mirrored in views], axis=0)
    else:
        pad = max(1, size // 16)
        padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        # Window corners for crop_and_resize (the resampling training's random crops use),
        # whose coordinates map 0 and 1 to the first and last pixel centre; a window whose
        # right edge comes before its left is cut mirrored.
        last = size + 2 * pad - 1
        corners = []
        for side, dy, dx, mirrored in views:
            top = pad + (0.5 - side / 2) * (size - 1) + dy * size
            left = pad + (0.5 - side / 2) * (size - 1) + dx * size
            span = side * (size - 1)
            x0, x1 = (left + span, left) if mirrored else (left, left + span)
            corners.append([top / last, x0 / last, (top + span) / last, x1 / last])
        n = tf.shape(images)[0]
        windows = tf.image.crop_and_resize(padded, tf.repeat(tf.constant(corners, tf.float32), n, axis=0),
                                           tf.tile(tf.range(n), [len(views)]), [size, size])
    # Rows are (view, image): average over the views.
    return tf.reduce_mean(tf.reshape(model(windows, training=False), [len(views), -1]), axis=0)


#: The stage whose features predict the manipulation mask during training.
MASK_STAGE = "stage1"


def with_mask_head(model: keras.Model) -> keras.Model:
    """Adds a training-only head that predicts *where* a face was manipulated.

    DFDC fakes come with the real frame they were made from, aligned pixel for pixel, so
    their difference is a map of the swap. Asking the network to predict that map (and an
    empty map for real faces) from its first stage tells it where to look, which a single
    real/fake bit per image cannot (the idea of Face X-ray, Li et al. 2020, and of
    multi-task detectors). The head shares every layer with ``model``: after training,
    ``model`` itself, still flat and single-output, is what ships.

    Args:
        model: A network from ``make_model``.

    Returns:
        A model with outputs ``{"fake_logit": (N, 1), "mask_logit": (N, h, w, 1)}``, where
        ``h, w`` is the resolution of ``MASK_STAGE``.
    """
    features = model.get_layer(MASK_STAGE).output
    mask = layers.Conv2D(1, 1, name="mask_logit")(features)
    outputs = {"fake_logit": model.outputs[0], "mask_logit": mask}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_with_mask")


def flops(model: keras.Model) -> int:
    """Floating-point operations per image (2 per multiply-accumulate) of the
    convolution and dense layers, which hold all but a sliver of the work.

    Args:
        model: A Functional model with built layers (``make_model``'s, or a reference
            network such as ``keras.applications.Xception``).

    Returns:
        The count for one image.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
            continue
        if not isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)):
            continue
        _, h, w, c_out = layer.output.shape
        kh, kw = layer.kernel_size
        c_in = layer.input.shape[-1]
        if isinstance(layer, layers.Conv2D):
            total += 2 * h * w * c_out * kh * kw * c_in // layer.groups
        else:  # depthwise, then (separable) a 1x1 pointwise convolution
            depth = c_in * layer.depth_multiplier
            total += 2 * h * w * depth * kh * kw
            if isinstance(layer, layers.SeparableConv2D):
                total += 2 * h * w * depth * c_out
    return int(total)
