import pytest

from conftest import REPO
from detector.defaults import SHARED_SETS
import json
from dataclasses import replace

from detector.card import (CHANGED_SECTION, EDITED_SECTION, MIN_RISE, UNCHANGED,
                           README_END, README_START, UNSEEN_SECTION, WEIGHTS_DIR, ModelCard, readme_metrics,
                           update_readme, without_machine_paths)

COUNTS = {"train": {"real": 9811, "fake": 9846}, "val": {"real": 1611, "fake": 1620}, "test": {"real": 1632, "fake": 1652}}


def test_shipped_card_matches_shipped_weights():
    card = ModelCard.load(WEIGHTS_DIR)
    card.verify(WEIGHTS_DIR / "model.keras")  # raises on any mismatch
    card.verify(WEIGHTS_DIR / "model.tflite", card.lite_sha256)  # the copy scoring runs on (detector.lite)
    # Issue 21 asks `python train.py` to finish within 150 minutes here: its budget leaves ten
    # minutes for the fusion and the card. The shipped run took longer (its card says how long:
    # resumed sittings beside other work, a raised --max-minutes); the README says so.
    from detector.training import TrainConfig

    assert TrainConfig().max_minutes <= 140
    for split in ("val", "test"):
        assert set(SHARED_SETS) <= set(card.metrics[split]["sets"])  # and the pooled one-label sets


def test_shipped_weights_chose_and_calibrated_their_checkpoint_through_the_shipped_views():
    # What `python train.py` writes with this code: a card calibrated through other views, or
    # a checkpoint chosen through them, would not be the documented command's output.
    from detector.views import SCORING_VIEWS, as_views

    card = ModelCard.load(WEIGHTS_DIR)
    assert card.scoring_views == SCORING_VIEWS
    assert as_views(card.training["validation_views"]) == SCORING_VIEWS
    # The recipe is `python train.py`'s defaults (the command as typed may have spelled one
    # out, as `--epochs 18` before 18 became the default).
    from detector.training import TrainConfig, same_recipe

    assert same_recipe(card, TrainConfig())
    assert card.training["command"].startswith("python train.py")
    from detector.lite import QUANTIZATION

    assert card.lite_quantization == QUANTIZATION  # scored on the copy train writes, calibrated through it


def test_readme_metrics_are_generated_from_the_card():
    # Regenerate with `python -m detector card --update-readme` after training.
    assert readme_metrics(ModelCard.load(WEIGHTS_DIR)) in (REPO / "README.md").read_text()


def test_model_card_markdown_is_rendered_from_the_json():
    card = ModelCard.load(WEIGHTS_DIR)
    assert (WEIGHTS_DIR / "MODEL_CARD.md").read_text() == card.to_markdown()


def test_the_card_s_limit_on_smoothed_skin_follows_its_recipe():
    card = ModelCard.load(WEIGHTS_DIR)
    config = card.training["config"]

    def with_smoothing(share: float) -> str:
        augment = {**config["augment"], "smooth_prob": share}
        return replace(card, training={**card.training, "config": {**config, "augment": augment}}).to_markdown()

    assert "Its training smoothed 25% of the crops, real and fake alike" in with_smoothing(0.25)
    assert "smoothed is often called fake" not in with_smoothing(0.25)
    assert "A real face whose skin a beauty mode or retouching smoothed is often called fake" in with_smoothing(0.0)


def test_update_readme_rewrites_only_its_section(tmp_path):
    card = ModelCard.load(WEIGHTS_DIR)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_START}\nold table\n{README_END}\n\nrest\n")
    assert update_readme(readme, card)
    text = readme.read_text()
    assert text.startswith("# Title\n\n") and text.endswith("\n\nrest\n") and "old table" not in text
    assert not update_readme(readme, card)  # idempotent
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no metrics section"):
        update_readme(readme, card)


def test_cross_set_reports_render_as_a_table_and_other_reports_as_json():
    card = ModelCard.load(WEIGHTS_DIR)
    card.extra = {
        "Cross-set generalization": {
            "train on a": {"minutes": 2.5, "epochs": 3, "a": {"roc_auc": 0.91234, "n": 10}, "b": {"roc_auc": 0.5, "n": 8}},
        },
        "Other": {"note": "free text", "values": [1, 2]},
    }
    markdown = card.to_markdown()
    assert "| run | tested on | minutes | epochs | roc_auc | n |" in markdown
    assert "| train on a | a | 2.5 | 3 | 0.912 | 10 |" in markdown
    assert "| train on a | b | 2.5 | 3 | 0.5 | 8 |" in markdown
    assert '"note": "free text"' in markdown.split("## Other", 1)[1]


