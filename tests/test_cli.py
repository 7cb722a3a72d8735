import json
import subprocess
import sys

import pytest

from conftest import EXAMPLES, REPO


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
    return folder


def test_predict_json_contract_and_exit_status(tiny_weights, inputs):
    done = run_cli("--weights", tiny_weights, "predict", "--json", inputs, inputs / "missing.jpg")
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    paths = [r["path"] for r in records]
    assert paths == [str(inputs / "broken.png"), str(inputs / "fake.jpg"),
                     str(inputs / "nested" / "face.jpg"), str(inputs / "missing.jpg")]
    for r in records:
        assert {"path", "fake_probability", "label", "faces", "error"} <= set(r)
    broken, fake, face, missing = records
    assert broken["error"] and broken["fake_probability"] is None and broken["label"] is None
    assert missing["error"] and "does not exist" in missing["error"]
    for ok in (fake, face):
        assert ok["error"] is None and 0 <= ok["fake_probability"] <= 1
        assert ok["label"] in ("fake", "real", "uncertain")
        if ok["faces"]:
            assert ok["fake_probability"] == max(f["fake_probability"] for f in ok["faces"])
        else:
            assert "no face" in ok["note"]


@pytest.mark.skipif(not EXAMPLES.exists(), reason="../shared/examples not present")
def test_predict_all_scored_exits_zero_with_a_table(tiny_weights):
    done = run_cli("--weights", tiny_weights, "predict", EXAMPLES / "facerec_two_people.jpg")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split()[:3] == ["path", "verdict", "p_fake"]
    assert "facerec_two_people.jpg" in row and row.split()[-4:-3] != []


def test_usage_errors_exit_two(tiny_weights, tmp_path):
    assert run_cli("predict").returncode == 2
    assert run_cli("frobnicate").returncode == 2
    missing = run_cli("--weights", tmp_path, "predict", tmp_path)
    assert missing.returncode == 2 and "model card" in missing.stderr


def test_evaluate_writes_metrics_and_plots(tiny_weights, tiny_set, tmp_path):
    done = run_cli("--weights", tiny_weights, "evaluate", "--sets", tiny_set, "--split", "test", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "metrics.json").read_text())
    overall = report["overall"]
    assert overall["n"] == 16
    for key in ("roc_auc", "average_precision", "accuracy", "precision", "recall", "f1", "eer", "confusion"):
        assert key in overall
    assert (tmp_path / "roc.png").stat().st_size > 1000
    assert (tmp_path / f"confusion_{tiny_set.name}.png").stat().st_size > 1000
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    assert (tmp_path / f"reliability_{tiny_set.name}.png").stat().st_size > 1000
