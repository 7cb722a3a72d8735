"""The demo's contract: `python app.py` serves /predict and /predict_video to gradio_client, bad
files get clear messages, a photo or clip without a face gets no verdict, one number convention
holds on the whole page, the About tab is the model card for people, a busy port is named, and
no event but /predict and /predict_video is an API endpoint.

The app runs as `python app.py` in a subprocess, as a user starts it, on the shipped weights
when they exist and on the tiny test model otherwise: face counts come from the face finder,
and the contract (confidences summing to 1, one detail per face) holds for any model.
"""

from __future__ import annotations

import json
import struct
import urllib.request
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.bench import free_port, start_app, stop_app, tail
import gradio as gr
from gradio.processing_utils import get_upload_folder
from gradio_client import Client, handle_file
from conftest import EXAMPLES, REPO
from detector.card import CHANGED_SECTION, UNCHANGED, ModelCard
from detector.render import Mark, tag_text
from detector.wording import percent
import videos


SHIPPED = REPO / "weights"
CARD = ModelCard(input_size=32, face_margin=1.3, threshold=0.6, uncertain_band=(0.5, 0.7))
TWO_FACES = EXAMPLES / "facerec_obama_and_biden.jpg"


def app_weights(tiny_weights: Path) -> Path:
    """The shipped weights once they are trained, else the tiny test model."""
    return SHIPPED if (SHIPPED / "model_card.json").is_file() else tiny_weights


@pytest.fixture(scope="module")
def served(tiny_weights, tmp_path_factory):
    """`python app.py` on a free loopback port: yields (url, weights folder, its log file)."""
    weights = app_weights(tiny_weights)
    port = free_port()
    with open(tmp_path_factory.mktemp("app") / "app.log", "w+") as log:
        proc = start_app(str(weights), port, log)
        try:
            yield f"http://127.0.0.1:{port}/", weights, log
        finally:
            stop_app(proc)


@pytest.fixture(scope="module")
def client(served):
    return Client(served[0], verbose=False)


