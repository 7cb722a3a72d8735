"""Linking faces into tracks: overlap, quick moves, gaps, several people, cuts."""

from __future__ import annotations

import numpy as np
import pytest

from detector.faces import Box
from detector.tracking import MAX_GAP, REJOIN_IOU, Tracker, iou, is_cut, shot_signature


def test_iou():
    a = Box(0, 0, 10, 10)
    assert iou(a, a) == 1.0 and iou(a, Box(20, 20, 5, 5)) == 0.0
    assert iou(a, Box(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_two_people_moving_keep_their_tracks_and_a_newcomer_gets_one():
    tracker = Tracker()
    for k in range(6):
        left, right = Box(100 + 6 * k, 100, 80, 80), Box(400 - 5 * k, 110, 90, 90)
        # The finder returns faces largest first: the order of boxes says nothing of who is who.
        assert tracker.update(k, [right, left]) == [2, 1] if k else tracker.update(k, [left, right]) == [1, 2]
    assert tracker.update(6, [Box(700, 300, 60, 60), Box(136, 100, 80, 80)]) == [3, 1]
    assert [len(t.samples) for t in tracker.tracks.values()] == [7, 6, 1]


def test_a_quick_move_with_no_overlap_still_continues_the_track():
    tracker = Tracker()
    tracker.update(0, [Box(100, 100, 100, 100)])
    # Moved half its width in half a second: overlap below MIN_IOU, centre still in reach.
    moved = Box(135, 135, 100, 100)
    assert iou(Box(100, 100, 100, 100), moved) < 0.3
    assert tracker.update(1, [moved]) == [1]
    assert tracker.update(2, [Box(600, 130, 100, 100)]) == [2]  # across the frame: someone else


def test_a_face_missed_for_a_few_frames_picks_up_its_track_and_after_longer_only_where_it_was():
    tracker = Tracker()
    box = Box(50, 50, 80, 80)
    tracker.update(0, [box])
    for k in range(1, MAX_GAP + 1):
        tracker.update(k, [])
    moved = Box(75, 75, 80, 80)  # moved a third of its side: overlap above MIN_IOU only
    assert iou(box, moved) < REJOIN_IOU and tracker.update(MAX_GAP + 1, [moved]) == [1]
    # Lost for long (a head in profile the finder misses), then found again where it was: the
    # same face.
    for k in range(MAX_GAP + 2, 20):
        tracker.update(k, [])
    assert tracker.update(20, [Box(78, 72, 80, 84)]) == [1]
    # Lost for long again, then found near but moved as far as above: someone else.
    for k in range(21, 40):
        tracker.update(k, [])
    assert tracker.update(40, [Box(103, 97, 80, 84)]) == [2]
    assert tracker.tracks[1].samples == [0, MAX_GAP + 1, 20]


def scene(colour: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.array(colour) + rng.normal(0, 12, (180, 320, 3)), 0, 255).astype(np.uint8)


def test_a_cut_closes_every_track_even_where_the_boxes_overlap():
    indoors, beach = scene((150, 110, 80), 0), scene((70, 140, 220), 1)
    tracker = Tracker()
    box = Box(120, 50, 80, 80)
    assert tracker.update(0, [box], indoors) == [1]
    assert tracker.update(1, [box], scene((150, 110, 80), 2)) == [1]  # same shot, new noise
    assert tracker.update(2, [box], beach) == [2]
    assert tracker.cuts == [2]


def test_cut_detection_keeps_a_shot_through_small_moves():
    from detector.clipmaker import moving_frames

    frames = list(moving_frames(scene((150, 110, 80), 0), 8, zoom=0.08, shift=0.04))
    signatures = [shot_signature(f) for f in frames]
    assert not any(is_cut(a, b) for a, b in zip(signatures, signatures[1:]))
    assert is_cut(signatures[0], shot_signature(scene((70, 140, 220), 1)))
