"""Shared fixtures: tiny models and tiny labelled sets, made in code so tests run in seconds."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXAMPLES = SHARED / "examples"
DATA = SHARED / "data"


def _face_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """A synthetic 'face': a skin-toned ellipse on a noisy background."""
    img = np.full((size, size, 3), rng.integers(40, 200, 3), np.uint8)
    cv2.ellipse(img, (size // 2, size // 2), (size // 3, size // 2 - 4), 0, 0, 360, (200, 160, 130), -1)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def _swapped(real: np.ndarray) -> np.ndarray:
    """The 'fake' made from a real frame, as in DFDC: the inner face is smoothed and
    colour-shifted (a crude swap), the border is left as it was."""
    fake = real.copy()
    q = real.shape[0] // 4
    fake[q:-q, q:-q] = cv2.GaussianBlur(real[q:-q, q:-q], (7, 7), 3) // 2 + 60
    return fake


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> Path:
    """A labelled set in the public layout with metadata.csv: 8 images per label and split,
    each fake made from the real of its group (PNG, so the pairs stay aligned exactly)."""
    root = tmp_path_factory.mktemp("tiny_set")
    rng = np.random.default_rng(0)
    rows = ["file,label,split,group"]
    for label in ("real", "fake"):
        (root / label).mkdir()
    for split in ("train", "val", "test"):
        for i in range(8):
            real = _face_like(rng, 64)
            for label, image in (("real", real), ("fake", _swapped(real))):
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
