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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from detector import evaluation
from detector.augment import AugmentConfig, augment, self_blend
from detector.card import CARD_FILE, MODEL_FILE, WEIGHTS_DIR, ModelCard, sha256_of
from detector.data import MASK_SIZE, Arrays, load_set, manipulation_masks
from detector.faces import FACE_MARGIN
from detector.model import make_model, with_mask_head

log = logging.getLogger("detector.training")

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass
class TrainConfig:
    """One training run, with the defaults that produced the shipped weights.

    Attributes:
        sets: Set folders (``<set>/real``, ``<set>/fake``, optional ``metadata.csv``).
        out_dir: Where ``model.keras`` and the model card are written.
        input_size: Side of the square face crops.
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
        min_set_share: Each set gets at least this share of every batch, so a small set
            (ffhq_stylegan) is not drowned by a large one; within a set, real and fake are
            drawn equally often (class balance).
        self_blend_share: Share of each set's fakes that are self-blended images made from
            its real faces (``augment.self_blend``); 0 turns them off.
        mask_loss_weight: Weight of the training-only head that predicts where a fake was
            manipulated (``model.with_mask_head``); 0 turns it off.
        max_minutes: Stop after the epoch that passes this wall-clock budget.
        seed: Seeds weights, shuffling and augmentation.
        limit: Use only this many images per (split, label) of each set (quick runs).
        cache_dir: Where decoded crops are cached; ``None`` for the default.
        augment: Augmentation strengths.
        uncertain_width: Half-width of the "uncertain" band around the threshold, in
            calibrated probability.
        verbose: Keras progress output (0 silent, 1 bar, 2 one line per epoch).
    """

    sets: list[str] = field(default_factory=lambda: [str(SHARED_DATA / "dfdc_faces"), str(SHARED_DATA / "ffhq_stylegan")])
    out_dir: str = str(WEIGHTS_DIR)
    input_size: int = 128
    widths: tuple[int, ...] = (64, 128, 256)
    blocks: tuple[int, ...] = (2, 2, 2)
    stem_width: int = 48
    stem_stride: int = 4
    dropout: float = 0.3
    batch_size: int = 64
    epochs: int = 16
    steps_per_epoch: int | None = None
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    patience: int = 6
    min_set_share: float = 0.15
    self_blend_share: float = 0.25
    mask_loss_weight: float = 1.0
    max_minutes: float = 78.0
    seed: int = 1234
    limit: int | None = None
    cache_dir: str | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    uncertain_width: float = 0.1
    verbose: int = 2

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


