"""The training stream: every source balanced, one-label sets pooled, resolutions matched."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import tensorflow as tf

from detector.augment import AugmentConfig
from detector.data import Arrays
from detector.sampling import (LOOKS_PER_CLASS, describe_sources, group_sources, match_look, match_resolution,
                               sample_looks, source_shares, training_dataset)
from detector.training import TrainConfig

NO_DEGRADATIONS = AugmentConfig(zoom=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0,
                                blur_prob=0.0, rescale_prob=0.0, jpeg_prob=0.0)


def _set(name: str, labels: list[int], size: int = 32, native: int | list[int] = 32, seed: int = 0,
         groups: list[str] | None = None) -> Arrays:
    n = len(labels)
    images = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), np.uint8)
    natives = np.broadcast_to(np.asarray(native), (n,)).astype(np.int64)
    return Arrays(name, images, np.array(labels), np.array(["train"] * n),
                  np.array(groups or [f"{name}:{i}" for i in range(n)]), np.array([f"{i}.png" for i in range(n)]),
                  np.ones(n, bool), natives)


def _stream_labels(sets: list[Arrays], batches: int = 30, **overrides) -> tuple[np.ndarray, np.ndarray]:
    cfg = TrainConfig.quick("unused", batch_size=32, **overrides)
    labels, sources = [], []
    for _, targets, _, source in training_dataset(sets, cfg, mask_size=8, with_sources=True).take(batches):
        labels.append(targets["fake_logit"].numpy().ravel())
        sources.append(source.numpy())
    return np.concatenate(labels), np.concatenate(sources)


def test_no_source_predicts_the_label_in_the_batch_stream():
    # A large two-label set, a small one, and two one-label sets (which are pooled).
    sets = [_set("large", [0] * 60 + [1] * 60), _set("small", [0] * 5 + [1] * 15, seed=1),
            _set("fakes_only", [1] * 30, seed=2), _set("reals_only", [0] * 20, seed=3)]
    for paired in (False, True):
        labels, sources = _stream_labels(sets, paired=paired)
        assert set(sources.tolist()) == {0, 1, 2}  # large, small, and the pool
        for source in range(3):
            share = labels[sources == source].mean()
            assert 0.4 < share < 0.6, f"source {source}: {share:.2f} of its images are fake (paired={paired})"
        # Neither the label nor the source gives the other away: each source's share of the
        # fakes is its share of the reals.
        for source in range(3):
            fake_share = np.mean(sources[labels == 1] == source)
            real_share = np.mean(sources[labels == 0] == source)
            assert abs(fake_share - real_share) < 0.08


def test_a_one_label_set_with_no_counterpart_is_left_out(caplog):
    sets = [_set("both", [0] * 10 + [1] * 10), _set("fakes_only", [1] * 10)]
    with caplog.at_level(logging.WARNING, logger="detector.sampling"):
        assert [s.name for s in group_sources(sets)] == ["both"]
    assert "fakes_only" in caplog.text
    assert describe_sources(sets)["fakes_only"].startswith("left out")
    pooled = describe_sources([*sets, _set("reals_only", [0] * 10)])
    assert pooled["fakes_only"] == pooled["reals_only"] == "pooled: fakes_only + reals_only"


def test_faces_not_found_never_reach_training():
    arrays = _set("s", [0] * 10 + [1] * 10)
    arrays.found[:3] = False
    (source,) = group_sources([arrays])
    assert len(source) == 17


def test_larger_sources_get_more_of_each_batch_but_none_drowns_the_rest():
    shares = source_shares([20000, 900, 2400], min_share=0.1)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[0] > shares[2] > shares[1] >= 0.1 - 1e-9
    assert shares[0] < 0.7  # proportional to size it would be 0.9


def _sharpness(images: np.ndarray) -> np.ndarray:
    return np.array([cv2.Laplacian(cv2.cvtColor(np.clip(i, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY),
                                   cv2.CV_32F).var() for i in images])


def test_match_resolution_brings_a_crop_down_to_the_target_and_never_up():
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (64, 64, 3)), tf.uint8)
    same = match_resolution(image, tf.constant(64.0), tf.constant(200.0))
    np.testing.assert_array_equal(same.numpy(), image.numpy().astype(np.float32))
    # A crop from a 32 px region already holds 32 px of detail: a target of 48 changes nothing.
    np.testing.assert_array_equal(match_resolution(image, tf.constant(32.0), tf.constant(48.0)).numpy(),
                                  image.numpy().astype(np.float32))
    softer = match_resolution(image, tf.constant(128.0), tf.constant(16.0)).numpy()
    assert softer.shape == (64, 64, 3)
    assert _sharpness(softer[None])[0] < 0.2 * _sharpness(image.numpy()[None])[0]


def _first_batch(reals: np.ndarray, fakes: np.ndarray, native: int | np.ndarray = 32, batch_size: int | None = None,
                 **overrides) -> tuple[np.ndarray, np.ndarray]:
    """The first batch of one source of these reals and fakes, undegraded: ``(images, labels)``."""
    n = len(reals) + len(fakes)
    arrays = Arrays("s", np.concatenate([reals, fakes]), np.array([0] * len(reals) + [1] * len(fakes)),
                    np.array(["train"] * n), np.array([str(i) for i in range(n)]), np.array([f"{i}.png" for i in range(n)]),
                    np.ones(n, bool), np.broadcast_to(np.asarray(native), (n,)).astype(np.int64))
    cfg = TrainConfig.quick("unused", batch_size=batch_size or n, augment=NO_DEGRADATIONS, self_blend_share=0.0,
                            **overrides)
    images, targets, _ = next(iter(training_dataset([arrays], cfg, mask_size=8)))
    return images.numpy(), targets["fake_logit"].numpy().ravel()


def test_a_source_whose_fakes_have_fewer_pixels_trains_both_classes_at_one_resolution():
    # Reals are sharp (their files had 128 px faces), fakes soft (16 px faces blown up):
    # without matching, sharpness alone tells them apart.
    rng = np.random.default_rng(0)
    reals = rng.integers(0, 256, (40, 32, 32, 3), np.uint8)
    fakes = np.stack([cv2.resize(cv2.resize(i, (8, 8), interpolation=cv2.INTER_AREA), (32, 32)) for i in
                      rng.integers(0, 256, (40, 32, 32, 3), np.uint8)])
    gaps = {}
    for matched in (False, True):
        images, labels = _first_batch(reals, fakes, np.array([128] * 40 + [8] * 40), batch_size=40,
                                      match_resolution=matched, match_look=False)
        sharp = np.log(_sharpness(images) + 1)
        gaps[matched] = sharp[labels == 0].mean() - sharp[labels == 1].mean()
    assert gaps[False] > 1.0 and abs(gaps[True]) < 0.25 * gaps[False], gaps


def test_a_source_whose_fakes_look_darker_trains_both_classes_at_one_brightness():
    # Fakes dark and dull, reals bright and colourful: without matching, brightness alone
    # tells them apart; with it, half of each class wears the other's look.
    rng = np.random.default_rng(0)
    reals = np.clip(rng.normal([170, 140, 120], 30, (60, 32, 32, 3)), 0, 255).astype(np.uint8)
    fakes = np.clip(rng.normal([60, 60, 60], 10, (60, 32, 32, 3)), 0, 255).astype(np.uint8)
    gaps = {}
    for matched in (False, True):
        images, labels = _first_batch(reals, fakes, match_look=matched, paired=False)
        brightness = images.mean(axis=(1, 2, 3))
        gaps[matched] = brightness[labels == 0].mean() - brightness[labels == 1].mean()
    assert gaps[False] > 80 and abs(gaps[True]) < 0.2 * gaps[False], gaps


def test_match_look_sets_brightness_contrast_and_colour():
    rng = np.random.default_rng(1)
    image = tf.constant(np.clip(rng.normal([150, 100, 80], 20, (48, 48, 3)), 0, 255), tf.float32)
    out = match_look(image, tf.constant([90.0, 30.0, 10.0])).numpy()
    grey = out.mean(axis=-1)
    assert abs(grey.mean() - 90) < 2 and abs(grey.std() - 30) < 2
    assert abs(np.abs(out - grey[..., None]).mean() - 10) < 1.5


def test_looks_are_sampled_to_a_bounded_table():
    looks = np.random.default_rng(0).random((5000, 4)).astype(np.float32)
    assert sample_looks(looks).shape == (LOOKS_PER_CLASS, 4)
    assert sample_looks(looks[:10]).shape == (10, 4)
