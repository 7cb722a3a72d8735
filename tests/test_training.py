import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest

from detector.card import ModelCard, sha256_of
from detector.augment import AugmentConfig, augment, self_blend
from detector.data import Arrays, load_set, manipulation_masks
from detector.sampling import real_fake_pairs, training_dataset
from detector.training import TrainConfig, combined_auc


def test_quick_training_writes_model_and_card(tiny_weights):
    card = ModelCard.load(tiny_weights)
    assert card.sha256 == sha256_of(tiny_weights / "model.keras")
    assert 0 < card.threshold < 1 and card.temperature > 0
    lo, hi = card.uncertain_band
    assert lo <= card.threshold <= hi
    assert set(card.metrics) == {"val", "test"}
    assert card.metrics["test"]["overall"]["n"] == 16
    assert card.training["epochs_run"] >= 1 and card.architecture["parameters"] > 0
    markdown = (tiny_weights / "MODEL_CARD.md").read_text()
    assert card.sha256 in markdown and "| overall |" in markdown
    json.loads((tiny_weights / "model_card.json").read_text())


def test_calibrate_command_refits_the_card_and_keeps_the_weights(tiny_weights, tiny_set, tmp_path, monkeypatch, capsys):

    from detector.__main__ import main

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    before = ModelCard.load(folder)
    monkeypatch.setenv("DETECTOR_CACHE", str(tmp_path / "cache"))
    assert main(["--weights", str(folder), "calibrate", "--data", str(tiny_set.parent)]) == 0
    assert "| overall |" in capsys.readouterr().out
    after = ModelCard.load(folder)
    assert after.sha256 == before.sha256 == sha256_of(folder / "model.keras")
    # The same model, data and code: the same fit as training's own last step.
    assert (after.temperature, after.bias, after.threshold) == (before.temperature, before.bias, before.threshold)
    assert after.metrics["test"]["overall"]["roc_auc"] == before.metrics["test"]["overall"]["roc_auc"]
    assert after.training["calibrated_by"] == "python -m detector calibrate"


def test_calibration_alone_fits_as_the_full_step_and_leaves_test_unscored(tiny_weights, tiny_set, tmp_path):
    import keras

    from detector import training

    card = ModelCard.load(tiny_weights)
    model = keras.saving.load_model(tiny_weights / "model.keras", safe_mode=True)
    full = training.refit_calibration(model, card, tiny_set.parent, tmp_path / "cache")
    val_only = training.refit_calibration(model, card, tiny_set.parent, tmp_path / "cache", splits=("val",))
    fit = ("temperature", "bias", "threshold", "uncertain_band", "scoring_views")
    assert {k: val_only[k] for k in fit} == {k: full[k] for k in fit}
    assert set(val_only["metrics"]) == {"val"} and val_only["metrics"]["val"] == full["metrics"]["val"]
    with pytest.raises(ValueError, match="'train'"):
        training.refit_calibration(model, card, tiny_set.parent, tmp_path / "cache", splits=("train",))


