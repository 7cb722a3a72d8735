"""One wording for the page, the overlay and the CLI: the fake probability, rounded one way."""

import pytest

from detector.wording import also_given, face_phrase, percent, percent_below, reasons_summary


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


def test_a_verdict_s_errors_name_the_worst_set_and_the_most_of_the_others():
    rates = {"a": 0.004, "b": 0.123, "c": 0.049}
    assert also_given("fake", rates) == ("Real faces are called fake too: 12% of the real test faces of b, and at "
                                         "most 5% of each other set's (the About tab lists them).")
    assert also_given("real", {"a": 0.31}, "clips") == ("Fake clips are called real too: 31% of the fake test clips "
                                                         "of a (the About tab lists them).")
    # Rates that round to 0% are said as none; no rates, nothing.
    assert also_given("fake", {"a": 0.0, "b": 0.004}) == ("None of the real test faces of its 2 sets with real ones "
                                                         "were called fake.")
    assert also_given("real", {}) == ""
    with pytest.raises(ValueError, match="'uncertain'"):
        also_given("uncertain", rates)
