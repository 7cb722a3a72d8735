"""Many inputs at the speed of the hardware: the engine of ``python -m detector predict``.

Each input goes through two stages:

1. *prepare*, in a small pool of worker threads: the file read and decoded, its faces found,
   their crops cut and resized (``Detector.cut_faces``). OpenCV releases the GIL while it
   decodes, resizes and runs YuNet, so the threads use the cores. Each thread has its own
   face finder (a ``FaceFinder`` serves one search at a time). A video is scored whole in its
   worker: ``Detector.predict_video`` batches its own frames.
2. *score*, in the calling thread: the crops of consecutive images go through the network in
   one call (``batch_size`` crops or more: an image's faces are never split), and each image's
   result is built from its logits by ``Detector.judge``, as ``Detector.predict`` builds it.

Records come out in input order, each as soon as it and every input before it are done. At
most ``depth`` inputs are in flight, so memory is bounded by the pipeline's depth, not by the
number of inputs. The records are the CLI's JSON lines; an input that cannot be scored gets
its ``error`` and the run goes on. ``detector.distributed`` runs the same two stages on a
cluster.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detector.defaults import PREDICT_BATCH_SIZE, PREDICT_WORKERS, VIDEO_MAX_FRAMES
from detector.faces import FaceFinder
from detector.overlay_files import write_frame_overlay, write_overlay

if TYPE_CHECKING:
    from detector.pipeline import Detector, FaceCrops


@dataclass
class Prepared:
    """One input after the first stage.

    Attributes:
        record: Its CLI record so far; complete for a video and for an input that failed.
        faces: For an image to score: its crops, waiting for the network.
    """

    record: dict[str, Any]
    faces: "FaceCrops | None" = None

    @property
    def crop_count(self) -> int:
        return 0 if self.faces is None else len(self.faces.crops)


def iter_inputs(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named on the command line, and the image and video files found by walking folders
    (sorted, so that a folder gives the same order everywhere)."""
    from detector.imaging import IMAGE_SUFFIXES
    from detector.video import VIDEO_SUFFIXES

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                        yield Path(root) / name
        else:
            yield path  # a missing file becomes that input's error, not a crash


def empty_record(path: str | Path, video: bool) -> dict[str, Any]:
    """An input's record before scoring: its path and kind, no verdict, no error yet."""
    from detector.video_scoring import failed_record

    fields = failed_record() if video else {"kind": "image", "fake_probability": None, "label": None, "faces": [],
                                            "error": None}
    return {"path": str(path), **fields}


def error_message(path: str | Path, err: Exception) -> str:
    """What an input's ``error`` says about the exception that stopped it."""
    from detector.imaging import ImageError

    if isinstance(err, ImageError):
        return str(err)
    if isinstance(err, OSError):  # unreadable path, permission denied, a folder named like a file
        return f"cannot read {path}: {err.strerror or err}"
    # A bug must cost one input, not a run over 100k files.
    return f"internal error while scoring {path}: {type(err).__name__}: {err}"


def prepare(detector: "Detector", path: str | Path, overlays: str | Path | None = None,
            video_frames: int = VIDEO_MAX_FRAMES) -> Prepared:
    """The first stage for one input: an image's crops, or a video's whole record.

    Args:
        detector: The detector (its face finder is used: one thread at a time).
        path: An image or video file.
        overlays: A folder for each overlay (``overlay_files``): a video's most suspicious
            frame is then drawn there with its Grad-CAM maps, and its record names the PNG.
        video_frames: Most frames scored of a video (``detector.video``'s ``max_samples``).

    Returns:
        The ``Prepared`` input; a failure is its record's ``error``, never an exception.
    """
    from detector.video import is_video

    video = is_video(Path(path))
    record = empty_record(path, video)
    try:
        if video:
            result = detector.predict_video(path, gradcam=overlays is not None, max_samples=video_frames)
            record.update(result.to_dict())
            if overlays is not None and result.suspicious is not None:
                record["overlay"] = str(write_frame_overlay(path, result.suspicious, overlays))
            return Prepared(record)
        return Prepared(record, detector.cut_faces(path))
    except Exception as err:  # noqa: BLE001 (error_message tells the kinds apart)
        record["error"] = error_message(path, err)
        return Prepared(record)