def test_card_records_its_scoring_views_and_the_detector_scores_through_them(tiny_weights, tiny_set, tmp_path):
    from detector import training
    from detector.pipeline import Detector
    from detector.views import CROP_AND_MIRROR, SCORING_VIEWS

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    trained = ModelCard.load(folder)
    assert trained.scoring_views == SCORING_VIEWS != CROP_AND_MIRROR
    assert [tuple(v) for v in trained.training["validation_views"]] == list(SCORING_VIEWS)

    # Recalibrated through other views: the card names them, and keeps those that chose the
    # checkpoint; the detector then scores through the card's views, not the shipped default.
    training.recalibrate(folder, tiny_set.parent, tmp_path / "cache", views=CROP_AND_MIRROR)
    card = ModelCard.load(folder)
    assert card.scoring_views == CROP_AND_MIRROR
    assert [tuple(v) for v in card.training["validation_views"]] == list(SCORING_VIEWS)
    assert (card.temperature, card.bias) != (trained.temperature, trained.bias)  # refitted on the new views
    detector = Detector.load(folder)
    crops = np.random.default_rng(0).integers(0, 256, (3, card.input_size, card.input_size, 3)).astype(np.float32)
    np.testing.assert_allclose(detector.logits(crops), detector.lite.view_averaged_logits(crops, CROP_AND_MIRROR),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(detector.logits(crops), detector.lite.view_averaged_logits(crops, SCORING_VIEWS),
                           rtol=1e-5, atol=1e-5)


def test_cards_without_scoring_views_were_calibrated_through_the_crop_and_its_mirror(tiny_weights, tmp_path):
    from detector.views import CROP_AND_MIRROR

    shutil.copytree(tiny_weights, tmp_path / "w")
    raw = json.loads((tmp_path / "w" / "model_card.json").read_text())
    del raw["scoring_views"]
    (tmp_path / "w" / "model_card.json").write_text(json.dumps(raw))
    assert ModelCard.load(tmp_path / "w").scoring_views == CROP_AND_MIRROR


def test_train_command_sets_the_face_margin_of_crops_and_card(tiny_set, tmp_path, monkeypatch):
    import train as train_script
    from detector import training

    margins = []
    real_load_set = training.load_set
    monkeypatch.setattr(training, "load_set", lambda *a, **k: margins.append(k.get("margin")) or real_load_set(*a, **k))
    out = tmp_path / "weights"
    assert train_script.main(["--quick", "--sets", str(tiny_set), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                              "--face-margin", "1.6"]) == 0
    card = ModelCard.load(out)
    assert margins == [1.6] and card.face_margin == 1.6 and card.training["config"]["face_margin"] == 1.6

    # Recalibrating frames the crops as the card says, whatever the current default.
    margins.clear()
    training.recalibrate(out, tiny_set.parent, tmp_path / "cache")
    assert margins == [1.6]


def test_train_command_passes_the_network_shape_and_losses_to_the_run(monkeypatch, tmp_path):
    import train as train_script
    from detector import training

    configs = []

    def record(cfg, resume=False):
        configs.append((cfg, resume))
        return ModelCard(input_size=cfg.input_size, face_margin=cfg.face_margin)

    monkeypatch.setattr(training, "train", record)
    shape_and_losses = lambda cfg: (cfg.backbone, cfg.pretrained, cfg.input_size, cfg.stem_stride,  # noqa: E731
                                    cfg.pair_loss_weight, cfg.learning_rate, cfg.match_resolution, cfg.patch_layer)
    assert train_script.main(["--backbone", "scratch", "--no-pretrained", "--input-size", "224", "--stem-stride", "7",
                              "--pair-loss", "0.5", "--learning-rate", "0.002", "--no-match-resolution",
                              "--out", str(tmp_path)]) == 0
    assert shape_and_losses(configs[0][0]) == ("scratch", False, 224, 7, 0.5, 0.002, False, None) and not configs[0][1]
    assert train_script.main(["--patch-layer", "block_5_add", "--out", str(tmp_path)]) == 0
    assert configs[-1][0].patch_layer == "block_5_add" and configs[-1][0].backbone == "mobilenet_v2"
    assert train_script.main(["--patch-loss", "0.5", "--out", str(tmp_path)]) == 0
    assert configs[-1][0].patch_loss_weight == 0.5 and configs[-1][0].patch_layer is None
    assert configs[-1][0].augment == AugmentConfig() and AugmentConfig().smooth_prob == 0.25  # the recipe smooths
    assert train_script.main(["--no-train-batchnorm", "--out", str(tmp_path)]) == 0
    assert not configs[-1][0].train_batchnorm and TrainConfig().train_batchnorm
    assert train_script.main(["--out", str(tmp_path), "--resume"]) == 0
    assert shape_and_losses(configs[4][0]) == shape_and_losses(TrainConfig()) and configs[4][1]
    assert (configs[4][0].second_size, configs[4][0].second_epochs) == (TrainConfig().second_size, TrainConfig().second_epochs)
    assert train_script.main(["--second-size", "0", "--out", str(tmp_path)]) == 0
    assert configs[-1][0].second_size is None
    assert train_script.main(["--second-size", "224", "--second-epochs", "3", "--out", str(tmp_path)]) == 0
    assert (configs[-1][0].second_size, configs[-1][0].second_epochs) == (224, 3)
    assert train_script.main(["--smooth-prob", "0", "--out", str(tmp_path)]) == 0
    assert configs[-1][0].augment == AugmentConfig(smooth_prob=0.0)


def test_paired_ranking_loss_asks_each_fake_to_outscore_its_real():
    from detector.training import paired_ranking_loss

    # Pairs: [real, fake] (fake ahead by 2), [fake, real] (fake behind by 1), two reals.
    labels = np.array([[0], [1], [1], [0], [0], [0]], np.float32)
    logits = np.array([[0], [2], [-1], [0], [3], [-3]], np.float32)
    ahead, behind = np.log1p(np.exp(-2.0)) / 2, np.log1p(np.exp(1.0)) / 2
    np.testing.assert_allclose(paired_ranking_loss(labels, logits), [ahead, ahead, behind, behind, 0, 0], rtol=1e-5)


def test_the_logit_loss_adds_the_weighted_ranking_loss_to_cross_entropy():
    import keras

    from detector.training import _LogitLoss, paired_ranking_loss

    labels = np.array([[0], [1], [1], [1]], np.float32)
    logits = np.array([[0.5], [-0.5], [2.0], [1.0]], np.float32)
    bce = float(keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)(labels, logits))
    ranking = float(np.mean(paired_ranking_loss(labels, logits)))
    assert float(_LogitLoss(0.1, 0.0)(labels, logits)) == pytest.approx(bce, rel=1e-5)
    assert float(_LogitLoss(0.1, 2.0)(labels, logits)) == pytest.approx(bce + 2 * ranking, rel=1e-5)


