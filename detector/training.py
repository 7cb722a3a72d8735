"""``train(cfg)``: fit the CNN on labelled face sets, calibrate, evaluate, write ``weights/``.

The entry point ``train.py`` only parses arguments into a ``TrainConfig`` and calls
``train``. Evaluation of the finished model is its own step (``detector.evaluation``),
called here once on the validation and test splits so that the card records them.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import shutil
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from detector import evaluation
from detector.augment import AugmentConfig, augment, self_blend
from detector.card import CARD_FILE, MODEL_FILE, WEIGHTS_DIR, ModelCard, sha256_of
from detector.data import LABELS, MASK_SIZE, SPLITS, Arrays, load_set, manipulation_masks
from detector.defaults import SHARED_DATA
from detector.faces import FACE_MARGIN
from detector.model import flops, make_model, view_averaged_logits, with_mask_head
from detector.views import SCORING_VIEWS, View

log = logging.getLogger("detector.training")


@dataclass
class TrainConfig:
    """One training run, with the defaults that produced the shipped weights.

    Attributes:
        sets: Set folders (``<set>/real``, ``<set>/fake``, optional ``metadata.csv``).
        out_dir: Where ``model.keras`` and the model card are written.
        input_size: Side of the square face crops.
        face_margin: Side of a face crop relative to the face finder's box, in training and,
            through the card, at run time (``faces.FACE_MARGIN``).
        widths: Filters per residual stage (see ``make_model``).
        blocks: Residual units per stage.
        stem_width: Filters of the stem.
        stem_stride: Stride (and kernel) of the patchify stem; 1 for a 3x3 stem.
        dropout: Dropout before the classifier.
        batch_size: Examples per step.
        epochs: Most epochs; early stopping usually ends sooner.
        steps_per_epoch: Steps per epoch; ``None`` means one pass over the training split.
        learning_rate: Peak AdamW learning rate (cosine decay after a short warm-up).
        weight_decay: AdamW weight decay.
        label_smoothing: Binary cross-entropy label smoothing.
        patience: Epochs without a better validation AUC before stopping.
        val_weighting: How the per-set validation AUCs are combined into the one figure that
            picks the checkpoint and stops early: ``"images"`` weights each set by its
            validation images, ``"sets"`` counts every set the same. A small set's AUC is
            noisy (303 StyleGAN images: about +-0.03), and counted as much as DFDC's 3231 it
            picked an epoch 0.013 below DFDC's best in the run before this default.
        min_set_share: Each set gets at least this share of every batch, so a small set
            (ffhq_stylegan) is not drowned by a large one; within a set, real and fake are
            drawn equally often (class balance).
        self_blend_share: Share of each set's fakes that are self-blended images made from
            its real faces (``augment.self_blend``); 0 turns them off.
        paired: Train on real/fake pairs: each fake next to the real face it was made from
            (a DFDC fake and its source frame, a self-blend and its source face), in the same
            batch and with the same augmentation, so the only difference the network sees
            within a pair is the manipulation itself (``training_dataset``).
        mask_loss_weight: Weight of the training-only head that predicts where a fake was
            manipulated (``model.with_mask_head``); 0 turns it off.
        pair_loss_weight: Weight of a ranking loss on each real/fake pair of a paired batch
            (``paired_ranking_loss``): the fake's logit should exceed its real's. 0 turns
            it off; without ``paired`` it is off, since neighbours are then no pairs.
        max_minutes: Stop after the epoch that passes this wall-clock budget, counted from
            the start of the run, so decoding a cold cache is inside it; calibration and
            evaluation take a few more minutes.
        seed: Seeds weights, shuffling and augmentation.
        limit: Use only this many images per (split, label) of each set (quick runs).
        cache_dir: Where decoded crops are cached; ``None`` for the default.
        augment: Augmentation strengths.
        uncertain_width: Half-width of the "uncertain" band around the threshold, in
            calibrated probability.
        verbose: Keras progress output (0 silent, 1 bar, 2 one line per epoch).
        strategy: ``"default"`` (one device), ``"mirrored"`` (every GPU of this host) or
            ``"multiworker"`` (a cluster described by ``TF_CONFIG``); see
            ``distribution_strategy``. ``batch_size`` is the global batch.
        shards: A shard folder (``detector.shards``) to stream the training split from,
            instead of loading ``sets`` into memory; its validation and test splits are
            read into memory.
    """

    sets: list[str] = field(default_factory=lambda: [str(SHARED_DATA / "dfdc_faces"), str(SHARED_DATA / "ffhq_stylegan")])
    out_dir: str = str(WEIGHTS_DIR)
    input_size: int = 128
    face_margin: float = FACE_MARGIN
    widths: tuple[int, ...] = (64, 128, 256)
    blocks: tuple[int, ...] = (2, 2, 2)
    stem_width: int = 48
    stem_stride: int = 4
    dropout: float = 0.3
    batch_size: int = 64
    epochs: int = 34
    steps_per_epoch: int | None = None
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    patience: int = 6
    val_weighting: str = "images"
    min_set_share: float = 0.15
    self_blend_share: float = 0.25
    paired: bool = True
    mask_loss_weight: float = 1.0
    pair_loss_weight: float = 0.0
    max_minutes: float = 84.0
    seed: int = 1234
    limit: int | None = None
    cache_dir: str | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    uncertain_width: float = 0.1
    verbose: int = 2
    strategy: str = "default"
    shards: str | None = None

    @classmethod
    def quick(cls, out_dir: str, **overrides) -> "TrainConfig":
        """A run of seconds on a tiny subset with a tiny network, for tests and smoke checks."""
        base = dict(out_dir=out_dir, input_size=32, widths=(8, 16), blocks=(1, 1), stem_width=8, stem_stride=1,
                    batch_size=16, epochs=2, steps_per_epoch=3, limit=12, patience=2, verbose=0)
        base.update(overrides)
        return cls(**base)


def _stream(tensors: tuple, seed: int) -> tf.data.Dataset:
    """An endless, fully shuffled stream of one (set, label) slice of the training data."""
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    # The buffer holds the whole slice: the README warns that partial shuffles of these
    # label-sorted sets give one-class batches, and BatchNorm then learns the batch.
    return ds.shuffle(len(tensors[0]), seed=seed, reshuffle_each_iteration=True).repeat()


@dataclass
class _SetStreams:
    """One set's endless training streams: its size, ``(image, mask, known, label)`` per
    label, its real images alone (for self-blending) or ``None`` without reals, and its
    real/fake pairs (the same structure, each part stacked ``[real, fake]``) or ``None``."""

    size: int
    labelled: dict[int, tf.data.Dataset]
    reals: tf.data.Dataset | None
    pairs: tf.data.Dataset | None = None


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


def training_dataset(train: list[Arrays], cfg: TrainConfig, mask_size: int) -> tf.data.Dataset:
    """Balanced, augmented training batches drawn from several sets.

    Each set contributes its share of every batch (at least ``cfg.min_set_share``), half
    real and half fake; ``cfg.self_blend_share`` of the fake half are self-blended images
    made on the fly from the set's real faces. With ``cfg.paired``, a set with real/fake
    pairs (``real_fake_pairs``) trains on those pairs alone (in DFDC 3% of the images have
    no partner and are left out), and each self-blend comes with its source face.

    Args:
        train: The training split of each set.
        cfg: The run's configuration.
        mask_size: Side of the mask head's output.

    Returns:
        An endless dataset of ``(images, {"fake_logit", "mask_logit"}, sample weights)``
        batches; the mask loss is weighted 0 where a fake's mask is unknown.
    """
    sets = []
    for i, arrays in enumerate(train):
        masks, known = manipulation_masks(arrays, MASK_SIZE)
        parts = (arrays.images, masks[..., None], known.astype(np.float32), arrays.labels.astype(np.float32))
        pairs = real_fake_pairs(arrays) if cfg.paired else np.zeros((0, 2), np.int64)
        labelled = {}
        for label in (0, 1) if not len(pairs) else ():  # a paired set trains on its pairs alone
            keep = arrays.labels == label
            if keep.any():
                labelled[label] = _stream(tuple(part[keep] for part in parts), cfg.seed + 10 * i + label)
        reals = arrays.images[arrays.labels == 0]
        paired = _stream(tuple(part[pairs] for part in parts), cfg.seed + 10 * i + 3) if len(pairs) else None
        sets.append(_SetStreams(len(arrays), labelled, _stream((reals,), cfg.seed + 10 * i + 2) if len(reals) else None,
                                paired))
    return _balanced_batches(sets, cfg, mask_size)


def shard_training_dataset(folder: str, cfg: TrainConfig, mask_size: int) -> tf.data.Dataset:
    """``training_dataset`` for the training split of a shard folder, streamed from disk.

    Each (set, label) stream reads its files in a shuffled order and shuffles within a
    buffer of ``shards.SHUFFLE_BUFFER`` elements: files hold one label each, so batches
    are balanced by the sampling, not by the shuffle. For the same reason a fake cannot be
    paired with its real frame here: with ``cfg.paired`` only self-blends come in pairs.

    Args:
        folder: A folder written by ``detector.shards.write_shards``.
        cfg: The run's configuration.
        mask_size: Side of the mask head's output.

    Returns:
        The same batches' structure as ``training_dataset``.
    """
    from detector.shards import SHUFFLE_BUFFER, read_index, read_shards, shard_pattern


    def stream(name: str, label: int, seed: int) -> tf.data.Dataset:
        ds = read_shards(shard_pattern(folder, name, "train", LABELS[label]), seed=seed)
        return ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True).repeat()

    sets = []
    for i, (name, counts) in enumerate(read_index(folder)["sets"].items()):
        seed = cfg.seed + 10 * i
        labelled = {label: stream(name, label, seed + label) for label in (0, 1) if counts["train"][LABELS[label]]}
        reals = stream(name, 0, seed + 2).map(lambda x, m, k, y: x) if counts["train"]["real"] else None
        sets.append(_SetStreams(sum(counts["train"].values()), labelled, reals))
    return _balanced_batches(sets, cfg, mask_size)


def _balanced_batches(sets: list[_SetStreams], cfg: TrainConfig, mask_size: int) -> tf.data.Dataset:
    """Mixes the sets' streams by share and label, adds self-blends, augments and batches.

    With ``cfg.paired`` every stream yields two images at a time: a real and the fake made
    from it (augmented alike, so that only the manipulation tells them apart), or two
    unrelated images of one label (augmented independently). The pairs stay next to each
    other, and an even batch never splits one.
    """
    total = sum(s.size for s in sets)
    shares = np.array([max(s.size / total, cfg.min_set_share) for s in sets])
    shares /= shares.sum()
    blend = cfg.self_blend_share
    streams, weights = [], []

    def add(ds: tf.data.Dataset, images_weight: float, tied: bool = False) -> None:
        if cfg.paired:  # equal weights draw equal numbers of images: every element holds two
            ds = (ds if tied else ds.batch(2)).map(lambda *element: (*element, tf.constant(tied)))
        streams.append(ds)
        weights.append(images_weight)

    for i, (streams_of_set, share) in enumerate(zip(sets, shares)):
        reals_blended = blend > 0 and streams_of_set.reals is not None
        if streams_of_set.pairs is not None:
            add(streams_of_set.pairs, share * (1 - blend), tied=True)
        for label, ds in streams_of_set.labelled.items():
            # Paired self-blends bring their own reals; unpaired ones are extra fakes.
            real_share = 1 - blend if cfg.paired and reals_blended else 1
            add(ds, share / 2 * (1 - blend if label else real_share))
        if reals_blended:
            blend_seeds = tf.data.Dataset.random(seed=cfg.seed + 10 * i + 5).batch(2)
            ds = tf.data.Dataset.zip(streams_of_set.reals, blend_seeds)
            if cfg.paired:
                add(ds.map(_self_blend_pair, num_parallel_calls=tf.data.AUTOTUNE), share * blend, tied=True)
            else:
                add(ds.map(_self_blended, num_parallel_calls=tf.data.AUTOTUNE), share / 2 * blend)
    weights = np.array(weights) / np.sum(weights)
    mixed = tf.data.Dataset.sample_from_datasets(streams, weights.tolist(), seed=cfg.seed)
    aug = cfg.augment

    def prepare(element, seed):
        image, mask, known, label = element
        image, mask = augment(image, mask, seed, mask_size, aug)
        # The mask loss is one value per pixel: its weight must be too (a per-image weight
        # would be broadcast against the pixel rows).
        weights = {"fake_logit": tf.constant(1.0), "mask_logit": tf.fill([mask_size, mask_size], known)}
        return image, {"fake_logit": tf.reshape(label, [1]), "mask_logit": mask}, weights

    def prepare_pair(element, seeds):
        *parts, tied = element
        second_seed = tf.where(tied, seeds[:2], seeds[2:])
        first = prepare(tuple(part[0] for part in parts), seeds[:2])
        second = prepare(tuple(part[1] for part in parts), second_seed)
        return tf.nest.map_structure(lambda a, b: tf.stack([a, b]), first, second)

    if cfg.paired:
        seeds = tf.data.Dataset.random(seed=cfg.seed).batch(4)
        ds = tf.data.Dataset.zip(mixed, seeds).map(prepare_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.unbatch()
    else:
        seeds = tf.data.Dataset.random(seed=cfg.seed).batch(2)
        ds = tf.data.Dataset.zip(mixed, seeds).map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(cfg.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _self_blended(element, seed):
    (image,) = element if isinstance(element, tuple) else (element,)
    blended, mask = self_blend(image, seed)
    mask = tf.image.resize(mask, [MASK_SIZE, MASK_SIZE], method="area")
    return blended, mask, tf.constant(1.0), tf.constant(1.0)


def _self_blend_pair(element, seed):
    """A real face and its self-blend, stacked ``[real, fake]`` as a pair stream's element."""
    (image,) = element if isinstance(element, tuple) else (element,)
    blended, mask, known, label = _self_blended(image, seed)
    return (tf.stack([image, blended]), tf.stack([tf.zeros_like(mask), mask]),
            tf.stack([known, known]), tf.stack([1.0 - label, label]))


