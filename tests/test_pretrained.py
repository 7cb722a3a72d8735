"""The ImageNet MobileNetV2 converted from its uint8 TFLite file classifies photos as that file does."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest

from conftest import EXAMPLES
from detector.imaging import load_image
from detector.pretrained import MOBILENET_V2_TFLITE, imagenet_classifier, load_imagenet_weights, tflite_probabilities


def _natural_images() -> np.ndarray:
    """The example photos, centre-cropped and resized to 224 px."""
    paths = sorted(p for p in EXAMPLES.glob("*") if p.suffix in (".jpg", ".png"))
    if len(paths) < 5:
        pytest.skip(f"the example photos are not in {EXAMPLES}")
    images = []
    for path in paths:
        rgb = load_image(path)
        h, w = rgb.shape[:2]
        side = min(h, w)
        square = rgb[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
        images.append(cv2.resize(square, (224, 224), interpolation=cv2.INTER_AREA))
    return np.stack(images)


def test_the_converted_network_classifies_natural_images_as_the_tflite_model_does():
    images = _natural_images()
    expected = tflite_probabilities(images)
    # The TFLite input is uint8 with scale 1/128 and zero point 128.
    got = imagenet_classifier().predict_on_batch((images.astype(np.float32) - 128) / 128)
    assert got.shape == expected.shape == (len(images), 1000)
    agree = np.mean(got.argmax(1) == expected.argmax(1))
    assert agree >= 6 / 7, f"top-1 agrees on {agree:.0%} of the photos"
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.98
    # Not a network that says the same whatever it sees: the photos get different classes.
    assert len(set(expected.argmax(1))) >= 3


def test_a_model_that_is_not_mobilenet_v2_is_refused():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="Conv1")(inputs))
    with pytest.raises(ValueError, match="MobileNetV2 convolutions"):
        load_imagenet_weights(model)


def test_the_file_is_the_one_the_readme_names():
    from detector.card import sha256_of

    assert sha256_of(MOBILENET_V2_TFLITE) == "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
