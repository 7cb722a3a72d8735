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


def test_the_load_test_checks_the_bars_against_the_faces(tmp_path):
    from bench.load import check_reply

    overlay = tmp_path / "overlay.png"
    overlay.write_bytes(b"png")
    faces = [{"box": [0, 0, 9, 9], "fake_probability": 0.3, "label": "real"},
             {"box": [20, 0, 9, 9], "fake_probability": 0.7, "label": "fake"}]
    bars = {"label": "face 2", "confidences": [{"label": "face 2", "confidence": 0.7}, {"label": "face 1", "confidence": 0.3}]}
    assert check_reply((bars, str(overlay), {"faces": faces, "error": None})) is None
    assert check_reply(({"label": "no face found"}, str(overlay), {"faces": [], "error": None})) is None
    assert "bars" in check_reply(({"label": "face 1", "confidences": [{"label": "face 1", "confidence": 0.3}]},
                                  str(overlay), {"faces": faces, "error": None}))
    assert "error" in check_reply(({}, None, {"faces": [], "error": "not an image"}))


def test_npr_statistics_see_a_2x_upsampling_on_its_own_grid_only():
    from bench.npr_traces import npr_statistics

    small = np.random.default_rng(0).uniform(0, 255, (32, 32)).astype(np.float32)
    upsampled = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)  # nearest-neighbour, as a generator might
    traced = npr_statistics(upsampled)
    # Every 2x2 cell of its grid is one colour: the residual vanishes there, not on the shifted grid.
    assert (traced[:3] < np.log(1e-2)).all() and (traced[3:] < -5).all()
    plain = npr_statistics(np.random.default_rng(1).uniform(0, 255, (64, 64)).astype(np.float32))
    assert (np.abs(plain[3:]) < 0.1).all()  # noise has no grid: both grids alike


def test_face_size_cells_count_each_class_at_the_threshold_and_the_roc_auc():
    from bench.face_size import cell

    scored = [(0, 0.1), (0, 0.95), (1, 0.9), (1, 0.2), (1, 0.99)]
    assert cell(scored, 0, 0.881) == "50.0% (2)"  # one real of two at or above
    assert cell(scored, 1, 0.881) == "66.7% (3)"
    assert cell(scored, None, 0.881) == f"{4 / 6:.3f} (5)"
    assert cell([(1, 0.5)], 0, 0.881) == "–" and cell([(1, 0.5)], None, 0.881) == "–"


def test_heic_photos_reencodes_as_the_detector_reads_it():
    from bench.heic_photos import heic

    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 32:] = (200, 60, 30)
    out = heic(80)(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_allclose(out[24, [8, 56]].astype(float), image[24, [8, 56]].astype(float), atol=8)
