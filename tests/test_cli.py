"""The command line as a user meets it: the JSON contract and exit status, a table that
stays aligned and gives every reason, progress on a terminal's stderr only, and a quick
``--help`` without TensorFlow or its start-up notices."""

import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import EXAMPLES, REPO
from detector.wording import percent

#: What TensorFlow prints at start-up when nothing filters it.
TF_NOTICES = ("absl::InitializeLog", "oneDNN", "cuInit", "cuda drivers", "cpu_feature_guard", "XNNPACK delegate")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "detector", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_set):
    folder = tmp_path_factory.mktemp("inputs")
    nested = folder / "nested"
    nested.mkdir()
    (nested / "face.jpg").write_bytes((tiny_set / "real" / "test_0.png").read_bytes())
    (folder / "fake.jpg").write_bytes((tiny_set / "fake" / "test_0.png").read_bytes())
    (folder / "notes.txt").write_text("not walked: not an image suffix")
    bad = folder / "broken.png"
    bad.write_text("<html>this is not a png</html>")
    flat = np.full((40, 60, 3), 90, np.uint8)  # no face in it
    cv2.imwrite(str(folder / "flat.png"), flat)
    return folder


def test_predict_json_contract_and_exit_status(tiny_weights, inputs):
    done = run_cli("--weights", tiny_weights, "predict", "--json", inputs, inputs / "missing.jpg")
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    paths = [r["path"] for r in records]
    assert paths == [str(inputs / "broken.png"), str(inputs / "fake.jpg"), str(inputs / "flat.png"),
                     str(inputs / "nested" / "face.jpg"), str(inputs / "missing.jpg")]
    for r in records:
        assert {"path", "fake_probability", "label", "faces", "error"} <= set(r)
        assert ("reason" in r) == (r["label"] in ("uncertain", "no face")), r
    broken, fake, flat, face, missing = records
    assert broken["error"] and broken["fake_probability"] is None and broken["label"] is None
    assert missing["error"] and "does not exist" in missing["error"]
    assert flat["label"] == "no face" and flat["fake_probability"] is None and flat["faces"] == []
    assert "no face found" in flat["reason"] and 0 <= flat["whole_image"]["fake_probability"] <= 1
    for ok in (fake, face):
        assert ok["error"] is None and ok["label"] in ("fake", "real", "uncertain", "no face")
        if ok["faces"]:
            assert ok["fake_probability"] == max(f["fake_probability"] for f in ok["faces"])
        else:
            assert ok["label"] == "no face" and ok["fake_probability"] is None
    assert not any(notice in done.stderr for notice in TF_NOTICES), done.stderr


def test_csv_has_the_table_s_rows_for_a_spreadsheet(tiny_weights, inputs):
    import csv

    from detector.wording import record_cells

    as_json = run_cli("--weights", tiny_weights, "predict", "--json", inputs)
    as_csv = run_cli("--weights", tiny_weights, "predict", "--csv", inputs)
    assert as_csv.returncode == as_json.returncode == 1, as_csv.stderr  # broken.png is no image
    header, *rows = csv.reader(as_csv.stdout.splitlines())
    assert header == ["path", "kind", "verdict", "fake_probability", "faces", "details"]
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(rows) == len(records) == 4
    for row, record in zip(rows, records):
        verdict, _, faces, details = record_cells(record)
        p = record["fake_probability"]
        assert row == [record["path"], record["kind"], verdict, "" if p is None else repr(p), faces, details]
    assert any("," in row[-1] or ";" in row[-1] for row in rows)  # details with commas stay one cell
    assert run_cli("predict", "--json", "--csv", inputs).returncode == 2


def test_a_folder_of_iphone_photos_is_scored(tiny_weights, tiny_set, tmp_path):
    import pillow_heif  # writes the test's HEIC files; the detector reads them with pi-heif

    face = cv2.imread(str(tiny_set / "real" / "test_0.png"))[..., ::-1]
    for name in ("IMG_0001.HEIC", "IMG_0002.heic"):  # as iPhones name them, and lower case
        pillow_heif.from_bytes("RGB", (face.shape[1], face.shape[0]), face.tobytes()).save(tmp_path / name)
    done = run_cli("--weights", tiny_weights, "predict", "--json", tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(r["path"]).name for r in records] == ["IMG_0001.HEIC", "IMG_0002.heic"]
    assert all(r["error"] is None and r["kind"] == "image" for r in records), records


