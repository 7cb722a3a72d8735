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
from detector.augment import AugmentConfig
from detector.card import CARD_FILE, MODEL_FILE, WEIGHTS_DIR, ModelCard, WeightsError, config_differences, sha256_of
from detector.data import SPLITS, Arrays, load_set
from detector.defaults import SHARED_DATA, SHARED_SETS
from detector.faces import FACE_MARGIN
from detector.lite import LITE_FILE, QUANTIZATION, LiteNetwork
from detector.lite import export as export_lite
from detector.model import (INPUT_SIZE, PATCH_LAYERS, fit_batchnorm_statistics, flops, fuse, make_model,
                            view_averaged_logits, with_training_heads)
from detector.sampling import balanced_batches, describe_sources, group_sources, training_dataset
from detector.views import SCORING_VIEWS, View

log = logging.getLogger("detector.training")


@dataclass
class TrainConfig:
    """One training run, with the defaults that produced the shipped weights.

    Attributes:
        sets: Set folders (``<set>/real``, ``<set>/fake``, optional ``metadata.csv``); sets
            with one label only are pooled to stand against each other
            (``sampling.group_sources``).
        out_dir: Where ``model.keras`` and the model card are written; the run's checkpoints
            go to its ``run/`` folder.
        backbone: ``"mobilenet_v2"`` (ImageNet features, fine-tuned) or ``"scratch"``
            (``model.make_model``).
        pretrained: Start MobileNetV2 from the ImageNet weights in ``third_party/``.
        patch_layer: Cut MobileNetV2 at this layer (``model.PATCH_LAYERS``) and classify
            patches of the face, averaged (``model.make_model``); ``None``: the whole network.
        patch_hidden: Width of the per-patch classifier.
        train_batchnorm: Train MobileNetV2's BatchNorms (batch statistics while training),
            after giving them their inputs' statistics on the first training batches
            (``model.fit_batchnorm_statistics``); ``False`` keeps them frozen, as the
            weights before run H were trained (docs/training.md). The scratch network's
            always train.
        input_size: Side of the square face crops.
        second_size: Also train a second network alike on crops of this side, for
            ``second_epochs``, and ship the two fused into one (``model.fuse``: the mean of
            their calibrated logits; the input is the larger side). Networks that see a face
            at different sizes err on different faces: together they call fewer real
            portraits fake (docs/training.md). ``None``: one network.
        second_epochs: Most epochs of the second network.
        face_margin: Side of a face crop relative to the face finder's box, in training and,
            through the card, at run time (``faces.FACE_MARGIN``).
        widths: Scratch network: filters per residual stage.
        blocks: Scratch network: residual units per stage.
        stem_width: Scratch network: filters of the stem.
        stem_stride: Scratch network: stride (and kernel) of the patchify stem.
        dropout: Dropout before the classifier.
        batch_size: Examples per step.
        epochs: Most epochs; early stopping may end sooner.
        steps_per_epoch: Steps per epoch (each ends with a validation); ``None`` means one
            pass over the training images.
        learning_rate: Peak AdamW learning rate (cosine decay after a short warm-up).
        weight_decay: AdamW weight decay.
        label_smoothing: Binary cross-entropy label smoothing.
        patience: Epochs without a better validation AUC before stopping.
        val_weighting: How the per-source validation AUCs are combined into the one figure
            that picks the checkpoint and stops early: ``"sources"`` counts every source
            the same (no source dominates the choice, as none dominates the batches),
            ``"images"`` weights each by its validation images.
        min_set_share: Each source gets at least this share of every batch
            (``sampling.source_shares``); within a source, real and fake are drawn equally
            often.
        match_resolution: Show each face at the resolution of a random face of the other
            class of its source, when lower (``sampling.match_resolution``).
        match_look: Give half the faces the brightness, contrast and colourfulness of that
            random face of the other class (``sampling.match_look``).
        self_blend_share: Share of each source's fakes that are self-blended images made from
            its real faces (``augment.self_blend``); 0 turns them off.
        paired: Train on real/fake pairs: each fake next to the real face it was made from
            (a DFDC fake and its source frame, a self-blend and its source face), in the same
            batch and with the same augmentation, so the only difference the network sees
            within a pair is the manipulation itself (``sampling.balanced_batches``).
        mask_loss_weight: Weight of the training-only head that predicts where a fake was
            manipulated (``model.with_training_heads``); 0 turns it off.
        patch_loss_weight: Weight of the training-only patch head, which scores the patches
            the mask head's features see and averages them (``model.with_training_heads``);
            0 turns it off. It cannot be asked of a patch-level network (``patch_layer``).
        pair_loss_weight: Weight of a ranking loss on each real/fake pair of a paired batch
            (``paired_ranking_loss``): the fake's logit should exceed its real's. 0 turns
            it off; without ``paired`` it is off, since neighbours are then no pairs.
        max_minutes: Stop after the epoch that passes this wall-clock budget, counted from
            the start of the run (decoding a cold crop cache included, and the time of
            earlier sittings of a resumed run); calibration and evaluation take a few more
            minutes. With ``second_size``, the budget of both networks together: the second
            gets what the first left.
        seed: Seeds weights, shuffling and augmentation.
        limit: Use only this many images per (split, label) of each set (quick runs).
        cache_dir: Where decoded crops are cached; ``None`` for the default.
        quantize: Quantize the LiteRT copy the ``Detector`` scores on (``lite.export``);
            off, the copy is float32 and gives the Keras network's logits. The quick
            recipe's tiny networks turn it off: their near-constant activations leave int8
            too few steps to tell inputs apart.
        augment: Augmentation strengths.
        max_false_fake: The decision threshold is the lowest at which no source calls more
            than this share of its real validation faces fake
            (``evaluation.real_first_threshold``).
        uncertain_width: Least width of the "uncertain" band below the threshold, in
            calibrated probability: faces that score in it get no fake/real verdict. The
            band also reaches down to 0.5 (``evaluation.uncertain_band``).
        verbose: Keras progress output (0 silent, 1 bar, 2 one line per epoch).
        strategy: ``"default"`` (one device), ``"mirrored"`` (every GPU of this host) or
            ``"multiworker"`` (a cluster described by ``TF_CONFIG``); see
            ``distribution_strategy``. ``batch_size`` is the global batch.
        shards: A shard folder (``detector.shards``) to stream the training split from,
            instead of loading ``sets`` into memory; its validation and test splits are
            read into memory.
    """

    sets: list[str] = field(default_factory=lambda: [str(SHARED_DATA / name) for name in SHARED_SETS])
    out_dir: str = str(WEIGHTS_DIR)
    backbone: str = "mobilenet_v2"
    pretrained: bool = True
    patch_layer: str | None = None
    patch_hidden: int = 64
    train_batchnorm: bool = True
    input_size: int = INPUT_SIZE
    second_size: int | None = 192
    second_epochs: int = 10
    face_margin: float = FACE_MARGIN
    widths: tuple[int, ...] = (64, 128, 256)
    blocks: tuple[int, ...] = (2, 2, 2)
    stem_width: int = 48
    stem_stride: int = 4
    dropout: float = 0.2
    batch_size: int = 32
    epochs: int = 18
    steps_per_epoch: int | None = 400
    learning_rate: float = 5e-4
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    patience: int = 8
    val_weighting: str = "sources"
    min_set_share: float = 0.08
    match_resolution: bool = True
    match_look: bool = True
    self_blend_share: float = 0.2
    paired: bool = True
    mask_loss_weight: float = 0.5
    patch_loss_weight: float = 0.0
    pair_loss_weight: float = 0.0
    max_minutes: float = 140.0
    seed: int = 1234
    limit: int | None = None
    cache_dir: str | None = None
    quantize: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    max_false_fake: float = 0.05
    uncertain_width: float = 0.15
    verbose: int = 2
    strategy: str = "default"
    shards: str | None = None

    @classmethod
    def quick(cls, out_dir: str, **overrides) -> "TrainConfig":
        """A run of seconds on a tiny subset with a tiny network, for tests and smoke checks."""
        base = dict(out_dir=out_dir, backbone="scratch", input_size=32, second_size=None, widths=(8, 16), blocks=(1, 1), stem_width=8,
                    stem_stride=1, batch_size=16, epochs=2, steps_per_epoch=3, limit=12, patience=2, verbose=0,
                    quantize=False)
        base.update(overrides)
        return cls(**base)


