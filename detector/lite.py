"""The network on LiteRT, TensorFlow Lite's CPU runtime: the scoring copy of ``model.keras``.

``train`` (and ``python -m detector lite`` for existing weights) converts the Keras network
to ``model.tflite`` beside it, writes the file's sha256 into the card, and fits the card's
calibration and threshold through this copy, since the ``Detector`` runs its forward passes
here. XNNPACK runs MobileNetV2's depthwise convolutions about twice as fast as TensorFlow's
graph on this 2-core CPU, and its int8 kernels about twice as fast again.

The copy is quantized to int8 except where the network still sees the pixels: the layers
that keep at least half the input's side (``FLOAT_SIDE_SHARE``: MobileNetV2's stem and first
block), where the blending seams, resampling and noise a fake gives itself away by are
finest, stay float32, and so does the final logit op. ``bench/quantization.py`` compared the
cut-offs on the shipped weights' test sets: this copy's logits stay within about 0.6 of the
Keras network's (99th percentile; correlation 0.996 or more, every set's ROC-AUC within
0.004) at 1.9x the all-float copy's speed; all-int8 runs 2.1x for twice the error, a
quarter-side cut-off 1.7x (docs/SCALE.md). Training and Grad-CAM stay on Keras, which has
the gradients.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
import re
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.startup import NOISE, filtered_stderr

if TYPE_CHECKING:
    from detector.views import View

#: The converted network's file name, beside ``model.keras``.
LITE_FILE = "model.tflite"

#: Windows per interpreter call; the rest of a batch goes one window at a time. Per window,
#: XNNPACK costs about the same from 1 to 16 windows a call here (3.6-5.3 ms on two busy
#: cores, 1.8-2.1 ms idle with two threads; ``bench/lite_chunks.py``), so small fixed shapes
#: keep the memory small and never resize a tensor.
CHUNK = 4


#: Layers whose output keeps at least this share of the input's side stay float32 in the
#: quantized copy (see the module's docstring).
FLOAT_SIDE_SHARE = 1 / 2

#: The quantizer's lines on stderr, one per conversion.
QUANTIZER_NOISE = re.compile(r"^fully_quantize: \d")

#: How the card describes a quantized copy.
QUANTIZATION = "int8, with float32 in the layers at half the input's side or more"


def export(model, path: str | Path, representative: np.ndarray | None = None,
           float_side_share: float = FLOAT_SIDE_SHARE) -> Path:
    """Converts a Keras network to a LiteRT file.

    Args:
        model: A network from ``model.make_model`` (one ``(N, S, S, 3)`` input, one logit).
        path: The ``.tflite`` file to write.
        representative: ``(N, S, S, 3)`` crops (pixels 0-255) the activations' int8 ranges
            are measured on: some of every training source. ``None`` writes an all-float32
            copy, whose logits equal Keras' to about 1e-5.
        float_side_share: Layers whose output keeps at least this share of the input's
            side stay float32 (above 1: none; ``bench/quantization.py`` compares).

    Returns:
        The path written.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # Keras prints the traced signature, a line per variable; the quantizer and the interpreters
    # it calibrates with announce themselves on stderr and warn of deprecations in Python.
    with contextlib.redirect_stdout(io.StringIO()), filtered_stderr([NOISE, QUANTIZER_NOISE]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if representative is None:
            content = converter.convert()
        else:
            content = _mixed_int8(converter, model, np.asarray(representative, np.float32), float_side_share)
    path = Path(path)
    path.write_bytes(content)
    return path


def _mixed_int8(converter, model, representative: np.ndarray, float_side_share: float) -> bytes:
    """The converter's network in int8, but for the layers ``float_side_share`` keeps float."""
    import tensorflow as tf

    def dataset():
        for crop in representative:
            yield [crop[None]]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    # The quantized ops are named by the layers fused into them, once calibrated: list them on
    # a few crops, then convert again with those of the high-resolution layers left float.
    listing = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=lambda: itertools.islice(dataset(), 2))
    listing.run()
    table = io.StringIO()
    listing.layer_statistics_dump(table)
    tensors = [row["tensor_name"] for row in csv.DictReader(io.StringIO(table.getvalue()))]
    fine = _high_resolution_layers(model, float_side_share)
    keep_float = [t for t in tensors if any(re.search(rf"/{re.escape(name)}(_\d+)?/", t) for name in fine)]
    # The last op, which makes the logit (its tensor is named by the graph's output, not by a
    # layer), stays float too: it costs nothing, and int8 steps would round every score.
    keep_float.append(tensors[-1])
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep_float)
    mixed = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=lambda: itertools.islice(dataset(), 1),
                                                      debug_options=options)
    return mixed.get_nondebug_quantized_model()


