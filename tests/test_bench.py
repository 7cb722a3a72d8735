import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from detector.bench import FIGURE_KEYS, timings, bench_inputs, format_table


def test_quick_bench_measures_and_prints_every_figure(tiny_weights):
    done = subprocess.run([sys.executable, "-m", "detector", "bench", "--weights", str(tiny_weights), "--quick", "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    figures = report["figures"]
    assert [f["key"] for f in figures] == list(FIGURE_KEYS)
    for f in figures:
        assert f["p50"] > 0, f
        if f["p95"] is not None:
            assert f["p95"] >= f["p50"], f
        if f["reference"] is not None:
            better = f["p50"] / f["reference"] if f["unit"] == "crops/s" else f["reference"] / f["p50"]
            assert f["ratio"] == pytest.approx(better), f
        if f["goal"] is not None:
            assert isinstance(f["met"], bool)
    by_key = {f["key"]: f for f in figures}
    # The reference is Xception: ~21 M parameters, ~17 GFLOPs at 299 px.
    assert 20 < by_key["parameters_m"]["reference"] < 23 and 15 < by_key["gflops"]["reference"] < 18
    assert by_key["batch_crops_per_s"]["ratio"] > 1  # a 32 px toy network outruns Xception
    table = format_table(report)
    for f in figures:
        assert f["label"] in table
    assert "cores: " in table and "Xception" in table


def test_inputs_are_a_face_crop_and_a_12_megapixel_photo():
    import cv2

    crop, photo, source = bench_inputs()
    crop = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)
    photo = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape == (224, 224, 3) and photo.shape == (3000, 4000, 3)
    assert source


def test_timing_excludes_the_warm_up():
    calls = []
    seconds = timings(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and len(seconds) == 3 and (seconds >= 0).all()


def test_flip_sources_split_the_flips_by_region(tiny_weights, tiny_set):
    from bench.flip_sources import calibrated_for, score_set
    from detector.pipeline import Detector
    from detector.robustness import CONDITIONS, GOAL_CONDITION

    detector = Detector.load(tiny_weights)
    unchanged = score_set(tiny_set, detector, limit=4, degrade=CONDITIONS["none"])
    assert unchanged["region moved"]["n"] == 0 and unchanged["region kept"]["n"] == 8
    assert all(row["flip_share"] == 0.0 for row in unchanged.values() if row["n"])
    assert unchanged["as shipped"]["logit_shift_mean"] == unchanged["as shipped"]["logit_shift_sd"] == 0.0

    alone = calibrated_for(detector, ((1.0, 0.0, 0.0, False),), tiny_set.parent)
    rows = score_set(tiny_set, detector, second=detector, limit=4, degrade=CONDITIONS[GOAL_CONDITION],
                     alternatives={"views: crop alone": alone})
    kept, moved, shipped = rows["region kept"], rows["region moved"], rows["as shipped"]
    assert kept["n"] + moved["n"] == shipped["n"] == 8
    flips = sum((row["flip_share"] or 0.0) * row["n"] for row in (kept, moved))
    assert flips == pytest.approx(shipped["flip_share"] * shipped["n"])
    # The same detector twice is itself: the ensemble row must equal the shipped one.
    assert rows["ensemble"]["flip_share"] == shipped["flip_share"]
    assert rows["ensemble"]["roc_auc_degraded"] == pytest.approx(shipped["roc_auc_degraded"])
    assert rows["views: crop alone"]["n"] == 8
    # Taking one shift away from every logit keeps their order, so the degraded AUC.
    oracle = rows["shift removed (oracle)"]
    assert oracle["roc_auc_degraded"] == pytest.approx(shipped["roc_auc_degraded"])
    assert oracle["roc_auc"] == shipped["roc_auc"]


def test_the_oracle_takes_away_the_mean_shift_and_keeps_each_images_jitter():
    from bench.flip_sources import without_mean_shift
    from detector.evaluation import logit

    before = np.array([0.2, 0.4, 0.6, 0.8])
    jitter = np.array([0.3, -0.3, 0.1, -0.1])
    after = 1 / (1 + np.exp(-(logit(before) + 0.5 + jitter)))
    shifted_back, shift = without_mean_shift(before, after)
    assert shift == pytest.approx(0.5 + jitter)
    assert logit(shifted_back) - logit(before) == pytest.approx(jitter)


def test_flip_sources_refits_the_calibration_for_other_views_as_calibrate_would(tiny_weights, tiny_set):
    from bench.flip_sources import calibrated_for, image_probability
    from detector.imaging import load_image
    from detector.pipeline import Detector

    detector = Detector.load(tiny_weights)
    image = load_image(next((tiny_set / "fake").iterdir()))
    _, regions, _ = detector.regions(image)
    own = image_probability(detector, image, regions)
    # Through the card's own views, the refit is the card's calibration, and scores alike.
    same = calibrated_for(detector, detector.card.scoring_views, tiny_set.parent)
    assert (same.card.temperature, same.card.bias, same.card.threshold) == (
        detector.card.temperature, detector.card.bias, detector.card.threshold)
    assert image_probability(same, image, regions) == pytest.approx(own, abs=1e-6)
    alone = calibrated_for(detector, ((1.0, 0.0, 0.0, False),), tiny_set.parent)
    assert alone.card.scoring_views == ((1.0, 0.0, 0.0, False),)
    assert (alone.card.temperature, alone.card.bias) != (detector.card.temperature, detector.card.bias)
    assert image_probability(alone, image, regions) != pytest.approx(own, abs=1e-6)


def test_compare_weights_finds_equal_and_different_models(tiny_weights, tiny_set, tmp_path):
    from bench.compare_weights import weight_differences
    from detector.training import TrainConfig, train

    assert all(d == 0.0 for _, d in weight_differences(tiny_weights, tiny_weights))
    reseeded = tmp_path / "reseeded"
    train(TrainConfig.quick(str(reseeded), sets=[str(tiny_set)], cache_dir=str(tmp_path / "cache"), seed=7))
    assert max(d for _, d in weight_differences(tiny_weights, reseeded)) > 0.0
    wider = tmp_path / "wider"
    train(TrainConfig.quick(str(wider), sets=[str(tiny_set)], cache_dir=str(tmp_path / "cache"), widths=(8, 24)))
    with pytest.raises(ValueError, match="different architectures"):
        weight_differences(tiny_weights, wider)


def test_pair_hybrids_take_the_middle_from_one_image_and_the_frame_from_the_other(tiny_set):
    from bench.dfdc_pair_difference import aligned_pairs, paste_middle

    pairs = aligned_pairs(str(tiny_set), "test")
    assert len(pairs) == 8 and all(real.shape == fake.shape for real, fake in pairs)
    middle, frame = np.full((100, 100, 3), 200, np.uint8), np.full((100, 100, 3), 10, np.uint8)
    hybrid = paste_middle(middle, frame, 0.5)
    assert (hybrid[50, 50] == 200).all() and (hybrid[2, 2] == 10).all() and (hybrid[97, 50] == 10).all()
    assert 10 < hybrid[25, 50, 0] < 200  # the seam is feathered, not cut


def test_budget_curve_fits_the_gain_per_doubling_and_reads_the_cards(tiny_weights, tiny_set):
    from bench.budget_curve import budget_for, budget_row, fit_log_budget

    a, b = fit_log_budget([8, 16, 32], [0.80, 0.82, 0.84])
    assert (a, b) == pytest.approx((0.74, 0.02))
    assert budget_for(0.90, a, b) == pytest.approx(2 ** 8)
    assert budget_for(0.90, 0.8, -0.01) == float("inf")
    with pytest.raises(ValueError, match=r"\[34, 34\]"):
        fit_log_budget([34, 34], [0.88, 0.87])
    row = budget_row(tiny_weights)
    assert row["epochs"] >= 1 and row["minutes"] >= 0
    assert set(row["val"]) == set(row["test"]) == {tiny_set.name}


def test_budget_curve_prints_every_run_and_a_trend_per_set(tiny_weights, tiny_set, tmp_path):
    from detector.training import TrainConfig, train

    longer = tmp_path / "longer"
    train(TrainConfig.quick(str(longer), sets=[str(tiny_set)], cache_dir=str(tmp_path / "cache"), epochs=4))
    done = subprocess.run([sys.executable, "bench/budget_curve.py", str(tiny_weights), str(longer),
                           "--goal", f"{tiny_set.name}=0.99"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines[1:3]] == [[tiny_weights.name, "2"], ["longer", "4"]]
    assert lines[3].startswith(f"{tiny_set.name}: test ROC-AUC ") and "per doubling of the epochs" in lines[3]
    assert "0.99" in lines[3]