#: Each model's traced scoring functions, by views; entries go when their model does.
_scorers: "weakref.WeakKeyDictionary[keras.Model, dict[tuple[View, ...], Any]]" = weakref.WeakKeyDictionary()


def predict_logits(model: keras.Model, images: np.ndarray, views: Sequence[View], batch_size: int = 256) -> np.ndarray:
    """The model's fake logits for a stack of uint8 crops, without augmentation, each the
    mean over ``views``, as the ``Detector`` scores them (``model.view_averaged_logits``).

    Args:
        model: A network from ``make_model``.
        images: ``(N, S, S, 3)`` crops.
        views: The scoring views (a card's ``scoring_views``, or ``views.SCORING_VIEWS``
            for a model being trained).
        batch_size: Crops per call with two views; fewer with more views, so memory stays
            flat.

    Returns:
        ``(N,)`` logits.
    """
    views = tuple(views)
    by_views = _scorers.setdefault(model, {})
    score = by_views.get(views)
    if score is None:
        # A direct call under a tf.function, not predict_on_batch: it reads mirrored weights
        # once under a multi-replica strategy, and costs no per-call overhead. Kept per model,
        # so validating every epoch reuses one trace instead of retracing it on each call.
        # The function holds the model weakly: a strong reference would keep the entry alive.
        model_ref = weakref.ref(model)
        score = by_views[views] = tf.function(lambda x: view_averaged_logits(model_ref(), x, views),
                                              reduce_retracing=True)
    step = max(1, batch_size * 2 // len(views))
    out = [score(images[i : i + step].astype(np.float32)).numpy() for i in range(0, len(images), step)]
    return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)


