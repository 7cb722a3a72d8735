import dataclasses
import json
import subprocess
import sys

import numpy as np

from detector.pipeline import Detector
from detector.data import read_records
from detector.imaging import load_image
from detector.robustness import (CONDITIONS, GOAL_CONDITION, _reversal_share, blur, chain, downscale, enlarge, jpeg,
                                 grayscale, reshape_faces, robustness_report, smooth)


def test_degradations_do_what_they_say():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), np.uint8)
    assert downscale(0.5)(image).shape == (20, 30, 3)
    assert chain(downscale(0.25), jpeg(50))(image).shape == (10, 15, 3)
    noisy_error = np.abs(jpeg(30)(image).astype(int) - image).mean()
    assert noisy_error > np.abs(jpeg(95)(image).astype(int) - image).mean() > 0
    assert blur(1.0)(image).std() < image.std()
    big = enlarge(3)(image)
    assert big.shape == (120, 180, 3) and abs(float(big.mean()) - float(image.mean())) < 2  # the same picture, larger
    assert GOAL_CONDITION in CONDITIONS and "none" in CONDITIONS

    # Smoothing flattens the noise of a flat area and keeps an outline, as a blur does not.
    edge = np.full((40, 40, 3), 60, np.uint8)
    edge[:, 20:] = 190
    noisy = np.clip(edge + rng.normal(0, 8, edge.shape), 0, 255).astype(np.uint8)
    step = lambda image: float(image[:, 21:23].mean()) - float(image[:, 17:19].mean())  # noqa: E731
    assert smooth(40, 3)(noisy)[:, 2:15].std() < noisy[:, 2:15].std() / 2
    assert step(smooth(40, 3)(noisy)) > 120 > step(blur(3.0)(noisy))
    gray = grayscale(image)
    assert gray.shape == image.shape and (gray == gray[..., :1]).all() and abs(gray.mean() - image.mean()) < 3


def test_a_beauty_mode_enlarges_the_eyes_slims_the_jaw_and_leaves_the_rest(monkeypatch):
    from detector import robustness
    from detector.faces import Box, Face

    # A face the finder "finds": eyes 100 px apart at (100, 100) and (200, 100), nose at
    # (150, 150), mouth corners at (125, 200) and (175, 200); dark dots on the eyes, a dark
    # vertical line where a cheek would be, 60 px right of the mouth's middle.
    class Finder:
        def __init__(self, faces: list) -> None:
            self.faces = faces

        def detect(self, image: np.ndarray) -> list:
            return self.faces

    marks = np.array([[100, 100], [200, 100], [150, 150], [125, 200], [175, 200]], np.float32)
    monkeypatch.setattr(robustness, "_finder", lambda: Finder([Face(Box(60, 40, 180, 220), 0.9, marks)]))
    image = np.full((320, 400, 3), 230, np.uint8)
    for x in (100, 200):
        image[95:106, x - 5:x + 6] = 20
    image[180:260, 209:212] = 20
    out = reshape_faces()(image)
    dark = lambda a: a[..., 0] < 125  # noqa: E731
    assert dark(out[80:121, 80:121]).sum() > 1.2 * dark(image[80:121, 80:121]).sum()  # the eye is larger
    line = lambda a: np.nonzero(dark(a[220]))[0].mean()  # noqa: E731  the cheek's line, below the mouth
    assert line(out) < line(image) - 1  # pulled towards the midline
    assert np.array_equal(out[:, 330:], image[:, 330:]) and np.array_equal(out[300:], image[300:])  # the rest kept
    monkeypatch.setattr(robustness, "_finder", lambda: Finder([]))
    assert reshape_faces()(image) is image  # no face, nothing to reshape


