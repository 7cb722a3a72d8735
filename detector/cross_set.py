"""Cross-set generalization: train on one set with the shipped recipe, test on the others.

    python train.py --cross-set [SET ...] [--epochs N]

A detector's score on its own test split says little about fakes of a kind it never saw.
Training on one set and testing on another is the project's own measure of that. The
result is written into the shipped model card (``extra["Cross-set generalization"]``).
To shorten a run, give fewer ``--epochs`` rather than ``--max-minutes``: the cosine schedule
then still anneals, where a time budget stops it at a high learning rate.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras

from detector import evaluation
from detector.card import MODEL_FILE, ModelCard
from detector.data import load_set
from detector.training import TrainConfig, predict_logits, train

log = logging.getLogger("detector.cross_set")

CARD_SECTION = "Cross-set generalization"


def cross_set_report(
    cfg: TrainConfig,
    work_dir: str | Path,
    card_dir: str | Path | None = None,
    train_on: list[str] | None = None,
) -> dict:
    """Trains one model per set and scores it on every set's test split.

    Args:
        cfg: The recipe (the shipped one by default); each run uses it with one set.
        work_dir: Where the per-set models are written.
        card_dir: A weights folder whose card receives the report (merged with what it
            already holds); ``None`` to skip.
        train_on: The sets to train on, each alone; all of ``cfg.sets`` by default.

    Returns:
        ``{"train on <A>": {"<B>": {"roc_auc", "accuracy", ...}, ...}, ...}``; the
        threshold and calibration of each run come from its own validation split.
    """
    report = {}
    for train_set in train_on or cfg.sets:
        name = Path(train_set).name
        run_cfg = dataclasses.replace(cfg, sets=[train_set], out_dir=str(Path(work_dir) / name))
        log.info("cross-set: training on %s", name)
        card = train(run_cfg)
        model = keras.saving.load_model(Path(run_cfg.out_dir) / MODEL_FILE, safe_mode=True)
        row = {"minutes": card.training.get("minutes"), "epochs": card.training.get("epochs_run")}
        for test_set in cfg.sets:
            part = load_set(test_set, cfg.input_size, cfg.cache_dir, cfg.limit, margin=cfg.face_margin).split("test")
            logits = predict_logits(model, part.images, card.scoring_views)
            p = evaluation.apply_temperature(logits, card.temperature, card.bias)
            m = evaluation.binary_metrics(part.labels, p, card.threshold)
            row[Path(test_set).name] = {k: m[k] for k in ("roc_auc", "accuracy", "recall_real", "recall_fake", "ece", "n")}
        report[f"train on {name}"] = row
    if card_dir is not None:
        shipped = ModelCard.load(card_dir)
        shipped.extra[CARD_SECTION] = {**shipped.extra.get(CARD_SECTION, {}), **report}
        shipped.save(card_dir)
    return report
