import numpy as np
import pytest

from detector.data import concat, grouped_split, load_set, read_records


def test_read_records_uses_metadata(tiny_set):
    records = read_records(tiny_set)
    assert len(records) == 48
    assert {r.split for r in records} == {"train", "val", "test"}
    assert sum(r.label for r in records) == 24  # fakes are label 1


def test_read_records_without_metadata_makes_a_grouped_split(tmp_path, tiny_set):
    for label in ("real", "fake"):
        (tmp_path / label).mkdir()
        for src in (tiny_set / label).iterdir():
            (tmp_path / label / src.name).write_bytes(src.read_bytes())
    records = read_records(tmp_path)
    assert len(records) == 48
    # The split is a pure function of the group: stable across runs, never cutting a group.
    for r in records:
        assert r.split == grouped_split(r.group)


def test_grouped_split_shares_and_stability():
    splits = [grouped_split(f"video{i}") for i in range(5000)]
    shares = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert 0.77 < shares["train"] < 0.83 and 0.08 < shares["val"] < 0.12 and 0.08 < shares["test"] < 0.12
    assert splits == [grouped_split(f"video{i}") for i in range(5000)]


def test_read_records_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        read_records(tmp_path)
    (tmp_path / "metadata.csv").write_text("file,label,split,group\nreal/a.jpg,maybe,train,a\n")
    with pytest.raises(ValueError, match="'maybe'"):
        read_records(tmp_path)


def test_load_set_caches_once(tiny_set, tmp_path):
    first = load_set(tiny_set, 32, cache_dir=tmp_path)
    assert first.images.shape == (48, 32, 32, 3) and first.images.dtype == np.uint8
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    again = load_set(str(tiny_set), 32, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.images, again.images)
    assert cached[0].stat().st_mtime_ns == mtime  # read, not rewritten


def test_crops_framed_at_another_margin_are_cached_apart(tiny_set, tmp_path):
    load_set(tiny_set, 32, cache_dir=tmp_path)
    load_set(tiny_set, 32, cache_dir=tmp_path, margin=1.6)
    assert len(list(tmp_path.glob("*.npz"))) == 2  # a changed framing never reuses old crops


def test_limit_and_split_and_concat(tiny_set, tmp_path):
    small = load_set(tiny_set, 32, cache_dir=tmp_path, limit=2)
    assert len(small) == 2 * 3 * 2  # per (split, label)
    train = small.split("train")
    assert set(train.splits) == {"train"} and len(train) == 4
    both = concat([small, small])
    assert len(both) == 24
    with pytest.raises(ValueError, match="'dev'"):
        small.split("dev")
