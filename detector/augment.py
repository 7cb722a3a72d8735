"""The degradations real uploads go through, applied to training crops.

Photos that users upload have been flipped, cropped, colour-corrected, resized and
JPEG-compressed again (often more than once) on their way through phones and social
networks. Training on crops that went through the same keeps the network from learning a
fingerprint of the training files (one JPEG quality, one resolution) instead of the face.

Every random choice is a *stateless* op driven by a per-example seed, so a training run
with the same seed sees the same augmented images, whatever the thread scheduling.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly training crops are degraded.

    Attributes:
        zoom: Largest share of the side cut away by the random crop (then resized back).
        brightness: Largest brightness shift, as a share of the 0-255 range.
        contrast: Contrast factor range is ``[1 - contrast, 1 + contrast]``.
        saturation: Saturation factor range is ``[1 - saturation, 1 + saturation]``.
        hue: Largest hue shift (share of the hue circle).
        blur_prob: Chance of a Gaussian blur with sigma in ``(0.3, blur_sigma)``.
        blur_sigma: Largest blur sigma, in pixels.
        rescale_prob: Chance of a downscale-upscale round trip.
        rescale_min: Smallest downscale factor of that round trip.
        jpeg_prob: Chance of a JPEG re-compression.
        jpeg_quality: Range of JPEG qualities.
    """

    zoom: float = 0.12
    brightness: float = 0.08
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    blur_prob: float = 0.2
    blur_sigma: float = 1.5
    rescale_prob: float = 0.3
    rescale_min: float = 0.4
    jpeg_prob: float = 0.6
    jpeg_quality: tuple[int, int] = (30, 95)


def _gaussian_blur(image: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
    radius = 4
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-(x**2) / (2.0 * sigma**2))
    k = k / tf.reduce_sum(k)
    kernel = tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, 3, 1])
    y = tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "SAME")
    kernel = tf.reshape(kernel, [1, -1, 3, 1])
    return tf.nn.depthwise_conv2d(y, kernel, [1, 1, 1, 1], "SAME")[0]


def augment(image: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig = AugmentConfig()) -> tf.Tensor:
    """Degrades one training crop as an upload might be.

    Args:
        image: A ``(S, S, 3)`` uint8 crop.
        seed: A ``(2,)`` int64 seed; the same seed gives the same result.
        cfg: Augmentation strengths.

    Returns:
        The degraded ``(S, S, 3)`` crop as float32 in 0-255.
    """
    size = tf.shape(image)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 12)

    def chance(i: int, p: float) -> tf.Tensor:
        return tf.random.stateless_uniform([], seeds[i]) < p

    x = tf.image.stateless_random_flip_left_right(image, seeds[0])

    # Small zoom and shift: a random square crop resized back to the input size.
    side = tf.cast(
        tf.cast(size, tf.float32) * tf.random.stateless_uniform([], seeds[1], 1.0 - cfg.zoom, 1.0), tf.int32
    )
    x = tf.image.stateless_random_crop(x, [side, side, 3], seeds[2])
    x = tf.image.resize(x, [size, size], antialias=True)

    x = tf.image.stateless_random_brightness(x, cfg.brightness * 255.0, seeds[3])
    x = tf.image.stateless_random_contrast(x, 1 - cfg.contrast, 1 + cfg.contrast, seeds[4])
    x = tf.image.stateless_random_saturation(x, 1 - cfg.saturation, 1 + cfg.saturation, seeds[5])
    x = tf.image.stateless_random_hue(x / 255.0, cfg.hue, seeds[6]) * 255.0
    x = tf.clip_by_value(x, 0.0, 255.0)

    sigma = tf.random.stateless_uniform([], seeds[7], 0.3, cfg.blur_sigma)
    x = tf.cond(chance(8, cfg.blur_prob), lambda: _gaussian_blur(x, sigma), lambda: x)

    factor = tf.random.stateless_uniform([], seeds[9], cfg.rescale_min, 1.0)
    small = tf.maximum(8, tf.cast(tf.cast(size, tf.float32) * factor, tf.int32))
    x = tf.cond(
        chance(10, cfg.rescale_prob),
        lambda: tf.image.resize(tf.image.resize(x, [small, small], antialias=True), [size, size], "bilinear"),
        lambda: x,
    )

    x = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)
    lo, hi = cfg.jpeg_quality
    x = tf.cond(
        chance(11, cfg.jpeg_prob),
        lambda: tf.image.stateless_random_jpeg_quality(x, lo, hi, seeds[11]),
        lambda: x,
    )
    return tf.cast(x, tf.float32)
