"""The detector's network: ImageNet MobileNetV2 features fine-tuned on faces, or a small
residual network trained from scratch (the network before it, kept for comparison).

Why MobileNetV2 (``backbone="mobilenet_v2"``, the default):
- A network that starts from ImageNet features has seen millions of natural photos before it
  sees a face set, so what it learns from a few dozen thousand faces rests on what real
  photos look like in general, not on what tells one training set from another. On the same
  data and time budget it beat the scratch network on every source's validation ROC-AUC
  (``docs/training.md``). It does not by that transfer to kinds of fake it never saw
  (``docs/unseen-fakes.md``).
- The only ImageNet network that can be used here offline is Google's uint8 MobileNetV2
  TFLite file; ``detector.pretrained`` converts it to these Keras layers.
- It is small (2.2 M parameters, 0.3 GFLOPs per 160 px crop), though depthwise convolutions
  run slowly on TensorFlow's CPU kernels: one crop took ~28 ms here under load
  (``python -m detector bench``).

Why the scratch network (``backbone="scratch"``): swap artifacts live in fine detail, and a
4x4 "patchify" stem keeps it at 0.21 GFLOPs per 128 px crop; residual stages with BatchNorm
train quickly from scratch. It trained the project's first weights.

The model is one flat Functional graph (no nested sub-model) so that tf-keras-vis can reach
the layer Grad-CAM explains, named ``GRADCAM_LAYER``. It takes raw pixel values (0-255) and
normalizes inside, so callers never have to know the preprocessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import keras
import numpy as np
from keras import layers

from detector.defaults import INPUT_SIZE  # noqa: F401 (re-exported: the side of the shipped crop)
from detector.views import View

#: Name of the last convolution: what Grad-CAM explains.
GRADCAM_LAYER = "gradcam_target"

#: Momentum of MobileNetV2's BatchNorm statistics when they are trained (``make_model``).
BATCHNORM_MOMENTUM = 0.99

#: The networks ``make_model`` builds.
BACKBONES = ("mobilenet_v2", "scratch")

#: Where a patch-level MobileNetV2 (``make_model(patch_layer=...)``) may be cut: the end of
#: its stride-4 and stride-8 stages, with the side (in pixels of the input) of the patch each
#: of their locations sees. The next stage's already sees 171 px, more than a 160 px crop.
PATCH_LAYERS = {"block_2_add": 19, "block_5_add": 59}

#: Name of a patch-level network's map of per-patch fake logits.
PATCH_LOGITS = "patch_logits"

#: The layer whose features predict the manipulation mask during training (``with_training_heads``):
#: the end of the first stride-8 stage of each backbone.
MASK_FEATURES = {"scratch": "stage1", "mobilenet_v2": "block_5_add"}


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


def _scratch_features(x, widths: Sequence[int], blocks: Sequence[int], stem_width: int, stem_stride: int, input_size: int):
    if len(widths) != len(blocks) or not widths:
        raise ValueError(f"widths {tuple(widths)} and blocks {tuple(blocks)} must be non-empty and equally long")
    if input_size < stem_stride * 2 ** len(widths):
        raise ValueError(f"input_size {input_size} is too small for {len(widths)} stages")
    if stem_stride == 1:
        x = _conv_bn(x, stem_width)
    else:
        x = layers.Conv2D(stem_width, stem_stride, strides=stem_stride, use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    for i, (w, n) in enumerate(zip(widths, blocks)):
        x = _residual_stage(x, w, n, name=f"stage{i + 1}", last=i == len(widths) - 1)
    return x


def _mobilenet_v2_features(x, pretrained: bool, patch_layer: str | None = None, train_batchnorm: bool = False):
    """MobileNetV2's layers, built on ``x`` in the same graph (so the model stays flat), up to
    its last layer or to ``patch_layer``; its BatchNorms frozen unless ``train_batchnorm``."""
    if x.shape[1] < 32:
        raise ValueError(f"input_size {x.shape[1]} is too small for MobileNetV2 (32 px at least)")
    base = keras.applications.MobileNetV2(input_tensor=x, include_top=False, weights=None)
    if pretrained:
        from detector.pretrained import load_imagenet_weights

        # Into the whole network, which the converter expects; a cut keeps the layers' weights.
        load_imagenet_weights(base)
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization) and train_batchnorm:
            # Keras' MobileNetV2 averages its statistics over about 1000 steps (momentum 0.999):
            # in fine-tuning, whose weights move fast, that lags by epochs, and validation would
            # run on statistics of a network that is gone. 0.99 follows the last ~100 steps.
            layer.momentum = BATCHNORM_MOMENTUM
        elif isinstance(layer, layers.BatchNormalization):
            # The ImageNet weights come with each BatchNorm folded into the convolution before
            # it (``detector.pretrained``): the layer is then the identity plus a bias, which
            # holds only with its fixed statistics. Trained from these, normalizing by batch
            # statistics would rescale and shift every channel, and undo what ImageNet taught. Frozen, a
            # BatchNorm layer runs in inference mode; the convolutions still learn. Trained,
            # it needs its statistics first (``fit_batchnorm_statistics``).
            layer.trainable = False
    if patch_layer is None:
        features = base.output
    elif patch_layer in PATCH_LAYERS:
        features = base.get_layer(patch_layer).output
    else:
        raise ValueError(f"patch_layer must be one of {sorted(PATCH_LAYERS)}, not {patch_layer!r}")
    # Grad-CAM explains the last features, before pooling; an identity layer gives them the
    # project's name without renaming Keras' own layers (the weight conversion needs those).
    return layers.Identity(name=GRADCAM_LAYER)(features)


def _patch_logits(x, hidden: int, dropout: float):
    """One fake logit per location of the feature map ``x``, each seeing only its receptive
    field, by a small per-location classifier (1x1 convolutions)."""
    x = layers.Conv2D(hidden, 1, activation="relu", name="patch_hidden")(x)
    x = layers.Dropout(dropout)(x)
    return layers.Conv2D(1, 1, name=PATCH_LOGITS)(x)


def make_model(
    input_size: int = INPUT_SIZE,
    backbone: str = "mobilenet_v2",
    pretrained: bool = True,
    dropout: float = 0.2,
    widths: Sequence[int] = (64, 128, 256),
    blocks: Sequence[int] = (2, 2, 2),
    stem_width: int = 48,
    stem_stride: int = 4,
    patch_layer: str | None = None,
    patch_hidden: int = 64,
    train_batchnorm: bool = False,
) -> keras.Model:
    """Builds the detector network.

    Args:
        input_size: Side of the square RGB input, in pixels.
        backbone: ``"mobilenet_v2"`` or ``"scratch"`` (see the module's docstring).
        pretrained: Start MobileNetV2 from the ImageNet weights in ``third_party/``
            (``detector.pretrained``); ignored by the scratch network.
        dropout: Dropout rate before the classifier.
        widths: Scratch network: filters of each residual stage; each halves the resolution.
        blocks: Scratch network: residual units per stage, one entry per ``widths`` entry.
        stem_width: Scratch network: filters of the stem convolution.
        stem_stride: Scratch network: 1 for a full-resolution 3x3 stem; k > 1 for a
            "patchify" stem, a k x k convolution with stride k that maps each pixel patch
            linearly (it loses no detail when ``stem_width >= 3 * k * k``) at a fraction of
            the cost.
        patch_layer: MobileNetV2 only: cut the network at this layer (one of
            ``PATCH_LAYERS``) and make it a patch-level classifier: a fake logit for every
            location of the cut's feature map, from the patch of the face it sees, averaged
            over the face (Chai et al. 2020, "What makes fake images detectable?": local
            artifacts transfer across generators better than a whole face's look, and the
            patch map shows where). ``None``: the whole network and one global logit.
        patch_hidden: Width of the per-patch classifier's hidden 1x1 convolution.
        train_batchnorm: MobileNetV2: train its BatchNorms (batch statistics while
            training) instead of freezing them; give them their inputs' statistics with
            ``fit_batchnorm_statistics`` before the first step. The scratch network's
            BatchNorms always train.

    Returns:
        An uncompiled ``keras.Model`` mapping ``(N, S, S, 3)`` pixels in 0-255 to the
        ``(N, 1)`` fake-class logit.

    Raises:
        ValueError: an unknown ``backbone``; ``widths`` and ``blocks`` differ in length;
            ``input_size`` is too small for the network; or ``patch_layer`` asked of the
            scratch network.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, not {backbone!r}")
    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    if patch_layer is not None and backbone != "mobilenet_v2":
        raise ValueError(f"patch_layer {patch_layer!r} cuts MobileNetV2; backbone is {backbone!r}")
    if backbone == "mobilenet_v2":
        x = _mobilenet_v2_features(x, pretrained, patch_layer, train_batchnorm)
    else:
        x = _scratch_features(x, widths, blocks, stem_width, stem_stride, input_size)
    # One logit, not a sigmoid: calibration (Platt scaling) and a numerically stable loss both
    # want the logit, and Grad-CAM scores it directly.
    if patch_layer is not None:
        # The mean of the patches' logits: every patch votes, none can carry the verdict alone.
        outputs = layers.GlobalAveragePooling2D(name="fake_logit")(_patch_logits(x, patch_hidden, dropout))
    else:
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dropout(dropout)(x)
        outputs = layers.Dense(1, name="fake_logit")(x)
    return keras.Model(inputs, outputs, name="deepfake_cnn")


def fit_batchnorm_statistics(model: keras.Model, batches: Iterable[np.ndarray]) -> None:
    """Gives each BatchNorm of ``model`` the mean and variance of its input over ``batches``,
    and rescales its gamma and beta so that the network's output in inference is unchanged.

    The ImageNet BatchNorms are folded (mean 0, variance 1, ``detector.pretrained``): trained
    as they are, their first batch statistics would rescale and shift every channel at once.
    With their inputs' own statistics, normalizing by a batch's statistics gives about what
    the folded layer gave, and from there the layers keep the later convolutions' inputs in
    range while the network learns.

    Args:
        model: A Functional model (``make_model``'s).
        batches: ``(B, S, S, 3)`` pixel batches in 0-255, such as the training stream's.

    Raises:
        ValueError: ``model`` has no BatchNormalization layer, or ``batches`` is empty.
    """
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    if not norms:
        raise ValueError(f"model {model.name!r} has no BatchNormalization layer")
    probe = keras.Model(model.input, [layer.input for layer in norms])
    # Per channel, over the images and every location; float64 so the sums keep precision.
    sums = [np.zeros(layer.input.shape[-1]) for layer in norms]
    squares = [np.zeros(layer.input.shape[-1]) for layer in norms]
    count = 0
    for images in batches:
        for i, x in enumerate(probe(np.asarray(images, np.float32), training=False)):
            x = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
            sums[i] += x.sum(0)
            squares[i] += (x * x).sum(0)
        count += len(images)
    if not count:
        raise ValueError("batches is empty: no statistics to fit")
    for layer, total, total_sq in zip(norms, sums, squares):
        n = count * int(np.prod(layer.input.shape[1:-1]))
        mean = total / n
        var = np.maximum(total_sq / n - mean**2, 0.0)
        # The layer computes scale * x + shift in inference; keep both with the new statistics.
        gamma, beta, old_mean, old_var = (np.asarray(w, np.float64) for w in layer.get_weights())
        scale = gamma / np.sqrt(old_var + layer.epsilon)
        shift = beta - old_mean * scale
        new = (scale * np.sqrt(var + layer.epsilon), shift + mean * scale, mean, var)
        layer.set_weights([w.astype(np.float32) for w in new])


def view_averaged_logits(model: keras.Model, images, views: Sequence[View]):
    """Fake logits of ``(N, S, S, 3)`` images, each the mean over ``views`` of the image
    (test-time augmentation).

    Training, calibration and evaluation score through this function; the ``Detector``
    through it too, or through ``view_windows`` and its LiteRT copy of ``model``.

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
    return mean_over_views(model(view_windows(images, views), training=False), len(views))


def view_windows(images, views: Sequence[View]):
    """The windows ``views`` cut from ``(N, S, S, 3)`` images: ``(V * N, S, S, 3)``, view by
    view. Windows that reach past the crop's edge see it mirrored there (at most 1/16 of the
    side).

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
        return tf.concat([tf.reverse(images, axis=[2]) if mirrored else images for *_, mirrored in views], axis=0)
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
    return tf.image.crop_and_resize(padded, tf.repeat(tf.constant(corners, tf.float32), n, axis=0),
                                    tf.tile(tf.range(n), [len(views)]), [size, size])