def training_dataset(train: list[Arrays], cfg: TrainConfig, mask_size: int) -> tf.data.Dataset:
    """Balanced, augmented training batches drawn from several sets.

    Each set contributes its share of every batch (at least ``cfg.min_set_share``), half
    real and half fake; ``cfg.self_blend_share`` of the fake half are self-blended images
    made on the fly from the set's real faces.

    Args:
        train: The training split of each set.
        cfg: The run's configuration.
        mask_size: Side of the mask head's output.

    Returns:
        An endless dataset of ``(images, {"fake_logit", "mask_logit"}, sample weights)``
        batches; the mask loss is weighted 0 where a fake's mask is unknown.
    """
    total = sum(len(a) for a in train)
    shares = np.array([max(len(a) / total, cfg.min_set_share) for a in train])
    shares /= shares.sum()
    streams, weights = [], []
    for i, (arrays, share) in enumerate(zip(train, shares)):
        masks, known = manipulation_masks(arrays, MASK_SIZE)
        for label in (0, 1):
            keep = arrays.labels == label
            if not keep.any():
                continue
            ds = _stream((arrays.images[keep], masks[keep][..., None], known[keep].astype(np.float32)), cfg.seed + 10 * i + label)
            streams.append(ds.map(lambda x, m, k, y=float(label): (x, m, k, y)))
            weights.append(share / 2 * (1 - cfg.self_blend_share if label else 1))
        reals = arrays.images[arrays.labels == 0]
        if cfg.self_blend_share > 0 and len(reals):
            blend_seeds = tf.data.Dataset.random(seed=cfg.seed + 10 * i + 5).batch(2)
            ds = tf.data.Dataset.zip(_stream((reals,), cfg.seed + 10 * i + 2), blend_seeds)
            streams.append(ds.map(_self_blended, num_parallel_calls=tf.data.AUTOTUNE))
            weights.append(share / 2 * cfg.self_blend_share)
    weights = np.array(weights) / np.sum(weights)
    mixed = tf.data.Dataset.sample_from_datasets(streams, weights.tolist(), seed=cfg.seed)
    seeds = tf.data.Dataset.random(seed=cfg.seed).batch(2)
    aug = cfg.augment

    def prepare(element, seed):
        image, mask, known, label = element
        image, mask = augment(image, mask, seed, mask_size, aug)
        # The mask loss is one value per pixel: its weight must be too (a per-image weight
        # would be broadcast against the pixel rows).
        weights = {"fake_logit": 1.0, "mask_logit": tf.fill([mask_size, mask_size], known)}
        return image, {"fake_logit": tf.reshape(label, [1]), "mask_logit": mask}, weights

    ds = tf.data.Dataset.zip(mixed, seeds).map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(cfg.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _self_blended(element, seed):
    (image,) = element if isinstance(element, tuple) else (element,)
    blended, mask = self_blend(image, seed)
    mask = tf.image.resize(mask, [MASK_SIZE, MASK_SIZE], method="area")
    return blended, mask, tf.constant(1.0), tf.constant(1.0)


def predict_logits(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's fake-class logits for a stack of uint8 crops, without augmentation."""
    out = [model.predict_on_batch(images[i : i + batch_size].astype(np.float32))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)


class _Validation(keras.callbacks.Callback):
    """Scores the shipped (single-output) model on validation data after every epoch,
    keeps the best checkpoint by the mean of the per-set ROC-AUCs, and stops early.

    The mean over sets, not the pooled AUC, so the small set counts as much as the large.
    """

    def __init__(self, model: keras.Model, val: list[Arrays], path: Path, patience: int) -> None:
        super().__init__()
        self.serving, self.val, self.path, self.patience = model, val, path, patience
        self.best, self.best_epoch = -np.inf, -1

    def on_epoch_end(self, epoch, logs=None) -> None:
        aucs = {}
        for part in self.val:
            if len(np.unique(part.labels)) == 2:
                aucs[part.name] = float(roc_auc_score(part.labels, predict_logits(self.serving, part.images)))
        score = float(np.mean(list(aucs.values()))) if aucs else 0.0
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
    """Stops training after the epoch that passes a wall-clock budget."""

    def __init__(self, minutes: float) -> None:
        super().__init__()
        self.deadline = time.monotonic() + minutes * 60

    def on_epoch_end(self, epoch, logs=None) -> None:
        if time.monotonic() > self.deadline:
            log.info("time budget reached after epoch %d", epoch + 1)
            self.model.stop_training = True


def _flops(model: keras.Model) -> int:
    """Multiply-accumulates x2 of the convolution and dense layers, per image."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * c_out * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def train(cfg: TrainConfig) -> ModelCard:
    """Trains, calibrates and evaluates a model, and writes it with its card.

    Args:
        cfg: The run's configuration.

    Returns:
        The model card written next to the weights.
    """
    started = time.monotonic()
    keras.utils.set_random_seed(cfg.seed)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "run"
    work.mkdir(exist_ok=True)

    sets = [load_set(s, cfg.input_size, cfg.cache_dir, cfg.limit) for s in cfg.sets]
    for a in sets:
        log.info("%s: %d images (%s)", a.name, len(a), {s: int((a.splits == s).sum()) for s in ("train", "val", "test")})
    train_parts = [a.split("train") for a in sets]
    val = [a.split("val") for a in sets]

    steps = cfg.steps_per_epoch or math.ceil(sum(len(a) for a in train_parts) / cfg.batch_size)
    model = make_model(cfg.input_size, cfg.widths, cfg.blocks, cfg.stem_width, cfg.stem_stride, cfg.dropout)
    trainer = with_mask_head(model)
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 10, decay_steps=steps * cfg.epochs,
        warmup_target=cfg.learning_rate, warmup_steps=min(steps, 500),
    )
    trainer.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
        loss={
            "fake_logit": keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=cfg.label_smoothing),
            "mask_logit": keras.losses.BinaryCrossentropy(from_logits=True),
        },
        loss_weights={"fake_logit": 1.0, "mask_logit": cfg.mask_loss_weight},
        metrics={"fake_logit": [keras.metrics.AUC(name="auc", from_logits=True)]},
    )
    best = work / "best.keras"
    validation = _Validation(model, val, best, cfg.patience)
    history = trainer.fit(
        training_dataset(train_parts, cfg, mask_size=trainer.get_layer("mask_logit").output.shape[1]),
        steps_per_epoch=steps,
        epochs=cfg.epochs,
        shuffle=False,  # the dataset is already shuffled and balanced
        verbose=cfg.verbose,
        callbacks=[validation, keras.callbacks.CSVLogger(work / "history.csv"), _TimeBudget(cfg.max_minutes)],
    ).history
    model = keras.saving.load_model(best, safe_mode=True)
    train_minutes = (time.monotonic() - started) / 60

    # Calibration and the threshold come from validation data only; test is scored once.
    val_logits = predict_logits(model, np.concatenate([v.images for v in val]))
    val_labels = np.concatenate([v.labels for v in val])
    temperature = evaluation.fit_temperature(val_labels, val_logits)
    val_p = evaluation.apply_temperature(val_logits, temperature)
    threshold = evaluation.choose_threshold(val_labels, val_p)
    band = (max(0.0, threshold - cfg.uncertain_width), min(1.0, threshold + cfg.uncertain_width))

    metrics = {}
    for split in ("val", "test"):
        per_set = {}
        for a in sets:
            part = a.split(split)
            per_set[a.name] = (part.labels, evaluation.apply_temperature(predict_logits(model, part.images), temperature))
        metrics[split] = evaluation.report(per_set, threshold, uncertain_band=band)

    target = out_dir / MODEL_FILE
    shutil.copyfile(best, target)
    epochs_run = len(history.get("loss", []))
    val_aucs = history.get("val_auc", [float("nan")])
    card = ModelCard(
        input_size=cfg.input_size,
        face_margin=FACE_MARGIN,
        temperature=float(temperature),
        threshold=float(threshold),
        uncertain_band=(float(band[0]), float(band[1])),
        sha256=sha256_of(target),
        architecture={
            "summary": f"residual CNN, stages {list(cfg.widths)} x {list(cfg.blocks)}, {cfg.stem_stride}x{cfg.stem_stride} patch stem of {cfg.stem_width}, "
            f"{cfg.input_size}px input, one logit",
            "parameters": int(model.count_params()),
            "flops_per_image": _flops(model),
        },
        data={"sets": {a.name: {s: {"real": int(((a.splits == s) & (a.labels == 0)).sum()),
                                    "fake": int(((a.splits == s) & (a.labels == 1)).sum())}
                                for s in ("train", "val", "test")} for a in sets}},
        training={
            "command": " ".join(["python", "train.py", *sys.argv[1:]]) if Path(sys.argv[0]).name == "train.py" else "python train.py",
            "config": json.loads(json.dumps(asdict(cfg), default=str)),
            "minutes": round(train_minutes, 1),
            "machine": f"{platform.machine()}, {tf.config.threading.get_inter_op_parallelism_threads() or 'all'} threads, "
            f"{len(tf.config.list_physical_devices('GPU'))} GPU",
            "epochs_run": epochs_run,
            "best_epoch": int(np.nanargmax(val_aucs)) + 1,
            "best_val_auc": float(np.nanmax(val_aucs)),
            "history": {k: [round(float(v), 4) for v in vals] for k, vals in history.items()},
        },
        metrics=metrics,
    )
    card.save(out_dir)
    log.info("wrote %s and %s in %.1f min", target, out_dir / CARD_FILE, (time.monotonic() - started) / 60)
    return card
