"""The shortcut audit: can trivial image statistics alone tell a source's real faces from its fakes?

    python -m detector audit                     # the six shared sets, files and training stream
    python -m detector audit --sets my_set/ --limit 300 --json

A network learns the easiest rule that separates its labels. If a set's fakes are smaller,
softer, more compressed or framed differently than its reals, that rule is "small, soft,
compressed or framed so means fake", and it fails on every photo from elsewhere. This audit
fits a small classifier (gradient-boosted trees of depth 3, out-of-fold over groups) on
statistics that say nothing about how a face was made, and reports its ROC-AUC per training
source (``sampling.group_sources``: a set, or the pool of one-label sets):

- **files**: the statistics of the files as they are: width, height, bytes per pixel, JPEG
  quality (from the quantization table; 0 for other formats), sharpness (variance of the
  Laplacian), brightness, contrast, saturation, the border's mean and spread, and the face's
  framing (the side of its region in pixels and as a share of the photo);
- **stream**: the same kind of statistics of what the network is trained on, the crops of
  the training stream (``sampling.training_dataset``) after its resolution matching and
  degradations: sharpness, high-frequency energy, 8x8 JPEG blockiness, brightness, contrast,
  saturation and the border's mean and spread;
- **stream, learned on the others**: the classifier fitted on the other sources' stream crops
  and scored on this source's (``transfer_auc``). A network trained without a kind of fake can
  still carry a look from the other sources to it ("sharp means fake"); near 0.5 no look
  carries over, far from it in either direction one does (below 0.5: reversed).

An AUC near 0.5 means the statistics cannot tell the labels apart; above ``SHORTCUT_AUC`` the
source has a shortcut. The files show what a set *could* teach; the stream shows what is left
of it after the data pipeline.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

from detector.data import Arrays, load_set

#: Above this out-of-fold ROC-AUC, trivial statistics separate a source's labels: a shortcut.
SHORTCUT_AUC = 0.7

FILE_FEATURES = ("width", "height", "bytes_per_pixel", "jpeg_quality", "sharpness", "brightness", "contrast",
                 "saturation", "border_mean", "border_std", "face_pixels", "face_share")
CROP_FEATURES = ("sharpness", "high_frequency", "blockiness", "brightness", "contrast", "saturation", "border_mean",
                 "border_std")

#: The IJG standard luminance quantization table (quality 50), in zigzag order as PIL gives it.
_IJG_LUMINANCE = np.array([
    16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40, 26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61,
    60, 57, 51, 56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87, 95, 98, 103, 104, 103, 62, 77, 113,
    121, 112, 100, 120, 92, 101, 103, 99], np.float64)


def jpeg_quality(data: bytes) -> float:
    """The IJG quality (1-100) whose luminance table is nearest the file's; 0 when the file
    is not a JPEG or has no standard-like table."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            tables = getattr(image, "quantization", None)
    except Exception:
        return 0.0
    if not tables or 0 not in tables:
        return 0.0
    table = np.asarray(tables[0], np.float64)
    qualities = np.arange(1, 101)
    scales = np.where(qualities < 50, 5000 / qualities, 200 - 2 * qualities)
    candidates = np.clip(np.floor((_IJG_LUMINANCE[None] * scales[:, None] + 50) / 100), 1, 255)
    return float(qualities[np.argmin(np.abs(candidates - table[None]).mean(axis=1))])


def _picture_statistics(rgb: np.ndarray) -> dict[str, float]:
    """Sharpness, brightness, contrast, saturation and the border's mean and spread."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    ring = max(2, min(grey.shape) // 32)
    border = np.concatenate([grey[:ring].ravel(), grey[-ring:].ravel(), grey[:, :ring].ravel(), grey[:, -ring:].ravel()])
    return {
        "sharpness": float(np.log1p(cv2.Laplacian(grey, cv2.CV_32F).var())),
        "brightness": float(grey.mean()),
        "contrast": float(grey.std()),
        "saturation": float(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].mean()),
        "border_mean": float(border.mean()),
        "border_std": float(border.std()),
    }


def file_statistics(path: Path, native: int) -> dict[str, float]:
    """``FILE_FEATURES`` of one image file, ``native`` being its face region's side."""
    data = path.read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    return {"width": float(w), "height": float(h), "bytes_per_pixel": len(data) / (w * h),
            "jpeg_quality": jpeg_quality(data), **_picture_statistics(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)),
            "face_pixels": float(native), "face_share": native / min(w, h)}


