"""How far invisible input changes move a face's logit, on the quantized LiteRT copy and on Keras.
Run by hand.

The shipped network is scored through its quantized copy (int8 in the layers below half the
input's side, docs/SCALE.md). An int8 network computes a step function: a change far below
one grey level can push an activation across a rounding edge, and the steps add up. This
adds uniform noise of ``±A`` grey levels (0-255 scale) to the scoring windows of test crops
and reports how much each window's logit moves, on both runtimes; the float Keras network
moves in proportion to the noise, the copy by whole steps. It says how exactly a re-implemented
window cut must match the one the card's calibration went through (TensorFlow's
``crop_and_resize`` in ``model.view_windows``): an OpenCV cut equal to it to far below a grey
level was tried and not adopted (docs/SCALE.md).

    python bench/lite_sensitivity.py                       # weights/, FFHQ test crops
    python bench/lite_sensitivity.py --crops 300 --amplitudes 0.004 0.5 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    from detector.defaults import SHARED_DATA

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="weights folder (default weights/)")
    parser.add_argument("--set", default=str(SHARED_DATA / "ffhq_stylegan"), help="set whose test crops are used")
    parser.add_argument("--crops", type=int, default=200, help="test crops (default 200)")
    parser.add_argument("--amplitudes", type=float, nargs="+", default=[0.004, 0.05, 0.5, 2.0],
                        help="noise amplitudes in grey levels (default 0.004 0.05 0.5 2)")
    args = parser.parse_args()

    import numpy as np

    from detector import Detector
    from detector.data import load_set
    from detector.model import view_windows

    detector = Detector.load(args.weights)
    card = detector.card
    test = load_set(args.set, card.input_size, margin=card.face_margin).split("test")
    crops = test.images[test.found][: args.crops].astype(np.float32)
    windows = view_windows(crops, tuple(card.scoring_views)).numpy()
    lite = detector.lite

    def keras(x: np.ndarray) -> np.ndarray:  # in slices: 400 windows at once hold gigabytes of activations
        return np.concatenate([np.asarray(detector.model(x[i : i + 50], training=False)).reshape(-1)
                               for i in range(0, len(x), 50)])

    base = {"LiteRT copy": lite(windows), "Keras": keras(windows)}
    rng = np.random.default_rng(0)
    print(f"{len(windows)} windows of {len(crops)} {test.name} test crops; logit spread (std) on the copy "
          f"{base['LiteRT copy'].std():.2f}\n")
    print("| noise (grey levels) | runtime | windows moved | median move | 99th percentile | largest |")
    print("|---|---|---|---|---|---|")
    for amplitude in args.amplitudes:
        noisy = windows + rng.uniform(-amplitude, amplitude, windows.shape).astype(np.float32)
        moved = {"LiteRT copy": lite(noisy), "Keras": keras(noisy)}
        for runtime, logits in moved.items():
            delta = np.abs(logits - base[runtime])
            print(f"| ±{amplitude:g} | {runtime} | {np.mean(delta > 1e-4):.0%} | {np.median(delta):.4f} | "
                  f"{np.percentile(delta, 99):.4f} | {delta.max():.4f} |")


if __name__ == "__main__":
    main()
