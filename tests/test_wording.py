"""One wording for the page, the overlay and the CLI: the fake probability, rounded one way."""

import pytest

from detector.wording import face_phrase, percent, percent_below, reasons_summary


@pytest.mark.parametrize("p, text", [(0.0, "0%"), (0.004, "0%"), (0.2951, "30%"), (0.625, "63%"), (0.994, "99%"), (1.0, "100%")])
def test_percent_rounds_half_up_as_the_page_s_bars_do(p, text):
    # Gradio's Label writes Math.round(p * 100): halves go up (Python's round() would give 62).
    assert percent(p) == text


@pytest.mark.parametrize("bound", [0.885, 0.8813, 0.5, 0.495, 0.88, 0.9, 0.005])
def test_percent_below_is_the_highest_percentage_written_under_a_bound(bound):
    # The top of the "uncertain" band as the rule writes it: at 0.885 "88%", not the "89%" of
    # the faces called fake from there.
    under = [bound - k * 1e-6 for k in range(1, 20_000)]
    assert percent_below(bound) == max((percent(p) for p in under), key=lambda text: int(text[:-1]))


def test_face_phrase_always_gives_the_fake_probability():
    assert face_phrase("real", 0.2951, 2) == "2: real (30% fake)"
    assert face_phrase("fake", 0.93) == "fake (93% fake)"


def test_reasons_are_grouped_by_reason_and_name_their_faces():
    near, small = "fake probability in the uncertain band", "face too small to judge (30 px)"
    assert reasons_summary([(1, near), (3, small), (4, small)]) == f"face 1: {near}; faces 3 and 4: {small}"
    assert reasons_summary([(1, near)], numbered=False) == near
    assert reasons_summary([(2, None)]) == "face 2: no reason recorded"
    assert reasons_summary([]) is None