#: Training batches whose statistics the BatchNorms start from (``TrainConfig.train_batchnorm``).
BATCHNORM_FIT_BATCHES = 8

#: Each model's traced scoring functions, by views; entries go when their model does.
_scorers: "weakref.WeakKeyDictionary[keras.Model, dict[tuple[View, ...], Any]]" = weakref.WeakKeyDictionary()


def predict_logits(model: keras.Model | LiteNetwork, images: np.ndarray, views: Sequence[View],
                   batch_size: int = 256) -> np.ndarray:
    """The model's fake logits for a stack of uint8 crops, without augmentation, each the
    mean over ``views``, as the ``Detector`` scores them (``model.view_averaged_logits``).

    Args:
        model: A network from ``make_model``, or its LiteRT copy (``scoring_network``).
        images: ``(N, S, S, 3)`` crops.
        views: The scoring views (a card's ``scoring_views``, or ``views.SCORING_VIEWS``
            for a model being trained).
        batch_size: Crops per call with two views; fewer with more views, so memory stays
            flat.

    Returns:
        ``(N,)`` logits.
    """
    views = tuple(views)
    step = max(1, batch_size * 2 // len(views))
    if isinstance(model, LiteNetwork):
        out = [model.view_averaged_logits(images[i : i + step], views) for i in range(0, len(images), step)]
        return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)
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
    out = [score(images[i : i + step].astype(np.float32)).numpy() for i in range(0, len(images), step)]
    return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)


VAL_WEIGHTINGS = ("images", "sources")