def test_overlays_draw_each_image_under_its_path_without_changing_a_verdict(tiny_weights, inputs, tmp_path):
    from detector.overlay_files import overlay_path

    plain = run_cli("--weights", tiny_weights, "predict", "--json", inputs)
    drawn = run_cli("--weights", tiny_weights, "predict", "--json", "--overlays", tmp_path / "ov", inputs)
    assert drawn.returncode == plain.returncode == 1, drawn.stderr  # broken.png
    records = [json.loads(line) for line in drawn.stdout.splitlines()]
    assert [{k: v for k, v in r.items() if k != "overlay"} for r in records] == \
        [json.loads(line) for line in plain.stdout.splitlines()]
    for record in records:
        if record["error"]:
            assert "overlay" not in record
            continue
        assert record["overlay"] == str(overlay_path(tmp_path / "ov", record["path"]))
        picture, photo = cv2.imread(record["overlay"]), cv2.imread(record["path"])
        assert picture.shape == photo.shape and (picture != photo).any(), "the photo, with its verdicts drawn"
    assert sorted(p.name for p in (tmp_path / "ov").rglob("*.png")) == ["face.jpg.png", "fake.jpg.png", "flat.png.png"]


def test_the_table_gives_every_verdict_its_reason_and_the_json_s_numbers(tiny_weights, inputs):
    table = run_cli("--weights", tiny_weights, "predict", inputs, inputs / "missing.jpg")
    records = [json.loads(line) for line in run_cli("--weights", tiny_weights, "predict", "--json", inputs,
                                                     inputs / "missing.jpg").stdout.splitlines()]
    header, *rows = table.stdout.splitlines()
    assert header.split()[:5] == ["path", "verdict", "fake", "prob.", "faces"] and header.endswith("details")
    assert len(rows) == len(records)
    for row, record in zip(rows, records):
        assert row.startswith(record["path"] + " ")
        if record["error"]:
            assert row.endswith(record["error"]) and " error " in row
        elif record["faces"]:
            assert f" {percent(record['fake_probability'])} " in row
            for i, face in enumerate(record["faces"], 1):
                assert f"{i}: {face['label']} ({percent(face['fake_probability'])} fake)" in row
                if face["label"] == "uncertain":
                    assert face["reason"] in row
        else:
            assert " no face " in row and row.endswith(record["reason"])


def test_long_paths_keep_the_table_aligned(tiny_weights, inputs, tmp_path):
    deep = tmp_path / ("a folder with a rather long name, " * 3).strip() / "and another level"
    deep.mkdir(parents=True)
    shutil.copy(inputs / "fake.jpg", deep / "face.jpg")
    done = run_cli("--weights", tiny_weights, "predict", inputs / "fake.jpg", deep / "face.jpg")
    header, *rows = done.stdout.splitlines()
    column = header.index("verdict")
    assert column == len(str(deep / "face.jpg")) + 2  # as wide as the longest path
    for row in rows:  # every verdict in the column under its title
        assert row[column - 2:column] == "  " and re.match(r"(fake|real|uncertain|no face) ", row[column:]), done.stdout


