"""Evaluation through the pipeline: every row, pooled ones too, counts verdicts."""

import shutil

import pytest

from detector.evaluate_sets import evaluate_sets
from detector.pipeline import Detector


def _one_label_set(tiny_set, root, label):
    """The tiny set's ``label`` images alone, as a set of its own."""
    root.mkdir()
    shutil.copytree(tiny_set / label, root / label)
    header, *rows = (tiny_set / "metadata.csv").read_text().splitlines()
    (root / "metadata.csv").write_text("\n".join([header, *(r for r in rows if f",{label}," in r)]) + "\n")
    return root


def test_pooled_and_overall_rows_count_verdicts_as_their_sets_do(tiny_weights, tiny_set, tmp_path):
    reals = _one_label_set(tiny_set, tmp_path / "reals_only", "real")
    fakes = _one_label_set(tiny_set, tmp_path / "fakes_only", "fake")
    report = evaluate_sets([str(reals), str(fakes)], "test", tmp_path / "out", detector=Detector.load(tiny_weights))
    pooled = report["sets"]["reals_only + fakes_only"]
    assert pooled["roc_auc"] is not None  # the pool holds both labels
    # The pool's fakes are fakes_only's, its reals reals_only's: the same verdict shares.
    for verdict in ("fake", "real", "uncertain"):
        assert pooled[f"fake_called_{verdict}"] == report["sets"]["fakes_only"][f"fake_called_{verdict}"]
        assert pooled[f"real_called_{verdict}"] == report["sets"]["reals_only"][f"real_called_{verdict}"]
        assert report["overall"][f"fake_called_{verdict}"] == pooled[f"fake_called_{verdict}"]
    assert sum(report["overall"][f"real_called_{v}"] for v in ("fake", "real", "uncertain")) == pytest.approx(1.0)
