"""TensorFlow starts without its start-up notices, and nothing else written to stderr is lost."""

import subprocess
import sys

import pytest

from conftest import REPO
from detector.startup import has_nvidia_device

FILTERED = '''
import os, sys
from detector.startup import NOISE, NO_GPU_NOISE, filtered_stderr
with filtered_stderr([NOISE, NO_GPU_NOISE]):
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
    os.write(2, b"I0000 00:00:1.5 77 port.cc:153] oneDNN custom operations are on. You may see ...\\n")
    os.write(2, b"I0000 00:00:1.5 77 cudart_stub.cc:31] Could not find cuda drivers on your machine\\n")
    os.write(2, b"E0000 00:00:1.6 77 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\\n")
    os.write(2, b"E0000 00:00:1.7 77 something.cc:9] a real error\\n")
    print("a Python warning", file=sys.stderr)
print("after the block", file=sys.stderr)
'''


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_the_filter_drops_the_notices_and_keeps_every_other_line():
    done = run(FILTERED)
    assert done.returncode == 0
    assert done.stderr == "E0000 00:00:1.7 77 something.cc:9] a real error\na Python warning\nafter the block\n"


@pytest.mark.skipif(has_nvidia_device(), reason="with a GPU, a failed cuInit is a real error and shows")
def test_tensorflow_starts_silently():
    done = run("from detector.startup import import_tensorflow; tf = import_tensorflow(); print(tf.constant(2) * 3)")
    assert done.returncode == 0 and "tf.Tensor(6" in done.stdout
    assert done.stderr == ""