def test_report_on_a_tiny_set(tiny_weights, tiny_set, tmp_path):
    conditions = {name: CONDITIONS[name] for name in ("none", "jpeg50", GOAL_CONDITION)}
    detector = Detector.load(tiny_weights)
    # A threshold amid the tiny network's scores of the reals, so that some are called fake.
    reals = [load_image(r.path) for r in read_records(tiny_set) if r.split == "test" and r.label == 0][:4]
    scores = sorted(detector.predict(image).image_score for image in reals)
    detector.card = dataclasses.replace(detector.card, threshold=scores[2], uncertain_band=(scores[0], scores[2]))
    report = robustness_report([str(tiny_set)], tmp_path, detector=detector, limit=4, conditions=conditions)
    rows = report["sets"][tiny_set.name]
    assert set(rows) == set(conditions)
    assert rows["none"]["flip_share"] == 0.0 and rows["none"]["auc_drop"] == 0.0
    assert rows["none"]["reversal_share"] == 0.0
    assert 0.0 <= rows[GOAL_CONDITION]["reversal_share"] <= rows[GOAL_CONDITION]["flip_share"] + 1e-9
    assert rows[GOAL_CONDITION]["n"] == 8
    # Reals called fake as the page calls them: each photo's own verdict.
    verdicts = [detector.predict(image).label for image in reals]
    assert verdicts.count("fake") == 2 and rows["none"]["real_called_fake"] == 0.5
    assert 0.0 <= rows[GOAL_CONDITION]["fake_called_real"] <= 1.0
    assert report["goal"]["condition"] == GOAL_CONDITION
    assert json.loads((tmp_path / "robustness.json").read_text())["sets"]
    assert (tmp_path / "robustness.png").stat().st_size > 1000


def test_reversals_count_only_confident_verdicts_that_swap(tiny_weights):
    detector = Detector.load(tiny_weights)
    lo, hi = detector.card.uncertain_band
    real, fake, unsure = max(lo - 0.05, 0.0), min(hi + 0.05, 1.0), (lo + hi) / 2
    before = np.array([real, fake, real, fake])
    after = np.array([fake, real, unsure, fake])  # two reversals, one to "uncertain", one kept
    assert _reversal_share(detector, before, after) == 0.5


def test_the_command_writes_the_changes_the_page_names_into_the_weights_card(tiny_weights, tiny_set, tmp_path):
    import shutil

    from conftest import REPO
    from detector.card import CHANGED_SECTION, UNCHANGED, ModelCard
    from detector.robustness import CARD_CONDITIONS

    weights = shutil.copytree(tiny_weights, tmp_path / "weights")
    args = [sys.executable, "-m", "detector", "--weights", str(weights), "robustness", "--sets", str(tiny_set),
            "--limit", "4", "--out"]
    subprocess.run([*args, str(tmp_path / "report")], cwd=REPO, check=True, capture_output=True, timeout=300)
    block = ModelCard.load(weights).extra[CHANGED_SECTION]
    assert list(block) == list(CARD_CONDITIONS.values()) and UNCHANGED in block
    report = json.loads((tmp_path / "report" / "robustness.json").read_text())["sets"][tiny_set.name]
    for condition, words in CARD_CONDITIONS.items():
        row, measured = block[words][tiny_set.name], report[condition]
        assert block[words]["condition"] == condition and row["images"] == measured["n"] == 8
        # A share the report could not count (every real's face lost at half size) is left out.
        assert row.get("reals called fake") == measured["real_called_fake"]
        assert row.get("fakes called real") == measured["fake_called_real"]
    assert isinstance(block[UNCHANGED][tiny_set.name]["reals called fake"], float)  # the tiny photos' faces judged
    assert "| change | tested on | condition | ROC-AUC |" in ModelCard.load(weights).to_markdown()

    fresh = shutil.copytree(tiny_weights, tmp_path / "fresh")
    args[args.index(str(weights))] = str(fresh)
    subprocess.run([*args, str(tmp_path / "again"), "--no-card"], cwd=REPO, check=True, capture_output=True,
                   timeout=300)
    assert CHANGED_SECTION not in ModelCard.load(fresh).extra
    # A set the weights were not trained on is the user's to measure, not the page's to cite.
    other = shutil.copytree(tiny_set, tmp_path / "other_set")
    args[args.index(str(tiny_set))] = str(other)
    done = subprocess.run([*args, str(tmp_path / "other")], cwd=REPO, check=True, capture_output=True, text=True,
                          timeout=300)
    assert CHANGED_SECTION not in ModelCard.load(fresh).extra and "left as it was" in done.stderr
