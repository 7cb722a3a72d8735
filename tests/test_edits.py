import cv2
import numpy as np
import pytest

from detector.edits import METHODS, edit, face_mask, frontal, inside


def test_edited_faces_change_the_face_only_and_a_face_edited_with_itself_stays():
    rng = np.random.default_rng(0)
    target = rng.integers(40, 200, (120, 100, 3), dtype=np.uint8)
    donor = rng.integers(40, 200, (120, 100, 3), dtype=np.uint8)
    marks = np.array([[35, 50], [65, 50], [50, 65], [38, 80], [62, 80]], np.float32)  # eyes, nose, mouth
    assert frontal(marks) and inside(target.shape, marks)
    assert not frontal(marks + [[0, 0], [0, 0], [14, 0], [0, 0], [0, 0]])  # the nose beside an eye: turned
    assert not inside(target.shape, marks - [0, 45])  # the brows above the photo's top edge
    far = cv2.dilate(face_mask(target.shape, marks), np.ones((15, 15), np.uint8)) == 0
    for method in METHODS:
        edited = edit(method, target, marks, donor, marks)
        changed = np.abs(edited.astype(int) - target).max(axis=-1) > 2
        assert changed[face_mask(target.shape, marks) > 0].mean() > 0.5, method
        assert not changed[far].any(), method  # nothing beyond the face's ellipse and its soft edge
        itself = edit(method, target, marks, target, marks)
        assert np.abs(itself.astype(int) - target)[far == 0].mean() < 3, method
    with pytest.raises(ValueError, match="'swap'"):
        edit("swap", target, marks, donor, marks)


def test_the_command_edits_the_gallery_s_faces_scores_them_and_writes_the_card(tiny_weights, tmp_path):
    import shutil

    from detector.card import EDITED_SECTION, ModelCard
    from detector.defaults import EXAMPLES
    from detector.edits import edited_faces

    weights = shutil.copytree(tiny_weights, tmp_path / "weights")
    table = edited_faces(weights, tmp_path, [], EXAMPLES, per_set=2, save=tmp_path / "edits")
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"gallery (real)", "all"}
    assert len(list((tmp_path / "edits").glob("gallery_*_poisson.jpg"))) >= 2  # a face per photo at least
    block = ModelCard.load(weights).extra[EDITED_SECTION]
    assert list(block) == list(METHODS)
    for method, by_what in block.items():
        ((what, fig),) = by_what.items()
        assert what == "the gallery's (JPEG 92)"
        assert fig["faces"] >= 2 and 0.0 <= fig["ROC-AUC"] <= 1.0, method
        assert fig["called fake"] + fig["uncertain"] + fig["called real"] == pytest.approx(1.0), method
    assert ModelCard.load(weights).edited_summary().startswith("Faces pasted or morphed into real photos here")