def mean_over_views(logits, n_views: int):
    """``(V * N,)`` or ``(V * N, 1)`` window logits, view by view -> each image's mean, ``(N,)``."""
    import tensorflow as tf

    return tf.reduce_mean(tf.reshape(logits, [n_views, -1]), axis=0)


def with_training_heads(model: keras.Model, patch_hidden: int = 0, dropout: float = 0.2) -> keras.Model:
    """Adds the training-only heads: where a face was manipulated, and a verdict per patch.

    The mask head: DFDC fakes come with the real frame they were made from, aligned pixel
    for pixel, so their difference is a map of the swap. Asking the network to predict that
    map (and an empty map for real faces) from its first stride-8 stage tells it where to
    look, which a single real/fake bit per image cannot (the idea of Face X-ray, Li et al.
    2020, and of multi-task detectors).

    The patch head (``patch_hidden > 0``): the same stride-8 features, where each location
    sees a 59 px patch of a MobileNetV2 crop, scored patch by patch and averaged, as the
    patch-level network scores a face (``make_model(patch_layer=...)``). Trained on the
    face's label, it asks the early layers for local traces that hold in every patch, not
    only for what the whole face looks like (Chai et al. 2020), while the verdict that ships
    still comes from the whole network.

    Both heads share every layer with ``model``: after training, ``model`` itself, still flat
    and single-output, is what ships.

    Args:
        model: A network from ``make_model``.
        patch_hidden: Width of the patch head's hidden 1x1 convolution; 0: no patch head.
        dropout: Dropout rate in the patch head.

    Returns:
        A model with outputs ``{"fake_logit": (N, 1), "mask_logit": (N, h, w, 1)}``, where
        ``h, w`` is the resolution of the backbone's ``MASK_FEATURES`` layer, and with
        ``patch_hidden`` also ``"patch_logit": (N, 1)``, the mean of the patches' logits.

    Raises:
        ValueError: ``model`` has no layer to read the heads from, or ``patch_hidden`` is
            asked of a network that is patch-level already.
    """
    names = {layer.name for layer in model.layers}
    # A patch-level network cut before the stride-8 stage predicts it from its last features.
    name = next((n for n in (*MASK_FEATURES.values(), GRADCAM_LAYER) if n in names), None)
    if name is None:
        raise ValueError(f"model {model.name!r} has none of the layers {sorted(MASK_FEATURES.values())} to predict a mask from")
    features = model.get_layer(name).output
    outputs = {"fake_logit": model.outputs[0], "mask_logit": layers.Conv2D(1, 1, name="mask_logit")(features)}
    if patch_hidden:
        if PATCH_LOGITS in names:
            raise ValueError(f"model {model.name!r} is patch-level already: it needs no patch head (patch_hidden={patch_hidden})")
        # Scored normalized per location, so that the head's loss does not depend on the
        # features' scale, which nothing else holds when the ImageNet BatchNorms are frozen.
        # It did not make the head harmless: with and without it, a full run with frozen
        # BatchNorms fell to chance validation for an epoch or more (docs/training.md, run G).
        normalized = layers.LayerNormalization(name="patch_norm")(features)
        outputs["patch_logit"] = layers.GlobalAveragePooling2D(name="patch_logit")(
            _patch_logits(normalized, patch_hidden, dropout))
    return keras.Model(model.input, outputs, name=f"{model.name}_with_heads")


