"""The training stream: balanced batches from many sources, in which no source gives the label away.

A network learns whatever separates its labels most easily. When each training set has its own
look (DFDC's video frames, FFHQ's portraits, LFW's press photos, the preview-grid softness of
text-to-image portraits), a stream in which one set is mostly fake and another mostly real
teaches "this look means fake", which is right on the test splits and wrong on every photo
from elsewhere. This module builds the stream so that, within every source, the two labels
look alike in everything but how the face was made:

- **Sources.** Each set with both labels is a source. Sets that hold one label only (text-to-
  image fakes, web photos of real people) are pooled into one source, where each stands
  against the other; a one-label set with no counterpart is left out (it could only teach its
  look). ``describe_sources`` says what became of each set.
- **Balance.** Each source gets a share of every batch that grows with the square root of its
  size (so DFDC's 20,000 faces do not drown four hundred StyleGAN ones, nor are those few
  seen a hundred times more often), at least ``min_source_share``; within a source, half real
  and half fake.
- **Resolution.** Sets and classes differ in how many pixels a face has in its file (a
  FLUX-LoRA fake's face has ~160, a real news photo's ~210), and a network sees that as
  sharpness. Each face is shown at the resolution of a random face of the *other* class of
  its source when that is lower (``match_resolution``): a real face then has ``min(R, F')``
  pixels and a fake ``min(F, R')``, with R, R' and F, F' independent draws of the two
  classes' resolutions, so both classes share one distribution.
- **Look.** Classes also differ in brightness, contrast and colour (FLUX-LoRA renders are
  darker and moodier than news photos; web photos of real people brighter than text-to-image
  portraits). Half the faces, drawn at random, take on the brightness, contrast and
  colourfulness of that same random face of the other class (``match_look``): each class's
  looks are then one half its own and one half the other's, the same mixture for both.
- **Degradations** (``detector.augment``): flips, crops, colour, blur, rescaling and JPEG,
  drawn alike for both classes; a real face and the fake made from it (DFDC's pairs, a self-
  blend and its source) get the same draw.

``python -m detector audit`` measures what is left: how well trivial image statistics alone
tell the labels apart in each source's files, and in this stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from detector.augment import AugmentConfig, augment, self_blend
from detector.data import MASK_SIZE, Arrays, concat, manipulation_masks

if TYPE_CHECKING:
    from detector.training import TrainConfig

log = logging.getLogger("detector.sampling")

#: The faces whose resolution and look a source's other class is matched against: at most
#: this many per source and label, drawn at random.
LOOKS_PER_CLASS = 2048

#: The columns of a look: the face's resolution in its file, then the crop's brightness
#: (mean grey level), contrast (its spread) and colourfulness (mean distance from grey).
LOOK_COLUMNS = ("native", "brightness", "contrast", "colour")


@dataclass
class Source:
    """One source's endless training streams.

    Attributes:
        name: The set's name, or the pooled one-label sets' names joined by ``" + "``.
        size: Training images (for the source's share of the batches).
        labelled: Per label, a stream of ``(image, mask, known, label, native, source)``;
            empty for a source that trains on its pairs alone.
        reals: Its real images as ``(image, native)`` for self-blending, or ``None``.
        pairs: Real/fake pairs (each part stacked ``[real, fake]``), or ``None``.
        looks: Per label, ``(n, 4)`` looks (``LOOK_COLUMNS``) of a random sample of its faces,
            for ``match_resolution`` and ``match_look``.
    """

    name: str
    size: int
    labelled: dict[int, tf.data.Dataset]
    reals: tf.data.Dataset | None
    pairs: tf.data.Dataset | None
    looks: dict[int, np.ndarray]


def crop_looks(images: np.ndarray, natives: np.ndarray) -> np.ndarray:
    """``(N, 4)`` looks (``LOOK_COLUMNS``) of crops: ``native``, then what ``match_look``
    measures and sets, brightness, contrast and colourfulness."""
    out = np.zeros((len(images), 4), np.float32)
    out[:, 0] = natives
    for start in range(0, len(images), 1024):  # in slices: float copies of 20,000 crops would take 6 GB
        x = images[start : start + 1024].astype(np.float32)
        grey = x.mean(axis=-1, keepdims=True)
        out[start : start + 1024, 1] = grey.mean(axis=(1, 2, 3))
        out[start : start + 1024, 2] = grey.std(axis=(1, 2, 3))
        out[start : start + 1024, 3] = np.abs(x - grey).mean(axis=(1, 2, 3))
    return out


def sample_looks(looks: np.ndarray, seed: int = 0) -> np.ndarray:
    """At most ``LOOKS_PER_CLASS`` rows of ``looks``, drawn at random (all when fewer)."""
    if len(looks) <= LOOKS_PER_CLASS:
        return np.asarray(looks, np.float32)
    return np.asarray(looks, np.float32)[np.random.default_rng(seed).choice(len(looks), LOOKS_PER_CLASS, replace=False)]


def group_sources(train: list[Arrays]) -> list[Arrays]:
    """The training sources: each set with both labels, and one pool of the one-label sets.

    Images without a face are left out (at run time they get no verdict). A pool that
    holds one label only is left out too, with a warning.

    Args:
        train: The training split of each set.

    Returns:
        One ``Arrays`` per source.
    """
    sources, one_label = [], []
    for arrays in train:
        arrays = arrays.with_faces()
        labels = set(arrays.labels.tolist())
        if labels == {0, 1}:
            sources.append(arrays)
        elif labels:
            one_label.append(arrays)
    if one_label:
        pool = concat(one_label, name=" + ".join(a.name for a in one_label))
        if set(pool.labels.tolist()) == {0, 1}:
            sources.append(pool)
        else:
            log.warning("left out %s: it holds %s faces only, and no set of the other label stands against it",
                        pool.name, "fake" if pool.labels[0] else "real")
    return sources


def describe_sources(train: list[Arrays]) -> dict[str, str]:
    """What ``group_sources`` makes of each set, in words (for logs and the model card)."""
    out = {}
    for source in group_sources(train):
        for name in source.name.split(" + "):
            out[name] = "its own source" if name == source.name else f"pooled: {source.name}"
    for arrays in train:
        out.setdefault(arrays.name, "left out: one label only, with nothing of the other label against it")
    return out


def real_fake_pairs(arrays: Arrays) -> np.ndarray:
    """``(P, 2)`` indices ``[real, fake]`` of each fake and the real of its group.

    In DFDC a group is the source video: its real frame and the fake made from it show the
    same person, background and framing. A fake whose group has no real, or several, is
    left out.
    """
    reals_of_group: dict[str, list[int]] = {}
    for i in np.flatnonzero(arrays.labels == 0):
        reals_of_group.setdefault(str(arrays.groups[i]), []).append(int(i))
    pairs = [(reals[0], int(i)) for i in np.flatnonzero(arrays.labels == 1)
             if len(reals := reals_of_group.get(str(arrays.groups[i]), [])) == 1]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _shuffled(indices: np.ndarray, seed: int) -> tf.data.Dataset:
    """An endless, fully shuffled stream of row indices (one source and label, or its pairs)."""
    # The buffer holds the whole slice: these sets are sorted by label, and a partial shuffle
    # gives one-class batches, where BatchNorm learns the batch instead of the face.
    ds = tf.data.Dataset.from_tensor_slices(indices)
    return ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True).repeat()


def sources_from_arrays(train: list[Arrays], cfg: "TrainConfig") -> list[Source]:
    """The in-memory training split of each set, as ``Source`` streams (see ``group_sources``).

    Each source's crops are held once, as one tensor; its streams shuffle row indices and
    gather the rows, so memory does not grow with the number of streams or the shuffle.
    With ``cfg.paired``, a source with real/fake pairs (``real_fake_pairs``) trains on those
    pairs alone (in DFDC 3% of the images have no partner and are left out).
    """
    out = []
    for i, arrays in enumerate(group_sources(train)):
        masks, known = manipulation_masks(arrays, MASK_SIZE)
        # Variables, not constants: every function of tf.data that captured a constant would
        # hold a copy of it (three copies of 1.5 GB for DFDC), a variable by reference.
        columns = tuple(tf.Variable(c, trainable=False) for c in (
            arrays.images, masks[..., None], known.astype(np.float32), arrays.labels.astype(np.float32),
            arrays.native.astype(np.float32)))
        source = tf.constant(i, tf.int32)

        def rows(index, _columns=columns, _source=source):
            """The element of row ``index`` (or a pair's two rows, stacked)."""
            picked = tuple(tf.gather(c, index) for c in _columns)
            return (*picked, tf.fill(tf.shape(index), _source) if index.shape.rank else _source)

        pairs = real_fake_pairs(arrays) if cfg.paired else np.zeros((0, 2), np.int64)
        seed = cfg.seed + 10 * i
        labelled = {} if len(pairs) else {
            label: _shuffled(np.flatnonzero(arrays.labels == label), seed + label).map(rows) for label in (0, 1)}
        real_rows = np.flatnonzero(arrays.labels == 0)
        out.append(Source(
            arrays.name, len(arrays), labelled,
            _shuffled(real_rows, seed + 2).map(lambda j, _c=columns: (tf.gather(_c[0], j), tf.gather(_c[4], j)))
            if len(real_rows) else None,
            _shuffled(pairs, seed + 3).map(rows) if len(pairs) else None,
            {label: sample_looks(crop_looks(arrays.images[arrays.labels == label], arrays.native[arrays.labels == label]),
                                 seed) for label in (0, 1)},
        ))
    return out


def source_shares(sizes: list[int], min_share: float) -> np.ndarray:
    """Each source's share of the batches: proportional to the square root of its size, at
    least ``min_share`` (then normalized)."""
    shares = np.sqrt(np.asarray(sizes, np.float64))
    shares = np.maximum(shares / shares.sum(), min_share)
    return shares / shares.sum()


def match_resolution(image: tf.Tensor, native: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """A crop shown at ``target`` pixels of face where its file had ``native``, if fewer.

    The crop was cut from ``native`` pixels and resized to its side S, so it holds the
    detail of ``min(native, S)`` pixels; it is brought down to ``min(target, S)`` and back.

    Args:
        image: ``(S, S, 3)`` pixels.
        native: Side of the region the crop was cut from, in the file's pixels.
        target: The side whose detail the crop should have.

    Returns:
        ``(S, S, 3)`` float32 pixels.
    """
    x = tf.cast(image, tf.float32)
    size = tf.cast(tf.shape(image)[0], tf.float32)
    detail = tf.minimum(native, size)
    small = tf.cast(tf.round(size * tf.minimum(target, size) / tf.maximum(detail, 1.0)), tf.int32)
    small = tf.maximum(small, 8)
    return tf.cond(
        small < tf.cast(size, tf.int32),
        lambda: tf.image.resize(tf.image.resize(x, [small, small], antialias=True), tf.shape(image)[:2], "bilinear"),
        lambda: x,
    )


def match_look(image: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """A crop given the brightness, contrast and colourfulness ``target`` (``LOOK_COLUMNS[1:]``,
    as ``crop_looks`` measures them).

    The grey levels are shifted and stretched to the target's mean and spread, and each
    pixel's distance from grey scaled to the target's colourfulness (by at most 4 times
    either way), so the face keeps its shapes and its colours' hues.

    Args:
        image: ``(S, S, 3)`` float pixels, 0-255.
        target: ``(3,)``: brightness, contrast, colourfulness.

    Returns:
        ``(S, S, 3)`` float32 pixels, clipped to 0-255.
    """
    x = tf.cast(image, tf.float32)
    grey = tf.reduce_mean(x, axis=-1, keepdims=True)
    chroma = x - grey
    colour = tf.reduce_mean(tf.abs(chroma))
    mean, spread = tf.reduce_mean(grey), tf.math.reduce_std(grey)
    grey = (grey - mean) * (target[1] / tf.maximum(spread, 1.0)) + target[0]
    chroma *= tf.clip_by_value(target[2] / tf.maximum(colour, 0.5), 0.25, 4.0)
    return tf.clip_by_value(grey + chroma, 0.0, 255.0)


def _looks_table(sources: list[Source]) -> tuple[tf.Tensor, tf.Tensor]:
    """``(sources, 2, LOOKS_PER_CLASS, 4)`` looks and ``(sources, 2)`` counts of them."""
    table = np.zeros((len(sources), 2, LOOKS_PER_CLASS, len(LOOK_COLUMNS)), np.float32)
    counts = np.zeros((len(sources), 2), np.int32)
    for i, s in enumerate(sources):
        for label in (0, 1):
            rows = s.looks.get(label, np.zeros((0, len(LOOK_COLUMNS))))
            table[i, label, : len(rows)] = rows
            counts[i, label] = len(rows)
    return tf.constant(table), tf.constant(counts)


def balanced_batches(sources: list[Source], cfg: "TrainConfig", mask_size: int, with_sources: bool = False) -> tf.data.Dataset:
    """Mixes the sources' streams by share and label, adds self-blends, matches resolutions,
    degrades and batches.

    With ``cfg.paired`` every stream yields two images at a time: a real and the fake made
    from it (degraded alike, so that only the manipulation tells them apart), or two
    unrelated images of one label (degraded independently). The pairs stay next to each
    other, and an even batch never splits one.

    Args:
        sources: The sources (``sources_from_arrays`` or ``detector.shards``).
        cfg: The run's configuration.
        mask_size: Side of the mask head's output.
        with_sources: Also yield each image's source index (for tests and the audit).

    Returns:
        An endless dataset of ``(images, {"fake_logit", "mask_logit"}, sample weights)``
        batches (and ``sources`` when asked); the mask loss is weighted 0 where a fake's
        mask is unknown.
    """
    if not sources:
        raise ValueError("no training source has both labels: nothing to learn real from fake with")
    shares = source_shares([s.size for s in sources], cfg.min_set_share)
    blend = cfg.self_blend_share
    streams, weights = [], []
    for i, s in enumerate(sources):
        log.info("source %s: %d training faces, %.0f%% of each batch", s.name, s.size, 100 * shares[i])

    def add(ds: tf.data.Dataset, images_weight: float, tied: bool = False) -> None:
        if cfg.paired:  # equal weights draw equal numbers of images: every element holds two
            ds = (ds if tied else ds.batch(2)).map(lambda *element: (*element, tf.constant(tied)))
        streams.append(ds)
        weights.append(images_weight)

    for i, (source, share) in enumerate(zip(sources, shares)):
        blending = blend > 0 and source.reals is not None
        if source.pairs is not None:
            add(source.pairs, share * (1 - blend), tied=True)
        for label, ds in source.labelled.items():
            # Paired self-blends bring their own reals; unpaired ones are extra fakes.
            real_share = 1 - blend if cfg.paired and blending else 1
            add(ds, share / 2 * (1 - blend if label else real_share))
        if blending:
            seeds = tf.data.Dataset.random(seed=cfg.seed + 10 * i + 5).batch(2)
            blended = tf.data.Dataset.zip(source.reals, seeds).map(
                lambda real, s, _i=i: _self_blended(real, s, _i), num_parallel_calls=tf.data.AUTOTUNE)
            if cfg.paired:
                add(blended.map(_as_pair), share * blend, tied=True)
            else:
                add(blended.map(lambda real, fake: fake), share / 2 * blend)
    weights = np.array(weights) / np.sum(weights)
    mixed = tf.data.Dataset.sample_from_datasets(streams, weights.tolist(), seed=cfg.seed)
    table, counts = _looks_table(sources)
    aug = cfg.augment

    def prepare(element, seed, match_label):
        image, mask, known, label, native, source = element
        # A random face of the other class of this source (of the source's fakes for both
        # members of a pair), whose resolution and, half the time, look this face takes on,
        # as the module's docstring explains.
        n = counts[source, match_label]
        fold = tf.random.experimental.stateless_fold_in
        draw = tf.random.stateless_uniform([], fold(seed, 7), 0, tf.maximum(n, 1), dtype=tf.int32)
        partner = table[source, match_label, draw]
        x = tf.cast(image, tf.float32)
        if cfg.match_resolution:
            x = match_resolution(x, native, tf.where(n > 0, partner[0], native))
        if cfg.match_look:
            take = (n > 0) & (tf.random.stateless_uniform([], fold(seed, 11)) < 0.5)
            x = tf.cond(take, lambda: match_look(x, partner[1:]), lambda: x)
        image, mask = augment(x, mask, seed, mask_size, aug)
        # The mask loss is one value per pixel: its weight must be too (a per-image weight
        # would be broadcast against the pixel rows).
        weights = {"fake_logit": tf.constant(1.0), "mask_logit": tf.fill([mask_size, mask_size], known)}
        out = (image, {"fake_logit": tf.reshape(label, [1]), "mask_logit": mask}, weights)
        return (*out, source) if with_sources else out

    def prepare_one(element, seeds):
        label = tf.cast(element[3], tf.int32)
        return prepare(element, seeds, 1 - label)

    def prepare_pair(element, seeds):
        *parts, tied = element
        second_seed = tf.where(tied, seeds[:2], seeds[2:])
        first_part, second_part = tuple(p[0] for p in parts), tuple(p[1] for p in parts)
        labels = tf.cast(tf.stack([first_part[3], second_part[3]]), tf.int32)
        source = first_part[5]
        # A tied pair matches both members against the source's fakes (its reals if none).
        pair_label = tf.where(counts[source, 1] > 0, 1, 0)
        first = prepare(first_part, seeds[:2], tf.where(tied, pair_label, 1 - labels[0]))
        second = prepare(second_part, second_seed, tf.where(tied, pair_label, 1 - labels[1]))
        return tf.nest.map_structure(lambda a, b: tf.stack([a, b]), first, second)

    if cfg.paired:
        seeds = tf.data.Dataset.random(seed=cfg.seed).batch(4)
        ds = tf.data.Dataset.zip(mixed, seeds).map(prepare_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.unbatch()
    else:
        seeds = tf.data.Dataset.random(seed=cfg.seed).batch(2)
        ds = tf.data.Dataset.zip(mixed, seeds).map(prepare_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(cfg.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def training_dataset(train: list[Arrays], cfg: "TrainConfig", mask_size: int, with_sources: bool = False) -> tf.data.Dataset:
    """``balanced_batches`` of the in-memory training split of each set."""
    return balanced_batches(sources_from_arrays(train, cfg), cfg, mask_size, with_sources)


def _self_blended(real: tuple, seed: tf.Tensor, source: int) -> tuple[tuple, tuple]:
    """A real face and its self-blend (``augment.self_blend``), as two stream elements."""
    image, native = real
    blended, mask = self_blend(image, seed)
    mask = tf.image.resize(mask, [MASK_SIZE, MASK_SIZE], method="area")
    source = tf.constant(source, tf.int32)
    return ((image, tf.zeros_like(mask), tf.constant(1.0), tf.constant(0.0), native, source),
            (blended, mask, tf.constant(1.0), tf.constant(1.0), native, source))


def _as_pair(real: tuple, fake: tuple) -> tuple:
    """Two elements stacked ``[real, fake]``, as a pair stream's element."""
    return tuple(tf.stack([a, b]) for a, b in zip(real, fake))