def test_a_one_run_report_reads_down_a_field_per_line():
    card = ModelCard.load(WEIGHTS_DIR)
    card.extra = {"Video calibration": {"mean": {"temperature": 1.17375, "threshold": 0.8877,
                                                 "validation clips": {"clips": 3859, "ROC-AUC mean": 0.92644},
                                                 "real test clips called fake": {"a": 0.0129, "b": 0.0822},
                                                 "fake test clips called real": {"a": 0.2846, "b": 0.2009}}}}
    section = card.to_markdown().split("## Video calibration", 1)[1]
    top = "| field | value |\n|---|---|\n| frames pooled by | mean |\n| temperature | 1.174 |\n"
    assert section.lstrip().startswith(top)
    assert ("| *validation clips* | |\n| clips | 3859 |\n| ROC-AUC mean | 0.926 |\n"
            "| *real test clips called fake* | |\n| a | 0.013 |\n| b | 0.082 |\n"
            "| *fake test clips called real* | |\n| a | 0.285 |\n| b | 0.201 |") in section


def _card(**fields) -> ModelCard:
    return ModelCard(input_size=32, face_margin=1.3, **fields)


def test_the_unseen_summary_names_the_sources_and_each_held_out_family_s_roc_auc():
    card = _card(data={"sets": {"dfdc_faces": COUNTS, "ffhq_stylegan": {"train": {"real": 244, "fake": 661}},
                                "sd_faces": {"train": {"real": 100, "fake": 100}, "description": "Stable Diffusion faces"}}})
    card.extra[UNSEEN_SECTION] = {
        "face swaps": {"held_out": "dfdc_faces", "minutes": 20.5, "epochs": 8,
                       "dfdc_faces": {"roc_auc": 0.5634, "recall_fake": 0.2, "recall_real": 0.9, "n": 3284},
                       "ffhq_stylegan": {"roc_auc": 0.91, "recall_fake": 0.8, "recall_real": 0.8, "n": 292}},
        "generated faces": {"held_out": "ffhq_stylegan, sd_faces", "minutes": 30.0, "epochs": 8,
                            "ffhq_stylegan": {"roc_auc": 0.521, "recall_fake": 0.1, "recall_real": 0.9, "n": 292},
                            "sd_faces": {"roc_auc": 0.677, "recall_fake": 0.3, "recall_real": 0.9, "n": 50}},
        "text-to-image": {"held_out": "sfhq_t2i + utkface_wild_crops", "minutes": 9.0, "epochs": 3,
                          "sfhq_t2i + utkface_wild_crops": {"roc_auc": 0.8123, "recall_fake": 0.5, "recall_real": 0.9,
                                                            "n": 388}},
    }
    summary = card.unseen_summary()
    assert summary.startswith("Trained on 20,762 images from dfdc_faces, ffhq_stylegan and sd_faces "
                              "(Stable Diffusion faces). ")
    assert "0.56 on face swaps; " in summary  # a family of one set: its name says it (the table names the set)
    assert "on generated faces, 0.52 (ffhq_stylegan) and 0.68 (sd_faces)" in summary  # of two: each named
    assert "0.81 on text-to-image, where" in summary, "a pool of one-label sets"
    assert "0.91" not in summary, "a set the run was trained on is not an unseen figure"
    assert "0.5 is chance" in summary and summary.count(". ") <= 2  # one or two sentences
    markdown = card.to_markdown()
    assert summary in markdown and f"## {UNSEEN_SECTION}" in markdown
    readme = readme_metrics(card)  # the README's short table: held-out sources only, reals called fake
    assert "(`python train.py --leave-one-out`, 3–8 epochs)" in readme
    assert "| face swaps | dfdc_faces | 0.563 | 0.200 | 0.100 |" in readme
    assert "| text-to-image | sfhq_t2i + utkface_wild_crops | 0.812 | 0.500 | 0.100 |" in readme
    assert "| 0.910 |" not in readme
    card_part = markdown.split(f"## {UNSEEN_SECTION}", 1)[1].split("\n## ", 1)[0]  # the card: with each run's size
    assert "| face swaps | dfdc_faces | 0.563 | 0.200 | 0.100 | 3284 | 8 | 20.5 |" in card_part
    assert "0.910" not in card_part, "a set the run was trained on is not an unseen figure"


def test_the_metrics_table_shows_fakes_called_real_where_the_report_counts_them():
    row = {"n": 10, "roc_auc": 0.9, "recall_real": 0.95, "recall_fake": 0.4, "ece": 0.05}
    counted = _card(metrics={"test": {"sets": {"a": {**row, "fake_called_real": 0.31}}}}).metrics_table()
    assert "| reals called fake | fakes called fake | fakes called real | ECE |" in counted
    assert "| a | 10 | 0.900 | 0.050 | 0.400 | 0.310 | 0.050 |" in counted
    older = _card(metrics={"test": {"sets": {"a": row}}}).metrics_table()  # a card from before the count
    assert "fakes called real" not in older and "| a | 10 | 0.900 | 0.050 | 0.400 | 0.050 |" in older


def test_without_held_out_figures_the_summary_says_none_are_recorded():
    summary = _card(data={"sets": {"dfdc_faces": COUNTS}}).unseen_summary()
    assert summary.startswith("Trained on 19,657 images from dfdc_faces. ")
    assert "No figures on kinds of fake it was never trained on are recorded" in summary
    assert "untested" in _card().unseen_summary()