#: Prefix of the layers of member ``i`` of a fused network (``fuse``): ``member0_``...
MEMBER_PREFIX = "member{}_"


def fuse(members: Sequence[tuple[keras.Model, float, float]], name: str = "deepfake_cnn_pair") -> keras.Model:
    """One flat network whose logit is the mean of its members' calibrated logits.

    Two networks trained alike at different input sizes err on different faces: averaged,
    they call fewer real portraits fake than either alone (``bench/ensemble.py``,
    docs/training.md). Fused into one Functional graph, the pair is scored, quantized,
    calibrated and explained as a single network: the input is the largest member's, the
    smaller members see it resized, every member's layers keep their names behind
    ``MEMBER_PREFIX`` (so Grad-CAM finds each ``GRADCAM_LAYER``), and a fixed ``fake_logit``
    layer averages their logits, each through its own Platt scaling.

    Args:
        members: ``(network, temperature, bias)`` per member: a single-output network from
            ``make_model`` and the calibration of its card (``z / temperature + bias``).
        name: The fused model's name.

    Returns:
        A model mapping ``(N, S, S, 3)`` pixels in 0-255 (``S`` the largest member's side) to
        the ``(N, 1)`` mean calibrated logit; its weights are copies of the members'.

    Raises:
        ValueError: fewer than two members, or a member that is not a single-logit network.
    """
    if len(members) < 2:
        raise ValueError(f"fusing needs two members or more, got {len(members)}")
    for network, *_ in members:
        if len(network.inputs) != 1 or tuple(network.output_shape) != (None, 1):
            raise ValueError(f"member {network.name!r} maps {network.input_shape} -> {network.output_shape}, "
                             "not one image to one logit")
    size = max(network.input_shape[1] for network, *_ in members)
    pixels = keras.Input((size, size, 3), name="pixels")
    logits = []
    for i, (network, _, _) in enumerate(members):
        prefix = MEMBER_PREFIX.format(i)
        side = network.input_shape[1]
        # Bilinear: LiteRT has no area resampling, and the step from the largest side is small.
        x = pixels if side == size else layers.Resizing(side, side, name=f"{prefix}resize")(pixels)
        # Replays the member's graph on x with renamed copies of its layers (what
        # keras.models.clone_model does, which accepts only Input tensors as a start).
        logits.append(network._run_through_graph(
            x, operation_fn=lambda layer, prefix=prefix: layer.__class__.from_config(
                {**layer.get_config(), "name": prefix + layer.name})))
    mean = layers.Dense(1, name="fake_logit")(layers.Concatenate(name="member_logits")(logits))
    fused = keras.Model(pixels, mean, name=name)
    for i, (network, _, _) in enumerate(members):
        for layer in network.layers:
            if layer.weights:
                fused.get_layer(MEMBER_PREFIX.format(i) + layer.name).set_weights(layer.get_weights())
    k = len(members)
    kernel = np.array([[1.0 / (k * temperature)] for _, temperature, _ in members], np.float32)
    fused.get_layer("fake_logit").set_weights([kernel, np.array([sum(b for *_, b in members) / k], np.float32)])
    return fused


def gradcam_layers(model: keras.Model) -> list[str]:
    """The layers Grad-CAM explains: ``GRADCAM_LAYER``, or each member's in a fused network."""
    return member_layers(model, GRADCAM_LAYER)


def member_layers(model: keras.Model, name: str) -> list[str]:
    """The layer ``name`` of a single network, or each member's copy of it in a fused one (``fuse``).

    A fused network's own ``fake_logit`` (the mean) is passed over for its members' copies.

    Returns:
        The layers' names; empty when the model has none of that name.
    """
    copies = [layer.name for layer in model.layers if re.fullmatch(rf"member\d+_{re.escape(name)}", layer.name)]
    return copies or [layer.name for layer in model.layers if layer.name == name]


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