def combined_auc(aucs: dict[str, float], sizes: dict[str, int], weighting: str) -> float:
    """One validation figure from per-source ROC-AUCs.

    Per source, not pooled, so no source is judged by how its scores sit beside another's.

    Args:
        aucs: Source name -> validation ROC-AUC.
        sizes: Source name -> validation images.
        weighting: ``"images"`` (a weighted mean, by ``sizes``) or ``"sources"`` (a plain mean).

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


def validation_auc(model: keras.Model, val: list[Arrays], weighting: str,
                   batch_size: int = 256) -> tuple[float, dict[str, float]]:
    """The recipe's validation figure of a network: the ROC-AUC of each source with both
    labels (through ``SCORING_VIEWS``), combined by ``combined_auc``.

    Args:
        model: A single-logit network.
        val: The validation split of each training source (``sampling.group_sources``).
        weighting: See ``combined_auc``.
        batch_size: See ``predict_logits`` (fewer crops per call hold less memory).

    Returns:
        ``(combined, per-source ROC-AUCs)``.
    """
    aucs, sizes = {}, {}
    for part in val:
        if len(np.unique(part.labels)) == 2:
            logits = predict_logits(model, part.images, SCORING_VIEWS, batch_size)
            aucs[part.name] = float(roc_auc_score(part.labels, logits))
            sizes[part.name] = len(part.labels)
    return combined_auc(aucs, sizes, weighting), aucs


class _Validation(keras.callbacks.Callback):
    """Scores the shipped (single-output) model on validation data after every epoch,
    keeps the best checkpoint by the combined per-source ROC-AUCs (``combined_auc``), and
    stops early.

    Args:
        model: The network that ships.
        val: The validation split of each training source (``sampling.group_sources``).
        path: Where the best checkpoint is saved.
        patience: Epochs without a better figure before stopping.
        weighting: See ``combined_auc``.
        best: ``(figure, epoch)`` of the best epoch so far (a resumed run's).
    """

    def __init__(self, model: keras.Model, val: list[Arrays], path: Path, patience: int, weighting: str,
                 best: tuple[float, int] = (-np.inf, -1)) -> None:
        super().__init__()
        self.serving, self.val, self.path, self.patience, self.weighting = model, val, path, patience, weighting
        self.best, self.best_epoch = best

    def on_epoch_end(self, epoch, logs=None) -> None:
        score, aucs = validation_auc(self.serving, self.val, self.weighting)
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


#: Files of a run's ``run/`` folder that ``--resume`` continues from.
LAST_WEIGHTS, STATE_FILE = "last.weights.h5", "state.json"


class _Checkpoint(keras.callbacks.Callback):
    """After every epoch, saves what ``train(cfg)`` with ``cfg.resume`` needs to go on: the
    training model's weights with its optimizer's state (learning-rate step included), and
    ``state.json`` (epochs done, minutes spent, the best epoch, the history so far).

    Args:
        work: The run's folder.
        validation: The run's validation callback (for its best epoch).
        started: ``time.monotonic()`` at the run's start (earlier sittings included).
        history: The history of earlier sittings.
    """

    def __init__(self, work: Path, validation: _Validation, started: float, history: dict[str, list]) -> None:
        super().__init__()
        self.work, self.validation, self.started, self.history = work, validation, started, history

    def on_epoch_end(self, epoch, logs=None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        weights = self.work / LAST_WEIGHTS
        self.model.save_weights(self.work / f"next.{LAST_WEIGHTS}")
        (self.work / f"next.{LAST_WEIGHTS}").replace(weights)  # never a half-written file
        state = {"epochs_done": epoch + 1, "minutes": (time.monotonic() - self.started) / 60,
                 "best": self.validation.best, "best_epoch": self.validation.best_epoch, "history": self.history}
        (self.work / f"next.{STATE_FILE}").write_text(json.dumps(state))
        (self.work / f"next.{STATE_FILE}").replace(self.work / STATE_FILE)


def read_state(work: Path) -> dict | None:
    """The state ``_Checkpoint`` left in a run's folder, or ``None`` when there is none."""
    path = work / STATE_FILE
    if not (path.is_file() and (work / LAST_WEIGHTS).is_file()):
        return None
    return json.loads(path.read_text())


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
                        callbacks: list[keras.callbacks.Callback], strategy: tf.distribute.Strategy,
                        initial_epoch: int = 0) -> keras.callbacks.History:
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
    for epoch in range(initial_epoch, epochs):
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


def _with_patch_targets(images, targets, weights):
    """A batch's targets and weights for the patch head: the face's label, as the network's."""
    return (images, {**targets, "patch_logit": targets["fake_logit"]},
            {**weights, "patch_logit": weights["fake_logit"]})


def build_trainer(cfg: TrainConfig, steps_per_epoch: int) -> tuple[keras.Model, keras.Model]:
    """The network and its compiled training model (the network plus its training-only heads).

    Call it inside ``strategy.scope()`` so the variables are placed for the strategy.

    Args:
        cfg: The run's configuration.
        steps_per_epoch: Steps per epoch, for the learning-rate schedule.

    Returns:
        ``(model, trainer)``: the single-output network that ships, and the compiled
        multi-output model that trains it (they share every layer).
    """
    model = make_model(cfg.input_size, cfg.backbone, cfg.pretrained, cfg.dropout, cfg.widths, cfg.blocks, cfg.stem_width,
                       cfg.stem_stride, cfg.patch_layer, cfg.patch_hidden, cfg.train_batchnorm)
    patch_hidden = cfg.patch_hidden if cfg.patch_loss_weight else 0
    trainer = with_training_heads(model, patch_hidden, cfg.dropout)
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 10, decay_steps=steps_per_epoch * cfg.epochs,
        warmup_target=cfg.learning_rate, warmup_steps=min(steps_per_epoch, 500),
    )
    trainer.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
        loss={
            "fake_logit": _LogitLoss(cfg.label_smoothing, cfg.pair_loss_weight if cfg.paired else 0.0),
            "mask_logit": keras.losses.BinaryCrossentropy(from_logits=True),
            **({"patch_logit": _LogitLoss(cfg.label_smoothing, 0.0)} if patch_hidden else {}),
        },
        loss_weights={"fake_logit": 1.0, "mask_logit": cfg.mask_loss_weight,
                      **({"patch_logit": cfg.patch_loss_weight} if patch_hidden else {})},
        metrics={"fake_logit": [keras.metrics.AUC(name="auc", from_logits=True)]},
    )
    return model, trainer


