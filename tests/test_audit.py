"""The shortcut audit finds a planted shortcut and no shortcut where there is none."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import DATA
from detector.audit import (SHORTCUT_AUC, audit_files, audit_stream, format_table, jpeg_quality, shortcut_auc,
                            transfer_auc)
from detector.imaging import load_image
from detector.training import TrainConfig


def _faces(n: int) -> list[np.ndarray]:
    folder = DATA / "ffhq_stylegan" / "real"
    paths = sorted(folder.glob("*.jpg"))[:n]
    if len(paths) < n:
        pytest.skip(f"the labelled sets are not in {DATA}")
    return [load_image(p) for p in paths]


def _write_set(root, faces, fake_quality: int, real_quality: int, seed: int = 0):
    """A set of the same kind of photos, its fakes saved at one JPEG quality, its reals at another."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation([0, 1] * (len(faces) // 2))
    rows = ["file,label,split,group"]
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
    for i, (face, label) in enumerate(zip(faces, labels)):
        name = f"{('real', 'fake')[label]}/{i}.jpg"
        quality = fake_quality if label else real_quality
        cv2.imwrite(str(root / name), cv2.cvtColor(face, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        rows.append(f"{name},{('real', 'fake')[label]},train,{i}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def faces():
    return _faces(60)


def test_a_planted_jpeg_shortcut_is_found(faces, tmp_path):
    planted = _write_set(tmp_path / "planted", faces, fake_quality=40, real_quality=95)
    report = audit_files([str(planted)], cache_dir=tmp_path / "cache")
    (row,) = report.values()
    assert row["auc"] > 0.9 and row["auc"] > SHORTCUT_AUC
    assert row["features"]["jpeg_quality"] > 0.95  # and it names the statistic
    assert "**shortcut**" in format_table({"files": report})


def test_no_shortcut_is_found_where_labels_are_drawn_at_random(faces, tmp_path):
    control = _write_set(tmp_path / "control", faces, fake_quality=75, real_quality=75)
    (row,) = audit_files([str(control)], cache_dir=tmp_path / "cache").values()
    assert row["auc"] < SHORTCUT_AUC


def test_jpeg_quality_is_read_from_the_quantization_table():
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    for quality in (30, 75, 92):
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert abs(jpeg_quality(data.tobytes()) - quality) <= 1
    ok, png = cv2.imencode(".png", image)
    assert jpeg_quality(png.tobytes()) == 0.0


def test_shortcut_auc_needs_both_labels_and_keeps_groups_together():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    assert shortcut_auc(x, np.zeros(40), np.arange(40)) is None
    # The label is in the features: found out of fold.
    y = np.array([0, 1] * 20)
    assert shortcut_auc(np.c_[x, y + rng.normal(0, 0.1, 40)], y, np.arange(40)) > 0.95


def test_a_look_shared_across_sources_carries_over_and_a_reversed_one_reverses():
    # Four sources of 150 faces whose fakes are brighter (feature 0); in the last the tell is
    # reversed. Feature 1 is noise.
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 300)
    sources = np.repeat([0, 1, 2, 3], 150)
    brightness = np.where(sources == 3, 1 - labels, labels) + rng.normal(0, 0.3, 600)
    x = np.c_[brightness, rng.normal(size=600)]
    assert transfer_auc(x, labels, sources, held_out=0) > 0.8
    assert transfer_auc(x, labels, sources, held_out=3) < 0.2
    assert 0.35 < transfer_auc(np.c_[x[:, 1], rng.normal(size=600)], labels, sources, held_out=0) < 0.65
    assert transfer_auc(x, labels, np.zeros(600, int), held_out=0) is None, "no other source"
    table = format_table({"stream": {"a": {"auc": 0.55, "auc_from_others": 0.2, "features": {}},
                                     "b": {"auc": 0.55, "auc_from_others": 0.5, "features": {}}}})
    assert "| a | – | 0.55 | 0.20 **carries over** |" in table and "| b | – | 0.55 | 0.50 |" in table


def test_the_stream_half_reports_every_source(tiny_set, tmp_path):
    cfg = TrainConfig.quick(str(tmp_path), sets=[str(tiny_set)], cache_dir=str(tmp_path / "cache"), batch_size=16)
    report = audit_stream([str(tiny_set)], cfg, batches=4)
    (row,) = report.values()
    assert row["n"] == 64 and 0.3 < row["fake_share"] < 0.7