def crop_statistics(crop: np.ndarray) -> dict[str, float]:
    """``CROP_FEATURES`` of one crop as the network sees it (float or uint8 pixels, 0-255)."""
    rgb = np.clip(np.asarray(crop), 0, 255).astype(np.uint8)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    spectrum = np.abs(np.fft.rfft2(grey - grey.mean())) ** 2
    fy = np.abs(np.fft.fftfreq(grey.shape[0]))[:, None]
    fx = np.fft.rfftfreq(grey.shape[1])[None, :]
    high = spectrum[np.maximum(fy, fx) > 0.25].sum() / max(spectrum.sum(), 1e-9)
    # JPEG blockiness: the jump across 8-pixel block edges against the jump inside blocks.
    dx = np.abs(np.diff(grey, axis=1))
    edges = dx[:, 7::8].mean() if dx.shape[1] > 8 else 0.0
    block = float(edges / max(dx.mean(), 1e-6))
    return {**_picture_statistics(rgb), "high_frequency": float(high), "blockiness": block}


def shortcut_auc(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int = 5, seed: int = 0) -> float | None:
    """Out-of-fold ROC-AUC of a small classifier on trivial statistics.

    Folds never split a group (one person or source video), so the classifier cannot win
    by recognising near-copies.

    Args:
        features: ``(N, F)`` statistics.
        labels: ``(N,)`` 0 real, 1 fake.
        groups: ``(N,)`` group keys.
        folds: Cross-validation folds.
        seed: Seeds the classifier.

    Returns:
        The ROC-AUC, or ``None`` when a label is missing or too rare to cross-validate.
    """
    labels = np.asarray(labels)
    if min(np.sum(labels == 0), np.sum(labels == 1)) < folds:
        return None
    scores = np.zeros(len(labels))
    splitter = GroupKFold(n_splits=min(folds, len(np.unique(groups))))
    for train, test in splitter.split(features, labels, groups):
        if len(np.unique(labels[train])) < 2:
            return None
        model = _small_classifier(seed).fit(features[train], labels[train])
        scores[test] = model.predict_proba(features[test])[:, 1]
    return float(roc_auc_score(labels, scores))


def _small_classifier(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_depth=3, max_iter=100, learning_rate=0.1, min_samples_leaf=10,
                                          random_state=seed)


def transfer_auc(features: np.ndarray, labels: np.ndarray, sources: np.ndarray, held_out: int, seed: int = 0) -> float | None:
    """ROC-AUC on one source's rows of a small classifier on trivial statistics fitted on
    every other source's rows: whether what tells real from fake elsewhere tells it here.

    Args:
        features: ``(N, F)`` statistics.
        labels: ``(N,)`` 0 real, 1 fake.
        sources: ``(N,)`` source index of each row.
        held_out: The source scored.
        seed: Seeds the classifier.

    Returns:
        The ROC-AUC, or ``None`` when the held-out source or the others lack a label.
    """
    labels, test = np.asarray(labels), np.asarray(sources) == held_out
    if len(np.unique(labels[test])) < 2 or len(np.unique(labels[~test])) < 2:
        return None
    model = _small_classifier(seed).fit(features[~test], labels[~test])
    return float(roc_auc_score(labels[test], model.predict_proba(features[test])[:, 1]))


