"""Shared fixtures: tiny models and tiny labelled sets, made in code so tests run in seconds."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# The page's pictures and uploads go to Gradio's cache, which only a running server cleans: the
# tests get a folder of their own, removed when they end, instead of filling /tmp/gradio.
_GRADIO_CACHE = None if "GRADIO_TEMP_DIR" in os.environ else tempfile.mkdtemp(prefix="detector-tests-gradio-")
if _GRADIO_CACHE:
    os.environ["GRADIO_TEMP_DIR"] = _GRADIO_CACHE

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXAMPLES = SHARED / "examples"
DATA = SHARED / "data"


def _dfdc_pairs(per_split: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Real/fake pairs of DFDC faces (a fake and the real frame it was made from), resized to
    ``size`` px, aligned (most DFDC pairs are; a few are cut from different frames) and with a
    face found in both: the first in file order."""
    from detector.data import read_records
    from detector.faces import FaceFinder
    from detector.imaging import load_image

    root = DATA / "dfdc_faces"
    if not (root / "metadata.csv").is_file():
        pytest.skip(f"the labelled sets are not in {DATA}: tests that train need them")
    by_group: dict[str, dict[int, Path]] = {}
    for record in read_records(root):
        by_group.setdefault(record.group, {})[record.label] = record.path
    finder, pairs = FaceFinder(), []
    for group in sorted(by_group):
        if len(by_group[group]) < 2:
            continue
        real, fake = (cv2.resize(load_image(by_group[group][label]), (size, size), interpolation=cv2.INTER_AREA)
                      for label in (0, 1))
        border = np.ones((size, size), bool)
        border[size // 8 : -size // 8, size // 8 : -size // 8] = False
        aligned = np.abs(real.astype(int) - fake.astype(int)).mean(axis=2)[border].mean() < 8
        if aligned and finder.find(real) and finder.find(fake):
            pairs.append((real, fake))
        if len(pairs) == 3 * per_split:
            break
    return pairs


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> Path:
    """A labelled set in the public layout with metadata.csv: 8 DFDC real/fake pairs per split
    at 64 px (PNG, so the pairs stay aligned exactly), each pair a group."""
    root = tmp_path_factory.mktemp("tiny_set")
    rows = ["file,label,split,group"]
    for label in ("real", "fake"):
        (root / label).mkdir()
    pairs = iter(_dfdc_pairs(8, 64))
    for split in ("train", "val", "test"):
        for i in range(8):
            for label, image in zip(("real", "fake"), next(pairs)):
                name = f"{label}/{split}_{i}.png"
                cv2.imwrite(str(root / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                rows.append(f"{name},{label},{split},{split}_{i}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_weights(tiny_set, tmp_path_factory) -> Path:
    """A model trained by the --quick recipe on the tiny set, with its card."""
    from detector.training import TrainConfig, train

    out = tmp_path_factory.mktemp("weights")
    train(TrainConfig.quick(str(out), sets=[str(tiny_set)], cache_dir=str(out / "cache")))
    return out


def pytest_sessionfinish(session, exitstatus) -> None:
    """Removes the tests' Gradio cache (made above), unless the caller chose the folder."""
    if _GRADIO_CACHE:
        shutil.rmtree(_GRADIO_CACHE, ignore_errors=True)
