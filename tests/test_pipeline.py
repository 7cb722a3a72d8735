import io
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import EXAMPLES, REPO
from detector.card import ModelCard, WeightsError
from detector.pipeline import Detector
from detector.wording import NO_FACE, NO_FACE_REASON


@pytest.fixture(scope="module")
def detector(tiny_weights):
    return Detector.load(tiny_weights)


needs_examples = pytest.mark.skipif(not EXAMPLES.exists(), reason="../shared/examples not present")


@needs_examples
def test_an_iphone_photo_in_heic_is_scored_as_the_same_photo_in_jpeg(detector):
    import pillow_heif  # its encoder writes the test's HEIC (the detector reads it with pi-heif)
    from PIL import Image

    from detector.tracking import iou
    from detector.imaging import load_image

    upright = load_image(EXAMPLES / "facerec_two_people.jpg")
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))  # as a phone held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to show"
    heif = pillow_heif.from_pillow(sideways)
    heif.info["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    heif.save(buffer, quality=90)
    ok, jpeg = cv2.imencode(".jpg", upright[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])

    from_heic, from_jpeg = detector.predict(buffer.getvalue()), detector.predict(jpeg.tobytes())

    assert from_heic.image_size == from_jpeg.image_size == (upright.shape[1], upright.shape[0])
    assert len(from_heic.faces) == len(from_jpeg.faces) == 2
    for a, b in zip(from_heic.faces, from_jpeg.faces):
        assert iou(a.box, b.box) > 0.8 and abs(a.fake_probability - b.fake_probability) < 0.05


@needs_examples
def test_group_photo_scores_every_face(detector):
    result = detector.predict(EXAMPLES / "facerec_two_people.jpg", gradcam=True)
    assert len(result.faces) == 2 and result.whole_image is None
    assert result.fake_probability == max(f.fake_probability for f in result.faces)
    for face in result.faces:
        assert 0.0 <= face.fake_probability <= 1.0
        assert face.label in ("fake", "real", "uncertain")
        assert face.heatmap.shape == (32, 32) and 0.0 <= face.heatmap.min() <= face.heatmap.max() <= 1.0
    record = result.to_dict()
    assert set(record) == {"fake_probability", "label", "faces"} | ({"reason"} if result.label == "uncertain" else set())
    assert all(len(f["box"]) == 4 for f in record["faces"])


def test_no_face_gives_no_verdict_and_keeps_the_whole_image_score_aside(detector):
    landscape = np.zeros((90, 160, 3), np.uint8)
    landscape[:45] = (120, 170, 230)  # sky over a field
    landscape[45:] = (60, 140, 60)
    result = detector.predict(landscape, gradcam=True)
    assert result.faces == [] and result.label == NO_FACE and result.fake_probability is None
    assert result.reason == NO_FACE_REASON
    whole = result.whole_image
    assert whole.region.w == 90 and whole.label == NO_FACE  # the centre square, not a verdict
    assert whole.heatmap is None  # no Grad-CAM map drawn on a landscape
    assert result.image_score == whole.fake_probability and 0.0 <= whole.fake_probability <= 1.0
    record = result.to_dict()
    assert record["label"] == "no face" and record["fake_probability"] is None and record["faces"] == []
    assert record["reason"] == NO_FACE_REASON
    assert record["whole_image"] == {"fake_probability": whole.fake_probability, "box": [35, 0, 90, 90]}


def test_a_tiny_image_gets_no_verdict_and_says_why(detector):
    result = detector.predict(np.full((20, 20, 3), 17, np.uint8)).to_dict()
    assert result["label"] == "no face" and "no face found" in result["reason"]


def test_an_uncertain_photo_carries_each_uncertain_face_s_reason(detector, monkeypatch):
    from detector.faces import Box

    photo = np.random.default_rng(1).integers(0, 256, (200, 300, 3), np.uint8)
    photo[20:50, 150:180] = 17  # a flat patch where the second "face" lies
    boxes = [Box(20, 20, 120, 120), Box(150, 20, 30, 30)]
    monkeypatch.setattr(detector.finder, "find", lambda rgb: boxes)
    lo, hi = detector.card.uncertain_band
    monkeypatch.setattr(detector, "calibrate", lambda logits: np.full(len(logits), 0.0 if hi <= lo else (lo + hi) / 2))
    result = detector.predict(photo)
    first, second = result.faces
    assert second.label == "uncertain" and second.reason == "face too small to judge (30 px)"
    if hi > lo:  # the tiny model's band may be empty; then the first face is "real"
        assert result.label == "uncertain" and first.reason == "fake probability in the uncertain band"
        assert result.reason == ("face 1: fake probability in the uncertain band; "
                                 "face 2: face too small to judge (30 px)")
        assert result.to_dict()["reason"] == result.reason
    else:
        assert result.label == "uncertain" and result.reason == "face 2: face too small to judge (30 px)"


def test_a_face_cut_off_by_the_photo_s_edge_gets_no_verdict(detector, monkeypatch):
    from detector.faces import Box
    from detector.wording import EDGE_REASON

    photo = np.random.default_rng(2).integers(0, 256, (300, 400, 3), np.uint8)
    # A whole face in the middle, one touching the left edge whole, one cut by the right edge
    # (its box clipped there, as the finder clips it), and a face crop that fills its photo.
    boxes = [Box(150, 100, 100, 100), Box(4, 100, 80, 80), Box(350, 100, 50, 100)]
    monkeypatch.setattr(detector.finder, "find", lambda rgb: boxes)
    monkeypatch.setattr(detector, "calibrate", lambda logits: np.zeros(len(logits)))  # all "real" but for the rules
    whole, touching, cut_off = detector.predict(photo).faces
    assert (whole.label, touching.label) == ("real", "real")
    assert cut_off.label == "uncertain" and cut_off.reason == EDGE_REASON
    crop = np.random.default_rng(3).integers(0, 256, (110, 100, 3), np.uint8)
    monkeypatch.setattr(detector.finder, "find", lambda rgb: [Box(0, 10, 100, 100)])
    assert detector.predict(crop).faces[0].label == "real"  # its margin is cut, not the face


def test_verdict_band(detector):
    lo, hi = detector.card.uncertain_band
    if hi > lo:
        assert detector.verdict((lo + hi) / 2) == "uncertain"
    assert detector.verdict(0.0) == "real" and detector.verdict(1.0) == "fake"


# -- integrity -------------------------------------------------------------------------------

def _copy(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("run", "cache"))
    return dst


def test_altered_weights_are_refused(tiny_weights, tmp_path):
    folder = _copy(tiny_weights, tmp_path / "w")
    data = bytearray((folder / "model.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.keras").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"model\.keras.*sha256.*python train\.py"):
        Detector.load(folder)


def test_truncated_and_missing_weights_are_refused(tiny_weights, tmp_path):
    folder = _copy(tiny_weights, tmp_path / "w")
    path = folder / "model.keras"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="truncated"):
        Detector.load(folder)
    path.unlink()
    with pytest.raises(WeightsError, match="missing.*python train.py"):
        Detector.load(folder)
    (folder / "model_card.json").unlink()
    with pytest.raises(WeightsError, match="model card .* missing"):
        Detector.load(folder)


