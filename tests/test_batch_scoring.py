"""The pipelined engine of ``predict``: the records of one input at a time, in input order,
whatever finishes first; a bounded number of inputs in flight; a finder per thread."""

import shutil
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import EXAMPLES
from detector.batch_scoring import score_paths
from detector.faces import FaceFinder


@pytest.fixture(scope="module")
def detector(tiny_weights):
    from detector.pipeline import Detector

    return Detector.load(tiny_weights)


@pytest.fixture(scope="module")
def mixed(tiny_set, tmp_path_factory):
    """Faces, a group photo, a photo without a face, a video, a broken file and a missing one."""
    import videos

    folder = tmp_path_factory.mktemp("mixed")
    paths = []
    for i in range(6):
        for label in ("real", "fake"):
            paths.append(shutil.copy(tiny_set / label / f"test_{i}.png", folder / f"{label}_{i}.png"))
    paths.insert(3, shutil.copy(EXAMPLES / "facerec_obama_and_biden.jpg", folder / "group.jpg"))
    cv2.imwrite(str(folder / "flat.png"), np.full((50, 70, 3), 90, np.uint8))
    (folder / "broken.jpg").write_text("<html>not a jpeg</html>")
    paths[6:6] = [folder / "flat.png", folder / "broken.jpg", folder / "missing.png"]
    paths.insert(9, videos.one_face(folder / "clip.mp4", seconds=1.5))
    return [str(p) for p in paths]


def without_probabilities(value):
    """A record with every float replaced by None (compared apart, to float rounding)."""
    if isinstance(value, dict):
        return {k: without_probabilities(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_probabilities(v) for v in value]
    return None if isinstance(value, float) else value


def probabilities(value) -> list[float]:
    if isinstance(value, dict):
        return [p for v in value.values() for p in probabilities(v)]
    if isinstance(value, list):
        return [p for v in value for p in probabilities(v)]
    return [value] if isinstance(value, float) else []


def assert_same_records(got: list[dict], expected: list[dict]) -> None:
    assert [r["path"] for r in got] == [r["path"] for r in expected]
    for a, b in zip(got, expected):
        assert list(a) == list(b)  # the same keys in the same order: the same JSON line
        assert without_probabilities(a) == without_probabilities(b), a["path"]
        assert probabilities(a) == pytest.approx(probabilities(b), abs=1e-5), a["path"]


def test_pipelined_records_equal_one_at_a_time(detector, mixed):
    one_at_a_time = list(score_paths(detector, mixed, workers=0))
    kinds = {r["path"].rsplit("/", 1)[-1]: r for r in one_at_a_time}
    assert len(kinds["group.jpg"]["faces"]) >= 2 and kinds["flat.png"]["label"] == "no face"
    assert kinds["broken.jpg"]["error"] and "does not exist" in kinds["missing.png"]["error"]
    assert kinds["clip.mp4"]["kind"] == "video" and kinds["clip.mp4"]["error"] is None
    # The same records whether images are batched by 1, by a few (the group photo's faces
    # stay together) or all at once, with one or three threads.
    for workers, batch_size in ((1, 1), (3, 3), (2, 64)):
        assert_same_records(list(score_paths(detector, mixed, workers, batch_size)), one_at_a_time)


def test_records_keep_input_order_when_later_inputs_finish_first(detector, mixed):
    class SlowOnFirst(FaceFinder):
        """Finds faces as YuNet does, but takes 0.5 s on the first image searched."""

        first = threading.Event()

        def find(self, image):
            if not SlowOnFirst.first.is_set():
                SlowOnFirst.first.set()
                time.sleep(0.5)
            return super().find(image)

    records = list(score_paths(detector, mixed, workers=3, batch_size=4, new_finder=SlowOnFirst))
    assert [r["path"] for r in records] == mixed


def test_each_thread_finds_faces_with_its_own_finder(detector, mixed):
    made = []

    class Counted(FaceFinder):
        def __init__(self):
            super().__init__()
            made.append(threading.get_ident())

    list(score_paths(detector, mixed, workers=3, batch_size=4, new_finder=Counted))
    assert 1 <= len(made) <= 3 and len(set(made)) == len(made)


def test_inputs_in_flight_are_bounded_by_the_depth(detector, tiny_set):
    files = sorted(str(p) for p in (tiny_set / "real").glob("*.png"))
    taken = 0

    def lazily():
        nonlocal taken
        for i in range(200):
            taken += 1
            yield files[i % len(files)]

    ahead = []
    for done, _ in enumerate(score_paths(detector, lazily(), workers=2, batch_size=4, depth=6), 1):
        ahead.append(taken - done)
    assert len(ahead) == 200
    # In flight: at most `depth` waiting, plus the batch being scored (its records given one by one).
    assert max(ahead) <= 6 + 4, max(ahead)


def test_a_failing_input_costs_that_input_only(detector, mixed):
    class Broken(FaceFinder):
        def find(self, image):
            if image.shape[0] > 1000:  # the group photo
                raise RuntimeError("finder bug")
            return super().find(image)

    records = list(score_paths(detector, mixed, workers=2, batch_size=4, new_finder=Broken))
    group = next(r for r in records if r["path"].endswith("group.jpg"))
    assert group["error"].startswith("internal error while scoring") and "finder bug" in group["error"]
    assert [r["path"] for r in records] == mixed
    assert sum(r["error"] is not None for r in records) == 3  # the group photo, broken.jpg, missing.png


def test_stopping_early_leaves_no_work_running(detector, tiny_set):
    files = [str(p) for p in sorted((tiny_set / "real").glob("*.png"))] * 20
    stream = score_paths(detector, files, workers=2, batch_size=4)
    first = [next(stream) for _ in range(3)]
    stream.close()  # as an interrupted CLI's loop does
    assert [r["path"] for r in first] == files[:3]
    assert not [t for t in threading.enumerate() if t.name.startswith("prepare")]


def test_bad_settings_are_refused(detector):
    with pytest.raises(ValueError, match="workers=-1"):
        list(score_paths(detector, [], workers=-1))
    with pytest.raises(ValueError, match="batch_size=0"):
        list(score_paths(detector, [], batch_size=0))