def test_the_trainer_adds_the_ranking_loss_of_its_paired_batches(tmp_path):
    from detector.training import build_trainer, paired_ranking_loss

    rng = np.random.default_rng(1)
    reals = rng.integers(0, 256, (8, 32, 32, 3), np.uint8)
    fakes = np.clip(reals.astype(int) + 40, 0, 255).astype(np.uint8)
    pairs = _arrays("pairs", np.concatenate([reals, fakes]), [0] * 8 + [1] * 8, [f"g{i}" for i in range(8)] * 2)
    losses = {}
    for weight in (0.0, 1.0):
        cfg = TrainConfig.quick(str(tmp_path), batch_size=16, self_blend_share=0.0, pair_loss_weight=weight)
        model, trainer = build_trainer(cfg, steps_per_epoch=1)
        if weight:  # the same network and mask head as the run without the ranking loss
            trainer.set_weights(weights)
        weights = trainer.get_weights()
        x, y, w = next(iter(training_dataset([pairs], cfg, mask_size=trainer.get_layer("mask_logit").output.shape[1])))
        losses[weight] = float(trainer.test_on_batch(x, y, w, return_dict=True)["loss"])
    ranking = float(np.mean(paired_ranking_loss(y["fake_logit"], model(x, training=False))))
    assert ranking > 0
    assert losses[1.0] - losses[0.0] == pytest.approx(ranking, rel=1e-3)


def test_combined_validation_auc_weights_sets_by_images_or_counts_each_once():
    aucs, sizes = {"large": 0.9, "small": 0.6}, {"large": 900, "small": 100}
    assert combined_auc(aucs, sizes, "images") == pytest.approx(0.87)
    assert combined_auc(aucs, sizes, "sources") == pytest.approx(0.75)
    assert combined_auc({}, {}, "images") == 0.0
    with pytest.raises(ValueError, match="'pooled'"):
        combined_auc(aucs, sizes, "pooled")


def test_train_refuses_an_unknown_validation_weighting_before_loading_data(tmp_path):
    from detector.training import train

    with pytest.raises(ValueError, match="'mean'"):
        train(TrainConfig.quick(str(tmp_path / "w"), sets=[str(tmp_path / "no_such_set")], val_weighting="mean"))


