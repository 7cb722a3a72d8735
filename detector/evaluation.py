"""Metrics, threshold choice, calibration and plots for a binary real/fake detector.

Everything here works on plain arrays: ``y_true`` holds labels (0 = real, 1 = fake, the
positive class) and ``p_fake`` the model's probability that an image is fake. The caller
runs the model; this module imports no TensorFlow, so it is quick to load and to test.
matplotlib is imported only inside the plotting functions, and draws on figures of its
own (Agg canvas, no ``pyplot`` state), so plotting is safe from any thread.

A sample is called fake when ``p_fake >= threshold``. Metrics that are undefined for the
data at hand (AUC of a set holding one class, precision with no fake predictions, ...)
are ``None``, which JSON writes as ``null``; every number returned is a plain Python
``int`` or ``float``, so a whole report goes straight to ``json.dumps``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit
from sklearn import metrics as skm

#: Number of equal-width probability bins for the expected calibration error.
ECE_BINS = 15

#: Rules ``choose_threshold`` knows.
THRESHOLD_RULES = ("balanced", "eer")

Labels = Sequence[int] | np.ndarray  # 0 = real, 1 = fake
Probs = Sequence[float] | np.ndarray  # probability of fake, in [0, 1]
PerSet = Mapping[str, tuple[Labels, Probs]]  # set name -> (y_true, p_fake)


def _check(y_true: Labels, p_fake: Probs) -> tuple[np.ndarray, np.ndarray]:
    """Validates labels and probabilities and returns them as int64 / float64 arrays.

    Raises:
        ValueError: shapes differ or are not 1-D, the input is empty, a label is not 0/1,
            or a probability is not a finite number in [0, 1].
    """
    y = np.asarray(y_true)
    p = np.asarray(p_fake, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise ValueError(f"y_true and p_fake must be 1-D and of equal length, got shapes {y.shape} and {p.shape}")
    if len(y) == 0:
        raise ValueError("y_true and p_fake are empty")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        raise ValueError(f"labels must be 0 (real) or 1 (fake), got {y[bad][:5].tolist()}")
    bad = ~(np.isfinite(p) & (p >= 0) & (p <= 1))
    if bad.any():
        raise ValueError(f"p_fake must be finite and in [0, 1], got {p[bad][:5].tolist()}")
    return y.astype(np.int64), p


def _check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    return float(threshold)


def _num(value: Any) -> float | None:
    """A plain float, or None for NaN / inf (undefined metrics)."""
    value = float(value)
    return value if math.isfinite(value) else None


def calibration_bins(y_true: Labels, p_fake: Probs, n_bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Groups samples into equal-width bins of ``p_fake``.

    Bin ``k`` holds ``k / n_bins <= p < (k + 1) / n_bins``; the last bin also holds ``p == 1``.

    Args:
        y_true: Labels, 1 = fake.
        p_fake: Probabilities of fake.
        n_bins: Number of bins over [0, 1].

    Returns:
        ``count`` (samples per bin), ``confidence`` (mean ``p_fake`` per bin) and
        ``frequency`` (share of fakes per bin); the last two are NaN for empty bins.

    Raises:
        ValueError: bad inputs, or ``n_bins < 1``.
    """
    y, p = _check(y_true, p_fake)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins!r}")
    index = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=p, minlength=n_bins) / count
        frequency = np.bincount(index, weights=y, minlength=n_bins) / count
    return {"count": count, "confidence": confidence, "frequency": frequency}


