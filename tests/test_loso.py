"""Leave one source out: each family trained without, tested on, and written into the card."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from detector.card import UNSEEN_SECTION, ModelCard, readme_metrics
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
    assert len(trained_on) == 2 and kept["Beta fakes"]["recipe_differs"] == ["augment"]
    card = ModelCard.load(card_dir)
    assert card.unseen_recipe_changes() == ["augment"]
    assert "the same recipe (Beta fakes trained before its augment changed)" in card.unseen_summary()
    assert "1 epochs; Beta fakes trained before its augment changed" in readme_metrics(card)
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