def test_training_batches_are_balanced_and_reproducible(tiny_set, tmp_path):
    arrays = load_set(tiny_set, 32, cache_dir=tmp_path).split("train")
    cfg = TrainConfig.quick(str(tmp_path), batch_size=64)
    first = next(iter(training_dataset([arrays], cfg, mask_size=8)))
    again = next(iter(training_dataset([arrays], cfg, mask_size=8)))
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    labels = first[1]["fake_logit"].numpy().ravel()
    assert 0.3 < labels.mean() < 0.7  # balanced sampling, not label-sorted rows
    assert first[0].shape == (64, 32, 32, 3)
    assert first[1]["mask_logit"].shape == (64, 8, 8, 1)
    other = next(iter(training_dataset([arrays], TrainConfig.quick(str(tmp_path), batch_size=64, seed=7), mask_size=8)))
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


def _arrays(name: str, images: np.ndarray, labels: list[int], groups: list[str]) -> Arrays:
    n = len(labels)
    return Arrays(name, images, np.array(labels), np.array(["train"] * n), np.array(groups),
                  np.array([f"{i}.png" for i in range(n)]), np.ones(n, bool), np.full(n, images.shape[1]))


def test_real_fake_pairs_match_each_fake_to_the_one_real_of_its_group():
    images = np.zeros((7, 8, 8, 3), np.uint8)
    arrays = _arrays("s", images, [0, 1, 1, 0, 1, 0, 0], ["a", "a", "b", "c", "c", "d", "d"])
    # "b" has no real, "d" has two reals and no fake: only a and c pair up, each fake once.
    assert real_fake_pairs(arrays).tolist() == [[0, 1], [3, 4]]
    arrays.groups[6] = "c"  # two reals for one fake: which one it was made from is unknown
    assert real_fake_pairs(arrays).tolist() == [[0, 1]]


def test_paired_batches_keep_each_fake_beside_its_real_augmented_alike(tmp_path):
    rng = np.random.default_rng(0)
    reals = rng.integers(0, 256, (12, 32, 32, 3), np.uint8)
    # Each fake is its real, pixel for pixel: augmented alike, a pair must stay identical.
    paired_set = _arrays("pairs", np.concatenate([reals, reals]), [0] * 12 + [1] * 12, [f"g{i}" for i in range(12)] * 2)
    cfg = TrainConfig.quick(str(tmp_path), batch_size=32, paired=True, self_blend_share=0.0)
    images, targets, _ = next(iter(training_dataset([paired_set], cfg, mask_size=8)))
    images, labels = images.numpy(), targets["fake_logit"].numpy().reshape(-1, 2)
    assert (labels == [0, 1]).all()
    np.testing.assert_array_equal(images[0::2], images[1::2])
    assert not np.array_equal(images[0], images[2])

    # With self-blends and a set without pairs, every element is still two neighbours:
    # a real and the fake made from it, or two images of one label.
    unpaired_set = _arrays("unpaired", reals, [0] * 6 + [1] * 6, [f"u{i}" for i in range(12)])
    cfg = TrainConfig.quick(str(tmp_path), batch_size=64, paired=True, min_set_share=0.4)
    batches = training_dataset([paired_set, unpaired_set], cfg, mask_size=8).take(8)
    labels = np.concatenate([t["fake_logit"].numpy().reshape(-1, 2) for _, t, _ in batches])
    assert {tuple(row) for row in labels.tolist()} == {(0, 1), (0, 0), (1, 1)}
    assert 0.4 < labels.mean() < 0.6


def test_masks_mark_what_a_fake_changed(tiny_set, tmp_path):
    # Training fakes are cut where their reals are (data.paired_regions): aligned, so known.
    arrays = load_set(tiny_set, 32, cache_dir=tmp_path).split("train")
    masks, known = manipulation_masks(arrays, size=8)
    assert known[arrays.labels == 0].all() and not masks[arrays.labels == 0].any()
    fakes = arrays.labels == 1
    assert known[fakes].all()
    # The swapped faces differ from their frames in the face, not at the crop's border.
    centre, border = masks[fakes][:, 2:6, 2:6].mean(), masks[fakes][:, 0].mean()
    assert centre > 2 * border


