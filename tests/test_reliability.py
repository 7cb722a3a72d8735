"""Bad input through every path: ``Detector.predict``, the CLI, the app's /predict function and
its "Several photos" tab.

Each file of the corpus (``tests/corpus.py``: empty, text, HTML, SVG, random bytes, truncated,
decompression bombs, 1-pixel and 1-pixel-thin, animated, 16-bit, gray, alpha, CMYK,
EXIF-rotated, trailing data, wrong extension, 45 megapixels) must be refused with an error
that names it, or scored, as ``corpus.EXPECTED`` says, within seconds and bounded memory,
and the same answer must come out of every path. The integrity tests the model-loading
tests in test_pipeline.py leave out are at the end.

Time bounds are generous because the test machine is shared; the speed figures of record
come from ``python -m detector bench``.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import psutil
import pytest

from conftest import REPO
from corpus import BIG_SIZE, EXPECTED, REAL_PHOTOS, SAME_PIXELS, write_corpus
from detector import render
from detector.card import ModelCard, WeightsError, sha256_of
from detector.imaging import ImageError
from detector.pipeline import Detector, Result
from detector.wording import percent

#: Most seconds one file may take on any path (the 45-megapixel photo takes ~3 s).
SECONDS_PER_FILE = 10.0
#: Most seconds the CLI may take for the whole corpus, TensorFlow's start-up included.
CLI_SECONDS = 120.0
#: The decoded 45-megapixel photo: 7940 x 5669 RGB bytes, ~135 MB.
BIG_DECODED = BIG_SIZE[0] * BIG_SIZE[1] * 3
#: Most RSS growth over a second pass of the corpus. Smaller than the 45-megapixel photo's
#: gray copy (45 MB) and a third of its RGB pixels, so keeping any buffer of one call fails.
MAX_GROWTH = 40 * 2**20
#: Most RSS above the start of a pass, at its peak: four decoded 45-megapixel photos. The
#: decoder's BGR and the RGB copy need two; a float copy of the photo alone would need four.
MAX_PEAK = 4 * BIG_DECODED

SCORED = [name for name, expected in EXPECTED.items() if expected == "score"]
REFUSED = [name for name, expected in EXPECTED.items() if expected == "error"]


@dataclass
class Outcome:
    """What ``Detector.predict`` did with one file."""

    result: Result | None
    error: Exception | None
    seconds: float

    def bits(self) -> list[str]:
        """The exact probabilities of what was scored, as hex floats."""
        return [f.fake_probability.hex() for f in self.result.scored]

    def answer(self) -> list[str] | str:
        """The probabilities' bits, or the error's type and message: what a caller sees."""
        return self.bits() if self.result else f"{type(self.error).__name__}: {self.error}"


def score(detector: Detector, path: Path) -> Outcome:
    """Scores one file, keeping any exception (a bug, if it is not an ImageError)."""
    start = time.perf_counter()
    try:
        return Outcome(detector.predict(path), None, time.perf_counter() - start)
    except Exception as err:
        return Outcome(None, err, time.perf_counter() - start)


class PeakRss:
    """Samples this process's resident memory every few milliseconds while in the block."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.start = self.peak = self.end = 0
        self._done = threading.Event()

    def _sample(self) -> None:
        while not self._done.wait(0.002):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> "PeakRss":
        self.start = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.end = self.process.memory_info().rss
        self.peak = max(self.peak, self.end)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def detector(tiny_weights) -> Detector:
    return Detector.load(tiny_weights)


@pytest.fixture(scope="module")
def first_pass(detector, corpus) -> dict[str, Outcome]:
    """Every corpus file through a fresh detector once; photo.jpg, a good photo, comes first."""
    assert next(iter(corpus)) == "photo.jpg"
    return {name: score(detector, path) for name, path in corpus.items()}


@pytest.fixture(scope="module")
def second_pass(detector, corpus, first_pass) -> tuple[dict[str, Outcome], PeakRss]:
    """The corpus again, after the first pass warmed everything up, with its memory use."""
    with PeakRss() as rss:
        outcomes = {name: score(detector, path) for name, path in corpus.items()}
    return outcomes, rss


# -- Detector.predict ----------------------------------------------------------------------


@pytest.mark.parametrize("name", REFUSED)
def test_bad_file_is_refused_naming_it(name, corpus, first_pass):
    outcome = first_pass[name]
    assert isinstance(outcome.error, ImageError), f"{name}: {outcome.error!r}, result {outcome.result}"
    assert str(outcome.error).startswith(f"File '{corpus[name]}' ")
    assert outcome.seconds < SECONDS_PER_FILE


