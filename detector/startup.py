"""Start TensorFlow without its start-up notices, keeping every other line it writes.

TensorFlow's C++ runtime prints notices on import that read as failures to a user (a
``cuInit`` error line on every machine without a GPU, the oneDNN and CUDA-driver notices,
twice over), and some of them ignore ``TF_CPP_MIN_LOG_LEVEL``: absl prints whatever is
logged before its ``InitializeLog()`` regardless of level. ``import_tensorflow`` imports
TensorFlow and initialises its devices while the process's stderr passes through a filter
that drops exactly those notices (``NOISE``) and forwards every other line as it comes, so
real warnings and errors still reach the user. Entry points (the CLI, ``app.py``,
``train.py``, ``Detector.load``) call it before anything else imports TensorFlow; later
imports are free and silent.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

# C++ INFO and WARNING lines after absl's initialisation; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Start-up notices dropped from stderr: informational lines, whatever their level tag.
NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|\] oneDNN custom operations are on"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers"
    r"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"
    r"|^To enable the following instructions: .* rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc:\d+\] computation placer already registered"
    r"|^INFO: Created TensorFlow Lite XNNPACK delegate for CPU"  # LiteRT, once per interpreter (detector.lite)
)

#: Dropped only on a machine with no NVIDIA device at all: there the failure is expected;
#: on a GPU machine it is a real error (a broken driver) and must show.
NO_GPU_NOISE = re.compile(r"failed call to cuInit")


def has_nvidia_device() -> bool:
    """Whether the kernel exposes an NVIDIA GPU (its driver's device files)."""
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()


def import_tensorflow():
    """Imports TensorFlow with its start-up notices filtered out of stderr.

    Returns:
        The ``tensorflow`` module.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    patterns = [NOISE] if has_nvidia_device() else [NOISE, NO_GPU_NOISE]
    with filtered_stderr(patterns):
        import absl.logging
        import tensorflow as tf

        tf.config.list_physical_devices()  # device start-up (the cuInit line) happens here, filtered
        # Python-side absl warnings before logging is configured ("WARNING:absl:...").
        absl.logging.set_verbosity(absl.logging.ERROR)
    return tf


@contextlib.contextmanager
def filtered_stderr(drop: list[re.Pattern]) -> Iterator[None]:
    """Routes file descriptor 2 through a filter while the block runs.

    C++ libraries write to the descriptor, not to ``sys.stderr``, so the filter sits on the
    descriptor: a pipe whose reader thread forwards, line by line as they come, each line
    that matches none of ``drop``.

    Args:
        drop: Patterns of lines to drop (``re.search``).
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a daemon): nothing to filter
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with open(read_end, "rb", buffering=0) as pipe, open(saved, "wb", buffering=0, closefd=False) as out:
            for line in iter(pipe.readline, b""):
                if not any(p.search(line.decode("utf-8", "replace")) for p in drop):
                    out.write(line)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the reader sees its end
        thread.join(timeout=10)
        os.close(saved)