def png_claiming(width: int, height: int) -> bytes:
    """A 68-byte PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 7)) + chunk(b"IEND", b"")


def test_predict_scores_every_face_of_a_group_photo(client):
    label, overlay, details = client.predict(handle_file(str(TWO_FACES)), api_name="/predict")

    photo = cv2.imread(str(TWO_FACES))
    drawn = cv2.imread(overlay)
    assert drawn is not None, f"overlay {overlay} is not an image"
    assert drawn.shape[1] / drawn.shape[0] == pytest.approx(photo.shape[1] / photo.shape[0], rel=0.01)

    assert details["error"] is None and details["label"] in ("fake", "real", "uncertain")
    # Obama, Biden, and a girl at the bottom right looking down (bench/face_finders.py).
    assert len(details["faces"]) == 3, f"expected three faces, got boxes {[f['box'] for f in details['faces']]}"
    for face in details["faces"]:
        assert len(face["box"]) == 4 and 0.0 <= face["fake_probability"] <= 1.0
    assert details["fake_probability"] == max(f["fake_probability"] for f in details["faces"])
    assert ("reason" in details) == (details["label"] == "uncertain")
    # The bars: each face's fake probability, under the face's number.
    bars = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert bars == {f"face {i}": f["fake_probability"] for i, f in enumerate(details["faces"], 1)}


def test_the_page_s_own_overlay_dropped_back_is_named_as_its_drawing(client):
    # Scored again, a downloaded overlay's faces carry the painted heat map, an edit the network
    # sees: the answer says whose picture it is, beside the verdict.
    from detector.provenance import DRAWN

    _, overlay, details = client.predict(handle_file(str(TWO_FACES)), api_name="/predict")
    assert "declared" not in details
    _, _, again = client.predict(handle_file(overlay), api_name="/predict")
    assert again["declared"] == {"says": DRAWN, "evidence": "the detector's mark in its PNG text"}


def test_one_number_convention_for_a_face_on_its_tag_its_row_its_bar_and_in_the_json(client):
    import app

    label, _, details = client.predict(handle_file(str(TWO_FACES)), api_name="/predict")
    rows, status = app.explain(details, CARD)
    bars = {c["label"]: c["confidence"] for c in label["confidences"]}
    for number, (face, row) in enumerate(zip(details["faces"], rows), 1):
        shown = percent(face["fake_probability"])  # the JSON's value as the page writes it
        assert row[2] == shown and row[1] == face["label"]
        assert tag_text(Mark(tuple(face["box"]), face["fake_probability"], face["label"]), number) == \
            f"{number}: {face['label']} ({shown} fake)"
        assert percent(bars[f"face {number}"]) == shown  # Gradio draws round(p * 100)%
    assert f"the highest fake probability is {percent(details['fake_probability'])}" in status


def test_a_photo_without_a_face_gets_no_verdict(client, tmp_path, served):
    import app

    path = tmp_path / "landscape.png"
    ramp = np.linspace(0, 255, 160, dtype=np.uint8)
    cv2.imwrite(str(path), np.dstack([np.tile(ramp, (120, 1))] * 3))
    label, overlay, details = client.predict(handle_file(str(path)), api_name="/predict")

    assert details["label"] == "no face" and details["fake_probability"] is None and details["faces"] == []
    assert "no face found" in details["reason"] and details["error"] is None
    assert 0.0 <= details["whole_image"]["fake_probability"] <= 1.0  # kept aside, not a verdict
    assert label["label"] == "no face found" and not label.get("confidences"), "no bars without a face"
    assert cv2.imread(overlay).shape[:2] == (120, 160)
    rows, status = app.explain(details, CARD)
    assert rows == [] and status.startswith("### Verdict: no face found")
    for verdict in ("fake", "real", "uncertain"):
        assert f"Verdict: {verdict}" not in status
    assert CARD.unseen_summary() in status


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("notes.txt", b"just some text, not a photo\n", "is text, not an image"),
        ("empty.jpg", b"", "is empty"),
        ("bomb.png", png_claiming(60_000, 60_000), "60000x60000"),
    ],
    ids=["text", "empty", "huge-header"],
)
def test_bad_files_get_a_clear_message_and_no_result(client, tmp_path, name, content, says):
    import app

    path = tmp_path / name
    path.write_bytes(content)
    label, overlay, details = client.predict(handle_file(str(path)), api_name="/predict")

    assert label in (None, {}) or not label.get("confidences")
    assert overlay is None
    assert says in details["error"] and f"'{name}'" in details["error"], details["error"]
    assert "Traceback" not in details["error"] and get_upload_folder() not in details["error"]
    rows, status = app.explain(details, CARD)
    assert rows == [] and status.startswith("### Cannot analyse this file") and says in status


def test_the_server_keeps_serving_after_bad_files_and_logs_no_traceback(client, served, tmp_path):
    (tmp_path / "junk.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    _, _, details = client.predict(handle_file(str(tmp_path / "junk.jpg")), api_name="/predict")
    assert "not a recognised image" in details["error"]
    _, overlay, details = client.predict(handle_file(str(TWO_FACES)), api_name="/predict")
    assert details["error"] is None and Path(overlay).is_file()
    assert "Traceback" not in tail(served[2], chars=1_000_000)


def test_only_predict_and_predict_video_are_api_endpoints(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert sorted(api["named_endpoints"]) == ["/predict", "/predict_video"]
    assert api["unnamed_endpoints"] == {}
    for name in ("/predict", "/predict_video"):
        params = api["named_endpoints"][name]["parameters"]
        assert len(params) == 1 and len(api["named_endpoints"][name]["returns"]) == 3


def test_about_tab_is_the_model_card_for_people(served):
    url, weights, _ = served
    with urllib.request.urlopen(url + "config", timeout=10) as reply:
        config = json.load(reply)
    about = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "about")["props"]["value"]
    card = ModelCard.load(weights)
    assert about.strip() == card.to_markdown().strip()
    assert card.sha256 in about and f"{card.threshold:.3f}" in about
    assert "{'" not in about and "```json" not in about, "tables, not dict dumps"
    assert "--out" not in about and "/tmp/" not in about and "/work/" not in about, "no machine paths"
    assert card.unseen_summary() in about


def test_status_states_the_verdict_the_rule_why_faces_are_uncertain_and_what_the_model_has_seen():
    import app

    small = "face too small to judge (30 px)"
    details = {
        "fake_probability": 0.65,
        "label": "uncertain",
        "reason": f"faces 2 and 3: {small}",
        "faces": [
            {"box": [10, 20, 30, 30], "fake_probability": 0.2, "label": "real"},
            {"box": [90, 20, 30, 30], "fake_probability": 0.55, "label": "uncertain", "reason": small},
            {"box": [150, 20, 30, 30], "fake_probability": 0.65, "label": "uncertain", "reason": small},
        ],
        "error": None,
    }
    rows, status = app.explain(details, CARD)
    assert status.startswith("### Verdict: uncertain")
    assert "3 faces found; the highest fake probability is 65% (face 3)" in status
    assert "called fake from a fake probability of 60%; between 50% and 70% it is uncertain" in status
    assert f"**Uncertain:** faces 2 and 3: {small}." in status and "face 1" not in status
    assert CARD.unseen_summary() in status
    assert rows == [
        ["1", "real", "20%", "", "10, 20, 30 × 30"],
        ["2", "uncertain", "55%", small, "90, 20, 30 × 30"],
        ["3", "uncertain", "65%", small, "150, 20, 30 × 30"],
    ]
    assert app.explain({}, CARD) == ([], app.EMPTY_STATUS)


def test_a_fake_or_real_verdict_says_how_often_the_other_kind_gets_it_and_uncertain_does_not():
    import app
    from app_batch import batch_status

    tested = {"test": {"sets": {
        "dfdc_faces": {"real_called_fake": 0.0098, "fake_called_real": 0.384},
        "ffhq_stylegan": {"real_called_fake": 0.1233, "fake_called_real": 0.1},
        "sfhq_t2i": {"real_called_fake": None, "fake_called_real": 0.02},  # fakes only: no real to call fake
        "sfhq_t2i + utkface_wild_crops": {"real_called_fake": 0.5, "fake_called_real": 0.9},
        "utkface_wild_crops": {"real_called_fake": 0.0, "fake_called_real": None}}}}
    changed = {UNCHANGED: {"dfdc_faces": {"reals called fake": 0.01, "fakes called real": 0.38}},
               "skin smoothed": {"dfdc_faces": {"reals called fake": 0.2, "fakes called real": 0.1}}}
    card = ModelCard(input_size=32, face_margin=1.3, threshold=0.6, uncertain_band=(0.5, 0.6), metrics=tested,
                     extra={CHANGED_SECTION: changed})
    smoothed = ("Real photos changed after they were taken are called fake more often: skin smoothed, 20% of "
                "dfdc_faces's real test photos (1% unchanged).")
    called_fake = ("Real faces are called fake too: 12% of the real test faces of ffhq_stylegan, "
                   "and at most 1% of each other set's (the About tab lists them).")  # a pool repeats its sets' faces
    called_real = ("Fake faces are called real too: 38% of the fake test faces of dfdc_faces, "
                   "and at most 10% of each other set's (the About tab lists them).")
    assert card.also_given("fake") == called_fake and card.also_given("real") == called_real
    face = {"box": [10, 20, 30, 30], "fake_probability": 0.9, "label": "fake"}
    answers = {verdict: {"fake_probability": p, "label": verdict, "error": None,
                         "faces": [{**face, "fake_probability": p, "label": verdict}]}
               for verdict, p in (("fake", 0.9), ("real", 0.1), ("uncertain", 0.55))}
    statuses = {verdict: app.explain(answer, card)[1] for verdict, answer in answers.items()}
    assert called_fake in statuses["fake"] and called_real not in statuses["fake"]
    assert f"{called_fake}\n\n{smoothed}" in statuses["fake"] and smoothed not in statuses["real"]
    assert called_real in statuses["real"] and called_fake not in statuses["real"]
    assert "are called" not in statuses["uncertain"]
    records = [{"path": f"{verdict}.jpg", "kind": "image", **answer} for verdict, answer in answers.items()]
    assert called_fake in batch_status(records, 3, card) and called_real in batch_status(records, 3, card)
    assert called_fake not in batch_status(records[1:], 2, card) and smoothed in batch_status(records, 3, card)
    assert CARD.also_given("fake") == "" and "are called" not in app.explain(answers["fake"], CARD)[1]


def test_a_clip_s_verdict_says_how_often_the_other_kind_gets_it_from_the_video_calibration():
    from dataclasses import replace

    from app_video import explain_video
    from detector.pooling import CARD_KEY, TESTED, VideoCalibration

    tested = {TESTED["fake"]: {"dfdc_faces": 0.012, "ffhq_stylegan": 0.082, "lfw_faceswap": 0.021},
              TESTED["real"]: {"dfdc_faces": 0.41, "ffhq_stylegan": 0.2}}
    fitted = VideoCalibration("mean", 1.0, 0.0, 0.6, (0.5, 0.6), CARD.sha256, tuple(CARD.scoring_views), tested=tested)
    card = replace(CARD, extra={CARD_KEY: fitted.card_block()})  # as video-eval stores it
    frames = [{"t": 0.5 * k, "box": [0, 0, 50, 50], "fake_probability": 0.9} for k in range(4)]
    track = {"id": 1, "fake_probability": 0.9, "label": "fake", "first_s": 0.0, "last_s": 1.5, "frames": frames}
    clip = {"kind": "video", "fake_probability": 0.9, "label": "fake", "duration_s": 2.0, "frames_scored": 4,
            "tracks": [track], "error": None}
    called_fake = ("Real clips are called fake too: 8% of the real test clips of ffhq_stylegan, "
                   "and at most 2% of each other set's (the About tab lists them).")
    assert called_fake in explain_video(clip, card)[2]
    real = {**clip, "fake_probability": 0.1, "label": "real",
            "tracks": [{**track, "fake_probability": 0.1, "label": "real"}]}
    assert ("Fake clips are called real too: 41% of the fake test clips of dfdc_faces, and at most 20%"
            in explain_video(real, card)[2])
    unsure = {**clip, "fake_probability": 0.55, "label": "uncertain",
              "tracks": [{**track, "fake_probability": 0.55, "label": "uncertain",
                          "reason": "fake probability in the uncertain band"}]}
    assert "are called" not in explain_video(unsure, card)[2]
    assert "are called" not in explain_video(clip, CARD)[2]  # no video calibration: no clip figures


def test_a_busy_port_is_named_with_the_way_out(capsys):
    import socket

    import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert app.main(["--host", "127.0.0.1", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err and "--port" in err and "Traceback" not in err


def test_host_port_and_weights_default_to_the_environment(monkeypatch):
    import app

    for name in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "DETECTOR_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    args = app.parse_args([])
    assert (args.host, args.port, args.weights) == ("127.0.0.1", 7860, None)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    monkeypatch.setenv("DETECTOR_WEIGHTS", "/some/run")
    args = app.parse_args([])
    assert (args.host, args.port, args.weights, args.share) == ("0.0.0.0", 8123, "/some/run", False)
    args = app.parse_args(["--host", "10.0.0.1", "--port", "9000", "--weights", "w", "--share"])
    assert (args.host, args.port, args.weights, args.share) == ("10.0.0.1", 9000, "w", True)


def test_missing_weights_stop_the_app_with_the_command_to_make_them(tmp_path, capsys):
    import app

    assert app.main(["--weights", str(tmp_path), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "python train.py" in err and "Traceback" not in err


@pytest.mark.skipif(not videos.HAVE_FACES, reason="../shared/data and ../shared/examples not present")
def test_predict_video_follows_both_faces_and_draws_the_most_suspicious_frame(client, tmp_path):
    from app_video import explain_video

    clip = videos.two_faces(tmp_path / "two people.mp4", seconds=4.0)
    label, overlay, details = client.predict(handle_file(str(clip)), api_name="/predict_video")

    bars = {c["label"]: c["confidence"] for c in label["confidences"]}  # each face's fake probability
    assert bars == pytest.approx({f"face {t['id']}": t["fake_probability"] for t in details["tracks"]})
    assert details["fake_probability"] in bars.values()
    assert details["error"] is None and details["kind"] == "video" and details["frames_scored"] == 8
    judged = [t for t in details["tracks"] if not t.get("reason", "").startswith("too few")]
    assert len(judged) >= 2, details["tracks"]  # the two people in front (and the girl at the edge, if found)
    assert cv2.imread(overlay).shape[:2] == (360, 640)
    assert Path(overlay).name.startswith("two_people-most-suspicious-frame-")  # named after the visitor's clip

    plot, rows, status = explain_video(details, CARD)
    drawn = [line for line in plot.axes[0].lines if line.get_marker() == "o"]
    assert [len(line.get_xdata()) for line in drawn] == [len(t["frames"]) for t in details["tracks"]]
    assert [r[0] for r in rows] == [str(t["id"]) for t in details["tracks"]]
    assert status.startswith(f"### Verdict: {details['label']}") and "followed through 8 frames of a 4.0 s clip" in status


def test_a_bad_video_gets_a_clear_message_and_no_result(client, tmp_path):
    from app_video import explain_video

    path = tmp_path / "holiday.mp4"
    path.write_text("this was never a video\n")
    label, overlay, details = client.predict(handle_file(str(path)), api_name="/predict_video")
    assert overlay is None and (label in (None, {}) or not label.get("confidences"))
    assert "'holiday.mp4' is text, not a video" in details["error"] and get_upload_folder() not in details["error"]
    plot, rows, status = explain_video(details, CARD)
    assert plot is None and rows == [] and status.startswith("### Cannot analyse this file")


def test_a_video_without_a_face_says_so_and_gives_no_verdict(client, tmp_path):
    from app_video import explain_video

    label, overlay, details = client.predict(handle_file(str(videos.no_face(tmp_path / "sky.mp4"))),
                                             api_name="/predict_video")
    assert label["label"] == "no face found" and not label.get("confidences") and overlay is None
    assert details["label"] == "no face" and details["fake_probability"] is None
    plot, rows, status = explain_video(details, CARD)
    assert plot is None and rows == []
    assert status.startswith("### Verdict: no face found") and "so it gives no verdict" in status


def test_video_status_gives_the_rule_and_why_a_face_is_uncertain():
    from app_video import EMPTY_STATUS, explain_video

    frames = [{"t": 0.5 * k, "box": [0, 0, 50, 50], "fake_probability": 0.3} for k in range(4)]
    details = {"kind": "video", "fake_probability": 0.3, "label": "uncertain", "duration_s": 12.0, "frames_scored": 24,
               "tracks": [{"id": 1, "fake_probability": 0.3, "label": "real", "first_s": 0.0, "last_s": 1.5,
                           "frames": frames},
                          {"id": 2, "fake_probability": 0.65, "label": "uncertain", "first_s": 3.0, "last_s": 3.0,
                           "frames": frames[:1], "reason": "too few frames with this face to judge (1 of 24)"}],
               "note": "only the first 60 s were scored", "error": None}
    plot, rows, status = explain_video(details, CARD)
    assert rows[1] == ["2", "uncertain", "65%", "too few frames with this face to judge (1 of 24)", "3 – 3", "1"]
    assert "the highest fake probability is 30% (face 1)" not in status  # the highest is face 2's
    assert "from a fake probability of 60%; between 50% and 70% it is uncertain" in status
    assert "**Uncertain:** face 2: too few frames" in status and "Note: only the first 60 s were scored." in status
    assert "What this model has seen" in status
    legend = [text.get_text() for text in plot.legends[0].get_texts()]  # the figure's, under the plot
    assert legend == ["uncertain", "fake from 60%", "face 1: real (30% fake)", "face 2: uncertain (65% fake)"]
    assert explain_video({}, CARD)[1:] == ([], EMPTY_STATUS)


def test_several_photos_each_get_the_cli_s_row_and_the_tab_counts_the_verdicts():
    from app_batch import MAX_PHOTOS, batch_status, table_row

    face = {"box": [10, 20, 50, 60], "fake_probability": 0.65, "label": "uncertain", "reason": "fake probability in the uncertain band"}
    records = [
        {"path": "a.jpg", "kind": "image", "fake_probability": 0.65, "label": "uncertain", "faces": [face], "error": None},
        {"path": "b.png", "kind": "image", "fake_probability": None, "label": "no face", "faces": [],
         "reason": "no face found: the detector judges faces, so this photo gets no verdict", "error": None},
        {"path": "c.jpg", "kind": "image", "fake_probability": None, "label": None, "faces": [],
         "error": "File 'c.jpg' is text, not an image."},
    ]
    assert [table_row(r) for r in records] == [
        ["a.jpg", "uncertain", "65%", "1", "1: uncertain (65% fake) - fake probability in the uncertain band"],
        ["b.png", "no face", "", "0", "no face found: the detector judges faces, so this photo gets no verdict"],
        ["c.jpg", "error", "", "", "File 'c.jpg' is text, not an image."],
    ]
    status = batch_status(records, 3, CARD)
    assert status.startswith("### 3 photos: 1 uncertain, 1 no face, 1 could not be scored\n")
    assert "from a fake probability of 60%; between 50% and 70% it is uncertain" in status
    assert "What this model has seen" in status and "Only the first" not in status
    assert f"Only the first 3 of the {MAX_PHOTOS + 5} photos dropped were scored" in batch_status(records, MAX_PHOTOS + 5, CARD)


def test_several_photos_download_as_the_cli_s_csv(tmp_path, monkeypatch):
    import csv

    import app_common
    from app_batch import table_file

    monkeypatch.setattr(app_common, "get_upload_folder", lambda: str(tmp_path))
    face = {"box": [10, 20, 50, 60], "fake_probability": 0.9123, "label": "fake", "reason": None}
    records = [
        {"path": "été, à Nice.jpg", "kind": "image", "fake_probability": 0.9123, "label": "fake",
         "faces": [face, face], "error": None},
        {"path": "notes.jpg", "kind": "image", "fake_probability": None, "label": None, "faces": [],
         "error": 'File "notes.jpg" is text, not an image.'},
    ]
    path = Path(table_file(records))
    assert path.parent == tmp_path / "answers" and path.name.startswith("photos-") and path.suffix == ".csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # the mark that makes Excel read UTF-8
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["path", "kind", "verdict", "fake_probability", "faces", "details"],
        ["été, à Nice.jpg", "image", "fake", "0.9123", "2", "1: fake (91% fake); 2: fake (91% fake)"],
        ["notes.jpg", "image", "error", "", "", 'File "notes.jpg" is text, not an image.'],
    ]
    assert Path(table_file(records)) != path  # each answer its own file


def test_several_photos_download_with_their_overlays_as_a_zip(tmp_path, monkeypatch):
    import zipfile

    import app_common
    from app_batch import bundle_file, table_file

    monkeypatch.setattr(app_common, "get_upload_folder", lambda: str(tmp_path))
    records = [{"path": name, "kind": "image", "fake_probability": 0.2, "label": "real", "faces": [], "error": None}
               for name in ("été.jpg", "a.jpg", "a.png", "a-2.jpg", "notes.jpg")]
    pictures = {name: app_common.answer_picture(np.full((8, 8, 3), i * 40, np.uint8), "x")
                for i, name in enumerate(("été.jpg", "a.jpg", "a.png", "a-2.jpg"))}  # notes.jpg: not drawn
    path = Path(bundle_file(records, list(pictures.items())))
    assert path.parent == tmp_path / "answers" and path.suffix == ".zip"
    with zipfile.ZipFile(path) as bundle:
        assert bundle.namelist() == ["photos.csv", "overlays/été-overlay.png", "overlays/a-overlay.png",
                                     "overlays/a-2-overlay.png", "overlays/a-2-2-overlay.png"]
        assert bundle.read("photos.csv") == Path(table_file(records)).read_bytes()  # the CSV download's own bytes
        assert bundle.read("overlays/a-2-overlay.png") == Path(pictures["a.png"]).read_bytes()


def test_an_unreadable_photo_among_several_is_named_as_the_visitor_named_it(tmp_path):
    from app_batch import score_one

    upload = tmp_path / "gradio-cache-7f3a" / "notes.jpg"
    upload.parent.mkdir()
    upload.write_text("shopping list\n")
    record, picture = score_one(None, {"path": str(upload), "orig_name": "holiday.jpg"})  # never reaches a model
    assert picture is None and record["label"] is None and record["path"] == "holiday.jpg"
    assert "'holiday.jpg' is text, not an image" in record["error"] and str(upload) not in record["error"]


def test_two_answers_with_the_same_picture_do_not_share_a_file(served):
    # Handed arrays, Gradio wrote each picture to a file named after its bytes, in place: two
    # visitors who clicked the same example shared the file, and one download could be cut off
    # while the other answer rewrote it (bench/load.py on one photo: 6 of 200).
    client = Client(served[0], verbose=False, download_files=False)
    first, second = (client.predict(handle_file(str(TWO_FACES)), api_name="/predict")[1] for _ in range(2))
    assert first["path"] != second["path"] and Path(first["path"]).name.startswith(f"{TWO_FACES.stem}-overlay-")
    with urllib.request.urlopen(first["url"]) as reply, urllib.request.urlopen(second["url"]) as other:
        assert reply.read() == other.read()  # the same picture, each in a file of its own


def test_every_example_outlives_gradio_s_cache_clean_up(tiny_weights, tmp_path, monkeypatch):
    # A Space serves for days, and delete_cache empties Gradio's cache of old files every minute.
    # The Video tab's clip (a gr.File example, whose copy Gradio does not keep) was removed two
    # minutes after the start: clicked then, it answered "File 'two_scenes.mp4' does not exist".
    import app
    from detector.pipeline import Detector
    from gradio.route_utils import delete_files_created_by_app

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    demo = app.build_demo(Detector.load(tiny_weights))
    delete_files_created_by_app(demo, None)  # what delete_cache runs on its schedule (None: of any age)
    loaders = [f for f in demo.fns.values() if getattr(f.fn, "__name__", None) == "load_example"]
    assert len(loaders) == 2  # the Detector tab's photos, the Video tab's clip
    for loader in loaders:
        examples = loader.inputs[0]
        for index in range(len(examples.raw_samples)):
            handed = loader.fn(examples.preprocess(index))["value"]["path"]  # what a click hands the box
            assert Path(handed).is_file(), f"example {index} of {type(loader.outputs[0]).__name__}: {handed}"


def test_no_picture_offers_to_post_a_visitor_s_photo_to_hugging_face(tiny_weights):
    # Gradio's "share" button uploads the picture to post it in the Space's public discussions.
    import app
    from detector.pipeline import Detector

    demo = app.build_demo(Detector.load(tiny_weights))
    pictures = [b for b in demo.blocks.values() if isinstance(b, (gr.Image, gr.Gallery))]
    assert len(pictures) == 6  # the photo, its overlay and close-ups, the photos' overlays, the frame and its faces
    for picture in pictures:
        assert "share" not in picture.buttons, (picture.label, picture.buttons)
    assert all("download" in p.buttons for p in pictures if p.elem_id != "photo")


def test_an_answer_s_pictures_are_png_files_of_its_own_in_gradio_s_cache(tmp_path, monkeypatch):
    from app_common import MAX_NAME, answer_picture, closeup_files

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    picture = np.zeros((4, 6, 3), np.uint8)
    picture[1, 2] = (255, 128, 0)
    first, second = answer_picture(picture, "my photo/..-overlay"), answer_picture(picture, "")
    assert Path(first).name.startswith("my_photo_..-overlay-") and Path(second).name.startswith("answer-")
    assert first != second and Path(first).parent == Path(second).parent == tmp_path / "cache" / "answers"
    assert Path(first).suffix == ".png" and np.array_equal(cv2.imread(first)[..., ::-1], picture)
    long = answer_picture(picture, "x" * 250 + "-overlay")  # a visitor's file may have a 250-byte name
    assert Path(long).name.startswith("x" * (MAX_NAME - len("-overlay")) + "-overlay-")  # the end says what it is
    (face, caption), = closeup_files([(picture, "1: real (3% fake)")], "IMG_0001")
    assert Path(face).name.startswith("IMG_0001-face-1-") and caption == "1: real (3% fake)"


def test_what_a_file_s_metadata_declares_comes_back_beside_the_verdict(client, tmp_path):
    from test_provenance import png

    made = tmp_path / "made.png"
    made.write_bytes(png(parameters="a face\nSteps: 20, Sampler: Euler a"))
    details = client.predict(handle_file(str(made)), api_name="/predict")[2]
    assert details["declared"] == {"says": "generated by AI",
                                   "evidence": "Stable Diffusion web UI generation parameters, in its PNG text"}
    assert "declared" not in client.predict(handle_file(str(TWO_FACES)), api_name="/predict")[2]
