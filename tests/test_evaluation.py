"""Tests of detector.evaluation against values worked out by hand on tiny examples."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector import evaluation as ev

# Four samples, worked by hand:
#   ranking (high to low): 0.8 fake, 0.4 real, 0.35 fake, 0.1 real.
#   AUC: of the 4 (fake, real) pairs only (0.35, 0.4) is misordered -> 3/4.
#   AP:  fakes at ranks 1 and 3 -> (1/1 + 2/3) / 2 = 5/6.
#   At 0.5 only 0.8 is called fake -> tn 2, fp 0, fn 1, tp 1.
#   ROC points (FPR, FNR): (0, 1) (0, .5) (.5, .5) (.5, 0) (1, 0): FPR == FNR == .5 at 0.4.
#   ECE, 15 bins: each sample alone in its bin -> mean |y - p| = (.1 + .4 + .65 + .2) / 4.
#   Brier: (.01 + .16 + .4225 + .04) / 4.
Y = [0, 0, 1, 1]
P = [0.1, 0.4, 0.35, 0.8]


def test_binary_metrics_match_hand_computed_values():
    m = ev.binary_metrics(Y, P, threshold=0.5)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["average_precision"] == pytest.approx(5 / 6)
    assert m["confusion"] == {"tn": 2, "fp": 0, "fn": 1, "tp": 1}
    assert m["confusion_matrix"] == [[2, 0], [1, 1]]
    assert (m["n"], m["n_real"], m["n_fake"]) == (4, 2, 2)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(1.0)
    assert m["recall"] == m["recall_fake"] == pytest.approx(0.5)
    assert m["recall_real"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    assert m["eer"] == pytest.approx(0.5)
    assert m["eer_threshold"] == pytest.approx(0.4)
    assert m["ece"] == pytest.approx(1.35 / 4)
    assert m["brier"] == pytest.approx(0.6325 / 4)


def test_threshold_is_inclusive_and_moves_the_confusion():
    # At 0.35 the sample scoring exactly 0.35 is called fake (p >= threshold).
    m = ev.binary_metrics(Y, P, threshold=0.35)
    assert m["confusion"] == {"tn": 1, "fp": 1, "fn": 0, "tp": 2}
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(0.8)


def test_eer_interpolates_between_roc_points():
    # ROC points (FPR, FNR) by threshold: 0.9 -> (0, 1/2), 0.7 -> (1/3, 1/2), 0.6 -> (1/3, 0).
    # Between 0.7 and 0.6, FPR stays 1/3 while FNR falls from 1/2 to 0: they meet a third
    # of the way along, at EER 1/3 and threshold 0.7 - 0.1 / 3.
    eer, threshold = ev.equal_error_rate([0, 0, 0, 1, 1], [0.1, 0.2, 0.7, 0.6, 0.9])
    assert eer == pytest.approx(1 / 3)
    assert threshold == pytest.approx(2 / 3)


def test_ece_on_two_bins_by_hand():
    # Bin [0, .5): p .2 .4 .1, labels 0 1 0 -> |1/3 - 0.7/3| = 0.1.
    # Bin [.5, 1]: p .6 .8 .7, labels 1 1 1 -> |1 - 0.7| = 0.3.  ECE = (3 * .1 + 3 * .3) / 6.
    y = [0, 1, 0, 1, 1, 1]
    p = [0.2, 0.4, 0.1, 0.6, 0.8, 0.7]
    assert ev.expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.2)
    bins = ev.calibration_bins(y, p, n_bins=2)
    assert bins["count"].tolist() == [3, 3]
    np.testing.assert_allclose(bins["frequency"], [1 / 3, 1.0])
    np.testing.assert_allclose(bins["confidence"], [0.7 / 3, 0.7])


def test_ece_puts_probability_one_in_the_last_bin_and_is_zero_when_calibrated():
    assert ev.calibration_bins([1, 1], [1.0, 0.99], n_bins=15)["count"][-1] == 2
    # Half the samples at p = 0.5 are fake, all at p = 1 are fake: perfectly calibrated.
    assert ev.expected_calibration_error([0, 1, 1, 1], [0.5, 0.5, 1.0, 1.0]) == pytest.approx(0.0)


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_gives_none_not_a_crash(label):
    m = ev.binary_metrics([label] * 3, [0.2, 0.6, 0.9])
    assert m["roc_auc"] is None and m["average_precision"] is None
    assert m["eer"] is None and m["eer_threshold"] is None
    assert m["balanced_accuracy"] is None
    missing = "recall_fake" if label == 0 else "recall_real"
    assert m[missing] is None
    assert m["accuracy"] == pytest.approx(1 / 3 if label == 0 else 2 / 3)
    assert "null" in json.dumps(m)


def test_uncertain_band_reports_the_confident_subset_and_keeps_main_metrics():
    m = ev.binary_metrics(Y, P, threshold=0.5, uncertain_band=(0.3, 0.7))
    # 0.4 and 0.35 fall in the band; 0.1 (real) and 0.8 (fake) are confident and right.
    assert m["share_uncertain"] == pytest.approx(0.5)
    assert m["n_confident"] == 2
    assert m["accuracy_confident"] == pytest.approx(1.0)
    assert m["balanced_accuracy_confident"] == pytest.approx(1.0)
    assert m["accuracy"] == pytest.approx(0.75)  # still over all four
    everything_uncertain = ev.binary_metrics(Y, P, uncertain_band=(0.0, 1.0))
    assert everything_uncertain["share_uncertain"] == 1.0
    assert everything_uncertain["accuracy_confident"] is None


def test_bad_inputs_are_rejected_with_the_value():
    with pytest.raises(ValueError, match="2"):
        ev.binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="1.5"):
        ev.binary_metrics([0, 1], [0.1, 1.5])
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        ev.binary_metrics([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        ev.binary_metrics([], [])
    with pytest.raises(ValueError, match="1.2"):
        ev.binary_metrics(Y, P, threshold=1.2)
    with pytest.raises(ValueError, match=r"\(0.7, 0.3\)"):
        ev.binary_metrics(Y, P, uncertain_band=(0.7, 0.3))


def test_choose_threshold_on_separable_data_is_the_gap_midpoint():
    # Any threshold in (0.2, 0.7] separates perfectly; the midpoint of that gap is 0.45.
    assert ev.choose_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]) == pytest.approx(0.45)
    # Imbalanced: 1 fake among 5 reals, still separable -> still the gap midpoint.
    assert ev.choose_threshold([0, 0, 0, 0, 0, 1], [0.05, 0.1, 0.3, 0.5, 0.6, 0.95]) == pytest.approx(0.775)


def test_choose_threshold_breaks_ties_towards_one_half():
    # Calling fake from 0.8 (midpoint 0.6) or from 0.35 (midpoint 0.225) both give balanced
    # accuracy 0.75; the one nearer 0.5 wins.
    assert ev.choose_threshold(Y, P) == pytest.approx(0.6)
    assert ev.choose_threshold(Y, P, rule="eer") == pytest.approx(0.4)


def test_choose_threshold_stays_strictly_inside_zero_one():
    t = ev.choose_threshold([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0])
    assert t == pytest.approx(0.5)
    t = ev.choose_threshold([1, 0], [0.0, 1.0])  # inverted scores: best is to call all one class
    assert 0 < t < 1


def test_choose_threshold_rejects_one_class_and_unknown_rules():
    with pytest.raises(ValueError, match="only label 1"):
        ev.choose_threshold([1, 1], [0.2, 0.9])
    with pytest.raises(ValueError, match="'youden'"):
        ev.choose_threshold(Y, P, rule="youden")


def test_logit_inverts_the_sigmoid_and_clips():
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(ev.apply_temperature(ev.logit(p), 1.0), p)
    assert ev.logit(0.5) == pytest.approx(0.0)
    extremes = ev.logit([0.0, 1.0])
    assert np.all(np.isfinite(extremes)) and extremes[0] == pytest.approx(-extremes[1])


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 4.0, 20_000)
    true_t = 2.5
    labels = (rng.random(logits.size) < ev.apply_temperature(logits, true_t)).astype(int)
    fitted = ev.fit_temperature(labels, logits)
    assert fitted == pytest.approx(true_t, rel=0.05)
    # Calibration should improve over the raw, over-confident probabilities.
    raw = ev.expected_calibration_error(labels, ev.apply_temperature(logits, 1.0))
    calibrated = ev.expected_calibration_error(labels, ev.apply_temperature(logits, fitted))
    assert calibrated < raw / 3


def test_fit_platt_recovers_a_known_temperature_and_bias():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, 20_000)
    labels = (rng.random(logits.size) < ev.apply_temperature(logits, 2.0, 0.8)).astype(int)
    temperature, bias = ev.fit_platt(labels, logits)
    assert temperature == pytest.approx(2.0, rel=0.05) and bias == pytest.approx(0.8, abs=0.06)
    # The bias is what temperature scaling alone cannot fix: scores that lean to one side.
    only_t = ev.expected_calibration_error(labels, ev.apply_temperature(logits, ev.fit_temperature(labels, logits)))
    platt = ev.expected_calibration_error(labels, ev.apply_temperature(logits, temperature, bias))
    assert platt < only_t / 2


def test_fit_platt_matches_an_unregularised_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    logits = rng.normal(0.5, 2.0, 500)
    labels = (rng.random(500) < 1 / (1 + np.exp(-(0.6 * logits - 0.4)))).astype(int)
    temperature, bias = ev.fit_platt(labels, logits)
    reference = LogisticRegression(C=1e9, tol=1e-10, max_iter=10_000).fit(logits[:, None], labels)
    assert 1 / temperature == pytest.approx(reference.coef_[0, 0], rel=1e-3)
    assert bias == pytest.approx(reference.intercept_[0], abs=1e-3)


def test_temperature_rejects_bad_values():
    with pytest.raises(ValueError, match="-1"):
        ev.apply_temperature([0.0], -1.0)
    with pytest.raises(ValueError, match="nan"):
        ev.apply_temperature([0.0], 1.0, float("nan"))
    with pytest.raises(ValueError, match="only label 1"):
        ev.fit_platt([1, 1], [0.3, -2.0])
    with pytest.raises(ValueError, match="inf"):
        ev.fit_temperature([0, 1], [0.0, np.inf])
    with pytest.raises(ValueError, match="only label 0"):
        ev.fit_temperature([0, 0], [0.3, -2.0])


def test_report_pools_sets_and_is_json_serialisable():
    per_set = {
        "a": (np.array(Y), np.array(P, dtype=np.float32)),
        "b": ([0, 1, 1], [0.2, 0.9, 0.3]),
        "only-real": ([0, 0], [0.1, 0.6]),
    }
    r = ev.report(per_set, threshold=0.5, uncertain_band=(0.45, 0.55))
    assert set(r["sets"]) == {"a", "b", "only-real"}
    assert r["sets"]["a"]["roc_auc"] == pytest.approx(0.75)
    assert r["sets"]["only-real"]["roc_auc"] is None
    overall = r["overall"]
    assert overall["n"] == 9 and overall["n_fake"] == 4
    assert overall["confusion"] == {"tn": 4, "fp": 1, "fn": 2, "tp": 2}
    text = json.dumps(r, allow_nan=False)  # no numpy types, no NaN
    assert json.loads(text)["overall"]["n"] == 9


def test_report_names_the_bad_set():
    with pytest.raises(ValueError, match="'broken'"):
        ev.report({"fine": (Y, P), "broken": ([0, 1], [0.5])}, threshold=0.5)
    with pytest.raises(ValueError, match="empty"):
        ev.report({}, threshold=0.5)


def _is_png(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_png_files(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    per_set = {"val": (y[:150], p[:150]), "test": (y[150:], p[150:]), "reals": ([0, 0], [0.1, 0.2])}
    written = [
        ev.plot_roc(per_set, tmp_path / "roc.png"),
        ev.plot_confusion(y, p, 0.5, tmp_path / "sub" / "confusion.png", title="Test"),
        ev.plot_confusion([1, 1], [0.2, 0.9], 0.5, tmp_path / "confusion-one-class.png"),
        ev.plot_reliability(y, p, tmp_path / "reliability.png"),
    ]
    for path in written:
        assert _is_png(path), path


def test_roc_plot_needs_both_classes_somewhere(tmp_path):
    with pytest.raises(ValueError, match="label 0"):
        ev.plot_roc({"reals": ([0, 0], [0.1, 0.2])}, tmp_path / "roc.png")


def test_module_imports_neither_tensorflow_nor_matplotlib():
    # Load the file itself so the check does not depend on what detector/__init__ imports.
    path = Path(ev.__file__)
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('evaluation', {str(path)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_uncertain_band_reaches_down_to_even_odds():
    assert ev.uncertain_band(0.9, 0.15) == (0.495, 0.9)  # never "real" at 75% fake, nor at "50%"
    assert ev.uncertain_band(0.6, 0.15) == pytest.approx((0.445, 0.6))
    assert ev.uncertain_band(0.1, 0.15) == (0.0, 0.1)


def test_boundaries_on_half_percents_keep_every_written_percentage_on_its_verdict_s_side():
    from detector.wording import percent, verdict, verdict_rule

    assert ev.on_half_percent(0.8813, up=True) == ev.on_half_percent(0.885, up=True) == 0.885
    assert ev.on_half_percent(0.8813, up=False) == 0.875 and ev.on_half_percent(0.5, up=False) == 0.495
    assert ev.on_half_percent(0.9971, up=True) == 0.995 and ev.on_half_percent(0.0012, up=False) == 0.0
    for fitted in (0.8813, 0.5004, 0.1429, 0.9971):  # a threshold as validation data gives it
        threshold = ev.on_half_percent(fitted, up=True)
        lo, hi = ev.uncertain_band(threshold, 0.15)
        p = np.r_[np.linspace(0, 1, 100_001), lo, hi, threshold]  # and each boundary itself
        written = np.array([int(percent(x)[:-1]) for x in p])
        said = np.array([verdict(x, threshold, (lo, hi)) for x in p])
        fake, uncertain = said == "fake", said == "uncertain"
        # The rule as the page writes it: "called fake from 89%; between 50% and 88% it is uncertain".
        fake_from, band_from, band_to = map(int, re.findall(r"(\d+)%", verdict_rule(threshold, (lo, hi))))
        assert np.array_equal(fake, written >= fake_from), fitted
        assert np.array_equal(uncertain, (band_from <= written) & (written <= band_to)), fitted
        # The report counts the same verdicts: every point a fake, those "real" are fakes called
        # real; every point a real, those "fake" are reals called fake.
        as_fakes = ev.binary_metrics(np.ones(len(p), int), p, threshold, uncertain_band=(lo, hi))
        as_reals = ev.binary_metrics(np.zeros(len(p), int), p, threshold, uncertain_band=(lo, hi))
        assert as_fakes["fake_called_real"] == np.mean(said == "real"), fitted
        assert as_reals["real_called_fake"] == np.mean(fake), fitted
