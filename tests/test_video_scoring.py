"""``Detector.predict_video``: faces found once per sampled frame, scored in batches, tracked,
pooled into one verdict per face and per clip; and the "uncertain" and "no face" rules."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

import videos
from detector import render
from detector.card import ModelCard
from detector.faces import Box
from detector.pooling import CARD_KEY, UNFITTED_NOTE, VideoCalibration, pool
from detector.wording import NO_FACE
from detector.video_scoring import (
    BATCH_FRAMES,
    FrameScore,
    _clip_result,
    _track_result,
    deciding_tracks,
)

needs_faces = pytest.mark.skipif(not videos.HAVE_FACES, reason="../shared/data and ../shared/examples not present")


@pytest.fixture(scope="module")
def detector(tiny_weights):
    from detector.pipeline import Detector

    return Detector.load(tiny_weights)


@pytest.fixture
def counted(detector, monkeypatch):
    """Counts the face searches and network calls of the next predict_video."""
    calls = {"find": 0, "logits": []}
    find, logits = detector.finder.find, detector.logits

    def counting_find(rgb):
        calls["find"] += 1
        return find(rgb)

    def counting_logits(crops):
        calls["logits"].append(len(crops))
        return logits(crops)

    monkeypatch.setattr(detector.finder, "find", counting_find)
    monkeypatch.setattr(detector, "logits", counting_logits)
    return calls


@needs_faces
def test_two_faces_are_tracked_through_the_clip_and_scored_in_batches(detector, counted, tmp_path):
    clip = videos.two_faces(tmp_path / "two.mp4", seconds=6.0, fps=10)
    seen = []
    result = detector.predict_video(clip, progress=lambda done, total: seen.append((done, total)))

    assert result.frames_scored == 12 and result.duration_s == pytest.approx(6.0)
    assert counted["find"] == 12  # one face search per sampled frame
    assert len(counted["logits"]) == math.ceil(12 / BATCH_FRAMES)  # one network call per batch of frames
    assert sum(counted["logits"]) == sum(len(t.frames) for t in result.tracks)
    assert [done for done, _ in seen] == list(range(1, 13)) and seen[-1][1] == 12

    # The two people in front, followed all along (the finder may also see the girl at the edge).
    people = sorted(result.tracks, key=lambda t: -t.frames[0].box.w)[:2]
    assert len(result.tracks) >= 2, [(t.id, len(t.frames)) for t in result.tracks]
    left, right = sorted(people, key=lambda t: t.frames[0].box.x)
    for track in result.tracks:  # no track jumps from one face to another
        steps = zip(track.frames, track.frames[1:])
        assert all(abs(a.box.x - b.box.x) < a.box.w / 2 and abs(a.box.y - b.box.y) < a.box.h / 2 for a, b in steps)
    for track in (left, right):
        assert len(track.frames) >= 10 and track.first_s <= 0.5 and track.last_s >= 5.0
        assert [f.t for f in track.frames] == sorted(f.t for f in track.frames)
        logits = np.array([f.logit for f in track.frames if f.judged])
        calibration = VideoCalibration.of(detector.card)
        assert track.fake_probability == pytest.approx(calibration.probability(pool(logits, calibration.pooling)))
        assert [f.fake_probability for f in track.frames] == pytest.approx(
            detector.calibrate(np.array([f.logit for f in track.frames])).tolist())
    # The faces stay apart: every box of the left face is left of every box of the right one.
    assert max(f.box.x for f in left.frames) < min(f.box.x for f in right.frames)
    assert result.fake_probability == max(t.fake_probability for t in result.tracks)
    assert UNFITTED_NOTE in result.note  # the tiny test model has no video calibration


@needs_faces
def test_the_json_form_is_the_documented_contract(detector, tmp_path):
    result = detector.predict_video(videos.one_face(tmp_path / "one.mp4", seconds=2.0))
    out = json.loads(json.dumps(result.to_dict()))
    assert list(out) == ["kind", "fake_probability", "label", "duration_s", "frames_scored", "tracks", "note"]
    assert out["kind"] == "video" and out["label"] in ("fake", "real", "uncertain")
    (track,) = out["tracks"]
    assert {"id", "fake_probability", "label", "first_s", "last_s", "frames"} <= set(track)
    assert track["id"] == 1 and 0 <= track["fake_probability"] <= 1
    for frame in track["frames"]:
        assert list(frame) == ["t", "box", "fake_probability"] and len(frame["box"]) == 4


@needs_faces
def test_a_cut_ends_the_tracks_before_it(detector, tmp_path):
    result = detector.predict_video(videos.with_cut(tmp_path / "cut.mp4"))
    assert result.cuts == [pytest.approx(2.0)]
    assert len(result.tracks) == 2
    before, after = result.tracks
    assert before.last_s < 2.0 <= after.first_s


def test_a_clip_without_a_face_says_no_face_and_gives_no_verdict(detector, tmp_path):
    result = detector.predict_video(videos.no_face(tmp_path / "sky.mp4"))
    assert result.label == NO_FACE and result.fake_probability is None and result.tracks == []
    assert result.note.startswith("no face found in the 8 sampled frames") and UNFITTED_NOTE not in result.note
    assert result.to_dict()["fake_probability"] is None


@needs_faces
def test_gradcam_marks_the_most_suspicious_frame(detector, tmp_path):
    result = detector.predict_video(videos.two_faces(tmp_path / "two.mp4", seconds=2.0), gradcam=True)
    frame = result.suspicious
    top = max(deciding_tracks(result.tracks), key=lambda t: t.fake_probability)
    assert top.fake_probability == result.fake_probability
    best = max((f for f in top.frames if f.judged), key=lambda f: f.logit)
    assert frame.t == best.t and frame.rgb.shape == (360, 640, 3)
    assert top.id in frame.numbers and frame.numbers == sorted(frame.numbers)  # close-ups read 1, 2, ...
    assert len(frame.marks) == len(frame.numbers) == sum(f.t == frame.t for t in result.tracks for f in t.frames)
    for mark, number in zip(frame.marks, frame.numbers):
        track = result.tracks[number - 1]
        assert mark.fake_probability == track.fake_probability and mark.label == track.label
        assert mark.heatmap.ndim == 2 and 0 <= mark.heatmap.min() and mark.heatmap.max() <= 1
    picture = render.overlay(frame.rgb, frame.marks, numbers=frame.numbers)
    assert picture.shape == frame.rgb.shape and not np.array_equal(picture, frame.rgb)


@needs_faces
def test_a_long_clip_is_scored_all_through_and_says_how_sparsely(detector, tmp_path):
    result = detector.predict_video(videos.one_face(tmp_path / "one.mp4", seconds=4.0), max_samples=4)
    assert result.frames_scored == 4 and result.duration_s == pytest.approx(4.0)
    assert [f.t for f in result.tracks[0].frames] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert "the clip is 4 s long: its 4 frames scored are spread over all of it, one every 1.0 s" in result.note


@needs_faces
def test_a_clip_of_unknown_length_is_scored_in_part_and_says_so(detector, tmp_path):
    frames = [videos.portrait()] * 100  # 4 s at the 25 fps FFmpeg assumes for a bare stream
    result = detector.predict_video(videos.h264(tmp_path / "bare.h264", frames, container="h264"), max_samples=4)
    assert result.frames_scored == 4 and result.duration_s is None
    assert "only the first 2 s were scored (at most 4 frames); the clip is longer than that" in result.note


@needs_faces
def test_the_cards_video_calibration_is_used_when_it_fits_the_weights(tiny_weights, tmp_path):
    from detector.pipeline import Detector

    folder = tmp_path / "weights"
    folder.mkdir()
    for name in ("model.keras", "model.tflite"):
        (folder / name).write_bytes((tiny_weights / name).read_bytes())
    card = ModelCard.load(tiny_weights)
    fitted = VideoCalibration("max", 3.0, -1.0, 0.4, (0.3, 0.5), card.sha256, tuple(card.scoring_views))
    replace(card, extra={**card.extra, CARD_KEY: fitted.card_block()}).save(folder)

    result = Detector.load(folder).predict_video(videos.one_face(tmp_path / "one.mp4", seconds=2.0))
    (track,) = result.tracks
    assert track.pooled_logit == pytest.approx(max(f.logit for f in track.frames if f.judged))
    assert track.fake_probability == pytest.approx(fitted.probability(track.pooled_logit))
    assert result.note is None


def frame(t: float, logit: float, side: int = 100, judged: bool = True, whole: bool = True) -> FrameScore:
    return FrameScore(t, Box(0, 0, side, side), Box(0, 0, side, side), logit, 0.5, judged, int(2 * t), whole)


CALIBRATION = VideoCalibration("mean", 1.0, 0.0, 0.5, (0.4, 0.6))


def test_uncertain_tracks_say_why():
    glimpse = _track_result(1, [frame(0.0, 3.0)], CALIBRATION, frames_scored=20)
    assert glimpse.label == "uncertain" and glimpse.reason == "too few frames with this face to judge (1 of 20)"
    small = _track_result(2, [frame(k / 2, 3.0, side=30) for k in range(5)], CALIBRATION, 20)
    assert small.reason == "face too small to judge (median 30 px)"
    flat = _track_result(3, [frame(k / 2, 3.0, judged=False) for k in range(5)], CALIBRATION, 20)
    assert flat.reason == "face too dark, flat or blurred to judge"
    close = _track_result(4, [frame(k / 2, 0.1) for k in range(5)], CALIBRATION, 20)
    assert close.label == "uncertain" and close.reason == "fake probability in the uncertain band"
    # A clip of two frames: a face in both is seen in enough frames.
    assert _track_result(5, [frame(0.0, 3.0), frame(0.5, 3.0)], CALIBRATION, 2).label == "fake"


def test_flat_frames_are_left_out_of_the_pooled_score():
    track = _track_result(1, [frame(0.0, -2.0), frame(0.5, -2.0), frame(1.0, 9.0, judged=False)], CALIBRATION, 3)
    assert track.pooled_logit == -2.0 and track.label == "real"


def test_frames_where_the_edge_cuts_the_face_off_are_left_out_as_in_photos():
    from detector.wording import EDGE_REASON

    leaving = [frame(0.0, -2.0), frame(0.5, -2.0), frame(1.0, 9.0, whole=False), frame(1.5, 9.0, whole=False)]
    track = _track_result(1, leaving, CALIBRATION, 4)
    assert track.pooled_logit == -2.0 and track.label == "real"
    cut_throughout = _track_result(2, [frame(k / 2, 9.0, whole=False) for k in range(4)], CALIBRATION, 4)
    assert cut_throughout.label == "uncertain" and cut_throughout.reason == EDGE_REASON


def test_a_face_cut_off_by_the_frame_s_edge_is_marked_in_its_frames(detector, tmp_path, monkeypatch):
    from detector import video_scoring
    from detector.faces import scoring_region
    from detector.wording import EDGE_REASON

    clip = videos.no_face(tmp_path / "clip.mp4", seconds=1.0, fps=8)  # 320 x 240
    boxes = [Box(100, 60, 80, 80), Box(264, 60, 56, 80)]  # one face whole, one cut by the right edge
    monkeypatch.setattr(detector, "regions", lambda rgb: (boxes, [scoring_region(rgb.shape, b) for b in boxes], True))
    monkeypatch.setattr(video_scoring, "_judgeable", lambda crop: True)  # the sky is flat: judge it all the same
    result = video_scoring.score_video(detector, clip, sample_fps=8)
    whole, cut = sorted(result.tracks, key=lambda t: t.frames[0].box.x)
    assert all(f.whole for f in whole.frames) and not any(f.whole for f in cut.frames)
    assert cut.label == "uncertain" and cut.reason == EDGE_REASON


def test_a_glimpsed_face_does_not_outvote_the_people_on_screen():
    person = _track_result(1, [frame(k / 2, -3.0) for k in range(10)], CALIBRATION, 10)
    glimpse = _track_result(2, [frame(1.0, 5.0)], CALIBRATION, 10)
    clip = _clip_result([person, glimpse], 10, 5.0, [])
    assert clip.label == "real" and clip.fake_probability == person.fake_probability
    alone = _clip_result([glimpse], 10, 5.0, [])
    assert alone.label == "uncertain" and alone.fake_probability == glimpse.fake_probability
    faker = _track_result(3, [frame(k / 2, 3.0) for k in range(10)], CALIBRATION, 10)
    assert _clip_result([person, faker], 10, 5.0, []).label == "fake"
