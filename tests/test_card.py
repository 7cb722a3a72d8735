import pytest

from conftest import REPO
from detector.card import README_END, README_START, ModelCard, WEIGHTS_DIR, readme_metrics, update_readme


def test_shipped_card_matches_shipped_weights():
    card = ModelCard.load(WEIGHTS_DIR)
    card.verify(WEIGHTS_DIR / "model.keras")  # raises on any mismatch
    assert card.training["minutes"] <= 90
    for split in ("val", "test"):
        assert set(card.metrics[split]["sets"]) == {"dfdc_faces", "ffhq_stylegan"}


def test_shipped_weights_chose_and_calibrated_their_checkpoint_through_the_shipped_views():
    # What `python train.py` writes with this code: a card calibrated through other views, or
    # a checkpoint chosen through them, would not be the documented command's output.
    from detector.views import SCORING_VIEWS, as_views

    card = ModelCard.load(WEIGHTS_DIR)
    assert card.scoring_views == SCORING_VIEWS
    assert as_views(card.training["validation_views"]) == SCORING_VIEWS
    assert "calibrated_by" not in card.training


def test_readme_metrics_are_generated_from_the_card():
    # Regenerate with `python -m detector card --update-readme` after training.
    assert readme_metrics(ModelCard.load(WEIGHTS_DIR)) in (REPO / "README.md").read_text()


def test_model_card_markdown_is_rendered_from_the_json():
    card = ModelCard.load(WEIGHTS_DIR)
    assert (WEIGHTS_DIR / "MODEL_CARD.md").read_text() == card.to_markdown()


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
