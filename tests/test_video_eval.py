"""``python -m detector video-eval``: clips per group and label, three ROC-AUCs per set, the
pooling chosen on validation clips and its calibration written to the model card."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import videos
from conftest import DATA, REPO
from detector.card import ModelCard
from detector.pooling import CARD_KEY, LENGTH_FREE, POOLINGS, VideoCalibration
from detector.video_eval import clips_of

pytestmark = pytest.mark.skipif(not videos.HAVE_FACES, reason="../shared/data not present")


@pytest.fixture(scope="module")
def mini_set(tmp_path_factory):
    """FFHQ portraits and StyleGAN faces in the sets' layout: three groups per label and split,
    one test group of two images (the rest one each, as in most of the real sets)."""
    root = tmp_path_factory.mktemp("data") / "mini"
    rows = ["file,label,split,group"]
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
        images = sorted((DATA / "ffhq_stylegan" / label).glob("*.jpg"))[:7]
        groups = [("val", "v0"), ("val", "v1"), ("val", "v2"), ("test", "t0"), ("test", "t1"), ("test", "t2"), ("test", "t2")]
        for image, (split, group) in zip(images, groups):
            shutil.copy(image, root / label / image.name)
            rows.append(f"{label}/{image.name},{label},{split},{label}-{group}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def test_one_clip_per_group_and_label(mini_set):
    clips = clips_of(mini_set, "test")
    assert [(c.label, len(c.images)) for c in clips] == [(0, 1), (0, 1), (0, 2), (1, 1), (1, 1), (1, 2)]
    assert [c.label for c in clips_of(mini_set, "test", limit=1)] == [0, 1]
    assert all(c.set == "mini" for c in clips)


def test_video_eval_reports_photo_frame_and_clip_auc_and_calibrates_the_card(mini_set, tiny_weights, tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights, ignore=shutil.ignore_patterns("cache"))
    done = subprocess.run(
        [sys.executable, "-m", "detector", "--weights", str(weights), "video-eval", "--data", str(mini_set.parent),
         "--sets", "mini", "--frames", "3", "--out", str(tmp_path / "VIDEO_EVAL.md"), "--json-out", str(tmp_path / "v.json")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "v.json").read_text())
    figures = report["test"]["mini"]
    assert figures["clips"] == {"real": 3, "fake": 3} and figures["clips_of_several_images"] == 2
    assert figures["clips_without_face"] == 0 and figures["frames"] == 6 * 3
    for key in ("photo_roc_auc", "frame_roc_auc"):
        assert 0.0 <= figures[key] <= 1.0
    assert set(figures["clip_roc_auc"]) == set(POOLINGS)
    assert report["chosen_pooling"] == max(LENGTH_FREE, key=lambda how: report["val_clip_roc_auc"][how])

    card = ModelCard.load(weights)
    calibration = VideoCalibration.of(card)
    assert calibration.fitted and calibration.pooling == report["chosen_pooling"] and calibration.measured["clips"] == 6
    assert list(card.extra[CARD_KEY]) == [report["chosen_pooling"]]
    # For a clip's answer to say how often its verdict goes to the other kind:
    assert calibration.given_to_the_other_kind("fake") == report["test_reals_called_fake"]
    assert calibration.given_to_the_other_kind("real") == report["test_fakes_called_real"]
    assert set(calibration.given_to_the_other_kind("real")) == {"mini"}
    page = (tmp_path / "VIDEO_EVAL.md").read_text()
    assert page.strip() == done.stdout.strip()  # the command prints the page it writes
    assert "| mini | 3/3 | 0 | 2 |" in page and f"`{report['chosen_pooling']}`" in page


def test_a_pooling_that_grows_with_the_clip_is_never_chosen_however_well_it_does():
    from detector.video_eval import choose_pooling

    val_auc = {how: 0.5 for how in POOLINGS} | {"top3_mean": 0.99, "max": 0.98, "median": 0.8, "mean": None}
    assert choose_pooling(val_auc) == "median"