def calibrate_and_evaluate(model: keras.Model | LiteNetwork, sets: list[Arrays], uncertain_width: float,
                           views: Sequence[View] = SCORING_VIEWS,
                           splits: Sequence[str] = ("val", "test"),
                           max_false_fake: float = TrainConfig.max_false_fake) -> dict[str, Any]:
    """Fits the calibration, threshold and uncertain band on validation data, then scores
    the given splits with them.

    Calibration and the threshold come from validation data only; test is scored once.
    Every source counts the same (``evaluation.source_weights``), and the threshold puts
    real photos first (``evaluation.real_first_threshold``). Images without a face are left
    out: the detector gives them no verdict.

    Args:
        model: The trained network, or the copy the ``Detector`` scores on
            (``scoring_network``): the calibration is fitted on the logits users get.
        sets: The run's sets (their ``val`` split, and those in ``splits``, are used).
        uncertain_width: Width of the "uncertain" band below the threshold.
        views: The scoring views the calibration is fitted through.
        splits: The splits scored into ``metrics``; ``("val",)`` when only the
            calibration is wanted (test is then not scored at all).
        max_false_fake: See ``TrainConfig.max_false_fake``.

    Returns:
        The card fields ``scoring_views``, ``temperature``, ``bias``, ``threshold``,
        ``uncertain_band`` and ``metrics`` (``evaluation.report`` per split, with a row per
        set and per pool of one-label sets).

    Raises:
        ValueError: ``splits`` names a split other than ``val`` and ``test``.
    """
    views = tuple(views)
    if not set(splits) <= {"val", "test"}:
        raise ValueError(f"splits {tuple(splits)} must be among ('val', 'test')")
    scored = {}
    for split in {"val", *splits}:
        parts = [a.split(split).with_faces() for a in sets]
        # Each set's scores, and a row for the pool of one-label sets (a training source).
        scored[split] = evaluation.with_one_label_pool(
            {a.name: (a.labels, predict_logits(model, a.images, views)) for a in parts})
    by_source = {name: scored["val"][name] for name in _source_names(sets)}
    temperature, bias, threshold, band = evaluation.real_first_calibration(by_source, uncertain_width, max_false_fake)
    metrics = {
        split: evaluation.report(
            {name: (y, evaluation.apply_temperature(z, temperature, bias)) for name, (y, z) in scored[split].items()},
            threshold, uncertain_band=band, pooled=[a.name for a in sets],
        )
        for split in splits
    }
    return {"scoring_views": views, "temperature": float(temperature), "bias": float(bias), "threshold": float(threshold),
            "uncertain_band": (float(band[0]), float(band[1])), "metrics": metrics}


def _source_names(sets: list[Arrays]) -> list[str]:
    """The names of the training sources ``sets`` make (``sampling.group_sources``)."""
    return [source.name for source in group_sources([a.split("val") for a in sets])]