def test_progress_goes_to_a_terminal_s_stderr_between_whole_rows(tiny_weights, tiny_set, tmp_path):
    """Rows and progress bar on one terminal, as a user runs it: every row reads whole."""
    for i in range(24):
        shutil.copy(tiny_set / "real" / f"test_{i % 8}.png", tmp_path / f"photo_{i:02d}.png")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # 40 rows, 160 columns
    proc = subprocess.Popen([sys.executable, "-m", "detector", "--weights", str(tiny_weights), "predict", str(tmp_path)],
                            cwd=REPO, stdout=slave, stderr=slave)
    os.close(slave)
    screen = b""
    while True:
        if select.select([master], [], [], 60)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = screen.decode()
    assert "img/s" in text or "img]" in text, "a progress bar was drawn"
    # What stays on the screen: each line as its last carriage return left it.
    visible = [line.rsplit("\r", 1)[-1].rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    visible = [line for line in visible if line]
    rows = [line for line in visible if "photo_" in line]
    assert len(rows) == 24 and all(line.startswith(str(tmp_path / "photo_")) for line in rows), visible
    assert not [line for line in visible if "%|" in line], "no stale copies of the bar between rows"


def test_no_progress_bar_when_stderr_is_not_a_terminal(tiny_weights, tiny_set, tmp_path):
    for i in range(24):
        shutil.copy(tiny_set / "real" / f"test_{i % 8}.png", tmp_path / f"photo_{i:02d}.png")
    done = run_cli("--weights", tiny_weights, "predict", tmp_path)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 25
    assert "%|" not in done.stderr and "\r" not in done.stdout + done.stderr


def test_usage_errors_exit_two(tiny_weights, tmp_path):
    assert run_cli("predict").returncode == 2
    assert run_cli("frobnicate").returncode == 2
    missing = run_cli("--weights", tmp_path, "predict", tmp_path)
    assert missing.returncode == 2 and "model card" in missing.stderr
    assert not any(notice in missing.stderr for notice in TF_NOTICES), missing.stderr


@pytest.mark.parametrize("args", [["--help"], ["predict", "--help"], ["predict"], ["frobnicate"],
                                  ["cluster-predict", "--help"], ["cluster-predict"]],
                         ids=["help", "predict help", "missing paths", "unknown command", "cluster-predict help",
                              "cluster-predict without paths"])
def test_help_and_usage_errors_import_no_tensorflow(args):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "detector", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 2)
    imported = re.findall(r"\|\s+([\w.]+)$", done.stderr, re.MULTILINE)
    assert "detector.defaults" in imported  # importtime did report
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "ray")]


def test_evaluate_writes_metrics_and_plots(tiny_weights, tiny_set, tmp_path):
    done = run_cli("--weights", tiny_weights, "evaluate", "--sets", tiny_set, "--split", "test", "--out", tmp_path,
                   "--gradcam")
    assert done.returncode == 0, done.stderr
    assert "| set | n | ROC-AUC | reals called fake | fakes called fake | fakes called real | ECE |" in done.stdout
    report = json.loads((tmp_path / "metrics.json").read_text())
    overall = report["overall"]
    assert overall["n"] == 16
    row = report["sets"][tiny_set.name]
    # Verdicts as predict gives them: the shares of each class add up, faces not found apart.
    assert row["no_face"] == 0
    assert sum(row[f"real_called_{v}"] for v in ("fake", "real", "uncertain")) == pytest.approx(1.0)
    assert 0.0 <= row["heat_in_face"] <= 1.0
    for key in ("roc_auc", "average_precision", "accuracy", "precision", "recall", "f1", "eer", "confusion"):
        assert key in overall
    assert (tmp_path / "roc.png").stat().st_size > 1000
    assert (tmp_path / f"confusion_{tiny_set.name}.png").stat().st_size > 1000
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    assert (tmp_path / f"reliability_{tiny_set.name}.png").stat().st_size > 1000


