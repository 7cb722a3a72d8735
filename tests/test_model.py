import keras
import numpy as np
import pytest

from detector.model import GRADCAM_LAYER, make_model, mirror_averaged_logits


def test_default_model_is_flat_and_named_for_gradcam():
    model = make_model()
    assert model.input_shape == (None, 128, 128, 3)
    assert model.output_shape == (None, 1)
    # Flat: tf-keras-vis cannot reach into nested sub-models.
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert isinstance(model.get_layer(GRADCAM_LAYER), keras.layers.Conv2D)
    assert model.get_layer(GRADCAM_LAYER) is [l for l in model.layers if isinstance(l, keras.layers.Conv2D)][-1]


def test_tiny_model_predicts_logits_for_raw_pixels():
    model = make_model(32, widths=(8, 16), blocks=(1, 1), stem_width=8)
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    out = model.predict_on_batch(x)
    assert out.shape == (3, 1) and np.isfinite(out).all()


def test_mirror_averaged_logits_are_the_mean_of_both_views():
    model = make_model(32, widths=(8, 16), blocks=(1, 1), stem_width=8)
    x = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    expected = (model.predict_on_batch(x) + model.predict_on_batch(x[:, :, ::-1].copy()))[:, 0] / 2
    got = mirror_averaged_logits(model, x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # A mirrored input gets the same score: the two views just swap.
    np.testing.assert_allclose(mirror_averaged_logits(model, x[:, :, ::-1].copy()).numpy(), got, rtol=1e-4, atol=1e-5)


def test_model_round_trips_through_safe_keras_file(tmp_path):
    model = make_model(32, widths=(8, 16), blocks=(1, 1), stem_width=8)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    x = np.full((1, 32, 32, 3), 128, "float32")
    np.testing.assert_array_equal(model.predict_on_batch(x), again.predict_on_batch(x))


@pytest.mark.parametrize("kwargs, message", [
    (dict(widths=(8, 16), blocks=(1,)), "equally long"),
    (dict(input_size=8), "too small"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_model(**kwargs)
