"""Leave one source out: each family trained without, tested on, and written into the card."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from detector.card import UNSEEN_SECTION, ModelCard, carry_unseen, readme_metrics
from detector.loso import leave_one_out_report
from detector.training import TrainConfig


@pytest.fixture(scope="module")
def two_sets(tiny_set, tmp_path_factory):
    root = tmp_path_factory.mktemp("loso")
    for name in ("alpha", "beta"):
        shutil.copytree(tiny_set, root / name)
    return [str(root / "alpha"), str(root / "beta")]


def test_each_family_is_trained_without_and_tested_on(two_sets, tiny_weights, tmp_path, monkeypatch):
    from detector import loso

    trained_on = []
    real_train = loso.train
    monkeypatch.setattr(loso, "train", lambda cfg, resume=False: trained_on.append(cfg.sets) or real_train(cfg, resume))
    card_dir = tmp_path / "card"
    shutil.copytree(tiny_weights, card_dir)
    cfg = TrainConfig.quick(str(tmp_path / "unused"), sets=two_sets, cache_dir=str(tmp_path / "cache"), epochs=1)
    catalogue = {"Alpha fakes": ("alpha",), "Beta fakes": ("beta",)}
    report = leave_one_out_report(cfg, tmp_path / "runs", card_dir, catalogue=catalogue)
    assert [[s.split("/")[-1] for s in sets] for sets in trained_on] == [["beta"], ["alpha"]]
    row = report["Alpha fakes"]
    assert row["held_out"] == "alpha" and row["epochs"] == 1 and 0 <= row["alpha"]["roc_auc"] <= 1
    assert row["alpha"]["n"] == 16
    assert ModelCard.load(card_dir).extra[UNSEEN_SECTION] == report
    assert row["recipe_differs"] == []
    # A finished run is reused, not trained again.
    again = leave_one_out_report(cfg, tmp_path / "runs", catalogue=catalogue, families=["Beta fakes"])
    assert len(trained_on) == 2 and again["Beta fakes"] == report["Beta fakes"]

    # After the recipe changed, a finished run is kept only when asked, and then says how it differs.
    changed = dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, jpeg_prob=0.0))
    kept = leave_one_out_report(changed, tmp_path / "runs", card_dir, catalogue=catalogue, families=["Beta fakes"],
                                keep_finished=True)
    assert len(trained_on) == 2 and kept["Beta fakes"]["recipe_differs"] == ["augment.jpeg_prob"]
    card = ModelCard.load(card_dir)
    assert card.unseen_recipe_changes() == ["augment.jpeg_prob"]
    assert "the same recipe (Beta fakes trained before its augment.jpeg_prob changed)" in card.unseen_summary()
    assert "1 epochs; Beta fakes trained before its augment.jpeg_prob changed" in readme_metrics(card)
    # A run kept from before the crop size changed is scored on crops of its own size.
    resized = dataclasses.replace(cfg, input_size=cfg.input_size + 16)
    kept = leave_one_out_report(resized, tmp_path / "runs", catalogue=catalogue, families=["Beta fakes"],
                                keep_finished=True)
    assert kept["Beta fakes"]["recipe_differs"] == ["input_size"] and kept["Beta fakes"]["beta"] == report["Beta fakes"]["beta"]
    leave_one_out_report(changed, tmp_path / "runs", catalogue=catalogue, families=["Beta fakes"])
    assert len(trained_on) == 3  # not asked to keep it: trained again with the new recipe


def test_an_unknown_family_or_one_not_in_the_run_is_named(two_sets, tmp_path):
    cfg = TrainConfig.quick(str(tmp_path), sets=two_sets)
    with pytest.raises(ValueError, match="'Gamma'"):
        leave_one_out_report(cfg, tmp_path, families=["Gamma"], catalogue={"Alpha": ("alpha",)})
    with pytest.raises(ValueError, match="none of which"):
        leave_one_out_report(cfg, tmp_path, catalogue={"Delta": ("delta",)})


def test_the_card_says_which_runs_predate_the_second_network(tiny_weights):
    card = ModelCard.load(tiny_weights)
    row = {"roc_auc": 0.6, "recall_fake": 0.3, "recall_real": 0.9, "n": 10}
    card.extra[UNSEEN_SECTION] = {
        "Alpha fakes": {"held_out": "alpha", "epochs": "3 + 3", "recipe_differs": [], "alpha": row},
        "Beta fakes": {"held_out": "beta", "epochs": 3, "recipe_differs": ["second_size"], "beta": row},
    }
    assert "the same recipe (Beta fakes trained before the second network was added)" in card.unseen_summary()
    assert "(`python train.py --leave-one-out`, 3 epochs, 3 + 3 epochs for two networks; Beta fakes trained before the " \
           "second network was added)" in readme_metrics(card)
    assert "| Alpha fakes | alpha | 0.600 |" in card.to_markdown() and "| 3 + 3 |" in card.to_markdown()
    # Every run with two networks: no run predates them, and the schedule is theirs.
    card.extra[UNSEEN_SECTION]["Beta fakes"].update(epochs="3 + 3", recipe_differs=[])
    assert "the same recipe scored" in card.unseen_summary()
    assert "(`python train.py --leave-one-out`, 3 + 3 epochs for two networks), tested" in readme_metrics(card)


def test_new_weights_carry_the_runs_of_the_card_they_replace_marked_with_the_recipe_change(tiny_weights, tmp_path):
    from detector.__main__ import main

    row = {"roc_auc": 0.6, "recall_fake": 0.3, "recall_real": 0.9, "n": 10}
    earlier = ModelCard.load(tiny_weights)
    earlier.extra[UNSEEN_SECTION] = {
        "Alpha fakes": {"held_out": "alpha", "epochs": "3 + 3", "recipe_differs": [], "alpha": row},
        "Beta fakes": {"held_out": "beta", "epochs": 3, "recipe_differs": ["second_size"], "beta": row},
    }
    config = earlier.training["config"]
    earlier.training = {**earlier.training, "config": {**config, "augment": {**config["augment"], "smooth_prob": 0.0}}}
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(tiny_weights, new)
    earlier.save(old)
    assert main(["--weights", str(new), "card", "--unseen-from", str(old)]) == 0
    runs = ModelCard.load(new).extra[UNSEEN_SECTION]
    assert runs["Alpha fakes"]["recipe_differs"] == ["augment.smooth_prob"] and runs["Alpha fakes"]["alpha"] == row
    assert runs["Beta fakes"]["recipe_differs"] == ["second_size", "augment.smooth_prob"]
    assert "(every run trained before smoothing was added to the augmentation; Beta fakes trained before the second " \
           "network was added)" in ModelCard.load(new).unseen_summary()
    # The same recipe on both sides changes nothing; a card without runs has nothing to carry.
    assert carry_unseen(ModelCard.load(new), ModelCard.load(new)).extra[UNSEEN_SECTION] == runs
    with pytest.raises(ValueError, match="no 'Unseen fakes"):
        carry_unseen(earlier, ModelCard.load(tiny_weights))
