"""What a training crop's augmentation costs, with and without the smoothing. Run by hand.

``augment.augment`` on random 160 px crops, one crop at a time on one thread (as one of
tf.data's parallel calls runs it), for each ``--smooth-prob``: milliseconds per crop, median
of five passes over the crops. docs/training.md quotes it: the smoothing is a 7 x 7 bilateral
filter, 49 neighbours per pixel, and an epoch of 400 steps augments every crop it trains on.

    python bench/augment_cost.py                 # chances 0, 0.25 and 1, 64 crops
    python bench/augment_cost.py --size 192      # the second network's crops
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=160, help="crop side in pixels (default 160)")
    parser.add_argument("--crops", type=int, default=64, help="crops per pass (default 64)")
    parser.add_argument("--probs", type=float, nargs="+", default=[0.0, 0.25, 1.0], help="smoothing chances")
    args = parser.parse_args()

    from detector.startup import import_tensorflow

    tf = import_tensorflow()
    from detector.augment import AugmentConfig, augment

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    crops = np.random.default_rng(0).integers(0, 256, (args.crops, args.size, args.size, 3), np.uint8)
    mask = tf.zeros((args.size // 4, args.size // 4, 1))
    print(f"{args.size} px crops, one thread: ms per crop (median of 5 passes of {args.crops})")
    for prob in args.probs:
        cfg = AugmentConfig(smooth_prob=prob)
        step = tf.function(lambda image, seed, _cfg=cfg: augment(image, mask, seed, args.size // 4, _cfg))
        step(tf.constant(crops[0]), tf.constant([0, 1], tf.int64))  # traced once, not timed
        passes = []
        for p in range(5):
            start = time.perf_counter()
            for i, crop in enumerate(crops):
                step(tf.constant(crop), tf.constant([i, p], tf.int64))
            passes.append((time.perf_counter() - start) / len(crops) * 1000)
        print(f"smooth_prob {prob:g}: {statistics.median(passes):.1f} ms")


if __name__ == "__main__":
    main()