def test_the_summary_says_how_edited_faces_were_judged_and_the_card_tables_them():
    what = "real photos of lfw_faceswap (JPEG 92)"
    edits = {"poisson": {what: {"faces": 104, "ROC-AUC": 0.737, "called fake": 0.25, "uncertain": 0.19, "called real": 0.566}},
             "morph": {what: {"faces": 104, "ROC-AUC": 0.8104, "called fake": 0.18, "uncertain": 0.31, "called real": 0.51}}}
    card = _card(data={"sets": {"dfdc_faces": COUNTS}}, extra={EDITED_SECTION: edits})
    sentence = "Faces pasted or morphed into real photos here (edits it never trained on): ROC-AUC 0.74–0.81, and 51–57% of them called real."
    assert card.edited_summary() == sentence and card.unseen_summary().endswith(" " + sentence)
    assert "averaged half and half with the face they cover (`morph`)" in card.to_markdown()
    assert "| edit | tested on | faces | ROC-AUC |" in card.to_markdown() and f"| morph | {what} | 104 | 0.81 | 0.18 | 0.31 | 0.51 |" in card.to_markdown()
    assert _card().edited_summary() == "" and not _card().unseen_summary().endswith(".. ")


def test_the_page_names_the_changes_that_give_a_verdict_to_the_other_kind_more_often():
    def row(reals_called_fake, fakes_called_real):
        return {"ROC-AUC": 0.9, "reals called fake": reals_called_fake, "fakes called real": fakes_called_real,
                "images": 288}

    changes = {
        UNCHANGED: {"condition": "none", "lfw": row(0.035, 0.007), "ffhq": row(0.123, 0.16), "t2i": {"images": 103}},
        "skin smoothed": {"condition": "smooth", "lfw": row(0.306, 0.0), "ffhq": row(0.288, 0.087)},
        "black and white": {"condition": "gray", "lfw": row(0.028, 0.007), "ffhq": row(0.123 + MIN_RISE - 0.001, 0.26)},
        "halved": {"condition": "half+jpeg50", "lfw": row(0.042, 0.292), "ffhq": row(0.0, 0.484)},
    }
    card = _card(extra={CHANGED_SECTION: changes})
    # Each change once, on the set it moved most; one that moved no set by MIN_RISE is not named.
    assert card.changed_summary("fake") == ("Real photos changed after they were taken are called fake more often: "
                                            "skin smoothed, 31% of lfw's real test photos (4% unchanged).")
    assert card.changed_summary("real") == ("Fakes changed after they were made are called real more often: halved, "
                                            "48% of ffhq's fake test photos (16% unchanged); black and white, 26% of "
                                            "ffhq's (16% unchanged).")
    assert card.verdict_caveats("fake") == [card.changed_summary("fake")]  # no test metrics: no also_given
    markdown = card.to_markdown()
    assert "| change | tested on | condition | ROC-AUC | reals called fake | fakes called real | images |" in markdown
    assert "| skin smoothed | lfw | smooth | 0.9 | 0.306 | 0 | 288 |" in markdown
    assert "| unchanged | t2i | none | – |" in markdown
    assert "“Photos changed after they were made” above" in markdown
    assert _card().changed_summary("fake") == "" and "docs/robustness.md" in _card().to_markdown()
    steady = {change: {name: {**figures, "reals called fake": changes[UNCHANGED][name].get("reals called fake")}
                       for name, figures in rows.items() if isinstance(figures, dict)}
              for change, rows in changes.items()}
    assert _card(extra={CHANGED_SECTION: steady}).changed_summary("fake") == ""


def test_a_card_records_and_renders_no_machine_paths(tmp_path):
    card = _card(data={"sets": {"dfdc_faces": COUNTS}}, training={
        "command": "python train.py --out /work/scratch/s8/full --sets /work/shared/data/dfdc_faces --cache-dir=/tmp/c --epochs 8",
        "config": {"sets": ["/work/shared/data/dfdc_faces"], "out_dir": "/work/scratch/s8/full", "cache_dir": "/tmp/c",
                   "epochs": 8}})
    card.save(tmp_path)
    saved = json.loads((tmp_path / "model_card.json").read_text())["training"]
    assert saved["command"] == "python train.py --sets dfdc_faces --epochs 8"
    assert saved["config"] == {"sets": ["dfdc_faces"], "epochs": 8}
    for text in ((tmp_path / "model_card.json").read_text(), (tmp_path / "MODEL_CARD.md").read_text(), card.to_markdown()):
        assert "/work" not in text and "/tmp" not in text
    assert without_machine_paths({"command": "python train.py"}) == {"command": "python train.py"}


def test_the_shipped_card_is_rendered_for_people():
    markdown = ModelCard.load(WEIGHTS_DIR).to_markdown()
    assert "{'" not in markdown and "```json" not in markdown, "no Python or JSON dumps"
    assert ("| set | train real | train fake | train no_face | val real | val fake | val no_face | test real "
            "| test fake | test no_face |") in markdown
    assert "| dfdc_faces | 9,811 | 9,846 | 69 | 1,611 | 1,620 | 45 | 1,632 | 1,652 | 50 |" in markdown
    assert "/work" not in (WEIGHTS_DIR / "model_card.json").read_text()
