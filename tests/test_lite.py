"""The LiteRT copy of the network: the same logits as Keras, checked like the weights, used
when the card names it."""

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


def test_training_writes_the_lite_copy_and_the_detector_scores_on_it(tiny_weights):
    card = ModelCard.load(tiny_weights)
    assert card.lite_sha256 and (tiny_weights / LITE_FILE).is_file()
    detector = Detector.load(tiny_weights)
    assert detector.lite is not None
    crops = _crops(5, card.input_size, seed=9)
    keras_logits = view_averaged_logits(detector.model, crops, card.scoring_views).numpy()
    np.testing.assert_allclose(detector.logits(crops), keras_logits, rtol=1e-4, atol=1e-4)
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


def test_a_card_without_lite_scores_on_keras_alike(tiny_weights, tmp_path):
    folder, card = _without_lite(tiny_weights, tmp_path / "w")
    on_keras, on_lite = Detector.load(folder), Detector.load(tiny_weights)
    assert on_keras.lite is None
    crops = _crops(4, card.input_size, seed=2)
    np.testing.assert_allclose(on_keras.logits(crops), on_lite.logits(crops), rtol=1e-4, atol=1e-4)


def test_lite_command_converts_existing_weights(tiny_weights, tmp_path):
    folder, _ = _without_lite(tiny_weights, tmp_path / "w")
    out = subprocess.run([sys.executable, "-m", "detector", "--weights", str(folder), "lite"], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert out.stdout.count("\n") == 1 and "sha256" in out.stdout  # one line, not Keras' trace listing
    card = ModelCard.load(folder)
    card.verify(folder / LITE_FILE, card.lite_sha256)
    assert Detector.load(folder).lite is not None