def expected_calibration_error(y_true: Labels, p_fake: Probs, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of ``p_fake`` as a probability of the fake class.

    ``ECE = sum_k |freq_k - conf_k| * n_k / n`` over the equal-width bins of
    ``calibration_bins``, where ``conf_k`` is the mean ``p_fake`` in bin ``k`` and ``freq_k``
    the share of fakes in it. This is the calibration of the positive-class probability
    (what the detector reports), not the "top-label" ECE of Guo et al. (2017), which bins
    ``max(p, 1 - p)`` against accuracy; the two differ on the same predictions.

    Args:
        y_true: Labels, 1 = fake.
        p_fake: Probabilities of fake.
        n_bins: Number of bins over [0, 1].

    Returns:
        The ECE, in [0, 1].
    """
    bins = calibration_bins(y_true, p_fake, n_bins)
    full = bins["count"] > 0
    gaps = np.abs(bins["frequency"][full] - bins["confidence"][full])
    return float(np.sum(gaps * bins["count"][full]) / np.sum(bins["count"]))


def equal_error_rate(y_true: Labels, p_fake: Probs) -> tuple[float | None, float | None]:
    """The equal-error rate: where the false-positive and false-negative rates meet.

    Walks the ROC curve (every distinct score a point) to the first pair of neighbouring
    points between which ``FPR - FNR`` changes sign, and interpolates both the rate and the
    threshold linearly between them.

    Args:
        y_true: Labels, 1 = fake.
        p_fake: Probabilities of fake.

    Returns:
        ``(eer, threshold)``; both ``None`` when ``y_true`` holds a single class.
    """
    y, p = _check(y_true, p_fake)
    if len(np.unique(y)) < 2:
        return None, None
    fpr, tpr, thresholds = skm.roc_curve(y, p, drop_intermediate=False)
    # roc_curve starts at threshold +inf (nothing called fake); 1.0 gives the same point.
    thresholds = np.minimum(thresholds, 1.0)
    gap = fpr - (1.0 - tpr)  # strictly increasing from -1 to 1 along the curve
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0:
        return float(fpr[i]), float(thresholds[i])
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    threshold = thresholds[i - 1] + t * (thresholds[i] - thresholds[i - 1])
    return float(eer), float(threshold)


def _threshold_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, precision/recall/F1 of fake, per-class recall and the confusion matrix."""
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, pred, labels=[0, 1], average=None, zero_division=np.nan
    )
    (tn, fp), (fn, tp) = skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    recall_real, recall_fake = _num(recall[0]), _num(recall[1])
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": (
            float(skm.balanced_accuracy_score(y, pred)) if None not in (recall_real, recall_fake) else None
        ),
        "precision": _num(precision[1]),
        "recall": recall_fake,
        "f1": _num(f1[1]),
        "recall_real": recall_real,
        "recall_fake": recall_fake,
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }


def binary_metrics(
    y_true: Labels,
    p_fake: Probs,
    threshold: float = 0.5,
    uncertain_band: tuple[float, float] | None = None,
    n_bins: int = ECE_BINS,
) -> dict[str, Any]:
    """All the numbers for one set of predictions.

    Ranking metrics (``roc_auc``, ``average_precision``, ``eer``) use the probabilities;
    the others call a sample fake when ``p_fake >= threshold``. ``recall`` is the recall of
    the fake class (= ``recall_fake``); ``recall_real`` is the specificity; ``balanced_accuracy``
    is their mean. ``ece`` is ``expected_calibration_error`` and ``brier`` the mean squared
    error of ``p_fake`` against the label.

    Args:
        y_true: Labels, 0 = real, 1 = fake.
        p_fake: Probabilities of fake, in [0, 1].
        threshold: Decision threshold on ``p_fake``.
        uncertain_band: Optional ``(lo, hi)``: predictions with ``lo <= p_fake < hi`` count
            as uncertain. Adds ``share_uncertain``, ``real_called_fake`` and
            ``fake_called_real`` (the shares of reals and of fakes given the other kind's
            verdict, as ``python -m detector evaluate`` names them), ``n_confident`` and the threshold metrics
            recomputed on the confident rest, suffixed ``_confident`` (``None`` if nothing is
            confident). The main metrics still cover every sample.
        n_bins: Bins of the ECE.

    Returns:
        A JSON-serialisable dict of plain ints, floats, lists and ``None``.

    Raises:
        ValueError: bad labels, probabilities, threshold or band.
    """
    y, p = _check(y_true, p_fake)
    threshold = _check_threshold(threshold)
    both = len(np.unique(y)) == 2
    eer, eer_threshold = equal_error_rate(y, p)
    result: dict[str, Any] = {
        "n": int(len(y)),
        "n_real": int(np.sum(y == 0)),
        "n_fake": int(np.sum(y == 1)),
        "threshold": threshold,
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else None,
        "average_precision": float(skm.average_precision_score(y, p)) if both else None,
        "eer": eer,
        "eer_threshold": eer_threshold,
        **_threshold_metrics(y, (p >= threshold).astype(np.int64)),
        "ece": expected_calibration_error(y, p, n_bins),
        "brier": float(skm.brier_score_loss(y, p, pos_label=1)),
    }
    if uncertain_band is not None:
        lo, hi = uncertain_band
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"uncertain_band must be (lo, hi) with 0 <= lo <= hi <= 1, got {uncertain_band!r}")
        confident = (p < lo) | (p >= hi)  # the page's rule: ``wording.verdict``
        result["uncertain_band"] = [float(lo), float(hi)]
        result["share_uncertain"] = float(1.0 - confident.mean())
        result["n_confident"] = int(confident.sum())
        # Each verdict given to the other kind, by the page's rule (``wording.verdict``): the
        # error a "fake" answer, or a "real" one, may be.
        called_fake, called_real = confident & (p >= threshold), confident & (p < threshold)
        result["real_called_fake"] = float(np.mean(called_fake[y == 0])) if result["n_real"] else None
        result["fake_called_real"] = float(np.mean(called_real[y == 1])) if result["n_fake"] else None
        pred = (p[confident] >= threshold).astype(np.int64)
        sub = _threshold_metrics(y[confident], pred) if confident.any() else {}
        for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "recall_real", "recall_fake"):
            result[f"{key}_confident"] = sub.get(key)
    return result