@pytest.mark.parametrize("name", SCORED)
def test_odd_image_is_scored(name, first_pass):
    outcome = first_pass[name]
    assert outcome.error is None, f"{name} was not scored: {outcome.error!r}"
    result = outcome.result
    assert result.scored and all(0.0 <= f.fake_probability <= 1.0 for f in result.scored)
    if result.faces:
        assert result.label in ("fake", "real", "uncertain") and 0.0 <= result.fake_probability <= 1.0
    else:  # no face found: no verdict, the whole image's score kept aside
        assert result.label == "no face" and result.fake_probability is None and result.reason
    assert outcome.seconds < SECONDS_PER_FILE, f"{name} took {outcome.seconds:.1f} s"


@pytest.mark.parametrize("name", SAME_PIXELS)
def test_same_pixels_give_the_same_bits(name, first_pass):
    same, reference = first_pass[name], first_pass[SAME_PIXELS[name]]
    assert same.answer() == reference.answer()
    assert [f.box for f in same.result.faces] == [f.box for f in reference.result.faces]


def test_exif_rotated_photo_is_scored_upright(first_pass):
    rotated, upright = first_pass["exif_rotated.jpg"].result, first_pass["photo.jpg"].result
    assert rotated.image_size == upright.image_size  # (width, height), not turned sideways
    if REAL_PHOTOS:  # the frontal-face finder only finds an upright face
        assert len(rotated.faces) >= 1
        found, expected = rotated.faces[0].box, upright.faces[0].box
        assert abs(found.x - expected.x) <= 8 and abs(found.y - expected.y) <= 8


def test_45_megapixel_photo_is_scored_with_its_faces(first_pass):
    result = first_pass["big_45mp.jpg"].result
    assert result is not None and result.image_size == BIG_SIZE
    if REAL_PHOTOS:
        assert len(result.faces) == 3, f"expected Obama, Biden and the girl, got {[f.box for f in result.faces]}"


def test_detector_keeps_serving_the_same_bits_after_the_corpus(first_pass, second_pass):
    outcomes, _ = second_pass
    for name in EXPECTED:  # photo.jpg was first scored before any bad input
        assert outcomes[name].answer() == first_pass[name].answer(), name


def test_memory_stays_bounded_over_the_corpus(second_pass):
    _, rss = second_pass
    mb = 2**20
    assert rss.end - rss.start < MAX_GROWTH, f"RSS grew {(rss.end - rss.start) / mb:.0f} MB in one pass"
    assert rss.peak - rss.start < MAX_PEAK, f"RSS peaked {(rss.peak - rss.start) / mb:.0f} MB above its start"


# -- the CLI -------------------------------------------------------------------------------


def test_cli_reports_every_file_without_a_traceback(tiny_weights, corpus, first_pass):
    folder = corpus["photo.jpg"].parent
    # Walking a folder takes image suffixes only, so the SVG is named on the command line.
    command = [sys.executable, "-m", "detector", "--weights", str(tiny_weights), "predict", "--json",
               str(folder), str(corpus["vector.svg"])]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start

    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr  # some files could not be scored
    records = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    assert len(done.stdout.splitlines()) == len(records) == len(EXPECTED)
    assert set(records) == set(EXPECTED)
    for name in REFUSED:
        assert records[name]["error"] == str(first_pass[name].error), name
        assert records[name]["fake_probability"] is None and records[name]["label"] is None
    for name in SCORED:
        record, result = records[name], first_pass[name].result
        assert record["error"] is None, f"{name}: {record['error']}"
        if name == "animated.gif":  # the CLI scores all of an animated GIF's frames, as a video
            assert record["kind"] == "video" and record["frames_scored"] == 3, record
            continue
        assert record["kind"] == "image", name
        assert record["fake_probability"] == result.fake_probability, name  # the same bits
        assert record["label"] == result.label and len(record["faces"]) == len(result.faces)
    assert seconds < CLI_SECONDS


# -- the app's /predict function -------------------------------------------------------------


@pytest.fixture(scope="module")
def app_predict(detector):
    """The function behind the app's /predict endpoint, from the page as built (not served)."""
    import app

    demo = app.build_demo(detector)
    (fn,) = [f.fn for f in demo.fns.values() if f.api_name == "predict"]
    return fn


