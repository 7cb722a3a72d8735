"""Pooling a track's frame logits, and the video calibration stored in the model card."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from detector import evaluation
from detector.card import ModelCard
from detector.pooling import CARD_KEY, DEFAULT_POOLING, LENGTH_FREE, POOLINGS, VideoCalibration, pool

CARD = ModelCard(input_size=32, face_margin=1.3, temperature=2.0, bias=0.5, threshold=0.6,
                 uncertain_band=(0.5, 0.7), sha256="abc")


def test_poolings():
    z = [-1.0, 0.0, 4.0, 1.0, 2.0]
    assert pool(z, "mean") == 1.2 and pool(z, "median") == 1.0 and pool(z, "max") == 4.0
    assert pool(z, "top_half_mean") == pytest.approx((4 + 2 + 1) / 3)
    assert pool(z, "top3_mean") == pytest.approx(7 / 3) and pool([3.0], "top3_mean") == 3.0
    assert set(POOLINGS) >= {"mean", "median", "top_half_mean"}
    with pytest.raises(ValueError, match="unknown pooling 'mode'"):
        pool(z, "mode")
    with pytest.raises(ValueError, match="at least one"):
        pool([], "mean")


def test_the_poolings_video_eval_may_choose_do_not_drift_with_the_clip_s_length():
    # One face's frame logits, as noise around its level: the fit is made on 6-frame clips, and
    # a 60-second clip gives 120 frames. A pooling that grows with the count (the top 3 of 120
    # frames against the top 3 of 6) would make a real person faker the longer the clip.
    rng = np.random.default_rng(0)
    drift = {how: np.mean([pool(rng.normal(0, 1, 120), how) - pool(rng.normal(0, 1, 6), how) for _ in range(2000)])
             for how in POOLINGS}
    assert set(LENGTH_FREE) < set(POOLINGS) and DEFAULT_POOLING in LENGTH_FREE
    assert all(abs(drift[how]) < 0.15 for how in LENGTH_FREE), drift
    assert drift["top3_mean"] > 1.0 and drift["max"] > 1.0, drift  # what the test would catch


def test_without_a_fit_the_image_calibration_stands_in():
    calibration = VideoCalibration.of(CARD)
    assert not calibration.fitted and calibration.pooling == DEFAULT_POOLING
    assert calibration.probability(1.0) == pytest.approx(1 / (1 + np.exp(-(1.0 / 2.0 + 0.5))))
    assert (calibration.verdict(0.55), calibration.verdict(0.8), calibration.verdict(0.3)) == ("uncertain", "fake", "real")


def test_a_fit_is_stored_in_the_card_and_used_only_for_its_weights_and_views(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 200)
    # Two sets: the second's reals score higher, so it sets the real-first bar.
    per_set = {"easy": (labels, rng.normal(0, 1, 400) + 2.0 * labels - 1.0),
               "hard": (labels, rng.normal(0, 1, 400) + 1.0 * labels)}
    fitted = VideoCalibration.fit(CARD, "median", per_set, uncertain_width=0.1, measured={"clips": 800})
    assert 0 < fitted.threshold < 1 and fitted.uncertain_band == evaluation.uncertain_band(fitted.threshold, 0.1)
    for y, z in per_set.values():  # no set calls more than 5% of its real clips fake
        p = np.array([fitted.probability(v) for v in z])
        assert np.mean(p[y == 0] >= fitted.threshold) <= 0.05
    hard_reals = np.array([fitted.probability(v) for v in per_set["hard"][1][labels == 0]])
    assert np.mean(hard_reals >= fitted.threshold) == pytest.approx(0.05, abs=0.006)  # the bar is the hard set's
    easy = np.array([fitted.probability(v) for v in per_set["easy"][1]])
    assert easy[labels == 1].mean() - easy[labels == 0].mean() > 0.3  # it separates the classes
    card = replace(CARD, extra={CARD_KEY: fitted.card_block()})
    card.save(tmp_path)
    again = VideoCalibration.of(ModelCard.load(tmp_path))
    assert again.fitted and again.pooling == "median" and again.temperature == pytest.approx(fitted.temperature)
    assert again.measured == {"clips": 800}
    markdown = card.to_markdown()
    assert "| frames pooled by | median |\n| temperature |" in markdown and "```json" not in markdown
    assert "| *validation clips* | |\n| clips | 800 |" in markdown
    # Other weights, or other scoring views, make the fit stale: the image calibration returns.
    assert not VideoCalibration.of(replace(card, sha256="def")).fitted
    assert not VideoCalibration.of(replace(card, scoring_views=((1.0, 0.0, 0.0, False),))).fitted
