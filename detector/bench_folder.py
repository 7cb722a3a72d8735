"""The folder part of ``python -m detector bench``: what ``python -m detector predict`` does on
many files, against the Xception reference measured in the same run.

* a folder of face crops: DFDC test-split crops (224 px JPEG, real and fake alternating, the
  issue's measure) when ``../shared/data`` is there, else the benchmark's crop with a little noise
  per copy; scored by ``detector.batch_scoring.score_paths``, the CLI's engine, at the CLI's
  defaults and one input at a time (``--workers 0``, the path before the pipeline). Start-up
  is left out: the detector is loaded and warmed up first;
* a folder of 12-megapixel photos (the benchmark's group photo, each copy re-encoded with a
  different JPEG quality so no two files are equal), at the CLI's defaults, and with
  ``--overlays`` (each photo's Grad-CAM maps and overlay PNG as well).

Each figure is the median of repeated passes over the whole folder; throughput counts the crops
that went through the network (a face each, or the whole image where no face was found).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from detector.bench import Figure
from detector.defaults import PREDICT_BATCH_SIZE, PREDICT_WORKERS, SHARED_DATA

#: Files in the folder of face crops (the issue measured 650), and in --quick runs.
CROP_FILES, QUICK_CROP_FILES = 640, 160
#: Files in the folder of 12 MP photos, and in --quick runs.
PHOTO_FILES, QUICK_PHOTO_FILES = 12, 4
#: The CLI at least this many times the reference's crops/s (issue 24).
GOAL_RATIO = 15


def dfdc_crops(count: int) -> list[Path]:
    """``count`` DFDC test-split files spread over the split (reals and fakes), or none
    when the set is not there."""
    from detector.data import read_records

    root = SHARED_DATA / "dfdc_faces"
    if not (root / "metadata.csv").is_file():
        return []
    test = [r.path for r in read_records(root) if r.split == "test"]
    return test[:: max(1, len(test) // count)][:count]


def write_copies(folder: Path, rgb: np.ndarray, count: int, noise: float, qualities: tuple[int, ...]) -> list[Path]:
    """``count`` JPEG files of ``rgb``, each with its own noise and quality, so none is equal."""
    from detector.bench import _jpeg

    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        noisy = rgb if noise == 0 else np.clip(rgb + rng.normal(0, noise, rgb.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.jpg"
        path.write_bytes(_jpeg(noisy, qualities[i % len(qualities)]))
        paths.append(path)
    return paths


def folder_throughput(detector, paths: list[Path], workers: int, batch_size: int, repeats: int,
                      **options) -> tuple[float, float]:
    """Crops and files per second through ``score_paths`` (``options`` go to it): the medians
    over ``repeats`` passes, after one untimed pass (graphs traced for the batch shapes, files
    in the page cache).

    Raises:
        RuntimeError: a file could not be scored (the figure would not be the CLI's).
    """
    from detector.batch_scoring import score_paths

    def one_pass() -> tuple[float, int]:
        start, crops = time.perf_counter(), 0
        for record in score_paths(detector, paths, workers, batch_size, **options):
            if record["error"]:
                raise RuntimeError(f"bench: {record['path']}: {record['error']}")
            crops += len(record["faces"]) or 1
        return time.perf_counter() - start, crops

    one_pass()
    seconds, crops = zip(*(one_pass() for _ in range(repeats)))
    median = float(np.median(seconds))
    return crops[0] / median, len(paths) / median


def folder_figures(detector, crop_jpeg: bytes, photo_jpeg: bytes, reference_rate: float, repeats: int,
                   quick: bool) -> tuple[list[Figure], str]:
    """The folder figures, each beside the reference's crops/s where it compares.

    Args:
        detector: A loaded detector.
        crop_jpeg: The benchmark's face crop (stand-ins when DFDC is not there).
        photo_jpeg: The benchmark's 12 MP photo.
        reference_rate: Xception's crops/s in this run.
        repeats: Timed passes per figure.
        quick: Smaller folders.

    Returns:
        The figures, and where the crops came from.
    """
    from detector.imaging import load_image

    crops = dfdc_crops(QUICK_CROP_FILES if quick else CROP_FILES)
    with tempfile.TemporaryDirectory(prefix="bench-folder-") as tmp:
        folder = Path(tmp)
        source = f"{len(crops)} DFDC test crops"
        if not crops:
            (folder / "crops").mkdir()
            crops = write_copies(folder / "crops", load_image(crop_jpeg), QUICK_CROP_FILES if quick else CROP_FILES,
                                 noise=2, qualities=(90,))
            source = f"{len(crops)} copies of the benchmark crop"
        (folder / "photos").mkdir()
        photos = write_copies(folder / "photos", load_image(photo_jpeg), QUICK_PHOTO_FILES if quick else PHOTO_FILES,
                              noise=0, qualities=(95, 90, 85, 80))

        figures = []
        for key, label, workers, batch in (
            ("folder_crops_per_s", f"folder of crops, predict (--workers {PREDICT_WORKERS})", PREDICT_WORKERS,
             PREDICT_BATCH_SIZE),
            ("folder_sequential_crops_per_s", "folder of crops, one at a time (--workers 0)", 0, PREDICT_BATCH_SIZE),
        ):
            rate, _ = folder_throughput(detector, crops, workers, batch, repeats)
            ratio = rate / reference_rate
            goal = f">= {GOAL_RATIO}x ref" if workers else None
            figures.append(Figure(key, label, "crops/s", rate, reference=reference_rate, ratio=ratio, goal=goal,
                                  met=None if goal is None else bool(ratio >= GOAL_RATIO)))
        _, photo_rate = folder_throughput(detector, photos, PREDICT_WORKERS, PREDICT_BATCH_SIZE, repeats)
        figures.append(Figure("folder_photos_per_s", "folder of 12 MP photos, predict", "photos/s", photo_rate))
        _, drawn_rate = folder_throughput(detector, photos, PREDICT_WORKERS, PREDICT_BATCH_SIZE, repeats,
                                          overlays=folder / "overlays")
        figures.append(Figure("folder_photos_overlays_per_s", "  the same with --overlays", "photos/s", drawn_rate))
    return figures, source

