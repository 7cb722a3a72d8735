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


#: Ranges of the smoothing's spatial sigma (pixels of a training crop) and colour sigma (0-255):
#: from a light touch to a little past the robustness report's ``smooth`` condition (40 and
#: 3 px on 200-320 px faces), under which about 30% of LFW's real test faces are called fake
#: (docs/robustness.md).
SMOOTH_SIGMA, SMOOTH_COLOR = (1.0, 3.0), (15.0, 60.0)


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly training crops are degraded; a strength or chance of 0 turns that change off.

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
        smooth_prob: Chance of an edge-preserving smoothing (``bilateral``, of spatial and
            colour sigmas drawn from ``SMOOTH_SIGMA`` and ``SMOOTH_COLOR``), as phones' beauty
            modes and portrait retouching smooth skin and keep its outlines, so that smooth
            skin is not learned as a sign of a made face (a quarter by default; 0 turns it
            off). It draws on seeds of its own, so the other changes are drawn alike with and
            without it.
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
    smooth_prob: float = 0.25


def _gaussian_blur(image: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
    radius = 4
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-(x**2) / (2.0 * sigma**2))
    k = k / tf.reduce_sum(k)
    kernel = tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, 3, 1])
    y = tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "SAME")
    kernel = tf.reshape(kernel, [1, -1, 3, 1])
    return tf.nn.depthwise_conv2d(y, kernel, [1, 1, 1, 1], "SAME")[0]


