"""One score per tracked face from the scores of its frames, and the calibration of that score.

A track's frame logits are pooled into one logit (``POOLINGS``), which a Platt scaling
fitted on clips built from the validation splits turns into a probability, with its own
threshold and "uncertain" band (``VideoCalibration``). ``python -m detector video-eval``
measures every pooling on such clips, keeps the best on validation, and stores its fit in
the model card (``card.extra["Video calibration"]``), tied to the weights' sha256 and
the card's scoring views.

Weights without that entry (a model trained after the last ``video-eval``) are scored with
the pooling ``DEFAULT_POOLING`` and the card's image calibration, which is close for a
pooled logit (a mean of frame logits is on the same scale as one frame's), and every
result says so in its note.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from detector import evaluation, wording
from detector.views import describe


def _top_mean(logits: np.ndarray, k: int) -> float:
    return float(np.sort(logits)[-k:].mean())


#: Ways to pool a track's frame logits into one logit. Means are taken of logits, not of
#: probabilities, so one confident frame does not sit at 0.99 while the others average out.
POOLINGS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda z: float(np.mean(z)),
    "median": lambda z: float(np.median(z)),
    "top_half_mean": lambda z: _top_mean(z, math.ceil(len(z) / 2)),
    "top3_mean": lambda z: _top_mean(z, min(3, len(z))),
    "max": lambda z: float(np.max(z)),
}
#: The poolings ``video-eval`` may choose from. The fit is made on clips of a few frames
#: (``defaults.VIDEO_EVAL_FRAMES``) and applied to clips of up to ``video.MAX_SAMPLES``
#: frames; these three estimate something of the face that does not grow with the number of
#: frames seen. "max" and "top3_mean" do grow: the highest 3 logits of 120 frames sit far above
#: the highest 3 of 6 for the same face, so the longer a real person's clip, the faker they
#: would look (tests/test_pooling.py measures it). They are still measured, for the record.
LENGTH_FREE = ("mean", "median", "top_half_mean")
DEFAULT_POOLING = "mean"
#: Where the fit lives in the model card's ``extra``.
CARD_KEY = "Video calibration"
#: The entry of the fit that says what it was fitted on.
MEASURED_ON = "validation clips"
#: A verdict -> the card block's key for the share of each set's test clips of the other
#: kind given it (``VideoCalibration.tested``).
TESTED = {"fake": "real test clips called fake", "real": "fake test clips called real"}
UNFITTED_NOTE = ("no video calibration for these weights: tracks are scored with the image calibration "
                 "(run `python -m detector video-eval`)")


def pool(logits: np.ndarray | list[float], how: str = DEFAULT_POOLING) -> float:
    """One logit for a track from its frames' logits.

    Raises:
        ValueError: no logits, or an unknown pooling.
    """
    if how not in POOLINGS:
        raise ValueError(f"unknown pooling {how!r}: expected one of {sorted(POOLINGS)}")
    z = np.asarray(logits, np.float64)
    if z.size == 0:
        raise ValueError("pooling needs at least one frame logit")
    return POOLINGS[how](z)


@dataclass(frozen=True)
class VideoCalibration:
    """How a track's pooled logit becomes a probability and a verdict.

    Attributes:
        pooling: A key of ``POOLINGS``.
        temperature: Platt scaling of the pooled logit, ``sigmoid(z / temperature + bias)``.
        bias: See ``temperature``.
        threshold: Calibrated probability from which a track is called fake.
        uncertain_band: ``(low, high)``: probabilities from ``low`` up to ``high`` (excluded) are
            "uncertain" (``wording.verdict``).
        sha256: The weights the fit was made for.
        scoring_views: The views the frame logits were averaged over.
        fitted: False when this is the image calibration standing in (see the module).
        measured: What the fit was made on (clips, sets, their ROC-AUC per pooling), flat, for
            the card's table.
        tested: What ``video_eval`` measured of it on test clips, by ``TESTED`` key: per set,
            the share of real clips called fake and of fake clips called real, for an answer
            to say how often its verdict goes to the other kind.
    """

    pooling: str
    temperature: float
    bias: float
    threshold: float
    uncertain_band: tuple[float, float]
    sha256: str = ""
    scoring_views: tuple = ()
    fitted: bool = True
    measured: Mapping[str, Any] | None = None
    tested: Mapping[str, Mapping[str, float]] | None = None

    @classmethod
    def of(cls, card) -> "VideoCalibration":
        """The card's video calibration, or its image calibration when the card has none
        for these weights and views (``fitted`` is then False)."""
        block = card.extra.get(CARD_KEY)
        if isinstance(block, dict) and len(block) == 1:
            ((pooling, fit),) = block.items()
            if fit.get("weights sha256") == card.sha256 and fit.get("scoring views") == describe(card.scoring_views):
                return cls(pooling, fit["temperature"], fit["bias"], fit["threshold"],
                           (fit["uncertain from"], fit["uncertain to"]), card.sha256, tuple(card.scoring_views),
                           True, fit.get(MEASURED_ON), {key: fit[key] for key in TESTED.values() if key in fit})
        return cls(DEFAULT_POOLING, card.temperature, card.bias, card.threshold, tuple(card.uncertain_band),
                   card.sha256, tuple(card.scoring_views), fitted=False)

    @classmethod
    def fit(cls, card, pooling: str, per_set: Mapping[str, tuple[np.ndarray, np.ndarray]], uncertain_width: float,
            measured: Mapping[str, Any] | None = None, max_false_fake: float = 0.05) -> "VideoCalibration":
        """Fits the video calibration on validation clips as training fits the image one on
        validation images: Platt scaling with every set weighing the same, the real-first
        threshold (no set calls more than ``max_false_fake`` of its real clips fake) and the
        uncertain band from 0.5 (or ``uncertain_width`` below the threshold) up to it.

        Args:
            card: The model card of the weights the clips were scored with.
            pooling: The pooling the clips' logits were pooled with.
            per_set: Set name -> ``(labels, pooled logits)`` of its validation clips.
            uncertain_width: Least width of the band below the threshold.
            measured: What the fit was made on, for the card.
            max_false_fake: See ``evaluation.real_first_threshold``.
        """
        temperature, bias, threshold, band = evaluation.real_first_calibration(per_set, uncertain_width, max_false_fake)
        return cls(pooling, temperature, bias, threshold, band, card.sha256, tuple(card.scoring_views), True,
                   dict(measured or {}))

    def card_block(self) -> dict[str, Any]:
        """What ``card.extra[CARD_KEY]`` holds: ``{pooling: {fit..., MEASURED_ON: {...}}}``, the
        shape the card renders as a table (one row: the pooling, the fit, what it was fitted on)."""
        lo, hi = self.uncertain_band
        fit = {"temperature": self.temperature, "bias": self.bias, "threshold": self.threshold,
               "uncertain from": lo, "uncertain to": hi, "scoring views": describe(self.scoring_views),
               "weights sha256": self.sha256, MEASURED_ON: dict(self.measured or {})}
        return {self.pooling: {**fit, **{key: dict(rates) for key, rates in (self.tested or {}).items()}}}

    def given_to_the_other_kind(self, verdict: str) -> dict[str, float]:
        """Set name -> the share of its test clips of the other kind that got ``verdict``
        (``"fake"`` or ``"real"``); empty when ``video_eval`` recorded none."""
        return dict((self.tested or {}).get(TESTED[verdict], {}))

    def probability(self, pooled_logit: float) -> float:
        return float(evaluation.apply_temperature(pooled_logit, self.temperature, self.bias))

    def verdict(self, probability: float) -> str:
        """``fake``, ``real`` or ``uncertain``, as ``Detector.verdict`` decides for a face."""
        return wording.verdict(probability, self.threshold, self.uncertain_band)