def test_self_blend_changes_only_inside_its_mask():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), np.uint8)
    blended, mask = self_blend(tf.constant(image), tf.constant([1, 2], tf.int64))
    blended, mask = blended.numpy().astype(int), mask.numpy()[..., 0]
    changed = np.abs(blended - image).mean(axis=2)
    assert mask.max() > 0.3
    assert changed[mask < 0.002].max() <= 1  # outside the mask: rounding only
    assert changed[mask > 0.3].mean() > 5


def test_one_training_step_with_batch_unlike_mask_side(tiny_set, tmp_path):
    # A per-image mask weight broadcast against per-pixel losses only fails when the batch
    # size differs from the mask side: use one that does (the shipped run has 64 vs 16).
    from detector.training import train

    card = train(TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path),
                                   batch_size=6, epochs=1, steps_per_epoch=1))
    assert card.training["epochs_run"] == 1


def test_one_training_step_of_a_patch_level_network_names_its_cut_in_the_card(tiny_set, tmp_path):
    from detector.training import train

    card = train(TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path),
                                   backbone="mobilenet_v2", patch_layer="block_5_add", input_size=32, epochs=1,
                                   steps_per_epoch=1))
    assert "per 59px patch (cut at block_5_add)" in card.architecture["summary"]
    assert card.training["config"]["patch_layer"] == "block_5_add"


def test_one_training_step_with_a_patch_head_trains_it_on_the_label_and_ships_without_it(tiny_set, tmp_path):
    from detector.training import train

    card = train(TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path),
                                   patch_loss_weight=0.5, epochs=1, steps_per_epoch=1))
    assert card.training["history"]["patch_logit_loss"][0] > 0
    assert card.training["config"]["patch_loss_weight"] == 0.5
    model = keras.saving.load_model(tmp_path / "w" / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 1) and not any("patch" in layer.name for layer in model.layers)