def choose_threshold(
    y_true: Labels, p_fake: Probs, rule: str = "balanced"
) -> float:
    """Chooses the decision threshold on validation predictions.

    ``"balanced"`` maximises balanced accuracy, ``(TPR + TNR) / 2``, which is the same as
    maximising Youden's J = TPR - FPR; unlike plain accuracy it does not lean towards the
    larger class. All thresholds between two neighbouring distinct scores give the same
    decisions, so the one returned is the midpoint of the best such interval (halfway
    between the highest score called real and the lowest called fake), which leaves room
    on both sides for new data. If several disjoint intervals tie, the one nearest 0.5 wins.

    ``"eer"`` returns the threshold at the equal-error rate (FPR == FNR).

    Args:
        y_true: Labels, 1 = fake; both classes must be present.
        p_fake: Probabilities of fake.
        rule: ``"balanced"`` or ``"eer"``.

    Returns:
        The threshold, a float strictly between 0 and 1.

    Raises:
        ValueError: bad inputs, an unknown rule, or a single class in ``y_true``.
    """
    y, p = _check(y_true, p_fake)
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"rule must be one of {THRESHOLD_RULES}, got {rule!r}")
    if len(np.unique(y)) < 2:
        raise ValueError(f"choosing a threshold needs both classes, got only label {int(y[0])}")
    if rule == "eer":
        threshold = equal_error_rate(y, p)[1]
    else:
        scores = np.unique(p)  # ascending
        # Candidate k calls fake exactly the samples scoring >= scores[k] (k = len: none).
        candidates = np.concatenate([[scores[0] / 2], (scores[:-1] + scores[1:]) / 2, [(scores[-1] + 1) / 2]])
        fake_from = np.append(scores, np.inf)
        tpr = 1 - np.searchsorted(np.sort(p[y == 1]), fake_from, side="left") / np.sum(y == 1)
        tnr = np.searchsorted(np.sort(p[y == 0]), fake_from, side="left") / np.sum(y == 0)
        balanced = (tpr + tnr) / 2
        best = np.flatnonzero(np.isclose(balanced, balanced.max(), rtol=0, atol=1e-12))
        threshold = candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]]
    # Scores of exactly 0 or 1 put a candidate on the boundary; keep it strictly inside.
    return float(np.clip(threshold, 1e-6, 1 - 1e-6))