def test_incompatible_weights_are_refused(tiny_weights, tmp_path):
    folder = _copy(tiny_weights, tmp_path / "w")
    card = ModelCard.load(folder)
    card.input_size = 64  # the file takes 32 px crops
    card.save(folder)
    with pytest.raises(WeightsError, match="card expects"):
        Detector.load(folder)


def test_corrupt_archive_with_matching_card_is_refused(tiny_weights, tmp_path):
    folder = _copy(tiny_weights, tmp_path / "w")
    (folder / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    card = ModelCard.load(folder)
    from detector.card import sha256_of

    card.sha256 = sha256_of(folder / "model.keras")
    card.save(folder)
    with pytest.raises(WeightsError, match="cannot load weights"):
        Detector.load(folder)


# -- determinism -----------------------------------------------------------------------------

def _probabilities_in_subprocess(weights, image_path) -> list[str]:
    code = (
        "import sys; from detector import Detector; d = Detector.load(sys.argv[1]);"
        "r = d.predict(sys.argv[2]); print(' '.join(f.fake_probability.hex() for f in r.scored))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(weights), str(image_path)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_same_image_same_bits_across_calls_and_processes(detector, tiny_weights, tmp_path):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (120, 100, 3), np.uint8)
    path = tmp_path / "noise.png"
    cv2.imwrite(str(path), image[..., ::-1])
    first = [f.fake_probability.hex() for f in detector.predict(path).scored]
    for _ in range(3):
        assert [f.fake_probability.hex() for f in detector.predict(path).scored] == first
    assert _probabilities_in_subprocess(tiny_weights, path) == first
