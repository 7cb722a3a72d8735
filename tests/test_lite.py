"""The LiteRT copy of the network: the same logits as Keras (all-float) or close to them
(quantized, with its high-resolution layers float), checked like the weights, used when the
card names it, and the calibration fitted through it."""

import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import REPO
from detector.card import ModelCard, WeightsError
from detector.lite import CHUNK, LITE_FILE, LiteNetwork, export
from detector.model import make_model, view_averaged_logits
from detector.pipeline import Detector
from detector.views import CROP_AND_SHIFTED_MIRROR


def _crops(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_lite(tmp_path_factory):
    model = make_model(input_size=32, backbone="scratch", widths=(8, 16), blocks=(1, 1), stem_width=8)
    path = export(model, tmp_path_factory.mktemp("lite") / LITE_FILE)
    return model, LiteNetwork.load(path)


@pytest.mark.parametrize("n", [1, CHUNK - 1, CHUNK, 2 * CHUNK + 3])  # whole chunks, the rest one by one
def test_lite_logits_equal_the_keras_logits(tiny_lite, n):
    model, lite = tiny_lite
    crops = _crops(n, 32, seed=n)
    expected = model(crops, training=False).numpy().reshape(-1)
    got = lite(crops)
    assert got.shape == (n,)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_lite_serves_threads_one_call_at_a_time(tiny_lite):
    model, lite = tiny_lite
    batches = [_crops(CHUNK + 1, 32, seed=s) for s in range(6)]
    expected = [lite(b) for b in batches]
    results = [None] * len(batches)

    def score(i):
        results[i] = lite(batches[i])

    threads = [threading.Thread(target=score, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_quantized_copy_keeps_its_high_resolution_layers_float_and_close_to_keras(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    model = make_model(input_size=64, backbone="mobilenet_v2", pretrained=True)  # random weights give no signal
    head = model.layers[-1]  # initialized to zero, which would make every logit alike
    kernel, bias = head.get_weights()
    head.set_weights([np.random.default_rng(0).normal(0, 1, kernel.shape).astype(np.float32), bias])
    representative = _crops(16, 64, seed=1)
    path = export(model, tmp_path / LITE_FILE, representative)
    interpreter = Interpreter(model_path=str(path))
    tensors = interpreter.get_tensor_details()
    convs = [op for op in interpreter._get_ops_details() if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    dtypes = [tensors[op["inputs"][0]]["dtype"] for op in convs]
    assert dtypes[0] == np.float32 and dtypes[-1] == np.int8  # the stem sees pixels in float, the end runs in int8
    assert dtypes == sorted(dtypes, key=lambda d: d != np.float32)  # float first, then int8 to the end
    logit = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    assert [tensors[op["inputs"][0]]["dtype"] for op in logit] == [np.float32]  # the logit is not rounded to int8 steps
    crops = _crops(32, 64, seed=2)
    expected = model(crops, training=False).numpy().reshape(-1)
    got = LiteNetwork.load(path)(crops)
    assert np.corrcoef(got, expected)[0, 1] > 0.95
    assert not np.allclose(got, expected, atol=1e-5)  # quantized: not the float network itself


@pytest.fixture(scope="module")
def tiny_quantized(tiny_set, tmp_path_factory):
    """The quick recipe with its LiteRT copy quantized, as the shipped recipe's is."""
    from detector.training import TrainConfig, train

    out = tmp_path_factory.mktemp("quantized")
    train(TrainConfig.quick(str(out), sets=[str(tiny_set)], cache_dir=str(out / "cache"), quantize=True))
    return out


def test_training_writes_the_lite_copy_and_fits_the_calibration_through_it(tiny_quantized, tiny_set):
    from detector.training import refit_calibration

    tiny_weights = tiny_quantized
    card = ModelCard.load(tiny_weights)
    assert card.lite_sha256 and (tiny_weights / LITE_FILE).is_file() and card.lite_quantization
    detector = Detector.load(tiny_weights)
    assert detector.lite is not None
    crops = _crops(5, card.input_size, seed=9)
    np.testing.assert_allclose(detector.logits(crops), detector.lite.view_averaged_logits(crops, card.scoring_views))
    # The card's calibration is the one fitted on the copy's logits, not on Keras' (which differ).
    through = {"lite": refit_calibration(detector.lite, card, tiny_set.parent, tiny_weights / "cache"),
               "keras": refit_calibration(detector.model, card, tiny_set.parent, tiny_weights / "cache")}
    fields = ("temperature", "bias", "threshold")
    assert [through["lite"][f] for f in fields] == [getattr(card, f) for f in fields]
    assert [through["keras"][f] for f in fields] != [getattr(card, f) for f in fields]
    assert "model.tflite" in (tiny_weights / "MODEL_CARD.md").read_text()


def test_shifted_views_score_alike_on_both_runtimes(tiny_lite):
    model, lite = tiny_lite
    crops = _crops(3, 32, seed=4)
    from detector.model import mean_over_views, view_windows

    on_lite = mean_over_views(lite(view_windows(crops, CROP_AND_SHIFTED_MIRROR).numpy()), 2).numpy()
    on_keras = view_averaged_logits(model, crops, CROP_AND_SHIFTED_MIRROR).numpy()
    np.testing.assert_allclose(on_lite, on_keras, rtol=1e-4, atol=1e-4)


def _copy(src, dst):
    return shutil.copytree(src, dst, ignore=shutil.ignore_patterns("run", "cache"))


def test_altered_or_missing_lite_file_is_refused(tiny_weights, tmp_path):
    folder = _copy(tiny_weights, tmp_path / "w")
    path = folder / LITE_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"model\.tflite.*sha256.*python -m detector lite"):
        Detector.load(folder)
    path.unlink()
    with pytest.raises(WeightsError, match=r"missing.*python -m detector lite"):
        Detector.load(folder)


def _without_lite(tiny_weights, folder):
    """A copy of the weights whose card names no LiteRT file, and without the file."""
    folder = _copy(tiny_weights, folder)
    card = ModelCard.load(folder)
    card.lite_sha256 = ""
    card.save(folder)
    (folder / LITE_FILE).unlink()
    return folder, card


def test_a_card_without_lite_scores_on_keras(tiny_weights, tmp_path):
    folder, card = _without_lite(tiny_weights, tmp_path / "w")
    on_keras = Detector.load(folder)
    assert on_keras.lite is None
    crops = _crops(4, card.input_size, seed=2)
    np.testing.assert_allclose(on_keras.logits(crops), view_averaged_logits(on_keras.model, crops, card.scoring_views).numpy(),
                               rtol=1e-5)


def test_lite_command_converts_existing_weights_and_recalibrates_through_them(tiny_quantized, tiny_set, tmp_path):
    folder, before = _without_lite(tiny_quantized, tmp_path / "w")
    shutil.copytree(tiny_quantized / "cache", folder / "cache")
    out = subprocess.run([sys.executable, "-m", "detector", "--weights", str(folder), "lite", "--data", str(tiny_set.parent)],
                         cwd=REPO, capture_output=True, text=True, check=True, env={**os.environ, "DETECTOR_CACHE": str(folder / "cache")})
    assert "sha256" in out.stdout.splitlines()[-1] and "| set |" in out.stdout  # the re-scored table, then the file
    card = ModelCard.load(folder)
    card.verify(folder / LITE_FILE, card.lite_sha256)
    assert card.lite_quantization and Detector.load(folder).lite is not None
    assert card.metrics["test"].keys() == before.metrics["test"].keys()
