import keras
import numpy as np
import pytest
from tf_keras_vis.gradcam import Gradcam

from detector.gradcam import GradCamExplainer, _linear_zoom
from detector.model import GRADCAM_LAYER, make_model


@pytest.fixture(scope="module", params=["scratch", "mobilenet_v2", "patches"])
def model(request):
    keras.utils.set_random_seed(0)
    if request.param == "mobilenet_v2":
        return make_model(64)  # the shipped network's layers, at a small input
    if request.param == "patches":
        return make_model(64, patch_layer="block_5_add")
    # 16 channels, not 8: tf-keras-vis runs its gradient eagerly, and TensorFlow 2.21's
    # eager oneDNN gradient of 8-channel convolutions corrupts the heap (the traced graph
    # that GradCamExplainer runs does not).
    return make_model(32, backbone="scratch", widths=(16, 32), blocks=(1, 1), stem_width=16, stem_stride=1)


def test_heatmaps_are_tf_keras_vis_gradcam(model):
    rng = np.random.default_rng(0)
    size = model.input_shape[1]
    crops = rng.integers(0, 256, (3, size, size, 3)).astype(np.float32)
    logits = model.predict_on_batch(crops)[:, 0]
    logits[1] = -abs(logits[1])  # one face called real: its map explains the negative logit
    signs = np.where(logits >= 0, 1.0, -1.0).astype(np.float32)
    reference = Gradcam(model, clone=False)(
        lambda output: output[:, 0] * signs, crops, penultimate_layer=GRADCAM_LAYER, seek_penultimate_conv_layer=False
    )
    maps = GradCamExplainer(model).heatmaps(crops, logits)
    assert maps.shape == (3, size, size) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, reference, atol=1e-4)  # float32 rounding through 50 layers
    assert maps.max() > 0.99 and maps.min() >= 0


def test_linear_zoom_is_scipy_zoom_order_1():
    from scipy.ndimage import zoom

    cam = np.random.default_rng(1).random((5, 7)).astype(np.float32)
    ours = _linear_zoom(5, 40) @ cam @ _linear_zoom(7, 21).T
    np.testing.assert_allclose(ours, zoom(cam, (8, 3), order=1), atol=1e-6)


def test_empty_batch_and_missing_layer():
    explainer = GradCamExplainer(make_model(32, backbone="scratch", widths=(8, 16), blocks=(1, 1), stem_width=8, stem_stride=1))
    assert explainer.heatmaps(np.zeros((0, 32, 32, 3), np.float32), np.zeros(0)).shape == (0, 32, 32)
    inputs = keras.Input((8, 8, 3))
    plain = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)), name="plain")
    with pytest.raises(ValueError, match="'plain' has no layer named 'gradcam_target'"):
        GradCamExplainer(plain)


def test_a_fused_network_is_explained_by_the_sum_of_its_members_maps():
    from detector.model import fuse

    keras.utils.set_random_seed(0)
    member = make_model(32, backbone="scratch", widths=(16, 32), blocks=(1, 1), stem_width=16, stem_stride=1)
    crops = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    logits = member.predict_on_batch(crops)[:, 0]
    alone = GradCamExplainer(member).heatmaps(crops, logits)
    # A network fused with itself: two equal maps, summed and normalized, are the one map.
    twice = fuse([(member, 1.0, 0.0), (member, 1.0, 0.0)])
    np.testing.assert_allclose(GradCamExplainer(twice).heatmaps(crops, logits), alone, atol=1e-4)
    # Members of different sizes: one map at the crop's size, from both.
    keras.utils.set_random_seed(1)
    larger = make_model(40, backbone="scratch", widths=(16, 32), blocks=(1, 1), stem_width=16, stem_stride=1)
    pair = fuse([(member, 1.0, 0.0), (larger, 1.0, 0.0)])
    big = np.random.default_rng(1).integers(0, 256, (2, 40, 40, 3)).astype(np.float32)
    maps = GradCamExplainer(pair).heatmaps(big, pair.predict_on_batch(big)[:, 0])
    assert maps.shape == (2, 40, 40) and maps.max() > 0.99 and maps.min() >= 0