def _balanced_rows(arrays: Arrays, limit: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``limit`` faces per label, drawn at random."""
    rng = np.random.default_rng(seed)
    keep = []
    for label in (0, 1):
        rows = np.flatnonzero((arrays.labels == label) & arrays.found)
        keep.append(rows if limit is None or len(rows) <= limit else rng.choice(rows, limit, replace=False))
    return np.sort(np.concatenate(keep))


def audit_files(sets: list[str], split: str = "train", limit: int | None = 600, size: int | None = None,
                cache_dir: str | Path | None = None, workers: int = 2, seed: int = 0) -> dict[str, dict[str, Any]]:
    """The files half of the audit: per training source, the AUC of ``FILE_FEATURES``.

    Args:
        sets: Set folders.
        split: The split audited.
        limit: At most this many faces per label and set (``None``: all).
        size: Crop size of the cache that gives each face's region (``model.INPUT_SIZE``).
        cache_dir: Crop cache (``data.load_set``).
        workers: Threads reading files.
        seed: Seeds the draw of faces and the classifier.

    Returns:
        ``{source: {"n", "auc", "features": {name: single-feature AUC}}}``.
    """
    from detector.model import INPUT_SIZE
    from detector.sampling import group_sources

    parts, rows_of = [], {}
    for root in sets:
        arrays = load_set(root, size or INPUT_SIZE, cache_dir).split(split)
        arrays = arrays.select(_balanced_rows(arrays, limit, seed))
        with ThreadPoolExecutor(workers) as pool:
            rows = list(pool.map(file_statistics, [Path(root) / f for f in arrays.files], arrays.native.tolist()))
        rows_of[arrays.name] = np.array([[r[k] for k in FILE_FEATURES] for r in rows]).reshape(-1, len(FILE_FEATURES))
        parts.append(arrays)
    out = {}
    for source in group_sources(parts):
        # A pool's rows are its sets' rows, in the order group_sources joins them.
        x = np.concatenate([rows_of[name] for name in source.name.split(" + ")])
        out[source.name] = _result(x, source.labels, source.groups, FILE_FEATURES, seed)
    return out


def audit_stream(sets: list[str], cfg, batches: int = 40) -> dict[str, dict[str, Any]]:
    """The stream half of the audit: per training source, the AUC of ``CROP_FEATURES`` of the
    crops the network is trained on.

    Args:
        sets: Set folders.
        cfg: The run's ``TrainConfig`` (crop size, sampling, degradations).
        batches: Training batches drawn.

    Returns:
        ``{source: {"n", "auc", "auc_from_others", "features": {name: single-feature AUC}}}``.
    """
    from detector.sampling import group_sources, training_dataset

    parts = [load_set(s, cfg.input_size, cfg.cache_dir, cfg.limit, margin=cfg.face_margin).split("train") for s in sets]
    names = [s.name for s in group_sources(parts)]
    stream = training_dataset(parts, cfg, mask_size=8, with_sources=True)
    rows, labels, sources = [], [], []
    for images, targets, _, source in stream.take(batches):
        rows += [crop_statistics(image) for image in images.numpy()]
        labels += targets["fake_logit"].numpy().ravel().astype(int).tolist()
        sources += source.numpy().tolist()
    x = np.array([[r[k] for k in CROP_FEATURES] for r in rows])
    labels, sources = np.array(labels), np.array(sources)
    out = {}
    # A real face and the fake made from it sit side by side in a paired stream: one group, so
    # no fold learns one of them and tests on its twin. Otherwise each crop is its own group
    # (the stream draws faces at random; repeats are rare at these batch counts).
    groups = np.arange(len(labels)) // 2 if cfg.paired else np.arange(len(labels))
    for i, name in enumerate(names):
        keep = sources == i
        out[name] = {**_result(x[keep], labels[keep], groups[keep], CROP_FEATURES, cfg.seed),
                     "auc_from_others": transfer_auc(x, labels, sources, i, cfg.seed)}
    return out


def _result(x: np.ndarray, labels: np.ndarray, groups: np.ndarray, names: tuple[str, ...], seed: int) -> dict[str, Any]:
    singles = {}
    if len(np.unique(labels)) == 2:
        for j, name in enumerate(names):
            auc = roc_auc_score(labels, x[:, j])
            singles[name] = round(float(max(auc, 1 - auc)), 3)  # either direction is a tell
    return {"n": int(len(labels)), "fake_share": float(np.mean(labels)) if len(labels) else None,
            "auc": shortcut_auc(x, labels, groups, seed=seed), "features": singles}


def format_table(report: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The audit as a Markdown table: per source, the AUC on files and on the stream, that of
    the stream classifier learned on the other sources (marked where it is as far from 0.5 as a
    shortcut, in either direction), and the statistics that tell the labels apart best."""
    lines = ["| source | files AUC | stream AUC | stream, learned on the others | strongest tells (files) |",
             "|---|---|---|---|---|"]
    names = list(dict.fromkeys([*report.get("files", {}), *report.get("stream", {})]))
    for name in names:
        files, stream = report.get("files", {}).get(name, {}), report.get("stream", {}).get(name, {})

        def cell(part: dict) -> str:
            auc = part.get("auc")
            return "–" if auc is None else f"{auc:.2f}" + (" **shortcut**" if auc > SHORTCUT_AUC else "")

        tells = sorted(files.get("features", {}).items(), key=lambda kv: -kv[1])[:3]
        others = stream.get("auc_from_others")
        carried = "–" if others is None else f"{others:.2f}"
        if others is not None and max(others, 1 - others) > SHORTCUT_AUC:
            carried += " **carries over**"
        lines.append(f"| {name} | {cell(files)} | {cell(stream)} | {carried} | "
                     + ", ".join(f"{k} {v:.2f}" for k, v in tells) + " |")
    return "\n".join(lines)


def run_audit(sets: list[str], split: str = "train", limit: int | None = 600, stream_batches: int = 40,
              cfg=None) -> dict[str, Any]:
    """Both halves of the audit (``audit_files``, ``audit_stream``), as the CLI prints them.

    Args:
        sets: Set folders.
        split: The split whose files are audited (the stream is always the training split).
        limit: Faces per label and set for the files half.
        stream_batches: Training batches for the stream half; 0 skips it.
        cfg: The ``TrainConfig`` whose stream is audited (the shipped recipe by default).

    Returns:
        ``{"threshold", "files": {...}, "stream": {...}}``.
    """
    from detector.training import TrainConfig

    cfg = cfg or TrainConfig(sets=sets)
    report: dict[str, Any] = {"threshold": SHORTCUT_AUC,
                              "files": audit_files(sets, split, limit, cfg.input_size, cfg.cache_dir, seed=cfg.seed)}
    if stream_batches:
        report["stream"] = audit_stream(sets, cfg, stream_batches)
    return report