def bilateral(image: tf.Tensor, sigma: tf.Tensor, color: tf.Tensor, radius: int = 3) -> tf.Tensor:
    """Edge-preserving smoothing of a ``(H, W, 3)`` float image (a bilateral filter).

    Each pixel becomes the mean of its neighbours within ``radius``, each weighed by its
    distance (Gaussian, ``sigma`` pixels) and by how like the pixel's colour it is (Gaussian
    on the colour distance, ``color``): skin and flat areas are smoothed, outlines kept. This
    is what beauty modes and retouching do to a real photo, and not what a Gaussian blur does.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    padded = tf.pad(image, [[radius, radius], [radius, radius], [0, 0]], "REFLECT")
    total, weight = tf.zeros_like(image), tf.zeros_like(image[..., :1])
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            near = padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width]
            distance = tf.reduce_sum((near - image) ** 2, axis=-1, keepdims=True)
            w = tf.exp(-float(dy * dy + dx * dx) / (2.0 * sigma**2) - distance / (2.0 * color**2))
            total += w * near
            weight += w
    return total / weight


def _crop_box(seed: tf.Tensor, zoom: float) -> tf.Tensor:
    """A random square crop, in normalized ``[y0, x0, y1, x1]`` coordinates, so the same
    crop can be cut from an image and from its mask at another resolution."""
    s1, s2 = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    side = tf.random.stateless_uniform([], s1, 1.0 - zoom, 1.0)
    y0, x0 = tf.unstack(tf.random.stateless_uniform([2], s2, 0.0, 1.0) * (1.0 - side))
    return tf.stack([y0, x0, y0 + side, x0 + side])


def augment(
    image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, mask_size: int, cfg: AugmentConfig = AugmentConfig()
) -> tuple[tf.Tensor, tf.Tensor]:
    """Degrades one training crop as an upload might be; moves its mask along.

    Args:
        image: A ``(S, S, 3)`` uint8 crop.
        mask: A ``(M, M, 1)`` float32 map of where the face was manipulated (any ``M``).
        seed: A ``(2,)`` int64 seed; the same seed gives the same result.
        mask_size: Side of the returned mask.
        cfg: Augmentation strengths.

    Returns:
        The degraded ``(S, S, 3)`` crop as float32 in 0-255, and the ``(mask_size,
        mask_size, 1)`` mask after the same flip and crop.
    """
    size = tf.shape(image)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 12)

    def chance(i: int, p: float) -> tf.Tensor:
        return tf.random.stateless_uniform([], seeds[i]) < p

    # Flip, zoom and shift: the same geometry for the image and its mask.
    box = _crop_box(seeds[1], cfg.zoom)[None]
    flip = chance(0, 0.5)
    x = tf.image.crop_and_resize(tf.cast(image, tf.float32)[None], box, [0], [size, size])[0]
    m = tf.image.crop_and_resize(mask[None], box, [0], [mask_size, mask_size])[0]
    x, m = tf.cond(flip, lambda: (x[:, ::-1], m[:, ::-1]), lambda: (x, m))

    # A strength of 0 skips its change (TensorFlow rejects an empty contrast or saturation range).
    if cfg.brightness:
        x = tf.image.stateless_random_brightness(x, cfg.brightness * 255.0, seeds[3])
    if cfg.contrast:
        x = tf.image.stateless_random_contrast(x, 1 - cfg.contrast, 1 + cfg.contrast, seeds[4])
    if cfg.saturation:
        x = tf.image.stateless_random_saturation(x, 1 - cfg.saturation, 1 + cfg.saturation, seeds[5])
    if cfg.hue:
        x = tf.image.stateless_random_hue(x / 255.0, cfg.hue, seeds[6]) * 255.0
    x = tf.clip_by_value(x, 0.0, 255.0)

    sigma = tf.random.stateless_uniform([], seeds[7], 0.3, cfg.blur_sigma)
    x = tf.cond(chance(8, cfg.blur_prob), lambda: _gaussian_blur(x, sigma), lambda: x)
    if cfg.smooth_prob:
        # Seeds of their own, so that a run without smoothing draws every other change as before.
        s = tf.random.experimental.stateless_split(tf.random.experimental.stateless_fold_in(seeds[0], 1), 3)
        spatial = tf.random.stateless_uniform([], s[1], *SMOOTH_SIGMA)
        color = tf.random.stateless_uniform([], s[2], *SMOOTH_COLOR)
        smooth = tf.random.stateless_uniform([], s[0]) < cfg.smooth_prob
        x = tf.cond(smooth, lambda: bilateral(x, spatial, color), lambda: x)

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
    return tf.cast(x, tf.float32), m


def self_blend(image: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A self-blended image: a pseudo-fake made from a real face (Shiota & Yamasaki, 2022).

    A slightly shifted, rescaled and colour-changed copy of the face is blended back into
    the face through a soft elliptical mask. The result shows the traces every face swap
    leaves (a blending boundary, a colour and sharpness mismatch between face and
    surroundings) without any one generator's fingerprint, so a network that learns it
    generalizes to swaps it never saw.

    Args:
        image: A ``(S, S, 3)`` uint8 real face crop (the face centred, as framed in training).
        seed: A ``(2,)`` int64 seed.

    Returns:
        The blended ``(S, S, 3)`` uint8 image, and its ``(S, S, 1)`` float32 blend mask.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)
    size = tf.shape(image)[0]
    x = tf.cast(image, tf.float32)

    # The source: the same face, slightly moved and rescaled, with other colours and sharpness.
    scale = tf.random.stateless_uniform([], seeds[0], 0.94, 1.06)
    shift = tf.random.stateless_uniform([2], seeds[1], -0.03, 0.03)
    half = 0.5 / scale
    box = tf.stack([0.5 - half + shift[0], 0.5 - half + shift[1], 0.5 + half + shift[0], 0.5 + half + shift[1]])
    source = tf.image.crop_and_resize(x[None], box[None], [0], [size, size])[0]
    gain = tf.random.stateless_uniform([3], seeds[2], 0.9, 1.1)
    offset = tf.random.stateless_uniform([3], seeds[3], -12.0, 12.0)
    source = source * gain + offset
    sigma = tf.random.stateless_uniform([], seeds[4], 0.3, 1.5)
    source = tf.cond(tf.random.stateless_uniform([], seeds[5]) < 0.5, lambda: _gaussian_blur(source, sigma), lambda: source)

    # The mask: a soft ellipse over the inner face, of random size and softness.
    r = tf.random.stateless_uniform([4], seeds[6], [0.22, 0.28, -0.04, -0.04], [0.36, 0.42, 0.04, 0.08])
    coords = (tf.cast(tf.range(size), tf.float32) + 0.5) / tf.cast(size, tf.float32) - 0.5
    yy, xx = tf.meshgrid(coords - r[3], coords - r[2], indexing="ij")
    dist = tf.sqrt((xx / r[0]) ** 2 + (yy / r[1]) ** 2)
    soft, ratio = tf.unstack(tf.random.stateless_uniform([2], seeds[7], [4.0, 0.6], [16.0, 1.0]))
    mask = (tf.sigmoid((1.0 - dist) * soft) * ratio)[..., None]

    blended = mask * source + (1.0 - mask) * x
    return tf.cast(tf.round(tf.clip_by_value(blended, 0.0, 255.0)), tf.uint8), mask
