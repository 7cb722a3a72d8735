"""The network on LiteRT, TensorFlow Lite's CPU runtime: the scoring copy of ``model.keras``.

``python -m detector lite`` (and ``train`` as its last step) converts the Keras network,
unquantized, to ``model.tflite`` beside it and writes the file's sha256 into the card. The
``Detector`` then runs its forward passes here: the same float32 network (logits equal to
about 1e-5), and on this 2-core CPU about twice as fast as TensorFlow's graph per crop,
because XNNPACK runs MobileNetV2's depthwise convolutions far better (docs/SCALE.md).
Training, calibration and Grad-CAM stay on Keras, which has the gradients.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector.startup import NOISE, filtered_stderr

if TYPE_CHECKING:
    from detector.card import ModelCard

#: The converted network's file name, beside ``model.keras``.
LITE_FILE = "model.tflite"

#: Windows per interpreter call; the rest of a batch goes one window at a time. Per window,
#: XNNPACK costs about the same from 1 to 16 windows a call here (3.6-5.3 ms on two busy
#: cores, 1.8-2.1 ms idle with two threads; ``bench/lite_chunks.py``), so small fixed shapes
#: keep the memory small and never resize a tensor.
CHUNK = 4


def export(model, path: str | Path) -> Path:
    """Converts a Keras network to a float32 LiteRT file.

    Args:
        model: A network from ``model.make_model`` (one ``(N, S, S, 3)`` input, one logit).
        path: The ``.tflite`` file to write.

    Returns:
        The path written.
    """
    import tensorflow as tf

    # No optimizations: quantizing would change the logits the card's calibration was fitted on.
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the traced signature, a line per variable
        content = converter.convert()
    path = Path(path)
    path.write_bytes(content)
    return path


def write_lite(weights_dir: str | Path) -> "ModelCard":
    """Converts a weights folder's ``model.keras`` to ``model.tflite`` beside it, and writes
    the new file's sha256 into the folder's card (``python -m detector lite``).

    Args:
        weights_dir: Folder with ``model.keras`` and ``model_card.json``.

    Returns:
        The rewritten card.

    Raises:
        WeightsError: the weights or card are missing or altered.
    """
    import keras

    from detector.card import MODEL_FILE, ModelCard, sha256_of

    weights_dir = Path(weights_dir)
    card = ModelCard.load(weights_dir)
    card.verify(weights_dir / MODEL_FILE)
    model = keras.saving.load_model(weights_dir / MODEL_FILE, safe_mode=True, compile=False)
    path = export(model, weights_dir / LITE_FILE)
    card = replace(card, lite_sha256=sha256_of(path))
    card.save(weights_dir)
    return card


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


def _shape(interpreter, batch: int) -> list[int]:
    """The interpreter's input shape with ``batch`` rows."""
    return [batch, *interpreter.get_input_details()[0]["shape"][1:]]
