import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from detector.data import load_set, manipulation_masks
from detector.faces import FACE_MARGIN
from detector.sampling import balanced_batches, training_dataset
from detector.shards import read_arrays, read_index, read_shards, shard_pattern, shard_sources, write_shards
from detector.training import TrainConfig, train


@pytest.fixture(scope="module")
def arrays(tiny_set, tmp_path_factory):
    return load_set(tiny_set, 32, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def shards(arrays, tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    write_shards(arrays, folder, images_per_shard=3)
    return folder


def _by_file(a):
    order = np.argsort(a.files)
    return {k: getattr(a, k)[order] for k in ("images", "labels", "splits", "groups", "files", "found", "native")}


def test_index_counts_and_files(arrays, shards):
    index = read_index(shards)
    assert index["input_size"] == 32 and index["mask_size"] == 32 and index["face_margin"] == FACE_MARGIN
    assert index["sets"][arrays.name] == {s: {"real": 8, "fake": 8} for s in ("train", "val", "test")}
    # 8 records, 3 per file: 3 files per split and label.
    assert len(list((shards / arrays.name).glob("train-fake-*.tfrecord"))) == 3
    json.loads((shards / "index.json").read_text())


def test_round_trip_is_exact(arrays, shards):
    back = read_arrays(shards, arrays.name)
    for key, value in _by_file(arrays).items():
        np.testing.assert_array_equal(_by_file(back)[key], value)


def test_streamed_elements_are_the_in_memory_elements(arrays, shards):
    masks, known = manipulation_masks(arrays)
    for label, name in ((0, "real"), (1, "fake")):
        keep = (arrays.splits == "train") & (arrays.labels == label)
        streamed = list(read_shards(shard_pattern(shards, arrays.name, "train", name)).as_numpy_iterator())
        assert len(streamed) == keep.sum()
        for (image, mask, k, y, native), i in zip(streamed, np.flatnonzero(keep)):
            assert image.dtype == np.uint8 and mask.dtype == np.float32 and mask.shape == (32, 32, 1)
            np.testing.assert_array_equal(image, arrays.images[i])
            np.testing.assert_array_equal(mask[..., 0], masks[i])
            assert k == np.float32(known[i]) and y == np.float32(label) and native == arrays.native[i]
    assert masks[arrays.labels == 1].max() > 0.2  # the fakes' masks are there, not zeros


def test_a_set_folder_is_written_group_by_group_with_the_same_masks(tiny_set, arrays, tmp_path):
    write_shards(tiny_set, tmp_path, images_per_shard=100, input_size=32)
    back = read_arrays(tmp_path, arrays.name)
    for key, value in _by_file(arrays).items():
        np.testing.assert_array_equal(_by_file(back)[key], value)
    masks, _ = manipulation_masks(arrays)
    fake = np.flatnonzero((arrays.splits == "val") & (arrays.labels == 1))
    streamed = list(read_shards(shard_pattern(tmp_path, arrays.name, "val", "fake")).as_numpy_iterator())
    streamed_masks = {bytes(image.tobytes()): mask[..., 0] for image, mask, *_ in streamed}
    for i in fake:
        np.testing.assert_array_equal(streamed_masks[arrays.images[i].tobytes()], masks[i])


def test_mismatched_or_missing_shards_are_refused(arrays, shards, tmp_path):
    with pytest.raises(ValueError, match="32 px"):
        write_shards(_resized(arrays, 16), shards)
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        read_shards(str(tmp_path / "nothing-here-*.tfrecord"))
    with pytest.raises(FileNotFoundError, match="index.json"):
        read_index(tmp_path)
    with pytest.raises(ValueError, match="images_per_shard"):
        write_shards(arrays, tmp_path, images_per_shard=0)


def _resized(arrays, size):
    from dataclasses import replace

    return replace(arrays, images=arrays.images[:, :size, :size])


def test_shard_batches_match_the_in_memory_batches_in_structure(arrays, shards, tmp_path):
    cfg = TrainConfig.quick(str(tmp_path), batch_size=16)
    x, y, w = next(iter(balanced_batches(shard_sources(str(shards), cfg), cfg, mask_size=8)))
    x0, y0, w0 = next(iter(training_dataset([arrays.split("train")], cfg, mask_size=8)))
    assert x.shape == x0.shape and x.dtype == x0.dtype
    for key in ("fake_logit", "mask_logit"):
        assert y[key].shape == y0[key].shape and np.shape(w[key]) == np.shape(w0[key])
    assert 0 < y["fake_logit"].numpy().mean() < 1


def test_training_from_shards(arrays, shards, tmp_path):
    # Quantized as the shipped recipe's copy is: its int8 ranges come from the validation crops,
    # since the training split stays in the shards.
    card = train(TrainConfig.quick(str(tmp_path), shards=str(shards), epochs=1, steps_per_epoch=2, quantize=True))
    assert card.training["epochs_run"] == 1 and card.training["config"]["shards"] == str(shards)
    assert card.lite_quantization
    assert card.metrics["test"]["overall"]["n"] == 16
    assert card.data["sets"][arrays.name]["train"] == {"real": 8, "fake": 8}
    assert read_index(shards)["train_looks"][arrays.name]["real"]  # the looks to match
    assert (tmp_path / "model.keras").exists()


def test_shards_keep_one_face_margin_and_training_checks_it(arrays, shards, tmp_path):
    margin = FACE_MARGIN + 0.25
    other = tmp_path / "shards"
    write_shards(arrays, other, face_margin=margin)
    assert read_index(other)["face_margin"] == margin
    with pytest.raises(ValueError, match=f"framed at {margin}x the box; .* framed at {FACE_MARGIN}x"):
        write_shards(arrays, other)  # one folder, one framing
    with pytest.raises(ValueError, match=f"framed at {margin}x"):
        train(TrainConfig.quick(str(tmp_path / "out"), shards=str(other)))
    card = train(TrainConfig.quick(str(tmp_path / "out"), shards=str(other), face_margin=margin, epochs=1, steps_per_epoch=1))
    assert card.face_margin == margin


def test_shards_command(tiny_set, arrays, tmp_path):
    done = subprocess.run([sys.executable, "-m", "detector", "shards", "--sets", str(tiny_set), "--out", str(tmp_path),
                           "--input-size", "32", "--images-per-shard", "5"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["sets"][arrays.name]["test"] == {"real": 8, "fake": 8}
    assert len(list((tmp_path / arrays.name).glob("test-real-*.tfrecord"))) == 2


def test_an_index_from_before_margins_were_recorded_counts_as_the_default(arrays, shards, tmp_path):
    old = tmp_path / "old"
    write_shards(arrays, old)
    index = read_index(old)
    del index["face_margin"]
    (old / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=f"framed at {FACE_MARGIN}x the box; .* framed at 1.6x"):
        write_shards(arrays, old, face_margin=1.6)