def finish(detector: "Detector", items: list[Prepared], overlays: str | Path | None = None) -> list[dict[str, Any]]:
    """The second stage: the crops of ``items`` through the network in one call, each image
    judged from its logits.

    Args:
        detector: The detector.
        items: Prepared inputs, in input order.
        overlays: A folder for each image's overlay (``overlay_files``): its faces then also
            get Grad-CAM maps, and its record the PNG's path as ``overlay``.

    Returns:
        Their records, in the same order.
    """
    images = [item for item in items if item.faces is not None]
    if images:
        try:
            logits = detector.logits(np.concatenate([item.faces.crops for item in images]))
        except Exception as err:  # noqa: BLE001
            for item in images:
                item.record["error"] = error_message(item.record["path"], err)
        else:
            ends = np.cumsum([item.crop_count for item in images])
            for item, image_logits in zip(images, np.split(logits, ends[:-1])):
                try:
                    maps = None
                    if overlays is not None and item.faces.found:
                        maps = detector.explainer().heatmaps(item.faces.crops.astype(np.float32), image_logits)
                    result = detector.judge(item.faces, image_logits, maps)
                    item.record.update(result.to_dict())
                    if overlays is not None:
                        item.record["overlay"] = str(write_overlay(item.record["path"], result, overlays))
                except Exception as err:  # noqa: BLE001
                    item.record["error"] = error_message(item.record["path"], err)
    return [item.record for item in items]


def score_paths(
    detector: "Detector",
    paths: Iterable[str | Path],
    workers: int = PREDICT_WORKERS,
    batch_size: int = PREDICT_BATCH_SIZE,
    depth: int | None = None,
    new_finder: Callable[[], Any] = FaceFinder,
    overlays: str | Path | None = None,
    video_frames: int = VIDEO_MAX_FRAMES,
) -> Iterator[dict[str, Any]]:
    """Scores images and videos, pipelined, yielding their records in input order.

    Args:
        detector: The detector (its network is shared by every thread).
        paths: Image and video files; read lazily, as the pipeline has room.
        workers: Threads that read, decode and find faces; 0 does everything in this thread,
            one input after the other (the path ``Detector.predict`` takes).
        batch_size: Crops per call of the network, at least (an image's faces stay together):
            the images ready at the head of the queue are gathered up to it.
        depth: Inputs in flight at most; by default ``2 * batch_size`` or ``4 * workers``,
            whichever is larger.
        new_finder: Makes each worker's face finder (anything with ``find(rgb)``).
        overlays: A folder for each input's overlay with its Grad-CAM maps (``prepare`` draws
            a video's, ``finish`` an image's).
        video_frames: Most frames scored of each video: a longer clip gets them spread over
            all of it (``detector.video``).

    Yields:
        One CLI record per input, in the order of ``paths``.

    Raises:
        ValueError: ``workers`` is negative or ``batch_size`` below 1.
    """
    if workers < 0 or batch_size < 1:
        raise ValueError(f"workers must be >= 0 and batch_size >= 1, not workers={workers}, batch_size={batch_size}")
    if overlays is not None:
        detector.explainer()  # built once, here: the workers' detectors share it
    if workers == 0:
        for path in paths:
            yield from finish(detector, [prepare(detector, path, overlays, video_frames)], overlays)
        return

    depth = depth or max(2 * batch_size, 4 * workers)
    own = threading.local()

    def prepare_here(path: str | Path) -> Prepared:
        if not hasattr(own, "detector"):
            own.detector = detector.with_finder(new_finder())
        return prepare(own.detector, path, overlays, video_frames)

    inputs = iter(paths)
    pending: deque[Future[Prepared]] = deque()

    def top_up() -> None:
        while len(pending) < depth:
            path = next(inputs, None)
            if path is None:
                return
            pending.append(pool.submit(prepare_here, path))

    with ThreadPoolExecutor(workers, thread_name_prefix="prepare") as pool:
        try:
            top_up()
            while pending:
                # Wait for the next input in order; then take whatever is ready behind it, up
                # to a batch: the network never waits for a batch to fill, nor runs one crop
                # at a time while the workers are ahead.
                group = [pending.popleft().result()]
                crops = group[0].crop_count
                while pending and crops < batch_size and pending[0].done():
                    group.append(pending.popleft().result())
                    crops += group[-1].crop_count
                top_up()  # the workers go on while the network runs
                yield from finish(detector, group, overlays)
        finally:  # the consumer stopped early (an interrupt): drop the work not yet started
            for future in pending:
                future.cancel()