def call_app(app_predict, path: Path) -> tuple[tuple, list[str], float]:
    """Calls /predict's function as Gradio does for an upload; returns its outputs, the
    warnings it showed the visitor, and the seconds it took."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        outputs = app_predict({"path": str(path), "orig_name": path.name})
    # A ResourceWarning is the garbage collector finalising something another test left
    # (an event loop), whenever it happens to run: never a message the app showed.
    shown = [str(w.message) for w in shown if not issubclass(w.category, ResourceWarning)]
    return outputs, shown, time.perf_counter() - start


@pytest.mark.parametrize("name", REFUSED)
def test_app_shows_a_clear_message_for_a_bad_file(name, app_predict, corpus, first_pass, detector):
    import app

    (verdict, overlay, details, closeups), shown, seconds = call_app(app_predict, corpus[name])

    assert verdict is None and overlay is None and details["label"] is None and closeups == []
    message = details["error"]
    # The ImageError's message, with the visitor's file name instead of the server's path.
    assert message == str(first_pass[name].error).replace(str(corpus[name]), name)
    assert shown == [message]
    assert app.explain(details, detector.card)[1] == f"### Cannot analyse this file\n{message}"
    assert seconds < SECONDS_PER_FILE


@pytest.mark.parametrize("name", SCORED)
def test_app_scores_an_odd_image(name, app_predict, corpus, first_pass):
    import app

    (verdict, overlay, details, closeups), shown, seconds = call_app(app_predict, corpus[name])

    assert details["error"] is None, f"{name}: {details['error']}"
    assert shown == []
    result = first_pass[name].result
    assert details["fake_probability"] == result.fake_probability  # the same bits as predict()
    bars = {f"face {i}": face.fake_probability for i, face in enumerate(result.faces, 1)}
    assert verdict == (bars or app.NO_FACE_BARS)
    assert cv2.imread(overlay).ndim == 3  # a PNG of this answer's own (app_common.answer_picture)
    # Each face up close for the page (its state, not the API), captioned as the overlay tags it.
    assert [caption for _, caption in closeups] == [render.tag_text(face, i) for i, face in enumerate(result.faces, 1)]
    assert all(cv2.imread(picture).shape == (render.CLOSEUP_SIDE, render.CLOSEUP_SIDE, 3) for picture, _ in closeups)
    assert seconds < SECONDS_PER_FILE, f"{name} took {seconds:.1f} s"


def test_several_photos_give_each_odd_file_the_verdict_the_detector_gives_it(detector, corpus, first_pass):
    """The whole corpus dropped at once on the "Several photos" tab: the first ``MAX_PHOTOS``
    scored, each as ``Detector.predict`` scores it alone, or refused with its own message."""
    import app
    from app_batch import MAX_PHOTOS

    demo = app.build_demo(detector)
    (score_photos,) = [f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", None) == "score_photos"]
    names = list(corpus)
    assert len(names) > MAX_PHOTOS  # so that the cut is tested too

    class NoBar:  # what gr.Progress does outside a request: nothing
        def tqdm(self, iterable, **_):
            return iterable

    start = time.perf_counter()
    rows, pictures, status, download, bundle = score_photos([str(corpus[name]) for name in names], progress=NoBar())
    assert time.perf_counter() - start < SECONDS_PER_FILE * MAX_PHOTOS
    assert [row[0] for row in rows] == names[:MAX_PHOTOS]
    with open(download["value"], encoding="utf-8-sig", newline="") as table:  # the same rows, as the CLI's CSV
        assert [(r[0], r[2]) for r in list(csv.reader(table))[1:]] == [(row[0], row[1]) for row in rows]
    for (name, verdict, probability, _, details) in rows:
        outcome = first_pass[name]
        if outcome.error is not None:
            assert verdict == "error" and details == str(outcome.error).replace(str(corpus[name]), name)
        else:
            assert verdict == outcome.result.label, name
            p = outcome.result.fake_probability
            assert probability == ("" if p is None else percent(p)), name
    assert len(pictures) == sum(first_pass[name].error is None for name in names[:MAX_PHOTOS])
    with zipfile.ZipFile(bundle["value"]) as zipped:  # the same table, and an overlay for each picture shown
        assert zipped.read("photos.csv") == Path(download["value"]).read_bytes()
        assert len(zipped.namelist()) == 1 + len(pictures)
    assert f"Only the first {MAX_PHOTOS} of the {len(names)} photos dropped were scored" in status


# -- integrity: what test_pipeline.py leaves out ---------------------------------------------


def copy_weights(tiny_weights: Path, folder: Path) -> Path:
    shutil.copytree(tiny_weights, folder, ignore=shutil.ignore_patterns("run", "cache"))
    return folder


def test_card_with_an_edited_sha256_is_refused(tiny_weights, tmp_path):
    folder = copy_weights(tiny_weights, tmp_path / "w")
    card = ModelCard.load(folder)
    card.sha256 = "0" * 64  # the weights are untouched: the card no longer vouches for them
    card.save(folder)
    with pytest.raises(WeightsError, match=r"model\.keras has sha256 .* expects 000000000000.*python train\.py"):
        Detector.load(folder)


def test_model_with_python_code_is_refused_by_safe_mode(tiny_weights, tmp_path):
    import keras

    folder = copy_weights(tiny_weights, tmp_path / "w")
    card = ModelCard.load(folder)
    size = card.input_size
    # A Lambda layer stores marshalled Python bytecode: loading it would run foreign code.
    inputs = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Lambda(lambda x: x * 1.0)(inputs))
    keras.Model(inputs, keras.layers.Dense(1)(pooled)).save(folder / "model.keras")
    card.sha256 = sha256_of(folder / "model.keras")  # an attacker who can write the card, too
    card.save(folder)

    with pytest.raises(WeightsError, match=r"cannot load weights .*model\.keras.*Lambda.*python train\.py"):
        Detector.load(folder)
