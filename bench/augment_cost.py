"""What a training crop's augmentation costs, with and without the smoothing. Run by hand.

``augment.augment`` on random 160 px crops, one crop at a time on one thread (as one of
tf.data's parallel calls runs it), for each ``--smooth-prob``: milliseconds per crop, median
of five passes over the crops. docs/training.md quotes it: the smoothing is a 7 x 7 bilateral
filter, 49 neighbours per pixel, and an epoch of 400 steps augments every crop it trains on.

With ``--steps N``, what it costs a whole training step, where the stream's parallel calls
share the two cores with the network: the recipe's network (``build_trainer``) trained on
the recipe's stream of ``../shared`` (``training_dataset``), one stream per chance, N steps
of each in turn for ``--rounds`` rounds; seconds per step, median of the rounds, and each
chance's ratio to the first. Both streams are timed in one process, minutes apart, so the
ratio holds on a machine whose speed drifts (docs/training.md). Run it alone: a training run
beside it takes the same cores, and both streams hold every set's crops in memory.

    python bench/augment_cost.py                 # chances 0, 0.25 and 1, 64 crops
    python bench/augment_cost.py --size 192      # the second network's crops
    python bench/augment_cost.py --steps 20 --probs 0 0.25   # whole steps (~5 minutes)
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
    parser.add_argument("--steps", type=int, default=0,
                        help="time this many training steps per chance and round instead (default 0: crops)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --steps steps per chance (default 3)")
    args = parser.parse_args()
    if args.steps:
        step_seconds(args.size, args.probs, args.steps, args.rounds)
    else:
        crop_milliseconds(args.size, args.probs, args.crops)


def crop_milliseconds(size: int, probs: list[float], n_crops: int) -> None:
    """Prints the median milliseconds of one crop's augmentation, one thread, per chance."""

    from detector.startup import import_tensorflow

    tf = import_tensorflow()
    from detector.augment import AugmentConfig, augment

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    crops = np.random.default_rng(0).integers(0, 256, (n_crops, size, size, 3), np.uint8)
    mask = tf.zeros((size // 4, size // 4, 1))
    print(f"{size} px crops, one thread: ms per crop (median of 5 passes of {n_crops})")
    for prob in probs:
        cfg = AugmentConfig(smooth_prob=prob)
        step = tf.function(lambda image, seed, _cfg=cfg: augment(image, mask, seed, size // 4, _cfg))
        step(tf.constant(crops[0]), tf.constant([0, 1], tf.int64))  # traced once, not timed
        passes = []
        for p in range(5):
            start = time.perf_counter()
            for i, crop in enumerate(crops):
                step(tf.constant(crop), tf.constant([i, p], tf.int64))
            passes.append((time.perf_counter() - start) / len(crops) * 1000)
        print(f"smooth_prob {prob:g}: {statistics.median(passes):.1f} ms")


def step_seconds(size: int, probs: list[float], steps: int, rounds: int) -> None:
    """Prints the median seconds of one training step of the recipe, per smoothing chance."""
    from dataclasses import replace

    from detector.data import load_set
    from detector.sampling import training_dataset
    from detector.training import TrainConfig, build_trainer

    cfg = TrainConfig(out_dir="", input_size=size)
    train = [load_set(s, size, cfg.cache_dir, margin=cfg.face_margin).split("train") for s in cfg.sets]
    _, trainer = build_trainer(cfg, steps_per_epoch=400)
    mask_size = trainer.get_layer("mask_logit").output.shape[1]
    streams = {p: iter(training_dataset(train, replace(cfg, augment=replace(cfg.augment, smooth_prob=p)), mask_size))
               for p in probs}
    times: dict[float, list[float]] = {p: [] for p in probs}
    for round_ in range(rounds + 1):  # round 0 traces the step and fills each stream's buffers: not timed
        for prob, stream in streams.items():
            start = time.perf_counter()
            for _ in range(steps):
                trainer.train_on_batch(*next(stream))
            if round_:
                times[prob].append((time.perf_counter() - start) / steps)
    first = statistics.median(times[probs[0]])
    print(f"{size} px, batches of {cfg.batch_size}: s per training step (median of {rounds} rounds of {steps})")
    for prob in probs:
        median = statistics.median(times[prob])
        print(f"smooth_prob {prob:g}: {median:.3f} s ({median / first:.2f}x smooth_prob {probs[0]:g})")


if __name__ == "__main__":
    main()
