"""LiteRT's cost per window by windows per call and threads: the measure behind ``lite.CHUNK``
and its default threads. Run by hand.

    python bench/lite_chunks.py                # weights/model.tflite, 64 random windows, 4 passes
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    from ai_edge_litert.interpreter import Interpreter

    content = (Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "weights" / "model.tflite").read_bytes()
    print(f"{'threads':>7} {'windows/call':>12} {'ms per window':>14}")
    for threads in (1, 2):
        for size in (1, 2, 4, 8, 16):
            interpreter = Interpreter(model_content=content, num_threads=threads)
            (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
            side = int(inp["shape"][1])
            interpreter.resize_tensor_input(inp["index"], [size, side, side, 3])
            interpreter.allocate_tensors()
            windows = np.random.default_rng(size).uniform(0, 255, (64, side, side, 3)).astype(np.float32)
            passes = []
            for _ in range(4):
                started = time.perf_counter()
                for i in range(0, len(windows), size):
                    interpreter.set_tensor(inp["index"], windows[i:i + size])
                    interpreter.invoke()
                    interpreter.get_tensor(out["index"])
                passes.append((time.perf_counter() - started) / len(windows))
            print(f"{threads:>7} {size:>12} {1000 * np.median(passes[1:]):>14.2f}")


if __name__ == "__main__":
    main()