def _high_resolution_layers(model, share: float) -> list[str]:
    """Names of the layers whose output keeps at least ``share`` of the input's side."""
    side = model.input_shape[1]
    return [layer.name for layer in model.layers
            if len(shape := getattr(layer.output, "shape", ())) == 4 and shape[1] and shape[1] >= side * share]


class LiteNetwork:
    """A converted network's logits, callable on any number of windows from any thread.

    Args:
        content: The ``.tflite`` file's bytes.
        threads: CPU threads per forward pass; all cores by default. On this 2-core machine
            idle, two threads halve a window's cost (1.8 ms against 3.6) and ``predict`` on a
            folder goes from 112 to 145 crops/s; with a training run on both cores, one
            thread did a little better (88 against 83), as it fights less for them
            (``python -m detector bench``, docs/SCALE.md).
    """

    def __init__(self, content: bytes, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        threads = threads or os.cpu_count() or 1
        self._interpreters = {}
        with filtered_stderr([NOISE]):  # LiteRT announces each XNNPACK delegate on stderr
            for size in sorted({1, CHUNK}):
                interpreter = Interpreter(model_content=content, num_threads=threads)
                interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], _shape(interpreter, size))
                interpreter.allocate_tensors()
                self._interpreters[size] = interpreter
        # An interpreter runs one call at a time; the demo's handlers and predict's threads share it.
        self._lock = threading.Lock()
        self._windows = {}  # views -> their traced window cutter

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> "LiteNetwork":
        """Reads a ``.tflite`` file (see ``export``)."""
        return cls(Path(path).read_bytes(), threads)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Logits of ``(N, S, S, 3)`` float32 windows (pixels 0-255), shape ``(N,)``."""
        windows = np.ascontiguousarray(windows, np.float32)
        logits = np.empty(len(windows), np.float32)
        with self._lock:
            start = 0
            while start < len(windows):
                size = CHUNK if len(windows) - start >= CHUNK else 1
                interpreter = self._interpreters[size]
                interpreter.set_tensor(interpreter.get_input_details()[0]["index"], windows[start:start + size])
                interpreter.invoke()  # releases the GIL: decoding threads go on meanwhile
                logits[start:start + size] = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).reshape(-1)
                start += size
        return logits


    def view_averaged_logits(self, crops: np.ndarray, views: "tuple[View, ...]") -> np.ndarray:
        """Logits of ``(N, S, S, 3)`` crops, each the mean over ``views`` of its windows, as
        ``model.view_averaged_logits`` gives them on Keras; shape ``(N,)``."""
        import tensorflow as tf

        from detector.model import view_windows

        views = tuple(views)
        if views not in self._windows:  # traced once: an eager cut costs more than a window's pass
            size = self._interpreters[1].get_input_details()[0]["shape"][1]
            self._windows[views] = tf.function(lambda x: view_windows(x, views), reduce_retracing=True,
                                               input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        windows = self._windows[views](np.asarray(crops, np.float32)).numpy()
        return self(windows).reshape(len(views), -1).mean(axis=0)  # windows come view by view


def _shape(interpreter, batch: int) -> list[int]:
    """The interpreter's input shape with ``batch`` rows."""
    return [batch, *interpreter.get_input_details()[0]["shape"][1:]]