def with_one_label_pool(per_set: PerSet) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``per_set`` and, when some sets hold one label only and together hold both, a row that
    joins them, named as ``sampling.group_sources`` names the training source they make
    (``"a + b"``): a set of fakes alone has no ROC-AUC, the fakes against the reals they
    stand against in training have one.

    Args:
        per_set: Set name -> ``(y_true, scores)``.

    Returns:
        A new dict: the sets, then the pooled row if there is one.
    """
    out = {name: (np.asarray(y), np.asarray(p)) for name, (y, p) in per_set.items()}
    one_label = [name for name, (y, _) in out.items() if len(y) and len(np.unique(y)) == 1]
    joined = np.concatenate([out[name][0] for name in one_label]) if one_label else np.zeros(0)
    if len(np.unique(joined)) == 2:
        out[" + ".join(one_label)] = (joined, np.concatenate([out[name][1] for name in one_label]))
    return out


def source_weights(per_source: PerSet) -> np.ndarray:
    """Sample weights that give every source, and both classes within it, the same total
    weight, in the order of ``per_source``'s values concatenated.

    Pooled validation data is mostly DFDC; unweighted, a calibration fitted on it would be
    DFDC's. A source with one class gives that class its whole weight.

    Args:
        per_source: Source name -> ``(y_true, p_fake or logits)``.

    Returns:
        Float64 weights, averaging 1.
    """
    parts = []
    for y, _ in per_source.values():
        y = np.asarray(y)
        classes = np.unique(y)
        w = np.zeros(len(y))
        for c in classes:
            w[y == c] = 1.0 / (len(classes) * np.sum(y == c))
        parts.append(w)
    weights = np.concatenate(parts) if parts else np.zeros(0)
    return weights * len(weights) / max(weights.sum(), 1e-12)


def uncertain_band(threshold: float, width: float) -> tuple[float, float]:
    """The calibrated fake probabilities that get the verdict "uncertain": ``width`` below
    the threshold, and at least from 0.5 up.

    A real-first threshold (``real_first_threshold``) can sit far above 0.5; a face the
    calibration gives even odds or more of being fake would then be called "real", and a
    page that says "real (75% fake)" misleads. So from 0.5 (written "50%": from 0.495, on a
    half percent as ``on_half_percent`` puts it) to the threshold a face gets no verdict either way.

    Args:
        threshold: The decision threshold (fake from ``p >= threshold``).
        width: Least width of the band below the threshold.

    Returns:
        ``(low, threshold)``, ``low`` on a half percent.
    """
    return max(0.0, on_half_percent(min(0.5, threshold - width), up=False)), threshold


def real_first_threshold(per_source: PerSet, max_false_fake: float = 0.05) -> float:
    """The lowest threshold at which no source calls more than ``max_false_fake`` of its
    real faces fake.

    A detector that calls a real photo fake does the most harm: so every source's real
    validation faces, not the pooled ones (mostly DFDC), set the bar.

    Args:
        per_source: Source name -> ``(y_true, p_fake)`` on validation data; sources
            without real faces are ignored.
        max_false_fake: Largest share of real faces of any source called fake.

    Returns:
        The threshold, strictly between 0 and 1 (fake from ``p >= threshold``).

    Raises:
        ValueError: no source has a real face, or ``max_false_fake`` is outside ``[0, 1)``.
    """
    if not 0 <= max_false_fake < 1:
        raise ValueError(f"max_false_fake must be in [0, 1), got {max_false_fake!r}")
    bars = []
    for name, (y, p) in per_source.items():
        y, p = _check(y, p)
        reals = np.sort(p[y == 0])
        if not len(reals):
            continue
        # Calling fake from just above the k-th highest real score leaves k - 1 reals above it.
        allowed = int(np.floor(max_false_fake * len(reals)))
        highest_kept = reals[len(reals) - 1 - allowed]
        bars.append(np.nextafter(highest_kept, 1.0))
    if not bars:
        raise ValueError("choosing a real-first threshold needs real faces, and no source has any")
    return float(np.clip(max(bars), 1e-6, 1 - 1e-6))


def on_half_percent(probability: float, up: bool) -> float:
    """The nearest half percent at or above (``up``) or at or below ``probability``.

    A verdict boundary there splits the whole percentages a face's probability is written in
    (``wording.percent``, rounded half up as Gradio's bars round) exactly: with the threshold at
    0.885, every face that reads "89%" or more is fake and every one that reads "88%" or less is
    not. At the 0.8813 it was fitted to, a face read "88%" beside "called fake from 88%" whether it
    was fake or uncertain.

    Args:
        probability: A boundary between verdicts, in ``[0, 1]``.
        up: Round up (the threshold: only ever raised) rather than down.

    Returns:
        ``(k + 0.5) / 100`` for a whole ``k`` up to 99, or 0 below the first. Above 0.995
        there is no half percent to round up to, and 1.0 would call fake no face that reads
        "100%" (a float32 sigmoid reaches exactly 1 only past a logit of about 17): a threshold
        there comes down to 0.995, from which every face written "100%" is fake.
    """
    slack = 1e-9  # in percentage points: a boundary already on a half percent stays there
    points = probability * 100 - 0.5
    half = np.ceil(points - slack) if up else np.floor(points + slack)
    return float(np.clip((half + 0.5) / 100, 0.0, 0.995))


def real_first_calibration(per_source: PerSet, uncertain_width: float,
                           max_false_fake: float = 0.05) -> tuple[float, float, float, tuple[float, float]]:
    """Platt scaling, threshold and band from validation logits, real photos first: every
    source weighs the same in the fit (``source_weights``), the threshold is
    ``real_first_threshold`` and the band ``uncertain_band``. Photos (``training``) and
    clips (``pooling``) are calibrated alike through it.

    Args:
        per_source: Source name -> ``(y_true, logits)`` on validation data.
        uncertain_width: Least width of the band below the threshold.
        max_false_fake: Largest share of real faces of any source called fake.

    Returns:
        ``(temperature, bias, threshold, (band_low, band_high))``, the threshold and the band's
        low end on half percents (``on_half_percent``, ``uncertain_band``).
    """
    y = np.concatenate([y for y, _ in per_source.values()])
    z = np.concatenate([z for _, z in per_source.values()])
    temperature, bias = fit_platt(y, z, weights=source_weights(per_source))
    threshold = real_first_threshold(
        {name: (y, apply_temperature(z, temperature, bias)) for name, (y, z) in per_source.items()}, max_false_fake)
    # On a half percent, so that no face's written percentage contradicts the written rule:
    # raised (real first), except above 0.995, where "100%" must still read fake.
    threshold = on_half_percent(threshold, up=True)
    return temperature, bias, threshold, uncertain_band(threshold, uncertain_width)


def logit(p: float | Sequence[float] | np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """The log-odds ``log(p / (1 - p))``, with ``p`` clipped to ``[eps, 1 - eps]``.

    Clipping keeps saturated probabilities (float32 sigmoids round to exactly 0 or 1)
    finite; with the default ``eps`` the result lies within about +-16.1.

    Args:
        p: Probabilities.
        eps: Clipping margin.

    Returns:
        Float64 array of logits, the shape of ``p``.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def _check_logits(logits: float | Sequence[float] | np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    bad = ~np.isfinite(z)
    if bad.any():
        raise ValueError(f"logits must be finite, got {z[bad][:5].tolist()}")
    return z


def apply_temperature(
    logits: float | Sequence[float] | np.ndarray, temperature: float, bias: float = 0.0
) -> np.ndarray:
    """Calibrated probabilities ``sigmoid(logits / temperature + bias)``.

    With ``bias`` 0 this is temperature scaling; with a bias it is Platt scaling written
    as a temperature (see ``fit_platt``).

    Args:
        logits: Logits of fake (see ``logit`` to get them from probabilities).
        temperature: The fitted temperature, > 0; above 1 softens over-confident scores.
        bias: Added after the division; positive moves every score towards fake.

    Returns:
        Float64 array of probabilities of fake, the shape of ``logits``.

    Raises:
        ValueError: ``temperature`` is not a finite positive number, ``bias`` is not
            finite, or a logit is not finite.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if not math.isfinite(bias):
        raise ValueError(f"bias must be a finite number, got {bias!r}")
    return expit(_check_logits(logits) / temperature + bias)


def _nll(y: np.ndarray, s: np.ndarray, weights: np.ndarray | None = None) -> float:
    # -log sigmoid(s) for fakes, -log(1 - sigmoid(s)) for reals, without overflow.
    return float(np.average(np.logaddexp(0.0, s) - y * s, weights=weights))


def _fit_inputs(
    y_true: Labels, logits: Sequence[float] | np.ndarray, what: str, bounds: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Checked labels and logits for a calibration fit, and its temperature bounds."""
    if not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (lo, hi) with 0 < lo < hi, got {bounds!r}")
    z = _check_logits(logits)
    y, _ = _check(y_true, expit(z))  # the same checks as for probabilities
    if len(np.unique(y)) < 2:
        raise ValueError(f"fitting {what} needs both classes, got only label {int(y[0])}")
    return y, z


def fit_temperature(
    y_true: Labels,
    logits: Sequence[float] | np.ndarray,
    bounds: tuple[float, float] = (0.05, 20.0),
    weights: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Fits the temperature that minimises the negative log-likelihood (temperature scaling).

    One scalar ``T`` rescales every logit, so the ranking (AUC, EER) is unchanged and only
    the confidence moves. Fit it on validation data, never on the test set.

    Args:
        y_true: Labels, 1 = fake; both classes must be present (with one class the
            likelihood keeps improving as ``T`` shrinks or grows, and no fit exists).
        logits: Logits of fake, the same length.
        bounds: Search range of ``T``; the optimum is searched on ``log T``.
        weights: Optional weight of each sample in the likelihood.

    Returns:
        The temperature, a float within ``bounds``.

    Raises:
        ValueError: bad labels or logits, a single class, or bad bounds.
    """
    y, z = _fit_inputs(y_true, logits, "a temperature", bounds)
    lo, hi = bounds
    found = minimize_scalar(
        lambda log_t: _nll(y, z / math.exp(log_t), weights),
        bounds=(math.log(lo), math.log(hi)), method="bounded", options={"xatol": 1e-6},
    )
    return float(math.exp(found.x))


def fit_platt(
    y_true: Labels,
    logits: Sequence[float] | np.ndarray,
    bounds: tuple[float, float] = (0.05, 20.0),
    weights: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, float]:
    """Fits Platt scaling, ``sigmoid(logits / T + b)``, by minimising the negative log-likelihood.

    Temperature scaling only rescales; the bias also moves scores that lean to one side
    as a whole (a model that under-calls fakes). Both keep the ranking (AUC, EER). Fit
    on validation data, never on the test set.

    Args:
        y_true: Labels, 1 = fake; both classes must be present.
        logits: Logits of fake, the same length.
        bounds: Range of ``T``.
        weights: Optional weight of each sample in the likelihood (``source_weights``).

    Returns:
        ``(temperature, bias)``; the temperature lies within ``bounds``.

    Raises:
        ValueError: bad labels or logits, a single class, or bad bounds.
    """
    y, z = _fit_inputs(y_true, logits, "Platt scaling", bounds)
    lo, hi = bounds
    start = np.array([math.log(fit_temperature(y, z, bounds, weights)), 0.0])
    found = minimize(
        lambda v: _nll(y, z / math.exp(v[0]) + v[1], weights), start, method="L-BFGS-B",
        bounds=[(math.log(lo), math.log(hi)), (None, None)],
    )
    return float(math.exp(found.x[0])), float(found.x[1])


def _check_sets(per_set: PerSet) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """Validates every set (errors name the set) and pools them into one ``(y, p)``."""
    if not per_set:
        raise ValueError("per_set is empty: give at least one set of (y_true, p_fake)")
    checked = {}
    for name, (y, p) in per_set.items():
        try:
            checked[str(name)] = _check(y, p)
        except ValueError as error:
            raise ValueError(f"set {name!r}: {error}") from error
    overall = (np.concatenate([y for y, _ in checked.values()]), np.concatenate([p for _, p in checked.values()]))
    return checked, overall


def report(
    per_set: PerSet,
    threshold: float,
    uncertain_band: tuple[float, float] | None = None,
    n_bins: int = ECE_BINS,
    pooled: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``binary_metrics`` for each set and for all of them pooled.

    Args:
        per_set: Set name -> ``(y_true, p_fake)``.
        threshold: Decision threshold, the same for every set.
        uncertain_band: Passed to ``binary_metrics``.
        n_bins: Bins of the ECE.
        pooled: The sets that make up ``overall``; all of them by default (a row that
            joins other rows, such as a pool of one-label sets, must not count twice).

    Returns:
        ``{"threshold": ..., "sets": {name: metrics}, "overall": metrics}``, JSON-serialisable.

    Raises:
        ValueError: ``per_set`` is empty, or a set has bad inputs (the message names it).
    """
    checked, _ = _check_sets(per_set)
    _, overall = _check_sets({k: v for k, v in per_set.items() if pooled is None or k in pooled})
    return {
        "threshold": _check_threshold(threshold),
        "sets": {name: binary_metrics(y, p, threshold, uncertain_band, n_bins) for name, (y, p) in checked.items()},
        "overall": binary_metrics(*overall, threshold, uncertain_band, n_bins),
    }


def _figure(width: float, height: float, **kwargs: Any):
    """A matplotlib figure on an Agg canvas, outside pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


def plot_roc(per_set: PerSet, path: str | Path, title: str = "ROC curves") -> Path:
    """Draws the ROC curve of each set and of all sets pooled, with AUCs in the legend.

    Sets holding a single class have no ROC curve; they are listed in the legend only.

    Args:
        per_set: Set name -> ``(y_true, p_fake)``.
        path: The PNG to write (parent folders are created).
        title: Figure title.

    Returns:
        ``path``.

    Raises:
        ValueError: bad inputs, or not even the pooled data holds both classes.
    """
    checked, overall = _check_sets(per_set)
    if len(np.unique(overall[0])) < 2:
        raise ValueError(f"no ROC curve: all {len(overall[0])} samples have label {int(overall[0][0])}")

    fig = _figure(5.5, 5.2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.7", linewidth=1, label="chance")
    curves = list(checked.items())
    if len(curves) > 1:  # with one set, "overall" would repeat it
        curves.append(("overall", overall))
    for name, (y, p) in curves:
        n = f"n={len(y):,}"
        if len(np.unique(y)) < 2:
            ax.plot([], [], linestyle="none", label=f"{name}: one class only, {n}")
            continue
        fpr, tpr, _ = skm.roc_curve(y, p)
        auc = skm.roc_auc_score(y, p)
        style = {"color": "black", "linewidth": 2.2} if name == "overall" else {"linewidth": 1.5}
        ax.plot(fpr, tpr, label=f"{name}: AUC {auc:.3f}, {n}", **style)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal", title=title)
    ax.set_xlabel("false-positive rate (real called fake)")
    ax.set_ylabel("true-positive rate (fake caught)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=True)
    return _save(fig, path)


def plot_confusion(
    y_true: Labels,
    p_fake: Probs,
    threshold: float,
    path: str | Path,
    title: str = "Confusion matrix",
) -> Path:
    """Draws the 2x2 confusion matrix: counts and row-normalised percentages.

    Cell colour is the row share, so each row reads as that class's recall.

    Args:
        y_true: Labels, 1 = fake.
        p_fake: Probabilities of fake.
        threshold: Decision threshold (shown in the title).
        path: The PNG to write (parent folders are created).
        title: Figure title.

    Returns:
        ``path``.
    """
    y, p = _check(y_true, p_fake)
    threshold = _check_threshold(threshold)
    counts = skm.confusion_matrix(y, (p >= threshold).astype(np.int64), labels=[0, 1])
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = counts / rows

    fig = _figure(4.6, 4.0)
    ax = fig.add_subplot()
    image = ax.imshow(np.nan_to_num(share), cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        text = f"{count:,}\n({share[i, j]:.1%})" if rows[i, 0] else f"{count:,}\n(no samples)"
        colour = "white" if share[i, j] > 0.5 else "black"
        ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=12)
    ax.set_xticks([0, 1], ["real", "fake"])
    ax.set_yticks([0, 1], ["real", "fake"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\nthreshold {threshold:.3f}, n={len(y):,}", fontsize=11)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, format=lambda v, _: f"{v:.0%}")
    return _save(fig, path)


def plot_reliability(
    y_true: Labels,
    p_fake: Probs,
    path: str | Path,
    n_bins: int = ECE_BINS,
    title: str = "Reliability",
) -> Path:
    """Draws the reliability diagram of ``p_fake``, with the ECE in the title.

    Top: the share of fakes in each probability bin against the bin's range (on the
    diagonal = calibrated; a dot marks the bin's mean ``p_fake``). Bottom: samples per bin.

    Args:
        y_true: Labels, 1 = fake.
        p_fake: Probabilities of fake.
        path: The PNG to write (parent folders are created).
        n_bins: Number of equal-width bins.
        title: Figure title.

    Returns:
        ``path``.
    """
    bins = calibration_bins(y_true, p_fake, n_bins)
    ece = expected_calibration_error(y_true, p_fake, n_bins)
    width = 1 / n_bins
    left = np.arange(n_bins) * width
    full = bins["count"] > 0

    fig = _figure(5.2, 5.8)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08})
    top.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="calibrated")
    top.bar(left[full], bins["frequency"][full], width=width, align="edge", color="tab:blue", alpha=0.75,
            edgecolor="white", label="share of fakes")
    top.plot(bins["confidence"][full], bins["frequency"][full], "o", color="black", markersize=3,
             label="mean p(fake) of bin")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="share of fakes in bin")
    top.set_title(f"{title}: ECE {ece:.3f} ({n_bins} bins, n={int(bins['count'].sum()):,})", fontsize=11)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(left, bins["count"], width=width, align="edge", color="0.5", edgecolor="white")
    bottom.set(xlabel="predicted p(fake)", ylabel="samples")
    bottom.grid(alpha=0.3, axis="y")
    return _save(fig, path)