def refit_calibration(model: keras.Model | LiteNetwork, card: ModelCard, data_dir: str | Path = SHARED_DATA,
                      cache_dir: str | Path | None = None, views: Sequence[View] = SCORING_VIEWS,
                      splits: Sequence[str] = ("val", "test")) -> dict[str, Any]:
    """``calibrate_and_evaluate`` on the sets a card names (found in ``data_dir``), framed
    and limited as the card's run framed them.

    Args:
        model: The card's network, or its scoring copy (``scoring_network``).
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
    return calibrate_and_evaluate(model, card_sets(card, data_dir, cache_dir),
                                  config.get("uncertain_width", TrainConfig.uncertain_width), views, splits,
                                  config.get("max_false_fake", TrainConfig.max_false_fake))


def card_sets(card: ModelCard, data_dir: str | Path = SHARED_DATA, cache_dir: str | Path | None = None,
              names: Sequence[str] | None = None) -> list[Arrays]:
    """The sets a card's run trained on (or the sets ``names``), found by name in ``data_dir``,
    framed and limited as that run framed them.

    Raises:
        ValueError: the card names no sets.
    """
    config = card.training.get("config", {})
    sets = [load_set(Path(data_dir) / Path(s).name, card.input_size, cache_dir, config.get("limit"),
                     margin=card.face_margin)
            for s in names or config.get("sets", [])]
    if not sets:
        raise ValueError(f"the card (sha256 {card.sha256[:12]}…) names no training sets to calibrate on")
    return sets


def representative_crops(sets: list[Arrays], per_source: int = 40, seed: int = 0) -> np.ndarray:
    """Training crops of every source, to measure the quantized copy's int8 ranges on
    (``lite.export``): the same number from each, real and fake alike. A run streaming its
    training split from shards holds none in memory; its validation crops serve instead (the
    ranges need crops of every source, not their labels).

    Args:
        sets: The run's sets (their ``train`` split, else their ``val`` split, is used).
        per_source: Crops drawn from each training source (all it has, if fewer).
        seed: Seeds the draw.

    Returns:
        ``(N, S, S, 3)`` uint8 crops.
    """
    rng = np.random.default_rng(seed)
    split = "train" if any((a.splits == "train").any() for a in sets) else "val"
    picks = []
    for source in group_sources([a.split(split).with_faces() for a in sets]):
        picks.append(source.images[rng.permutation(len(source.images))[:per_source]])
    return np.concatenate(picks)


def scoring_network(weights_dir: str | Path, card: ModelCard, model: keras.Model) -> keras.Model | LiteNetwork:
    """The network a weights folder's ``Detector`` scores on: its LiteRT copy when the card
    names one (checked against its sha256), else ``model`` itself."""
    if not card.lite_sha256:
        return model
    path = Path(weights_dir) / LITE_FILE
    card.verify(path, card.lite_sha256)
    return LiteNetwork.load(path)


def write_lite(weights_dir: str | Path = WEIGHTS_DIR, data_dir: str | Path = SHARED_DATA,
               cache_dir: str | Path | None = None) -> ModelCard:
    """Converts a weights folder's ``model.keras`` to its LiteRT copy beside it (quantized
    unless the card's recipe turned ``quantize`` off), then refits the card's calibration,
    threshold and band through that copy and re-scores its validation and test figures
    (``python -m detector lite``; ``train`` does the same as its last step).

    Args:
        weights_dir: Folder with ``model.keras`` and ``model_card.json``.
        data_dir: Folder holding the card's sets, by name (for the int8 ranges and the
            calibration).
        cache_dir: Crop cache (``data.load_set``).

    Returns:
        The rewritten card.

    Raises:
        WeightsError: the weights or card are missing or altered.
    """
    weights_dir = Path(weights_dir)
    card = ModelCard.load(weights_dir)
    card.verify(weights_dir / MODEL_FILE)
    model = keras.saving.load_model(weights_dir / MODEL_FILE, safe_mode=True, compile=False)
    sets = card_sets(card, data_dir, cache_dir)
    config = card.training.get("config", {})
    # The crops train draws: the copy is the one `python train.py` would have written.
    quantize = config.get("quantize", True)
    lite = export_lite(model, weights_dir / LITE_FILE,
                       representative_crops(sets, seed=config.get("seed", TrainConfig.seed)) if quantize else None)
    fitted = refit_calibration(LiteNetwork.load(lite), card, data_dir, cache_dir, card.scoring_views)
    training = {**card.training, "calibrated_by": "python -m detector lite"}
    card = replace(card, lite_sha256=sha256_of(lite), lite_quantization=QUANTIZATION if quantize else "", training=training,
                   **fitted)
    card.save(weights_dir)
    return card


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
    fitted = refit_calibration(scoring_network(weights_dir, card, model), card, data_dir, cache_dir, views)
    training = {"validation_views": card.scoring_views, **card.training, "calibrated_by": "python -m detector calibrate"}
    card = replace(card, **fitted, training=training)
    card.save(weights_dir)
    return card


def train(cfg: TrainConfig, resume: bool = False) -> ModelCard:
    """Trains, calibrates and evaluates a model, and writes it with its card.

    With ``cfg.second_size``, two networks are trained one after the other, each into its
    own folder under ``run/members/`` (each a weights folder of its own), then fused
    (``fuse_members``).

    Args:
        cfg: The run's configuration.
        resume: Go on from the last epoch a run into the same ``cfg.out_dir`` finished
            (its ``run/`` folder), instead of starting afresh. The time budget counts the
            earlier sittings' minutes. Of two networks, a finished one is kept as it is.

    Returns:
        The model card written next to the weights.

    Raises:
        FileNotFoundError: ``resume`` and no run to resume in ``cfg.out_dir``.
        ValueError: two networks asked of a run from shards or across hosts.
    """
    if cfg.second_size is None:
        return _train_network(cfg, resume)
    # Found now, not after the first network's hour: shards hold crops of one size, and the
    # fusion reads both networks from this host's folders.
    if cfg.shards or cfg.strategy == "multiworker":
        raise ValueError(f"two networks (second_size={cfg.second_size}) cannot train from shards or across hosts "
                         f"(shards={cfg.shards!r}, strategy={cfg.strategy!r}): train one (--second-size 0)")
    members = member_configs(cfg)
    if not resume:
        shutil.rmtree(Path(cfg.out_dir) / "run", ignore_errors=True)
    elif not resumable(cfg):
        raise FileNotFoundError(f"nothing to resume in {Path(cfg.out_dir) / 'run' / 'members'}: neither network has begun")
    spent = 0.0  # the time budget is the recipe's: the second network gets what the first left
    for member in members:
        member = replace(member, max_minutes=cfg.max_minutes - spent)
        card = (resume and finished_card(member)) or _train_network(member, resume=resume and resumable(member))
        spent += card.training["minutes"]
    return fuse_members(cfg)


def member_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """The configurations of the two networks a ``second_size`` recipe trains, each into
    ``run/members/<side>/`` of ``cfg.out_dir``."""
    members = Path(cfg.out_dir) / "run" / "members"
    return [replace(cfg, second_size=None, out_dir=str(members / str(cfg.input_size))),
            replace(cfg, second_size=None, input_size=cfg.second_size, epochs=cfg.second_epochs,
                    out_dir=str(members / str(cfg.second_size)))]


def finished_card(cfg: TrainConfig, any_recipe: bool = False) -> ModelCard | None:
    """The card of a finished run in ``cfg.out_dir`` of exactly this recipe (of any, with
    ``any_recipe``), its weights checked against it; ``None`` when there is none."""
    try:
        card = ModelCard.load(cfg.out_dir)
        card.verify(Path(cfg.out_dir) / MODEL_FILE)
    except WeightsError:
        return None
    return card if any_recipe or same_recipe(card, cfg) else None


def fuse_members(cfg: TrainConfig) -> ModelCard:
    """The last step of a two-network recipe: fuses its finished members (``model.fuse``,
    each through its card's calibration) and writes the fused network with its LiteRT copy,
    calibration and card into ``cfg.out_dir``; or, when a member alone does better on
    validation than the pair (``member_to_ship_alone``), that member.

    The check guards the time budget: on a slower machine the first network can use up
    most of ``max_minutes``, and a second network stopped after an epoch or two would make
    the pair worse than the first alone. The card's ``training["fusion"]`` says what shipped
    and why.

    Raises:
        WeightsError: a member's weights are missing or altered.
    """
    started = time.monotonic()
    out_dir = Path(cfg.out_dir)
    members = member_configs(cfg)
    cards = [ModelCard.load(m.out_dir) for m in members]
    networks = []
    for member, card in zip(members, cards):
        card.verify(Path(member.out_dir) / MODEL_FILE)
        networks.append(keras.saving.load_model(Path(member.out_dir) / MODEL_FILE, safe_mode=True, compile=False))
    model, shipped_cfg = fuse([(n, c.temperature, c.bias) for n, c in zip(networks, cards)]), cfg
    sets = [load_set(s, model.input_shape[1], cfg.cache_dir, cfg.limit, margin=cfg.face_margin) for s in cfg.sets]
    fused_auc = fused_validation_auc(model, sets, cfg.val_weighting)
    member_aucs = [c.training.get("best_val_auc") for c in cards]
    alone = member_to_ship_alone(fused_auc, member_aucs)
    if alone is not None:
        log.warning("the two networks fused score %.4f on validation, the %d px network alone %.4f: it ships alone",
                    fused_auc, cards[alone].input_size, member_aucs[alone])
        model, shipped_cfg = networks[alone], members[alone]
        if model.input_shape[1] != sets[0].images.shape[1]:
            sets = [load_set(s, model.input_shape[1], cfg.cache_dir, cfg.limit, margin=cfg.face_margin)
                    for s in cfg.sets]
    model.save(out_dir / MODEL_FILE)
    fields = ("minutes", "epochs_run", "resumed_after_epoch", "best_epoch", "best_val_auc", "history")
    training = {**_run_facts(cfg),
                "minutes": round(sum(c.training["minutes"] for c in cards) + (time.monotonic() - started) / 60, 1),
                "members": [{"input_size": c.input_size, **{k: c.training.get(k) for k in fields}} for c in cards],
                "fusion": {"fused_val_auc": round(fused_auc, 4), "shipped": "both, fused" if alone is None
                           else f"the {cards[alone].input_size} px network alone"}}
    return _write_card(model, shipped_cfg, sets, out_dir, cards[0].data, training)


def fused_validation_auc(model: keras.Model, sets: list[Arrays], weighting: str, batch_size: int = 256) -> float:
    """``validation_auc`` of the fused network on the validation split of ``sets`` (crops
    of its input size), grouped into sources as training grouped them."""
    return validation_auc(model, group_sources([a.split("val") for a in sets]), weighting, batch_size)[0]


def member_to_ship_alone(fused_auc: float, member_aucs: Sequence[float | None]) -> int | None:
    """Which member of a two-network recipe ships instead of the pair: the one with the best
    validation figure (its best epoch's, from its card), if that beats the pair's; else
    ``None``, and the pair ships (also on a tie: the pair is the recipe).

    E.g. ``member_to_ship_alone(0.95, [0.947, 0.946])`` is ``None``;
    ``member_to_ship_alone(0.91, [0.947, 0.870])`` is ``0``.
    """
    known = [(auc, i) for i, auc in enumerate(member_aucs) if auc is not None and np.isfinite(auc)]
    if not known:
        return None
    best_auc, best = max(known)
    return best if best_auc > fused_auc else None


def _run_facts(cfg: TrainConfig) -> dict[str, Any]:
    """What a card's ``training`` says of every run: its command, recipe, machine and the
    views its checkpoints were chosen through."""
    return {
        # The card leaves out what names this machine's folders (``card.ModelCard.save``).
        "command": " ".join(["python", "train.py", *sys.argv[1:]]) if Path(sys.argv[0]).name == "train.py" else "python train.py",
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
        "validation_views": SCORING_VIEWS,
        "machine": f"{platform.machine()}, {tf.config.threading.get_inter_op_parallelism_threads() or 'all'} threads, "
        f"{len(tf.config.list_physical_devices('GPU'))} GPU",
    }


def _write_card(model: keras.Model, cfg: TrainConfig, sets: list[Arrays], out_dir: Path, data: dict[str, Any],
                training: dict[str, Any]) -> ModelCard:
    """The end of every run, once ``out_dir`` holds ``model``'s weights file: the LiteRT copy
    the ``Detector`` scores on, the calibration fitted through it, the figures, the card."""
    lite = export_lite(model, out_dir / LITE_FILE, representative_crops(sets, seed=cfg.seed) if cfg.quantize else None)
    fitted = calibrate_and_evaluate(LiteNetwork.load(lite), sets, cfg.uncertain_width, max_false_fake=cfg.max_false_fake)
    card = ModelCard(
        input_size=model.input_shape[1],
        face_margin=cfg.face_margin,
        sha256=sha256_of(out_dir / MODEL_FILE),
        lite_sha256=sha256_of(lite),
        lite_quantization=QUANTIZATION if cfg.quantize else "",
        architecture=architecture_summary(model, cfg),
        data=data,
        training=training,
        **fitted,
    )
    card.save(out_dir)
    log.info("wrote %s, %s and %s", out_dir / MODEL_FILE, LITE_FILE, out_dir / CARD_FILE)
    return card


def _train_network(cfg: TrainConfig, resume: bool = False) -> ModelCard:
    """``train`` for one network (``cfg.second_size`` is not read)."""
    started = time.monotonic()
    # First: a multi-worker strategy must exist before any other TensorFlow operation runs.
    strategy = distribution_strategy(cfg.strategy)
    combined_auc({}, {}, cfg.val_weighting)  # an unknown weighting fails now, not after decoding and an epoch
    out_dir = Path(cfg.out_dir)
    if not is_chief(strategy):  # other workers train alike but write where no one reads
        out_dir = Path(tempfile.mkdtemp(prefix=f"worker{strategy.cluster_resolver.task_id}-"))
    work = out_dir / "run"
    state = read_state(work) if resume else None
    if resume and state is None:
        raise FileNotFoundError(f"nothing to resume in {work}: no {STATE_FILE} and {LAST_WEIGHTS} there")
    if state is None and work.exists():
        shutil.rmtree(work)  # a fresh run never mixes with an older run's checkpoints
    work.mkdir(parents=True, exist_ok=True)
    initial_epoch = state["epochs_done"] if state else 0
    started -= 60 * state["minutes"] if state else 0
    # A resumed run draws new batches: its stream restarts from a seed of its own.
    keras.utils.set_random_seed(cfg.seed + 1000 * initial_epoch)

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
                               "fake": int(((a.splits == s) & (a.labels == 1)).sum()),
                               "no_face": int(((a.splits == s) & ~a.found).sum())}
                           for s in SPLITS} for a in sets}
    for name, by_split in counts.items():
        log.info("%s: %s", name, by_split)
    # On a first run this includes decoding every image into the crop cache, which the
    # time budget (``max_minutes``) counts too.
    log.info("crops ready after %.1f min", (time.monotonic() - started) / 60)
    val = group_sources([a.split("val") for a in sets])
    run_cfg = replace(cfg, seed=cfg.seed + 1000 * initial_epoch)

    train_images = sum(c["train"]["real"] + c["train"]["fake"] for c in counts.values())
    steps = cfg.steps_per_epoch or math.ceil(train_images / cfg.batch_size)
    with strategy.scope():
        model, trainer = build_trainer(cfg, steps)
    mask_size = trainer.get_layer("mask_logit").output.shape[1]
    if cfg.shards:
        from detector.shards import shard_sources

        dataset = balanced_batches(shard_sources(cfg.shards, run_cfg), run_cfg, mask_size)
    else:
        dataset = training_dataset([a.split("train") for a in sets], run_cfg, mask_size)
    if "patch_logit" in trainer.output_names:
        dataset = dataset.map(_with_patch_targets)
    # MobileNetV2's folded statistics are not its inputs'; a resumed run's come with its weights.
    if cfg.train_batchnorm and cfg.backbone == "mobilenet_v2" and not state:
        fit_batchnorm_statistics(model, (images for images, *_ in dataset.take(BATCHNORM_FIT_BATCHES)))
    if cfg.strategy != "default":
        # Each worker keeps its share of the batches; in-memory data has no files to split.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    best = work / "best.keras"
    history = state["history"] if state else {}
    validation = _Validation(model, val, best, cfg.patience, cfg.val_weighting,
                             (state["best"], state["best_epoch"]) if state else (-np.inf, -1))
    if state:
        trainer.optimizer.build(trainer.trainable_variables)
        trainer.load_weights(work / LAST_WEIGHTS)  # the network, its mask head and the optimizer's state
        log.info("resumed after epoch %d (%.1f min spent; best epoch %d, validation AUC %.4f)",
                 initial_epoch, state["minutes"], state["best_epoch"] + 1, state["best"])
    callbacks = [validation, keras.callbacks.CSVLogger(work / "history.csv", append=bool(state)),
                 _TimeBudget(started + cfg.max_minutes * 60), _Checkpoint(work, validation, started, history)]
    if initial_epoch < cfg.epochs and not (state and _stopped(state, cfg)):
        if cfg.strategy == "multiworker":
            _fit_across_workers(trainer, dataset, steps, cfg.epochs, callbacks, strategy, initial_epoch)
        else:
            trainer.fit(dataset, steps_per_epoch=steps, epochs=cfg.epochs, initial_epoch=initial_epoch,
                        shuffle=False,  # the dataset is already shuffled and balanced
                        verbose=cfg.verbose, callbacks=callbacks)
    model = keras.saving.load_model(best, safe_mode=True)
    train_minutes = (time.monotonic() - started) / 60
    shutil.copyfile(best, out_dir / MODEL_FILE)
    val_aucs = history.get("val_auc", [float("nan")])
    training = {
        **_run_facts(cfg),
        "minutes": round(train_minutes, 1),
        "epochs_run": len(val_aucs),
        "resumed_after_epoch": initial_epoch or None,
        "best_epoch": int(np.nanargmax(val_aucs)) + 1,
        "best_val_auc": float(np.nanmax(val_aucs)),
        "history": {k: [round(float(v), 4) for v in vals] for k, vals in history.items()},
    }
    data = {"sets": counts, "sources": describe_sources([a.split("train") for a in sets])}
    card = _write_card(model, cfg, sets, out_dir, data, training)
    log.info("done in %.1f min", (time.monotonic() - started) / 60)
    return card


def resumable(cfg: TrainConfig) -> bool:
    """Whether a run into ``cfg.out_dir`` has begun, so that ``train(cfg, resume=True)`` can
    go on with it: its checkpoints, or either member's of a two-network recipe."""
    folders = [cfg] if cfg.second_size is None else member_configs(cfg)
    return any(read_state(Path(f.out_dir) / "run") is not None for f in folders)


def epochs_run(card: ModelCard) -> int | str | None:
    """The epochs a card's run trained: ``"18 + 10"`` for two networks."""
    members = card.training.get("members")
    return " + ".join(str(m.get("epochs_run")) for m in members) if members else card.training.get("epochs_run")


def same_recipe(card: ModelCard, cfg: TrainConfig) -> bool:
    """Whether a card's run used ``cfg``'s recipe (``recipe_differences`` finds none).

    Args:
        card: A trained model's card.
        cfg: The configuration to compare with (``TrainConfig()`` for ``python train.py``).
    """
    return not recipe_differences(card, cfg)


def recipe_differences(card: ModelCard, cfg: TrainConfig) -> list[str]:
    """The settings in which a card's run differs from ``cfg`` (``card.config_differences``:
    not the time budget, nor the log's verbosity; the sets by name).

    Args:
        card: A trained model's card.
        cfg: The configuration to compare with.

    Returns:
        The names of the differing ``TrainConfig`` fields, in the card's order.
    """
    return config_differences(card.training.get("config", {}), json.loads(json.dumps(asdict(cfg), default=str)))


def _stopped(state: dict, cfg: TrainConfig) -> bool:
    """Whether a run's last sitting ended it: early stopping or the time budget."""
    done, best = state["epochs_done"], state["best_epoch"]
    return done - 1 - best >= cfg.patience or state["minutes"] >= cfg.max_minutes


def architecture_summary(model: keras.Model, cfg: TrainConfig) -> dict[str, Any]:
    """The card's ``architecture``: the network in words, its parameters and FLOPs."""
    sides = f"{cfg.input_size}px" if cfg.second_size is None else f"{cfg.input_size}px and {cfg.second_size}px"
    if cfg.backbone == "mobilenet_v2":
        start = "ImageNet weights (third_party/, converted by detector.pretrained)" if cfg.pretrained else "random weights"
        tuned = "fine-tuned with its BatchNorms" if cfg.train_batchnorm else "fine-tuned"
        summary = f"MobileNetV2 (alpha 1.0) from {start}, {tuned}; {sides} input, one logit"
        if cfg.patch_layer:
            summary += (f" per {PATCH_LAYERS[cfg.patch_layer]}px patch (cut at {cfg.patch_layer}), averaged over the "
                        "face")
    else:
        summary = (f"residual CNN from scratch, stages {list(cfg.widths)} x {list(cfg.blocks)}, {cfg.stem_stride}x"
                   f"{cfg.stem_stride} patch stem of {cfg.stem_width}, {sides} input, one logit")
    if cfg.second_size is not None:
        small, large = sorted((cfg.input_size, cfg.second_size))
        summary = (f"two networks, {cfg.epochs} and {cfg.second_epochs} epochs at most, each a {summary}, fused "
                   f"(model.fuse): a face's logit is the mean of their calibrated logits, on a {large}px crop the "
                   f"{small}px network sees resized")
    return {"summary": summary, "backbone": cfg.backbone, "parameters": int(model.count_params()),
            "flops_per_image": flops(model)}