VAL_WEIGHTINGS = ("images", "sets")


def combined_auc(aucs: dict[str, float], sizes: dict[str, int], weighting: str) -> float:
    """One validation figure from per-set ROC-AUCs.

    Per set, not pooled, so no set is judged by how its scores sit beside another set's.

    Args:
        aucs: Set name -> validation ROC-AUC.
        sizes: Set name -> validation images.
        weighting: ``"images"`` (a weighted mean, by ``sizes``) or ``"sets"`` (a plain mean).

    Returns:
        The combined AUC; 0 when ``aucs`` is empty.

    Raises:
        ValueError: an unknown ``weighting``.
    """
    if weighting not in VAL_WEIGHTINGS:
        raise ValueError(f"val_weighting must be one of {VAL_WEIGHTINGS}, not {weighting!r}")
    if not aucs:
        return 0.0
    weights = [sizes[name] if weighting == "images" else 1 for name in aucs]
    return float(np.average(list(aucs.values()), weights=weights))


class _Validation(keras.callbacks.Callback):
    """Scores the shipped (single-output) model on validation data after every epoch,
    keeps the best checkpoint by the combined per-set ROC-AUCs (``combined_auc``), and
    stops early.
    """

    def __init__(self, model: keras.Model, val: list[Arrays], path: Path, patience: int, weighting: str) -> None:
        super().__init__()
        self.serving, self.val, self.path, self.patience, self.weighting = model, val, path, patience, weighting
        self.best, self.best_epoch = -np.inf, -1

    def on_epoch_end(self, epoch, logs=None) -> None:
        aucs, sizes = {}, {}
        for part in self.val:
            if len(np.unique(part.labels)) == 2:
                logits = predict_logits(self.serving, part.images, SCORING_VIEWS)
                aucs[part.name] = float(roc_auc_score(part.labels, logits))
                sizes[part.name] = len(part.labels)
        score = combined_auc(aucs, sizes, self.weighting)
        if logs is not None:
            logs["val_auc"] = score
            logs.update({f"val_auc_{k}": v for k, v in aucs.items()})
        log.info("epoch %d: validation AUC %.4f %s", epoch + 1, score, {k: round(v, 4) for k, v in aucs.items()})
        if score > self.best:
            self.best, self.best_epoch = score, epoch
            self.serving.save(self.path)
        elif epoch - self.best_epoch >= self.patience:
            log.info("no better validation AUC for %d epochs: stopping", self.patience)
            self.model.stop_training = True


