"""Leave one source out: train without a family of fakes, test on it.

    python train.py --leave-one-out [FAMILY ...] [--max-minutes M] [--resume]

A detector's figures on test splits of the sources it trained on say little about a kind of
fake it never saw, and users will meet such fakes first. For each family of fakes in
``FAMILIES``, this trains a model with the shipped recipe on every other source, then scores
the held-out family's test split with that model's own calibration and threshold. The result
goes into the shipped model card (``card.UNSEEN_SECTION``), and from there into the README
and the demo's About tab: these are the detector's honest figures.

Each run is kept in its own folder of ``work_dir``; a finished run is not trained again and an
interrupted one goes on with ``--resume``, so the whole table can be made over several
sittings.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import keras

from detector import evaluation
from detector.card import MODEL_FILE, UNSEEN_SECTION, ModelCard
from detector.data import load_set
from detector.sampling import group_sources
from detector.training import (TrainConfig, epochs_run, finished_card, predict_logits, recipe_differences, resumable,
                               scoring_network, train)

log = logging.getLogger("detector.loso")

#: The families of fakes held out in turn, and the sets that make each up. The text-to-image
#: fakes have no reals of their own: their counterpart, the web photos of real people, goes
#: out with them, so the held-out test stands unseen fakes against unseen reals.
FAMILIES: dict[str, tuple[str, ...]] = {
    "DFDC face swaps": ("dfdc_faces",),
    "LFW face swaps": ("lfw_faceswap",),
    "StyleGAN faces": ("ffhq_stylegan",),
    "text-to-image diffusion (SDXL, FLUX)": ("sfhq_t2i", "utkface_wild_crops"),
    "FLUX-LoRA deepfakes": ("ecuador_flux_lora",),
}


def _slug(family: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", family.lower()).strip("-")


def held_out_row(model, card: ModelCard, held_out: list, cfg: TrainConfig) -> dict:
    """A held-out family's test figures for one run: per source of the held-out sets.

    Args:
        model: The run's network as its ``Detector`` scores on it (``training.scoring_network``).
        card: Its card (calibration, threshold, views).
        held_out: The held-out sets' folders.
        cfg: The run's configuration (cache, limit).

    Returns:
        ``{source name: {"roc_auc", "recall_fake", "recall_real", "n"}}``.
    """
    # Crops as the run's network takes them: a run kept from before the recipe's crop size or
    # margin changed (``keep_finished``) is scored as it was trained, not as ``cfg`` says.
    parts = [load_set(s, card.input_size, cfg.cache_dir, cfg.limit, margin=card.face_margin).split("test").with_faces()
             for s in held_out]
    row = {}
    for source in group_sources(parts):
        z = predict_logits(model, source.images, card.scoring_views)
        p = evaluation.apply_temperature(z, card.temperature, card.bias)
        m = evaluation.binary_metrics(source.labels, p, card.threshold)
        row[source.name] = {k: m[k] for k in ("roc_auc", "recall_fake", "recall_real", "n")}
    return row


def leave_one_out_report(
    cfg: TrainConfig,
    work_dir: str | Path,
    card_dir: str | Path | None = None,
    families: list[str] | None = None,
    resume: bool = False,
    catalogue: dict[str, tuple[str, ...]] = FAMILIES,
    keep_finished: bool = False,
) -> dict:
    """Trains one model per held-out family and scores it on that family's test split.

    Args:
        cfg: The recipe (the shipped one by default, or a shorter schedule); each run uses
            it with the held-out family's sets removed from ``cfg.sets``.
        work_dir: Where each run keeps its model, card and checkpoints.
        card_dir: A weights folder whose card receives the report (merged with what it
            already holds); ``None`` to skip.
        families: Names from ``catalogue``; all of them by default.
        resume: Go on with a run that was interrupted (a finished run is always reused).
        catalogue: The families and their sets' names (``FAMILIES``).
        keep_finished: Reuse a finished run even when its recipe differs from ``cfg``'s
            (say, runs made before the recipe changed), instead of training it again; its
            row names the settings that differ.

    Returns:
        ``{family: {"held_out", "minutes", "epochs", "recipe_differs", <source>: {metrics}}}``,
        where ``recipe_differs`` lists the settings in which the run differs from ``cfg``.

    Raises:
        ValueError: an unknown family, or one whose sets are not among ``cfg.sets``.
    """
    report = {}
    for family in families or list(catalogue):
        if family not in catalogue:
            raise ValueError(f"unknown family {family!r}; the families are {list(catalogue)}")
        names = catalogue[family]
        held_out = [s for s in cfg.sets if Path(s).name in names]
        if not held_out:
            raise ValueError(f"family {family!r} holds {names}, none of which is among the run's sets")
        run_cfg = dataclasses.replace(cfg, sets=[s for s in cfg.sets if s not in held_out],
                                      out_dir=str(Path(work_dir) / _slug(family)))
        card = finished_card(run_cfg, keep_finished)
        if card is None:
            log.info("leave one out: training without %s", family)
            card = train(run_cfg, resume=resume and resumable(run_cfg))
        model = keras.saving.load_model(Path(run_cfg.out_dir) / MODEL_FILE, safe_mode=True, compile=False)
        model = scoring_network(run_cfg.out_dir, card, model)
        report[family] = {"held_out": " + ".join(names), "minutes": card.training.get("minutes"),
                          "epochs": epochs_run(card), "recipe_differs": recipe_differences(card, run_cfg),
                          **held_out_row(model, card, held_out, run_cfg)}
    if card_dir is not None:
        shipped = ModelCard.load(card_dir)
        shipped.extra[UNSEEN_SECTION] = {**shipped.extra.get(UNSEEN_SECTION, {}), **report}
        shipped.save(card_dir)
    return report

