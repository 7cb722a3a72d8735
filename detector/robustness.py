"""How verdicts hold up when photos are degraded as social networks degrade them.

    python -m detector robustness --out reports/robustness

Every test image is decoded once, then degraded by each condition (JPEG re-compression,
downscaling, blur and their combinations, enlarging, smoothing, black and white, a beauty mode's
reshaping of the face) and scored
through the whole pipeline, faces included. For each condition and set the report gives the ROC-AUC, its drop
from the undegraded images, the shares of reals called fake and of fakes called real (each
photo's own verdict, as the page gives it), and the share of verdicts (fake / not fake at the
threshold) that flip. The changes people make to photos (``CARD_CONDITIONS``) go into the model
card, from which the page says which of them turn a verdict.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector import evaluation
from detector.card import UNCHANGED
from detector.data import read_records
from detector.evaluate_sets import Scored, verdict_shares
from detector.faces import FaceFinder
from detector.imaging import ImageError, load_image
from detector.pipeline import Detector

Degrade = Callable[[np.ndarray], np.ndarray]


def jpeg(quality: int) -> Degrade:
    """Re-compresses an RGB image as JPEG at ``quality``."""

    def apply(image: np.ndarray) -> np.ndarray:
        ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]

    return apply


def resize(factor: float, interpolation: int) -> Degrade:
    """Scales an image by ``factor`` with OpenCV's ``interpolation``."""

    def apply(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        return cv2.resize(image, size, interpolation=interpolation)

    return apply


def downscale(factor: float) -> Degrade:
    """Shrinks an image by ``factor`` (as an upload resized by a social network)."""
    return resize(factor, cv2.INTER_AREA)


def enlarge(factor: float) -> Degrade:
    """Enlarges an image by ``factor`` with bicubic interpolation: a small picture shown
    full-screen on a phone (3 device pixels to the CSS pixel) and kept as a screenshot."""
    return resize(factor, cv2.INTER_CUBIC)


def blur(sigma: float) -> Degrade:
    """Gaussian blur with ``sigma`` pixels."""
    return lambda image: cv2.GaussianBlur(image, (0, 0), sigma)


def smooth(sigma_color: float, sigma_space: float) -> Degrade:
    """Edge-preserving smoothing (OpenCV's bilateral filter, sigmas on the 0-255 scale and in
    pixels): skin smoothed and outlines kept, as phones' beauty modes and retouching do."""
    return lambda image: cv2.bilateralFilter(image, 0, sigma_color, sigma_space)


@functools.cache
def _finder() -> FaceFinder:
    return FaceFinder()  # the pipeline's finder and settings, so the warp lands on the faces it scores


def reshape_faces(eye_gain: float = 0.25, slimming: float = 0.08) -> Degrade:
    """A beauty mode's reshaping of every face it finds (YuNet's five landmarks): each eye
    enlarged by a bulge of radius 0.4 eye distances (``eye_gain``: how much nearer its centre
    each pixel is drawn from, at the centre), and the face below the nose slimmed, pulled
    towards its midline by up to ``slimming`` of the distance. One ``cv2.remap`` per photo;
    a photo without a face comes back unchanged."""

    def apply(image: np.ndarray) -> np.ndarray:
        faces = _finder().detect(image)
        if not faces:
            return image
        h, w = image.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        map_x, map_y = xs.copy(), ys.copy()
        for face in faces:
            eye_r, eye_l, nose, mouth_r, mouth_l = face.landmarks
            d = float(np.linalg.norm(eye_l - eye_r))
            for eye in (eye_r, eye_l):  # drawn from nearer the centre: magnified
                dx, dy = xs - eye[0], ys - eye[1]
                fall = np.clip(1 - (dx**2 + dy**2) / (0.4 * d) ** 2, 0, None)
                map_x -= eye_gain * fall * dx
                map_y -= eye_gain * fall * dy
            # The jaw: within 1.1 eye distances of the mouth's middle, fading in below the nose.
            mid = (mouth_r + mouth_l) / 2
            dx, dy = xs - mid[0], ys - mid[1]
            below = np.clip((ys - nose[1]) / (0.3 * d), 0, 1)
            fall = np.clip(1 - (dx**2 + dy**2) / (1.1 * d) ** 2, 0, None) * below
            map_x += slimming * fall * dx  # drawn from further out: pulled in
        return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    return apply


def grayscale(image: np.ndarray) -> np.ndarray:
    """A black-and-white photo: the image's luminance in each of its three channels."""
    return np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def chain(*steps: Degrade) -> Degrade:
    """Applies ``steps`` in order."""

    def apply(image: np.ndarray) -> np.ndarray:
        for step in steps:
            image = step(image)
        return image

    return apply


#: The conditions of the report. "half+jpeg50" is the one the goal is set on.
CONDITIONS: dict[str, Degrade] = {
    "none": lambda image: image,
    "jpeg90": jpeg(90),
    "jpeg70": jpeg(70),
    "jpeg50": jpeg(50),
    "jpeg30": jpeg(30),
    "half": downscale(1 / 2),
    "quarter": downscale(1 / 4),
    "blur1": blur(1.0),
    "half+jpeg50": chain(downscale(1 / 2), jpeg(50)),
    "quarter+jpeg70": chain(downscale(1 / 4), jpeg(70)),
    "blur1+jpeg50": chain(blur(1.0), jpeg(50)),
    "x3": enlarge(3),
    "x3+jpeg80": chain(enlarge(3), jpeg(80)),  # that screenshot sent on through a messenger
    "smooth": smooth(40, 3),  # a beauty mode or retouched portrait: skin smoothed, outlines kept
    "gray": grayscale,  # a black-and-white photo
    "reshape": reshape_faces(),  # a beauty mode's bigger eyes and slimmer jaw
}

#: The conditions the model card keeps (``card.CHANGED_SECTION``), in the words the page uses: what
#: people do to a photo after it was made, where the report also sweeps each step apart.
CARD_CONDITIONS = {
    "none": UNCHANGED,
    "smooth": "skin smoothed (a beauty mode, retouching)",
    "gray": "black and white",
    "reshape": "face reshaped (a beauty mode's bigger eyes, slimmer jaw)",
    "half+jpeg50": "halved and saved as JPEG 50 (sent on by a messenger)",
    "x3+jpeg80": "enlarged 3× and saved as JPEG 80 (a screenshot sent on)",
}

#: The goal: at this condition, AUC drops by at most MAX_AUC_DROP and at most MAX_FLIPS flip.
GOAL_CONDITION, MAX_AUC_DROP, MAX_FLIPS = "half+jpeg50", 0.03, 0.05


def _reversal_share(detector: Detector, before: np.ndarray, after: np.ndarray) -> float:
    """Share of scores whose band verdict goes from fake to real or from real to fake."""
    pairs = [(detector.verdict(float(a)), detector.verdict(float(b))) for a, b in zip(before, after)]
    return float(np.mean([{a, b} == {"fake", "real"} for a, b in pairs]))


def robustness_report(
    sets: list[str],
    out_dir: str | Path,
    split: str = "test",
    weights: str | Path | None = None,
    limit: int | None = None,
    conditions: dict[str, Degrade] | None = None,
    detector: Detector | None = None,
) -> dict:
    """Scores a split of each set under every condition and writes JSON and a plot.

    Args:
        sets: Set folders.
        out_dir: Where ``robustness.json`` and ``robustness.png`` go.
        split: The split to score.
        weights: Weights folder; the shipped one when ``None``.
        limit: At most this many images per label and set.
        conditions: Name -> degradation; ``CONDITIONS`` by default (must include "none").
        detector: An already loaded detector (overrides ``weights``).

    Returns:
        ``{"sets": {set: {condition: {"roc_auc", "auc_drop", "real_called_fake",
        "fake_called_real", "flip_share", "reversal_share", "n"}}},
        "goal": {...}}``.
    """
    detector = detector or Detector.load(weights)
    conditions = conditions or CONDITIONS
    threshold = detector.card.threshold
    report: dict = {"split": split, "threshold": threshold, "sets": {}}
    for root in sets:
        records = [r for r in read_records(root) if r.split == split]
        if limit is not None:
            records = [r for label in (0, 1) for r in [x for x in records if x.label == label][:limit]]
        probs: dict[str, list[float]] = {name: [] for name in conditions}
        verdicts: dict[str, list[str]] = {name: [] for name in conditions}
        labels = []
        for record in tqdm(records, desc=Path(root).name, unit="img", leave=False):
            try:
                image = load_image(record.path)
            except ImageError:
                continue
            labels.append(record.label)
            for name, degrade in conditions.items():
                result = detector.predict(degrade(image))
                probs[name].append(result.image_score)
                verdicts[name].append(result.label)
        y = np.array(labels)
        base = np.array(probs["none"])
        aucs = {name: evaluation.binary_metrics(y, np.array(p), threshold)["roc_auc"] for name, p in probs.items()}
        per_condition = {}
        for name in conditions:
            p = np.array(probs[name])
            auc = aucs[name]
            # Each kind given the other's verdict, the page's own verdict (faces too small or cut
            # off are "uncertain" there, whatever their score): what a condition does to the
            # real photos called fake is not in the ranking.
            shares = verdict_shares([Scored(v, s) for v, s in zip(verdicts[name], p)], y)
            per_condition[name] = {
                "roc_auc": auc,
                "auc_drop": None if auc is None or aucs["none"] is None else aucs["none"] - auc,
                "real_called_fake": shares["real_called_fake"],
                "fake_called_real": shares["fake_called_real"],
                "flip_share": float(np.mean((p >= threshold) != (base >= threshold))) if len(p) else None,
                # Stricter for the user: a confident verdict that becomes the opposite
                # confident verdict (fake <-> real), not one that becomes "uncertain".
                "reversal_share": _reversal_share(detector, base, p) if len(p) else None,
                "n": int(len(p)),
            }
        report["sets"][Path(root).name] = per_condition

    goal = {}
    for name, per_condition in report["sets"].items():
        at = per_condition.get(GOAL_CONDITION)
        if at and at["auc_drop"] is not None:
            goal[name] = {"auc_drop": at["auc_drop"], "flip_share": at["flip_share"],
                          "met": at["auc_drop"] <= MAX_AUC_DROP and at["flip_share"] <= MAX_FLIPS}
    report["goal"] = {"condition": GOAL_CONDITION, "max_auc_drop": MAX_AUC_DROP, "max_flip_share": MAX_FLIPS, **goal}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "robustness.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_robustness(report, out_dir / "robustness.png")
    return report


def card_block(report: dict) -> dict:
    """What ``card.extra[card.CHANGED_SECTION]`` holds: for each of ``CARD_CONDITIONS`` the report
    has, each set's ROC-AUC, shares of each kind given the other's verdict and images scored (a
    share a set cannot have, as reals called fake in a set of fakes only, is left out).

    Args:
        report: ``robustness_report``'s output.
    """
    names = {"roc_auc": "ROC-AUC", "real_called_fake": "reals called fake", "fake_called_real": "fakes called real",
             "n": "images"}
    return {words: {"condition": condition, **{
                name: {names[k]: v for k, v in rows[condition].items() if k in names and v is not None}
                for name, rows in report["sets"].items()}}
            for condition, words in CARD_CONDITIONS.items()
            if all(condition in rows for rows in report["sets"].values())}


def plot_robustness(report: dict, path: str | Path) -> Path:
    """ROC-AUC, flipped verdicts and reals called fake per condition, one bar group per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(report["sets"])
    names = list(next(iter(report["sets"].values()))) if sets else []
    fig, (ax_auc, ax_flip, ax_real) = plt.subplots(3, 1, figsize=(11, 8), dpi=100, sharex=True)
    width = 0.8 / max(1, len(sets))
    x = np.arange(len(names))
    for i, name in enumerate(sets):
        rows = report["sets"][name]
        ax_auc.bar(x + i * width, [rows[c]["roc_auc"] or 0 for c in names], width, label=name)
        ax_flip.bar(x + i * width, [100 * (rows[c]["flip_share"] or 0) for c in names], width, label=name)
        ax_real.bar(x + i * width, [100 * (rows[c].get("real_called_fake") or 0) for c in names], width, label=name)
    ax_auc.set_ylabel("ROC-AUC")
    ax_auc.set_ylim(0.5, 1.0)
    ax_auc.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the bars, not over them
    ax_flip.set_ylabel("verdicts flipped (%)")
    ax_flip.axhline(100 * MAX_FLIPS, color="grey", lw=0.8, ls="--")
    ax_real.set_ylabel("reals called fake (%)")
    ax_real.set_xticks(x + width * (len(sets) - 1) / 2, names, rotation=30, ha="right")
    fig.suptitle(f"Robustness on the {report['split']} split")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