def test_predict_logits_traces_once_per_model_and_views_and_lets_the_model_go():
    import gc
    import weakref

    from detector import training
    from detector.model import make_model, view_averaged_logits
    from detector.views import CROP_AND_MIRROR

    model = make_model(32, backbone="scratch", widths=(8,), blocks=(1,), stem_width=8, stem_stride=1)
    crops = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    shifted = ((1.0, 1 / 32, 0.0, False), (1.0, -1 / 32, 0.0, True))
    first = training.predict_logits(model, crops, CROP_AND_MIRROR, batch_size=2)  # one crop per call
    again = training.predict_logits(model, crops, CROP_AND_MIRROR)
    np.testing.assert_allclose(first, again, rtol=1e-5, atol=1e-5)
    direct = view_averaged_logits(model, crops.astype(np.float32), CROP_AND_MIRROR).numpy()
    np.testing.assert_allclose(first, direct, rtol=1e-5, atol=1e-5)
    other = training.predict_logits(model, crops, shifted)
    np.testing.assert_allclose(other, view_averaged_logits(model, crops.astype(np.float32), shifted).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert [f.experimental_get_tracing_count() for f in training._scorers[model].values()] == [2, 1]  # crop and mirror: batches of 1 and 6 crops; shifted: one batch
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None  # the cache did not keep the model (and its weights) in memory


def test_augment_is_seeded_and_zero_strengths_turn_every_change_off():
    import tensorflow as tf

    image = tf.constant(np.random.default_rng(0).integers(0, 256, (32, 32, 3)), tf.uint8)
    mask = tf.zeros((32, 32, 1))
    seed = tf.constant([3, 4], tf.int64)
    x, m = augment(image, mask, seed, mask_size=8)
    np.testing.assert_array_equal(x, augment(image, mask, seed, mask_size=8)[0])
    assert x.shape == (32, 32, 3) and m.shape == (8, 8, 1)
    assert not np.array_equal(x, tf.cast(image, tf.float32))

    off = AugmentConfig(zoom=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0,
                        blur_prob=0.0, rescale_prob=0.0, jpeg_prob=0.0, smooth_prob=0.0)
    for s in range(4):
        x, _ = augment(image, mask, tf.constant([s, 1], tf.int64), mask_size=8, cfg=off)
        original = image.numpy().astype(np.float32)
        assert np.array_equal(x, original) or np.array_equal(x, original[:, ::-1])  # a flip at most


def test_smoothing_flattens_skin_and_keeps_outlines_as_a_blur_does_not():
    import tensorflow as tf

    from detector.augment import _gaussian_blur, bilateral

    # Two flat areas (skin, background) with sensor noise, meeting at an outline.
    flat = np.full((40, 40, 3), 70.0, np.float32)
    flat[:, 20:] = 190.0
    noisy = tf.constant(flat + np.random.default_rng(1).normal(0.0, 8.0, flat.shape).astype(np.float32))
    smoothed = bilateral(noisy, tf.constant(2.0), tf.constant(30.0)).numpy()
    blurred = _gaussian_blur(noisy, tf.constant(2.0)).numpy()
    assert smoothed[:, 2:16].std() < noisy.numpy()[:, 2:16].std() / 3  # the noise is gone
    step = lambda image: image[:, 20].mean() - image[:, 19].mean()  # noqa: E731
    assert step(smoothed) > 0.9 * 120 and step(blurred) < 0.5 * 120  # the outline stays sharp; blurred, it does not


def test_smoothing_draws_its_own_chances_so_a_run_without_it_is_augmented_as_before():
    import tensorflow as tf

    image = tf.constant(np.random.default_rng(0).integers(0, 256, (32, 32, 3)), tf.uint8)
    mask = tf.zeros((32, 32, 1))
    smoothed, as_before = 0, 0
    for s in range(12):
        seed = tf.constant([s, 7], tf.int64)
        default = augment(image, mask, seed, mask_size=8, cfg=AugmentConfig(smooth_prob=0.0))[0].numpy()
        rare = augment(image, mask, seed, mask_size=8, cfg=AugmentConfig(smooth_prob=1e-9))[0].numpy()
        always = augment(image, mask, seed, mask_size=8, cfg=AugmentConfig(smooth_prob=1.0))[0].numpy()
        np.testing.assert_array_equal(rare, default)  # the other changes drew the same
        as_before += np.array_equal(always, default)
        smoothed += always.std() < default.std()  # noise-like pixels: smoothing flattens them
    assert as_before == 0 and smoothed == 12


def test_one_training_step_with_trained_batchnorms_starts_them_from_the_data_s_statistics(tiny_set, tmp_path):
    from detector.training import train

    card = train(TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path),
                                   backbone="mobilenet_v2", train_batchnorm=True, input_size=32, epochs=1,
                                   steps_per_epoch=1))
    assert "fine-tuned with its BatchNorms" in card.architecture["summary"]
    model = keras.saving.load_model(tmp_path / "w" / "model.keras", safe_mode=True)
    # Not the folded ImageNet statistics (mean 0, variance 1 - epsilon) any more.
    norm = model.get_layer("bn_Conv1")
    assert norm.trainable and not np.allclose(norm.moving_mean, 0.0) and not np.allclose(norm.moving_variance, 0.999)


def test_an_interrupted_run_resumes_from_its_last_epoch_with_its_optimizer(tiny_set, tmp_path):
    from detector.training import LAST_WEIGHTS, build_trainer, read_state, train

    cfg = TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path), epochs=2, patience=5)
    first = train(cfg)
    state = read_state(tmp_path / "w" / "run")
    assert state["epochs_done"] == 2 and len(state["history"]["val_auc"]) == 2 and state["minutes"] > 0
    # The checkpoint holds the optimizer's state: its step counter comes back.
    _, trainer = build_trainer(cfg, steps_per_epoch=3)
    trainer.optimizer.build(trainer.trainable_variables)
    trainer.load_weights(tmp_path / "w" / "run" / LAST_WEIGHTS)
    assert int(trainer.optimizer.iterations.numpy()) == 2 * 3
    # Resumed with a longer schedule: one more epoch, the history continued, not restarted.
    more = train(dataclasses.replace(cfg, epochs=3), resume=True)
    assert more.training["resumed_after_epoch"] == 2 and more.training["epochs_run"] == 3
    assert more.training["history"]["val_auc"][:2] == first.training["history"]["val_auc"]
    # Nothing to resume elsewhere: said so.
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(dataclasses.replace(cfg, out_dir=str(tmp_path / "empty")), resume=True)


