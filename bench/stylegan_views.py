"""Which view of a StyleGAN image carries the evidence: the whole image small, or its pixels?

The shipped CNN sees a face crop resized to 128 px, which throws away most of a 256 px
FFHQ image's pixels. If StyleGAN's traces were in the fine texture (upsampling artefacts),
native resolution should help; if they are in the image as a whole (background, hair,
symmetry), it should not. This trains ``make_model``'s network on ``ffhq_stylegan`` alone,
from scratch, once per view, with the same balanced batches, flips and JPEG re-compression,
and reports validation and test ROC-AUC:

- ``resize``: the whole 256 px image resized to 128 px (about what the detector sees).
- ``patch``: random 128 px patches at native resolution; scored as the mean logit of nine
  overlapping patches that tile the image.
- ``full``: the whole image at native 256 px (four times the compute per image).
- ``face``: the face crop the detector scores (the face finder's box with ``--margin``,
  ``faces.FACE_MARGIN`` by default), resized to 128 px: is the framing what costs?

    python bench/stylegan_views.py [--views resize patch full face] [--epochs 30] [--fractions 1.0]

With ``--views resize --fractions 0.25 0.5 1`` it draws a learning curve instead: does
more StyleGAN data help?

Training takes about 4, 6 and 12 minutes per view on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detector.data import read_records, training_input  # noqa: E402
from detector.faces import FACE_MARGIN, FaceFinder  # noqa: E402
from detector.imaging import load_image  # noqa: E402
from detector.training import SHARED_DATA  # noqa: E402

SIDE = 128  # the shipped input size
PATCH_OFFSETS = (0, 64, 128)  # nine 128 px patches tile a 256 px image


def load_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split's images at their native size, and their labels (1 = fake)."""
    records = [r for r in read_records(root) if r.split == split]
    return np.stack([load_image(r.path) for r in records]), np.array([r.label for r in records], np.float32)


def face_crops(images: np.ndarray, margin: float) -> np.ndarray:
    """Each image framed as training frames it (``faces.training_crop``) with ``margin``, at 128 px."""
    finder = FaceFinder()
    return np.stack([training_input(image, SIDE, finder, margin) for image in images])