class _TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch that passes a wall-clock deadline.

    Args:
        deadline: A ``time.monotonic()`` value.
    """

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def on_epoch_end(self, epoch, logs=None) -> None:
        if time.monotonic() > self.deadline:
            log.info("time budget reached after epoch %d", epoch + 1)
            self.model.stop_training = True


STRATEGIES = ("default", "mirrored", "multiworker")


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy a run trains under.

    Args:
        name: ``"default"``: this process's default device (TensorFlow's default
            strategy, which changes nothing). ``"mirrored"``: one replica per GPU of this
            host (per CPU device when there is no GPU), gradients all-reduced each step.
            ``"multiworker"``: the same across the hosts of the ``TF_CONFIG`` environment
            variable, e.g. ``{"cluster": {"worker": ["host1:2222", "host2:2222"]},
            "task": {"type": "worker", "index": 0}}``; every worker runs the same command.

    Returns:
        The strategy; build and compile the model inside its ``scope()``.

    Raises:
        ValueError: ``name`` is not one of ``STRATEGIES``.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # MirroredStrategy() alone takes CPU:0 only when there is no GPU; naming the CPU
        # devices lets logical CPU devices stand in for GPUs (tests, CPU hosts).
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus or tf.config.list_logical_devices("CPU")])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files: always, except on the workers of a
    cluster other than the chief (the ``chief`` task, else worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type in (None, "chief"):
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def _fit_across_workers(trainer: keras.Model, dataset: tf.data.Dataset, steps: int, epochs: int,
                        callbacks: list[keras.callbacks.Callback], strategy: tf.distribute.Strategy) -> keras.callbacks.History:
    """``trainer.fit`` for a cluster of workers: the same compiled loss, optimizer and callbacks.

    Keras 3.15's ``Model.fit`` cannot train under ``MultiWorkerMirroredStrategy`` with more
    than one worker (keras-team/keras#20585): it all-reduces a whole input batch to build the
    model, then averages its scalar logs along an axis they do not have. This loop runs one
    all-reduced step at a time and logs the mean loss of each epoch (no training metrics).
    """
    with strategy.scope():
        trainer.optimizer.build(trainer.trainable_variables)
    batches = iter(strategy.experimental_distribute_dataset(dataset))

    @tf.function
    def step(iterator):
        def replica_step(x, y, weights):
            with tf.GradientTape() as tape:
                # Scaled by 1 / replicas: the sum over replicas is the batch's mean loss.
                loss = trainer.compute_loss(x, y, trainer(x, training=True), weights)
            grads = tape.gradient(loss, trainer.trainable_variables)
            trainer.optimizer.apply_gradients(zip(grads, trainer.trainable_variables))
            return loss

        return strategy.reduce("SUM", strategy.run(replica_step, args=next(iterator)), axis=None)

    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList([*callbacks, history], model=trainer)
    trainer.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(epochs):
        callback_list.on_epoch_begin(epoch)
        logs = {"loss": float(np.mean([step(batches) for _ in range(steps)]))}
        callback_list.on_epoch_end(epoch, logs)
        # Stop together: a worker that stopped alone (its clock passed the time budget)
        # would leave the others waiting for it in the next all-reduce.
        if float(strategy.reduce("SUM", tf.constant(float(trainer.stop_training)), axis=None)) > 0:
            break
    callback_list.on_train_end(logs)
    return history


def paired_ranking_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """A logistic ranking loss on the pairs of a paired batch, per image.

    Paired batches hold a real face and the fake made from it side by side (``training_dataset``).
    Within such a pair only the manipulation differs, so asking for ``logit(fake) >
    logit(real)`` trains on that difference alone, free of the person, background and
    compression that the per-image loss must also see past. Neighbours of one label (two
    unrelated images) add nothing.

    Args:
        labels: ``(B, 1)`` labels, 1 for fake, of an even batch whose pairs are neighbours.
        logits: ``(B, 1)`` fake logits.

    Returns:
        ``(B,)`` losses: each pair's ``softplus(-(z_fake - z_real))``, half to each member,
        0 for pairs of one label.
    """
    y = tf.reshape(tf.cast(labels, logits.dtype), [-1, 2])
    z = tf.reshape(logits, [-1, 2])
    sign = y[:, 1] - y[:, 0]  # +1 for [real, fake], -1 for [fake, real], 0 for one label
    pair = tf.nn.softplus(-sign * (z[:, 1] - z[:, 0])) * tf.abs(sign)
    return tf.repeat(pair / 2, 2)


class _LogitLoss(keras.losses.Loss):
    """Binary cross-entropy on the fake logit, plus ``pair_weight`` times
    ``paired_ranking_loss``."""

    def __init__(self, label_smoothing: float, pair_weight: float) -> None:
        super().__init__(name="fake_logit_loss")
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=label_smoothing, reduction=None)
        self.pair_weight = pair_weight

    def call(self, y_true, y_pred):
        loss = self.bce(y_true, y_pred)
        if self.pair_weight:
            loss += self.pair_weight * paired_ranking_loss(y_true, y_pred)
        return loss


def build_trainer(cfg: TrainConfig, steps_per_epoch: int) -> tuple[keras.Model, keras.Model]:
    """The network and its compiled training model (the network plus the mask head).

    Call it inside ``strategy.scope()`` so the variables are placed for the strategy.

    Args:
        cfg: The run's configuration.
        steps_per_epoch: Steps per epoch, for the learning-rate schedule.

    Returns:
        ``(model, trainer)``: the single-output network that ships, and the compiled
        two-output model that trains it (they share every layer).
    """
    model = make_model(cfg.input_size, cfg.widths, cfg.blocks, cfg.stem_width, cfg.stem_stride, cfg.dropout)
    trainer = with_mask_head(model)
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 10, decay_steps=steps_per_epoch * cfg.epochs,
        warmup_target=cfg.learning_rate, warmup_steps=min(steps_per_epoch, 500),
    )
    trainer.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
        loss={
            "fake_logit": _LogitLoss(cfg.label_smoothing, cfg.pair_loss_weight if cfg.paired else 0.0),
            "mask_logit": keras.losses.BinaryCrossentropy(from_logits=True),
        },
        loss_weights={"fake_logit": 1.0, "mask_logit": cfg.mask_loss_weight},
        metrics={"fake_logit": [keras.metrics.AUC(name="auc", from_logits=True)]},
    )
    return model, trainer


def calibrate_and_evaluate(model: keras.Model, sets: list[Arrays], uncertain_width: float,
                           views: Sequence[View] = SCORING_VIEWS,
                           splits: Sequence[str] = ("val", "test")) -> dict[str, Any]:
    """Fits the calibration, threshold and uncertain band on validation data, then scores
    the given splits with them.

    Calibration and the threshold come from validation data only; test is scored once.

    Args:
        model: The trained network.
        sets: The run's sets (their ``val`` split, and those in ``splits``, are used).
        uncertain_width: Half-width of the "uncertain" band around the threshold.
        views: The scoring views the calibration is fitted through.
        splits: The splits scored into ``metrics``; ``("val",)`` when only the
            calibration is wanted (test is then not scored at all).

    Returns:
        The card fields ``scoring_views``, ``temperature``, ``bias``, ``threshold``,
        ``uncertain_band`` and ``metrics`` (``evaluation.report`` per split).

    Raises:
        ValueError: ``splits`` names a split other than ``val`` and ``test``.
    """
    views = tuple(views)
    if not set(splits) <= {"val", "test"}:
        raise ValueError(f"splits {tuple(splits)} must be among ('val', 'test')")
    logits = {split: [predict_logits(model, a.split(split).images, views) for a in sets] for split in {"val", *splits}}
    val_labels = np.concatenate([a.split("val").labels for a in sets])
    temperature, bias = evaluation.fit_platt(val_labels, np.concatenate(logits["val"]))
    val_p = evaluation.apply_temperature(np.concatenate(logits["val"]), temperature, bias)
    threshold = evaluation.choose_threshold(val_labels, val_p)
    band = (max(0.0, threshold - uncertain_width), min(1.0, threshold + uncertain_width))
    metrics = {
        split: evaluation.report(
            {a.name: (a.split(split).labels, evaluation.apply_temperature(z, temperature, bias))
             for a, z in zip(sets, logits[split])},
            threshold, uncertain_band=band,
        )
        for split in splits
    }
    return {"scoring_views": views, "temperature": float(temperature), "bias": float(bias), "threshold": float(threshold),
            "uncertain_band": (float(band[0]), float(band[1])), "metrics": metrics}


def refit_calibration(model: keras.Model, card: ModelCard, data_dir: str | Path = SHARED_DATA,
                      cache_dir: str | Path | None = None, views: Sequence[View] = SCORING_VIEWS,
                      splits: Sequence[str] = ("val", "test")) -> dict[str, Any]:
    """``calibrate_and_evaluate`` on the sets a card names (found in ``data_dir``), framed
    and limited as the card's run framed them.

    Args:
        model: The card's network.
        card: Its model card.
        data_dir: Folder holding the card's sets, by name.
        cache_dir: Crop cache (``data.load_set``).
        views: The scoring views to calibrate through.
        splits: The splits scored into ``metrics`` (see ``calibrate_and_evaluate``).

    Returns:
        The card fields ``calibrate_and_evaluate`` returns.

    Raises:
        ValueError: the card names no sets.
    """
    config = card.training.get("config", {})
    sets = [load_set(Path(data_dir) / Path(s).name, card.input_size, cache_dir, config.get("limit"),
                     margin=card.face_margin)
            for s in config.get("sets", [])]
    if not sets:
        raise ValueError(f"the card (sha256 {card.sha256[:12]}…) names no training sets to calibrate on")
    return calibrate_and_evaluate(model, sets, config.get("uncertain_width", TrainConfig.uncertain_width), views, splits)


def recalibrate(weights_dir: str | Path = WEIGHTS_DIR, data_dir: str | Path = SHARED_DATA,
                cache_dir: str | Path | None = None, views: Sequence[View] = SCORING_VIEWS) -> ModelCard:
    """Refits a trained model's calibration, threshold and band, and re-scores its card.

    ``train`` does this as its last step; this reruns that step alone on existing weights,
    with the current scoring code, on the sets named in the card (found in ``data_dir``).
    The weights are not changed. The card keeps, as ``training.validation_views``, the views
    its checkpoint was chosen through, which may differ from those it is now calibrated on.

    Args:
        weights_dir: Folder with ``model.keras`` and ``model_card.json``.
        data_dir: Folder holding the card's sets, by name.
        cache_dir: Crop cache (``data.load_set``).
        views: The scoring views to calibrate through; the card records them.

    Returns:
        The rewritten card.
    """
    weights_dir = Path(weights_dir)
    card = ModelCard.load(weights_dir)
    card.verify(weights_dir / MODEL_FILE)
    model = keras.saving.load_model(weights_dir / MODEL_FILE, safe_mode=True, compile=False)
    fitted = refit_calibration(model, card, data_dir, cache_dir, views)
    training = {"validation_views": card.scoring_views, **card.training, "calibrated_by": "python -m detector calibrate"}
    card = replace(card, **fitted, training=training)
    card.save(weights_dir)
    return card


def train(cfg: TrainConfig) -> ModelCard:
    """Trains, calibrates and evaluates a model, and writes it with its card.

    Args:
        cfg: The run's configuration.

    Returns:
        The model card written next to the weights.
    """
    started = time.monotonic()
    # First: a multi-worker strategy must exist before any other TensorFlow operation runs.
    strategy = distribution_strategy(cfg.strategy)
    combined_auc({}, {}, cfg.val_weighting)  # an unknown weighting fails now, not after decoding and an epoch
    keras.utils.set_random_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    if not is_chief(strategy):  # other workers train alike but write where no one reads
        out_dir = Path(tempfile.mkdtemp(prefix=f"worker{strategy.cluster_resolver.task_id}-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "run"
    work.mkdir(exist_ok=True)

    if cfg.shards:
        from detector.shards import read_arrays, read_index

        index = read_index(cfg.shards)
        if index["input_size"] != cfg.input_size:
            raise ValueError(f"shards {cfg.shards} hold {index['input_size']} px crops, the run wants {cfg.input_size} px")
        if index.get("face_margin", FACE_MARGIN) != cfg.face_margin:
            raise ValueError(f"shards {cfg.shards} hold faces framed at {index['face_margin']}x the box, "
                             f"the run frames them at {cfg.face_margin}x: write them again")
        counts = index["sets"]
        sets = [read_arrays(cfg.shards, name, ("val", "test")) for name in counts]
    else:
        sets = [load_set(s, cfg.input_size, cfg.cache_dir, cfg.limit, margin=cfg.face_margin) for s in cfg.sets]
        counts = {a.name: {s: {"real": int(((a.splits == s) & (a.labels == 0)).sum()),
                               "fake": int(((a.splits == s) & (a.labels == 1)).sum())}
                           for s in SPLITS} for a in sets}
    for name, by_split in counts.items():
        log.info("%s: %d images (%s)", name, sum(sum(c.values()) for c in by_split.values()),
                 {s: sum(c.values()) for s, c in by_split.items()})
    # On a first run this includes decoding every image into the crop cache, which the
    # time budget (``max_minutes``) counts too.
    log.info("crops ready after %.1f min", (time.monotonic() - started) / 60)
    val = [a.split("val") for a in sets]

    steps = cfg.steps_per_epoch or math.ceil(sum(sum(c["train"].values()) for c in counts.values()) / cfg.batch_size)
    with strategy.scope():
        model, trainer = build_trainer(cfg, steps)
    mask_size = trainer.get_layer("mask_logit").output.shape[1]
    if cfg.shards:
        dataset = shard_training_dataset(cfg.shards, cfg, mask_size)
    else:
        dataset = training_dataset([a.split("train") for a in sets], cfg, mask_size)
    if cfg.strategy != "default":
        # Each worker keeps its share of the batches; in-memory data has no files to split.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    best = work / "best.keras"
    validation = _Validation(model, val, best, cfg.patience, cfg.val_weighting)
    callbacks = [validation, keras.callbacks.CSVLogger(work / "history.csv"), _TimeBudget(started + cfg.max_minutes * 60)]
    if cfg.strategy == "multiworker":
        history = _fit_across_workers(trainer, dataset, steps, cfg.epochs, callbacks, strategy).history
    else:
        history = trainer.fit(
            dataset,
            steps_per_epoch=steps,
            epochs=cfg.epochs,
            shuffle=False,  # the dataset is already shuffled and balanced
            verbose=cfg.verbose,
            callbacks=callbacks,
        ).history
    model = keras.saving.load_model(best, safe_mode=True)
    train_minutes = (time.monotonic() - started) / 60

    fitted = calibrate_and_evaluate(model, sets, cfg.uncertain_width)

    target = out_dir / MODEL_FILE
    shutil.copyfile(best, target)
    epochs_run = len(history.get("loss", []))
    val_aucs = history.get("val_auc", [float("nan")])
    card = ModelCard(
        input_size=cfg.input_size,
        face_margin=cfg.face_margin,
        sha256=sha256_of(target),
        architecture={
            "summary": f"residual CNN, stages {list(cfg.widths)} x {list(cfg.blocks)}, {cfg.stem_stride}x{cfg.stem_stride} patch stem of {cfg.stem_width}, "
            f"{cfg.input_size}px input, one logit",
            "parameters": int(model.count_params()),
            "flops_per_image": flops(model),
        },
        data={"sets": counts},
        training={
            "command": " ".join(["python", "train.py", *sys.argv[1:]]) if Path(sys.argv[0]).name == "train.py" else "python train.py",
            "config": json.loads(json.dumps(asdict(cfg), default=str)),
            "minutes": round(train_minutes, 1),
            "validation_views": SCORING_VIEWS,
            "machine": f"{platform.machine()}, {tf.config.threading.get_inter_op_parallelism_threads() or 'all'} threads, "
            f"{len(tf.config.list_physical_devices('GPU'))} GPU",
            "epochs_run": epochs_run,
            "best_epoch": int(np.nanargmax(val_aucs)) + 1,
            "best_val_auc": float(np.nanmax(val_aucs)),
            "history": {k: [round(float(v), 4) for v in vals] for k, vals in history.items()},
        },
        **fitted,
    )
    card.save(out_dir)
    log.info("wrote %s and %s in %.1f min", target, out_dir / CARD_FILE, (time.monotonic() - started) / 60)
    return card