def test_predict_takes_videos_among_images_one_json_line_each(tiny_weights, tiny_set, tmp_path):
    import videos

    (tmp_path / "photo.png").write_bytes((tiny_set / "real" / "test_0.png").read_bytes())
    videos.no_face(tmp_path / "sky.webm", fourcc="VP90")
    (tmp_path / "renamed.mp4").write_text("a text file named like a video\n")
    videos.truncated(videos.no_face(tmp_path / "whole.mov"), tmp_path / "cut.mov").parent.joinpath("whole.mov").unlink()
    videos.animated_gif(tmp_path / "loop.gif", [(videos.portrait(0) // k).astype("uint8") for k in (1, 2, 3)] * 3)
    done = run_cli("--weights", tiny_weights, "predict", "--json", tmp_path)
    assert done.returncode == 1, done.stderr  # two files could not be scored; the others were
    records = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    assert list(records) == ["cut.mov", "loop.gif", "photo.png", "renamed.mp4", "sky.webm"]

    video_keys = ["path", "kind", "fake_probability", "label", "duration_s", "frames_scored", "tracks", "error", "note"]
    for name in ("cut.mov", "loop.gif", "renamed.mp4", "sky.webm"):
        assert list(records[name]) == video_keys and records[name]["kind"] == "video", name
    assert "incomplete or damaged MP4/MOV" in records["cut.mov"]["error"]
    assert "is text, not a video" in records["renamed.mp4"]["error"]
    sky = records["sky.webm"]
    assert sky["error"] is None and sky["label"] == "no face" and sky["fake_probability"] is None
    assert sky["frames_scored"] == 8 and sky["duration_s"] == pytest.approx(2.0) and sky["tracks"] == []
    loop = records["loop.gif"]
    assert loop["error"] is None and loop["frames_scored"] == 8 and loop["tracks"], loop
    assert records["photo.png"]["kind"] == "image" and "faces" in records["photo.png"]

    table = run_cli("--weights", tiny_weights, "predict", tmp_path / "sky.webm", tmp_path / "loop.gif")
    assert table.returncode == 0, table.stderr
    sky_row, loop_row = table.stdout.splitlines()[1:]
    assert sky_row.split()[1:3] == ["no", "face"] and sky_row.endswith("2.0 s, 8 frames; no face found in the 8 sampled frames")
    track = records["loop.gif"]["tracks"][0]
    assert f"0.9 s, 8 frames: 1: {track['label']} ({percent(track['fake_probability'])} fake) at 0-" in loop_row


def test_max_frames_sets_how_many_frames_of_a_video_are_scored(tiny_weights, tmp_path):
    import videos

    clip = videos.no_face(tmp_path / "sky.mp4", seconds=6.0)  # 12 frames at two a second
    counts = {}
    for most in (5, 200):
        done = run_cli("--weights", tiny_weights, "predict", "--json", "--max-frames", str(most), clip)
        assert done.returncode == 0, done.stderr
        counts[most] = json.loads(done.stdout)["frames_scored"]
    assert counts == {5: 5, 200: 12}  # fewer, spread over the clip; or every one the rate asks for


def test_overlays_draw_a_video_s_most_suspicious_frame_and_nothing_for_a_clip_without_a_face(tiny_weights, tmp_path):
    import videos
    from detector.overlay_files import overlay_path

    clips = tmp_path / "clips"
    clips.mkdir()
    first = videos.portrait(0)
    videos.animated_gif(clips / "loop.gif", [(first // k).astype("uint8") for k in (1, 2, 3)] * 3)
    videos.no_face(clips / "sky.mp4")
    plain = run_cli("--weights", tiny_weights, "predict", "--json", clips)
    drawn = run_cli("--weights", tiny_weights, "predict", "--json", "--overlays", tmp_path / "ov", clips)
    assert drawn.returncode == plain.returncode == 0, drawn.stderr
    loop, sky = map(json.loads, drawn.stdout.splitlines())
    assert [{k: v for k, v in r.items() if k != "overlay"} for r in (loop, sky)] == \
        [json.loads(line) for line in plain.stdout.splitlines()]  # the same verdicts, drawn or not
    assert loop["tracks"] and loop["overlay"] == str(overlay_path(tmp_path / "ov", loop["path"]))
    picture = cv2.cvtColor(cv2.imread(loop["overlay"]), cv2.COLOR_BGR2RGB)
    assert picture.shape == first.shape and (picture != first).any(), "a frame of the clip, with its faces drawn"
    assert sky["label"] == "no face" and "overlay" not in sky
    assert [p.name for p in (tmp_path / "ov").rglob("*.png")] == ["loop.gif.png"]


def test_one_input_at_a_time_prints_what_the_pipeline_prints(tiny_weights, inputs):
    from test_batch_scoring import assert_same_records

    lines = {workers: run_cli("--weights", tiny_weights, "predict", "--json", "--workers", workers, "--batch-size", 2,
                              inputs, inputs / "missing.jpg") for workers in (0, 3)}
    assert lines[0].returncode == lines[3].returncode == 1
    assert_same_records(*([json.loads(line) for line in lines[w].stdout.splitlines()] for w in (3, 0)))
    for bad in (["--workers", "-1"], ["--batch-size", "0"], ["--workers", "two"]):
        done = run_cli("predict", *bad, inputs)
        assert done.returncode == 2 and bad[0] in done.stderr