def test_a_fresh_run_never_reuses_an_older_run_s_checkpoints(tiny_set, tmp_path):
    from detector.training import read_state, train

    cfg = TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path), epochs=2, patience=5)
    train(cfg)
    card = train(dataclasses.replace(cfg, epochs=1))
    assert card.training["epochs_run"] == 1 and read_state(tmp_path / "w" / "run")["epochs_done"] == 1


def test_a_two_network_recipe_trains_each_member_then_ships_them_fused(tiny_set, tmp_path, monkeypatch):
    from detector import training
    from detector.model import gradcam_layers
    from detector.pipeline import Detector
    from detector.training import fuse_members, member_configs, train

    # Tiny networks on a tiny set: whether the pair beats a member on validation is chance here.
    monkeypatch.setattr(training, "fused_validation_auc", lambda *_: 1.0)
    cfg = TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path), second_size=40,
                            second_epochs=1)
    card = train(cfg)
    small, large = member_configs(cfg)
    assert (small.input_size, small.epochs, large.input_size, large.epochs) == (32, 2, 40, 1)
    members = [ModelCard.load(m.out_dir) for m in (small, large)]
    assert [m.input_size for m in members] == [32, 40] and card.input_size == 40
    assert [m["input_size"] for m in card.training["members"]] == [32, 40]
    assert card.training["members"][1]["epochs_run"] == 1
    assert card.training["minutes"] >= round(sum(m.training["minutes"] for m in members), 1)
    assert "two networks" in card.architecture["summary"]
    # The shipped folder is a detector like any other, explained through both members.
    detector = Detector.load(tmp_path / "w")
    assert gradcam_layers(detector.model) == ["member0_gradcam_target", "member1_gradcam_target"]
    crops = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3)).astype(np.uint8)
    assert detector.probabilities(crops).shape == (2,)
    assert detector.explainer().heatmaps(crops.astype(np.float32), detector.logits(crops)).shape == (2, 40, 40)
    # Resumed after both members finished: neither is trained again, the fusion is redone.
    before = [sha256_of(tmp_path / "w" / "run" / "members" / side / "model.keras") for side in ("32", "40")]
    again = train(cfg, resume=True)
    assert [sha256_of(tmp_path / "w" / "run" / "members" / side / "model.keras") for side in ("32", "40")] == before
    assert again.training["members"] == card.training["members"]
    # The fusion alone gives the same network again.
    np.testing.assert_allclose(fuse_members(cfg).temperature, again.temperature)
    assert again.training["fusion"] == {"fused_val_auc": 1.0, "shipped": "both, fused"}


def test_a_member_better_than_the_pair_on_validation_ships_alone(tiny_set, tmp_path, monkeypatch):
    from detector import training
    from detector.model import GRADCAM_LAYER, gradcam_layers
    from detector.pipeline import Detector

    monkeypatch.setattr(training, "fused_validation_auc", lambda *_: 0.0)  # a pair worse than either member
    cfg = TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path), second_size=40,
                            second_epochs=1)
    card = training.train(cfg)
    aucs = [m["best_val_auc"] for m in card.training["members"]]
    side = card.training["members"][int(np.argmax(aucs))]["input_size"]
    assert card.training["fusion"] == {"fused_val_auc": 0.0, "shipped": f"the {side} px network alone"}
    assert card.input_size == side and "two networks" not in card.architecture["summary"]
    assert card.training["config"]["second_size"] == 40  # the recipe is still the pair's: a resume repeats it
    assert f"- Shipped: the {side} px network alone (the pair's validation AUC 0.0000" in card.to_markdown()
    detector = Detector.load(tmp_path / "w")
    assert gradcam_layers(detector.model) == [GRADCAM_LAYER]
    crops = np.random.default_rng(0).integers(0, 256, (2, side, side, 3)).astype(np.uint8)
    assert detector.probabilities(crops).shape == (2,)


