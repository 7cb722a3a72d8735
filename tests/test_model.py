import keras
import numpy as np
import pytest

from detector.model import (GRADCAM_LAYER, INPUT_SIZE, PATCH_LAYERS, PATCH_LOGITS, fit_batchnorm_statistics, fuse, gradcam_layers,
                            make_model, member_layers, view_averaged_logits, with_training_heads)
from detector.views import CROP_AND_MIRROR, CROP_AND_SHIFTED_MIRROR, as_views, describe


def test_default_model_is_an_imagenet_mobilenet_v2_flat_and_named_for_gradcam():
    model = make_model()
    assert model.input_shape == (None, INPUT_SIZE, INPUT_SIZE, 3)
    assert model.output_shape == (None, 1)
    # Flat: tf-keras-vis cannot reach into nested sub-models.
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    # Grad-CAM explains the last convolution's features, just before pooling.
    target = model.get_layer(GRADCAM_LAYER)
    assert target.input is model.get_layer("out_relu").output and target.output.shape[-1] == 1280
    # Started from ImageNet, not from random weights: the converted stem, not Glorot's.
    scratch = make_model(pretrained=False)
    stem, random_stem = (m.get_layer("Conv1").get_weights()[0] for m in (model, scratch))
    assert not np.allclose(stem, random_stem) and np.allclose(model.get_layer("bn_Conv1").get_weights()[0], 1.0)
    # The mask head reads the first stride-8 stage.
    assert with_training_heads(model).outputs[1].shape[1:3] == (INPUT_SIZE // 8, INPUT_SIZE // 8)


def test_a_patch_network_is_mobilenet_v2_cut_short_scoring_each_patch_and_averaging():
    model = make_model(64, patch_layer="block_2_add")
    whole = make_model(64)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    names = {layer.name for layer in model.layers}
    assert "block_2_add" in names and "block_3_expand" not in names
    # Its layers start from the same ImageNet weights as the whole network's.
    np.testing.assert_array_equal(model.get_layer("block_2_project").get_weights()[0],
                                  whole.get_layer("block_2_project").get_weights()[0])
    # One logit per location of the stride-4 map, and the verdict is their mean.
    x = np.random.default_rng(4).integers(0, 256, (2, 64, 64, 3)).astype("float32")
    patches = keras.Model(model.input, model.get_layer(PATCH_LOGITS).output).predict_on_batch(x)
    assert patches.shape == (2, 16, 16, 1)
    np.testing.assert_allclose(model.predict_on_batch(x)[:, 0], patches.mean(axis=(1, 2, 3)), rtol=1e-4, atol=1e-5)
    # Cut before the stride-8 stage, the mask head reads the patch features.
    assert with_training_heads(model).outputs[1].shape[1:3] == (16, 16)


def test_the_patch_head_scores_the_mask_head_s_features_patch_by_patch_and_averages_them():
    model = make_model(64)
    trainer = with_training_heads(model, patch_hidden=8)
    assert set(trainer.output_names) >= {"fake_logit", "mask_logit", "patch_logit"}
    x = np.random.default_rng(6).integers(0, 256, (2, 64, 64, 3)).astype("float32")
    patches = keras.Model(trainer.input, trainer.get_layer(PATCH_LOGITS).output).predict_on_batch(x)
    assert patches.shape == (2, 8, 8, 1)  # the stride-8 map the mask head reads
    out = trainer.predict_on_batch(x)
    np.testing.assert_allclose(out["patch_logit"][:, 0], patches.mean(axis=(1, 2, 3)), rtol=1e-4, atol=1e-5)
    # The head scores the features normalized: their scale does not change its verdict.
    features = keras.Model(trainer.input, trainer.get_layer("block_5_add").output).predict_on_batch(x)
    head = [trainer.get_layer(name) for name in ("patch_norm", "patch_hidden", PATCH_LOGITS)]
    score = lambda f: np.asarray(head[2](head[1](head[0](f))))  # noqa: E731
    np.testing.assert_allclose(score(features * 4.0), score(features), rtol=1e-3, atol=1e-3)
    # What ships is untouched: the network's own logit, and none of the heads' layers.
    np.testing.assert_allclose(out["fake_logit"], model.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    assert not {"mask_logit", "patch_logit", PATCH_LOGITS} & {layer.name for layer in model.layers}
    # Without a width there is no patch head; a patch-level network needs none.
    assert "patch_logit" not in with_training_heads(model).output_names
    with pytest.raises(ValueError, match="patch-level already"):
        with_training_heads(make_model(64, patch_layer="block_2_add"), patch_hidden=8)


@pytest.mark.parametrize("cut", sorted(PATCH_LAYERS))
def test_each_cut_sees_the_patch_side_it_is_listed_with(cut):
    import tensorflow as tf

    model = make_model(128, patch_layer=cut, pretrained=False)  # wide enough that no field meets an edge
    features = keras.Model(model.input, model.get_layer(GRADCAM_LAYER).output)
    x = tf.Variable(np.random.default_rng(5).uniform(0, 255, (1, 128, 128, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        out = features(x)
        centre = tf.reduce_sum(out[0, out.shape[1] // 2, out.shape[2] // 2])
    seen = np.flatnonzero(np.abs(tape.gradient(centre, x).numpy()[0]).sum(axis=(1, 2)) > 0)
    assert seen.max() - seen.min() + 1 == PATCH_LAYERS[cut]


def test_the_scratch_network_is_flat_and_names_its_last_convolution_for_gradcam():
    model = make_model(backbone="scratch")
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert model.get_layer(GRADCAM_LAYER) is [l for l in model.layers if isinstance(l, keras.layers.Conv2D)][-1]


def test_tiny_model_predicts_logits_for_raw_pixels():
    model = make_model(32, backbone="scratch", widths=(8, 16), blocks=(1, 1), stem_width=8)
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    out = model.predict_on_batch(x)
    assert out.shape == (3, 1) and np.isfinite(out).all()


def test_crop_and_mirror_views_are_the_mean_of_both():
    model = make_model(32, backbone="scratch", widths=(8, 16), blocks=(1, 1), stem_width=8)
    x = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    expected = (model.predict_on_batch(x) + model.predict_on_batch(x[:, :, ::-1].copy()))[:, 0] / 2
    got = view_averaged_logits(model, x, CROP_AND_MIRROR).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # Through the resampling path (a zoomed view beside them), the whole crop and its
    # mirror image are cut exactly, not resampled.
    zoom = (0.5, 0.0, 0.0, False)
    with_zoom = view_averaged_logits(model, x, (*CROP_AND_MIRROR, zoom)).numpy()
    np.testing.assert_allclose(with_zoom, (2 * got + view_averaged_logits(model, x, [zoom]).numpy()) / 3,
                               rtol=1e-4, atol=1e-5)


def test_shifted_view_sees_the_crop_moved_with_its_edge_mirrored():
    model = make_model(32, backbone="scratch", widths=(8, 16), blocks=(1, 1), stem_width=8)
    x = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype("float32")
    padded = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    moved = padded[:, 2 + 2 : 2 + 2 + 32, 2 - 1 : 2 - 1 + 32]  # the window 2 px down, 1 px left
    got = view_averaged_logits(model, x, [(1.0, 2 / 32, -1 / 32, False), (1.0, 2 / 32, -1 / 32, True)]).numpy()
    expected = (model.predict_on_batch(moved) + model.predict_on_batch(moved[:, :, ::-1].copy()))[:, 0] / 2
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_crop_and_mirror_give_a_mirrored_face_the_same_score():
    model = make_model(32, backbone="scratch", widths=(8, 16), blocks=(1, 1), stem_width=8)
    x = np.random.default_rng(3).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    got = view_averaged_logits(model, x, CROP_AND_MIRROR).numpy()
    np.testing.assert_allclose(view_averaged_logits(model, x[:, :, ::-1].copy(), CROP_AND_MIRROR).numpy(), got,
                               rtol=1e-4, atol=1e-5)


def test_views_read_back_from_json_and_bad_views_are_refused():
    assert as_views([[1, 0, 0, 0], [1.0, 0.5, -0.25, True]]) == ((1.0, 0.0, 0.0, False), (1.0, 0.5, -0.25, True))
    with pytest.raises(ValueError, match=r"\[1, 0, 0\]"):
        as_views([[1, 0, 0]])
    with pytest.raises(ValueError, match="at least one"):
        as_views([])
    assert describe(CROP_AND_MIRROR) == "the crop; its mirror image"
    assert "shifted (+0.0156, +0.0156)" in describe(CROP_AND_SHIFTED_MIRROR)


def test_views_reaching_far_past_the_crop_are_refused():
    model = make_model(32, backbone="scratch", widths=(8,), blocks=(1,), stem_width=8)
    with pytest.raises(ValueError, match=r"0\.250"):
        view_averaged_logits(model, np.zeros((1, 32, 32, 3), "float32"), [(1.0, 0.25, 0.0, False)])


def test_fitted_batchnorm_statistics_keep_the_network_and_let_batch_statistics_give_the_same():
    frozen = make_model(32, dropout=0.0)
    model = make_model(32, dropout=0.0, train_batchnorm=True)
    model.set_weights(frozen.get_weights())
    assert len(model.trainable_weights) > len(frozen.trainable_weights)  # gamma and beta of each BatchNorm
    assert model.get_layer("Conv_1_bn").momentum == 0.99 and frozen.get_layer("Conv_1_bn").momentum == 0.999
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32")
    before = np.asarray(model(images, training=False))
    # The folded ImageNet statistics (mean 0, variance 1) are not a batch's: normalizing by
    # the batch's own changes the logit. (A training call moves the statistics: put them back.)
    assert not np.allclose(np.asarray(model(images, training=True)), before, atol=1e-2)
    model.set_weights(frozen.get_weights())
    fit_batchnorm_statistics(model, [images[:4], images[4:]])
    np.testing.assert_allclose(np.asarray(model(images, training=False)), before, atol=1e-4)
    # The first BatchNorm now holds its input's mean per channel.
    conv = keras.Model(model.input, model.get_layer("Conv1").output)(images)
    np.testing.assert_allclose(model.get_layer("bn_Conv1").moving_mean, np.mean(conv, axis=(0, 1, 2)), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(model(images, training=True)), before, atol=1e-3)


def test_fitting_batchnorm_statistics_needs_batchnorms_and_images():
    with pytest.raises(ValueError, match="no BatchNormalization"):
        fit_batchnorm_statistics(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]), [np.zeros((1, 4))])
    with pytest.raises(ValueError, match="empty"):
        fit_batchnorm_statistics(make_model(32), [])


def test_model_round_trips_through_safe_keras_file(tmp_path):
    model = make_model(32, backbone="scratch", widths=(8, 16), blocks=(1, 1), stem_width=8)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    x = np.full((1, 32, 32, 3), 128, "float32")
    np.testing.assert_array_equal(model.predict_on_batch(x), again.predict_on_batch(x))


@pytest.mark.parametrize("kwargs, message", [
    (dict(backbone="scratch", widths=(8, 16), blocks=(1,)), "equally long"),
    (dict(backbone="scratch", input_size=8), "too small"),
    (dict(input_size=16), "too small"),
    (dict(backbone="resnet"), "'resnet'"),
    (dict(patch_layer="block_4_add"), "'block_4_add'"),
    (dict(backbone="scratch", patch_layer="block_5_add"), "'scratch'"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_model(**kwargs)


def _tiny(size: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return make_model(size, backbone="scratch", widths=(16, 32), blocks=(1, 1), stem_width=16, stem_stride=1)


def test_fuse_is_one_flat_network_giving_the_mean_of_its_members_calibrated_logits(tmp_path):
    import tensorflow as tf

    small, large = _tiny(32, 0), _tiny(40, 1)
    fused = fuse([(small, 2.0, 0.5), (large, 0.5, -1.0)])
    assert fused.input_shape == (None, 40, 40, 3) and fused.output_shape == (None, 1)
    assert not any(isinstance(layer, keras.Model) for layer in fused.layers)
    assert gradcam_layers(fused) == ["member0_" + GRADCAM_LAYER, "member1_" + GRADCAM_LAYER]
    # Each member's copy of a layer, not the pair's own mean (the benches read layers so).
    assert member_layers(fused, "fake_logit") == ["member0_fake_logit", "member1_fake_logit"]
    assert member_layers(small, "fake_logit") == ["fake_logit"] and member_layers(fused, "block_99") == []
    x = np.random.default_rng(0).uniform(0, 255, (3, 40, 40, 3)).astype(np.float32)
    # The smaller member sees the crop resized, bilinearly.
    z_small = small(tf.image.resize(x, (32, 32)), training=False).numpy()
    z_large = large(x, training=False).numpy()
    expected = ((z_small / 2.0 + 0.5) + (z_large / 0.5 - 1.0)) / 2
    np.testing.assert_allclose(fused(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)
    # Its weights are copies: training the members afterwards changes nothing in it.
    small.get_layer("fake_logit").set_weights([w * 0 for w in small.get_layer("fake_logit").get_weights()])
    np.testing.assert_allclose(fused(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)
    fused.save(tmp_path / "pair.keras")
    again = keras.saving.load_model(tmp_path / "pair.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(again(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_fuse_refuses_one_member_and_a_network_without_one_logit():
    small = _tiny(32, 0)
    with pytest.raises(ValueError, match="two members or more, got 1"):
        fuse([(small, 1.0, 0.0)])
    heads = with_training_heads(small)
    with pytest.raises(ValueError, match="not one image to one logit"):
        fuse([(small, 1.0, 0.0), (heads, 1.0, 0.0)])