def run(
    view: str, data: Path, epochs: int, fraction: float = 1.0, seed: int = 1234, margin: float = FACE_MARGIN
) -> list[tuple[int, float, float, float]]:
    """Trains one view from scratch; returns ``(epoch, minutes, val AUC, test AUC)`` every 3 epochs.

    Args:
        view: ``"resize"``, ``"patch"``, ``"full"`` or ``"face"`` (see the module docstring).
        data: The ``ffhq_stylegan`` folder.
        epochs: Epochs of one balanced pass over all the set's training fakes each.
        fraction: Share of each class's training images kept (a learning curve).
        seed: Seeds the network, the subset, shuffling and augmentation.
        margin: Crop side relative to the face box, for the ``face`` view.
    """
    import keras
    import tensorflow as tf

    from detector.model import make_model, view_averaged_logits
    from detector.views import CROP_AND_MIRROR

    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (load_split(data, s) for s in ("train", "val", "test"))
    if view == "face":  # framed once; from here on it is trained and scored as "resize"
        x_train, x_val, x_test = (face_crops(x, margin) for x in (x_train, x_val, x_test))
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    # Epochs keep the full set's length, so a smaller share gets as many updates, not fewer.
    steps = 2 * int(y_train.sum()) // 64
    rng = np.random.default_rng(seed)
    kept = []
    for label in (0, 1):
        pool = rng.permutation(np.flatnonzero(y_train == label))
        kept.append(pool[: max(1, round(fraction * len(pool)))])
    kept = np.sort(np.concatenate(kept))
    x_train, y_train = x_train[kept], y_train[kept]

    def train_view(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        image = tf.image.stateless_random_flip_left_right(image, seed)
        quality = tf.random.stateless_uniform([], seed + 1, 50, 96, tf.int32)
        recompress = tf.random.stateless_uniform([], seed + 2) < 0.6
        image = tf.cond(recompress, lambda: tf.image.adjust_jpeg_quality(image, quality), lambda: image)
        image = tf.cast(image, tf.float32)
        if view in ("resize", "face"):
            return tf.image.resize(image, (SIDE, SIDE), antialias=True)
        if view == "patch":
            return tf.image.stateless_random_crop(image, (SIDE, SIDE, 3), seed + 3)
        return image

    def eval_views(images: np.ndarray) -> list[np.ndarray]:
        if view in ("resize", "face"):
            return [tf.image.resize(images, (SIDE, SIDE), antialias=True).numpy()]
        if view == "patch":
            return [images[:, a : a + SIDE, b : b + SIDE] for a in PATCH_OFFSETS for b in PATCH_OFFSETS]
        return [images]

    def stream(label: int, shuffle_seed: int) -> tf.data.Dataset:
        keep = y_train == label
        ds = tf.data.Dataset.from_tensor_slices((x_train[keep], y_train[keep]))
        return ds.shuffle(int(keep.sum()), seed=shuffle_seed).repeat()

    # Balanced batches: the set holds almost three fakes per real.
    pairs = tf.data.Dataset.sample_from_datasets([stream(0, seed), stream(1, seed + 1)], [0.5, 0.5], seed=seed)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    batches = (tf.data.Dataset.zip((pairs, seeds))
               .map(lambda xy, s: (train_view(xy[0], tf.cast(s % 100_000, tf.int32)), xy[1]), num_parallel_calls=2)
               .batch(64).prefetch(2))

    model = make_model(256 if view == "full" else SIDE)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, epochs * steps, alpha=0.02, warmup_target=2e-3, warmup_steps=steps)
    model.compile(keras.optimizers.AdamW(schedule, weight_decay=5e-4),
                  keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.05))
    # The crop and its mirror image, as the figures in the README were measured.
    logits = tf.function(lambda x: view_averaged_logits(model, x, CROP_AND_MIRROR), reduce_retracing=True)

    def auc(images: np.ndarray, labels: np.ndarray) -> float:
        per_view = [np.concatenate([logits(v[i : i + 128].astype(np.float32)).numpy() for i in range(0, len(v), 128)])
                    for v in eval_views(images)]
        return roc_auc_score(labels, np.mean(per_view, axis=0))

    start, rows = time.time(), []

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs=None) -> None:
            epoch += 1
            if epoch % 3 == 0 or epoch == epochs:
                rows.append((epoch, (time.time() - start) / 60, auc(x_val, y_val), auc(x_test, y_test)))
                print(f"{view:>6} epoch {epoch:3d} {rows[-1][1]:5.1f} min  "
                      f"val {rows[-1][2]:.3f}  test {rows[-1][3]:.3f}", flush=True)

    # One fit over the endless stream, so every epoch draws new samples and augmentations.
    model.fit(batches, steps_per_epoch=steps, epochs=epochs, callbacks=[Report()], verbose=0)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", nargs="+", choices=("resize", "patch", "full", "face"),
                        default=["resize", "patch", "full", "face"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--fractions", nargs="+", type=float, default=[1.0],
                        help="shares of the training images to train on, one run each (a learning curve)")
    parser.add_argument("--seed", type=int, default=1234, help="another seed shows how much of a result is noise")
    parser.add_argument("--margin", type=float, default=FACE_MARGIN, help="face crop side relative to the box (face view)")
    parser.add_argument("--data", default=str(SHARED_DATA / "ffhq_stylegan"))
    args = parser.parse_args()

    results = {(view, f): run(view, Path(args.data), args.epochs, f, args.seed, args.margin)
               for view in args.views for f in args.fractions}
    print("\nview      input  train share  minutes  best val AUC (epoch)  test AUC at that epoch")
    for (view, fraction), rows in results.items():
        epoch, _, val, test = max(rows, key=lambda r: r[2])
        name = f"face@{args.margin:g}" if view == "face" else view
        print(f"{name:<9} {256 if view == 'full' else SIDE:>5}  {fraction:11.2f}  {rows[-1][1]:7.1f}"
              f"  {val:12.3f} ({epoch:3d})  {test:12.3f}")


if __name__ == "__main__":
    main()