@pytest.mark.parametrize("fused, members, alone", [
    (0.95, [0.947, 0.946], None),  # the pair is better: it ships
    (0.91, [0.947, 0.870], 0),  # a second network cut short by the time budget drags the pair down
    (0.90, [0.85, 0.93], 1),
    (0.947, [0.947, 0.90], None),  # a tie: the pair is the recipe
    (0.90, [None, float("nan")], None),  # no member figure to weigh it against
])
def test_which_member_ships_alone(fused, members, alone):
    from detector.training import member_to_ship_alone

    assert member_to_ship_alone(fused, members) == alone


def test_a_two_network_run_resumes_the_member_it_was_training(tiny_set, tmp_path):
    from detector.training import member_configs, read_state, train

    cfg = TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path), second_size=40,
                            second_epochs=2)
    small, large = member_configs(cfg)
    train(small)
    train(dataclasses.replace(large, epochs=1))  # the second member, cut short after one epoch
    (tmp_path / "w" / "run" / "members" / "40" / "model_card.json").unlink()  # as if stopped after that epoch
    card = train(cfg, resume=True)
    assert card.training["members"][1]["resumed_after_epoch"] == 1 and card.training["members"][1]["epochs_run"] == 2
    assert card.training["members"][0]["resumed_after_epoch"] is None
    assert read_state(tmp_path / "w" / "run" / "members" / "32" / "run")["epochs_done"] == 2
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(dataclasses.replace(cfg, out_dir=str(tmp_path / "empty")), resume=True)


def test_a_card_written_before_two_networks_existed_counts_as_one_network(tiny_weights, tmp_path):
    from detector.training import recipe_differences, resumable

    card = ModelCard.load(tiny_weights)
    config = {k: v for k, v in card.training["config"].items() if k not in ("second_size", "second_epochs")}
    old = dataclasses.replace(card, training={**card.training, "config": config})
    cfg = TrainConfig.quick(str(tmp_path / "w"), sets=card.training["config"]["sets"])
    assert "second_size" not in recipe_differences(old, cfg)
    assert "second_size" in recipe_differences(old, dataclasses.replace(cfg, second_size=40))
    # Nor had it smoothed a crop: a card from before the setting reads as a run without it.
    augment = {k: v for k, v in card.training["config"]["augment"].items() if k != "smooth_prob"}
    old = dataclasses.replace(old, training={**old.training, "config": {**config, "augment": augment}})
    assert recipe_differences(old, dataclasses.replace(cfg, augment=AugmentConfig(smooth_prob=0.0))) == []
    smoothing = dataclasses.replace(cfg, augment=AugmentConfig(smooth_prob=0.25))
    assert recipe_differences(old, smoothing) == ["augment.smooth_prob"]
    assert not resumable(cfg) and not resumable(dataclasses.replace(cfg, second_size=40))


def test_the_second_network_gets_the_time_budget_the_first_left(tiny_set, tmp_path, monkeypatch):
    from detector import training

    budgets = []
    real = training._train_network
    monkeypatch.setattr(training, "_train_network", lambda cfg, resume=False: budgets.append(cfg.max_minutes) or real(cfg, resume))
    cfg = TrainConfig.quick(str(tmp_path / "w"), sets=[str(tiny_set)], cache_dir=str(tmp_path), second_size=40,
                            second_epochs=1, max_minutes=30.0)
    card = training.train(cfg)
    first = card.training["members"][0]["minutes"]
    assert budgets[0] == 30.0 and budgets[1] == pytest.approx(30.0 - first)
    # The budget is not the recipe: both members count as finished when resumed.
    training.train(cfg, resume=True)
    assert len(budgets) == 2


def test_two_networks_are_refused_from_shards_or_across_hosts_before_training(tmp_path):
    from detector.training import train

    for settings in ({"shards": str(tmp_path / "shards")}, {"strategy": "multiworker"}):
        with pytest.raises(ValueError, match="--second-size 0"):
            train(dataclasses.replace(TrainConfig(out_dir=str(tmp_path / "w")), **settings))
    assert not (tmp_path / "w").exists()
