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
