"""ImageNet MobileNetV2 weights for Keras, converted from the uint8 TFLite model in ``third_party/``.

Nothing may be downloaded here (``weights="imagenet"`` fails offline), and the one ImageNet
network on hand is Google's quantized MobileNetV2 TFLite file. Its tensors are the float
network's, folded and quantized: every BatchNorm was folded into the convolution before it and
each tensor stored as uint8 with a scale and zero point (int32 for the biases). Converting
it back is exact up to that quantization:

- a convolution's kernel is the dequantized folded kernel (TFLite stores ``[out, h, w, in]``,
  depthwise ``[1, h, w, channels]``; Keras wants ``[h, w, in, out]`` and ``[h, w, channels, 1]``);
- the BatchNorm after it becomes the identity plus the folded bias: gamma 1, beta the bias,
  moving mean 0 and moving variance ``1 - epsilon``;
- the classifier is a 1x1 convolution over 1001 classes whose first is "background": the
  Keras ``predictions`` layer takes the other 1000.

TFLite lists the operations in the order Keras builds the layers (the Keras application was
itself converted from the same TF-Slim checkpoint, with the same padding), so the n-th
convolution of one is the n-th of the other. ``tests/test_pretrained.py`` checks the result
against the TFLite interpreter on natural images.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

THIRD_PARTY = Path(__file__).resolve().parent.parent / "third_party"
MOBILENET_V2_TFLITE = THIRD_PARTY / "mobilenet_v2_1.0_224_quant.tflite"
IMAGENET_LABELS = THIRD_PARTY / "imagenet_labels.txt"

_CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _interpreter(path: Path):
    import warnings

    import tensorflow as tf

    # The plain reference kernels: no XNNPACK delegate, which would replace the operations
    # this module reads the tensors of (and prints a line to the terminal).
    resolver = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with warnings.catch_warnings():  # TF 2.20+ says tf.lite moves to LiteRT; it still works
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(str(path), experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    return interpreter


def _dequantized(interpreter, index: int) -> np.ndarray:
    detail = next(d for d in interpreter.get_tensor_details() if d["index"] == index)
    q = detail["quantization_parameters"]
    values = interpreter.get_tensor(index).astype(np.float32)
    scales, zeros = q["scales"], q["zero_points"]
    if len(scales) > 1:  # per-channel: along the quantized dimension
        shape = [1] * values.ndim
        shape[q["quantized_dimension"]] = -1
        scales, zeros = scales.reshape(shape), zeros.reshape(shape)
    return (values - zeros) * scales


def tflite_convolutions(path: str | Path = MOBILENET_V2_TFLITE) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The convolutions of a TFLite model, in graph order, as float arrays.

    Args:
        path: A TFLite file.

    Returns:
        ``(op, kernel, bias)`` per convolution: ``op`` is ``"CONV_2D"`` or
        ``"DEPTHWISE_CONV_2D"``, ``kernel`` in the Keras layout, ``bias`` ``(out,)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TFLite model {path} is missing (see third_party/README.md)")
    interpreter = _interpreter(path)
    out = []
    for op in interpreter._get_ops_details():  # the only API that lists operations in order
        if op["op_name"] not in _CONV_OPS:
            continue
        _, kernel_index, bias_index = op["inputs"][:3]
        # Both layouts put the spatial axes in the middle: [out|1, h, w, in|channels].
        kernel = _dequantized(interpreter, kernel_index).transpose(1, 2, 3, 0)
        out.append((op["op_name"], kernel, _dequantized(interpreter, bias_index)))
    return out


def load_imagenet_weights(model: keras.Model, path: str | Path = MOBILENET_V2_TFLITE) -> keras.Model:
    """Sets a Keras MobileNetV2 (1.0 width) to the ImageNet weights of the TFLite model.

    Works for any input size and with or without the classifier: the layers are matched by
    their names as ``keras.applications.MobileNetV2`` gives them, so they may sit inside a
    larger flat model (``detector.model.make_model``).

    Args:
        model: A model holding MobileNetV2's layers (``Conv1`` ... ``Conv_1``, and
            ``predictions`` when the classifier is wanted too).
        path: The TFLite file.

    Returns:
        ``model``, with its weights set.

    Raises:
        ValueError: the model's convolutions do not match the file's in number or shape.
    """
    convs = tflite_convolutions(path)
    layers = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
              and _is_mobilenet_layer(layer.name)]
    if len(layers) != len(convs) - 1:  # the file's last convolution is its classifier
        raise ValueError(f"the model holds {len(layers)} MobileNetV2 convolutions, the file {len(convs) - 1} "
                         "and a classifier: is it keras.applications.MobileNetV2 at alpha 1.0?")
    by_name = {layer.name: layer for layer in model.layers}
    for layer, (op, kernel, bias) in zip(layers, convs):
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        if depthwise != (op == "DEPTHWISE_CONV_2D") or tuple(layer.kernel.shape) != kernel.shape:
            raise ValueError(f"layer {layer.name} {tuple(layer.kernel.shape)} does not match the file's "
                             f"{op} {kernel.shape}")
        layer.set_weights([kernel])
        norm = by_name[_batchnorm_of(layer.name)]
        epsilon = norm.epsilon
        n = len(bias)
        norm.set_weights([np.ones(n, np.float32), bias, np.zeros(n, np.float32),
                          np.full(n, 1.0 - epsilon, np.float32)])
    if "predictions" in by_name:
        _, kernel, bias = convs[-1]
        # A 1x1 convolution over 1001 classes -> a dense layer over the 1000 after "background".
        by_name["predictions"].set_weights([kernel[0, 0, :, 1:], bias[1:]])
    return model


def _is_mobilenet_layer(name: str) -> bool:
    return name == "Conv1" or name == "Conv_1" or name.startswith(("expanded_conv_", "block_"))


def _batchnorm_of(conv_name: str) -> str:
    """The name Keras gives the BatchNorm after a MobileNetV2 convolution."""
    return {"Conv1": "bn_Conv1", "Conv_1": "Conv_1_bn"}.get(conv_name, f"{conv_name}_BN")


def imagenet_classifier(input_size: int = 224) -> keras.Model:
    """The whole converted ImageNet classifier, taking pixels in ``[-1, 1]`` (for checks).

    Args:
        input_size: Side of the square input.

    Returns:
        ``keras.applications.MobileNetV2`` with the converted weights and its softmax.
    """
    model = keras.applications.MobileNetV2(input_shape=(input_size, input_size, 3), weights=None)
    return load_imagenet_weights(model)


def tflite_probabilities(images: np.ndarray, path: str | Path = MOBILENET_V2_TFLITE) -> np.ndarray:
    """The TFLite model's class probabilities (1000, background dropped) for uint8 images.

    Args:
        images: ``(N, 224, 224, 3)`` RGB uint8.
        path: The TFLite file.

    Returns:
        ``(N, 1000)`` float probabilities.
    """
    interpreter = _interpreter(Path(path))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    scale, zero = out["quantization"]
    rows = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None].astype(np.uint8))
        interpreter.invoke()
        rows.append((interpreter.get_tensor(out["index"])[0].astype(np.float32) - zero) * scale)
    return np.stack(rows)[:, 1:]
