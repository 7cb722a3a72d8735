"""``python -m detector bench``: how fast the detector is on this machine, and what slows it.

    python -m detector bench                  # ~2 minutes: the table in the README
    python -m detector bench --quick          # well under a minute, fewer repeats (tests, CI)
    python -m detector bench --json > bench.json  # every figure as JSON instead of the table
    python -m detector bench --only folder    # ~1 minute: the CLI on folders against the reference

What it measures, each as the median (p50) and 95th percentile over repeated runs, warm-up
runs (graph tracing, first allocations) excluded:

* end to end, ``Detector.predict`` on JPEG bytes (decode, face search, CNN, and Grad-CAM
  when asked): a 224 px face crop and a 12-megapixel group photo (the example photo of two
  people, upscaled to 4000 x 3000 in memory), each with and without Grad-CAM;
* the same two inputs stage by stage, so the profile shows what stands in the way;
* batch scoring throughput (``Detector.logits`` on 64 crops) and one crop through the CNN;
* folders (``detector.bench_folder``): ``python -m detector predict``'s throughput on a folder
  of face crops (crops/s, pipelined and one at a time) and on a folder of 12 MP photos
  (photos/s), start-up left out;
* video (``detector.bench_video``): a 10-second 720p clip of two faces, end to end and stage
  by stage, and peak memory on it and on a 2-minute clip;
* a reference: Keras' ``Xception`` (random weights, 299 px, one logit: the FaceForensics++
  baseline detector) on the same crops resized to 299 px, with our figures as ratios to it;
* parameters, weights file size and FLOPs per image, for both networks;
* training images per second: steps of the real training step (``build_trainer``,
  ``training_dataset``, augmentation included) at the shipped configuration, on synthetic
  faces;
* app start-up: from ``python app.py`` to the first page it serves (when ``app.py`` cannot
  start, the time to import Gradio and load and warm up the detector, labelled as such).

The example photos come from the repository's ``examples/``; without them, synthetic images
of the same sizes are used, so the benchmark also runs where the examples are missing.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import IO
from pathlib import Path

import cv2
import numpy as np

from detector.defaults import BENCH_SECTIONS, EXAMPLES

REPO = Path(__file__).resolve().parent.parent
PORTRAIT = EXAMPLES / "facerec_obama.jpg"
GROUP_PHOTO = EXAMPLES / "facerec_obama_and_biden.jpg"

#: The 12-megapixel photo, (width, height).
PHOTO_SIZE = (4000, 3000)
#: Side of the face-crop input (DFDC's crops are 224 px).
CROP_SIZE = 224
#: Crops per batch for the throughput figures.
BATCH = 64
#: Side of the reference network's input.
REFERENCE_SIZE = 299


@dataclass(frozen=True)
class Repeats:
    """How many timed runs each figure gets (after two warm-up runs)."""

    crop: int = 50
    photo: int = 15
    batch: int = 20
    reference_batch: int = 3
    reference_crop: int = 10
    train_steps: int = 20
    app: int = 3
    video: int = 5
    folder: int = 3


#: The figures, in the order printed.
FIGURE_KEYS = (
    *(f"{inp}_{what}" for inp in ("crop", "photo") for what in (
        "ms", "gradcam_ms", "stage_decode_ms", "stage_face_search_ms", "stage_crop_cnn_ms", "stage_gradcam_ms")),
    "batch_crops_per_s", "cnn_crop_ms", "parameters_m", "weights_mb", "gflops",
    "folder_crops_per_s", "folder_sequential_crops_per_s", "folder_photos_per_s", "folder_photos_overlays_per_s",
    "video_s", "video_gradcam_s", "video_speed_x", "video_stage_decode_s", "video_stage_face_search_ms",
    "video_stage_cnn_ms", "video_2min_s", "video_memory_10s_mb", "video_memory_2min_mb",
    "train_images_per_s", "app_startup_s",
)

QUICK = Repeats(crop=5, photo=3, batch=3, reference_batch=2, reference_crop=3, train_steps=3, app=1, video=1,
                folder=1)
#: The reference's batch in --quick runs: a 64-crop Xception batch takes seconds.
QUICK_REFERENCE_BATCH = 8


@dataclass
class Figure:
    """One line of the benchmark.

    Attributes:
        key: Stable name in the JSON output.
        label: What the table calls it.
        unit: ``ms``, ``s``, ``crops/s``...
        p50: The median (or the value, for counts).
        p95: The 95th percentile, for timings.
        reference: The same figure for the reference network.
        ratio: How many times better ours is than the reference (> 1: better).
        goal: The goal, as text, when there is one.
        met: Whether ``p50`` meets the goal.
    """

    key: str
    label: str
    unit: str
    p50: float
    p95: float | None = None
    reference: float | None = None
    ratio: float | None = None
    goal: str | None = None
    met: bool | None = None


def timings(fn: Callable[[], object], repeats: int, warmup: int = 2) -> np.ndarray:
    """Seconds taken by ``repeats`` calls of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return np.array(out)


def _ms(key: str, label: str, seconds: np.ndarray, goal_ms: float | None = None) -> Figure:
    p50, p95 = (float(v) * 1000 for v in np.percentile(seconds, [50, 95]))
    goal = None if goal_ms is None else f"<= {goal_ms:g} ms"
    return Figure(key, label, "ms", p50, p95, goal=goal, met=None if goal_ms is None else p50 <= goal_ms)


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {rgb.shape} image as JPEG")
    return data.tobytes()


def _synthetic_face(rng: np.random.Generator, size: int) -> np.ndarray:
    """A skin-toned ellipse with eyes on a noisy background: enough for the face finder
    to have work to do, and for the timings of everything after it."""
    img = np.full((size, size, 3), rng.integers(40, 200, 3), np.uint8)
    c, r = size // 2, size // 3
    cv2.ellipse(img, (c, c), (r, int(r * 1.3)), 0, 0, 360, (200, 160, 130), -1)
    for dx in (-r // 2, r // 2):
        cv2.circle(img, (c + dx, c - r // 4), max(2, r // 8), (40, 30, 30), -1)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def bench_inputs() -> tuple[bytes, bytes, str]:
    """The two benchmark inputs as JPEG bytes, and where they came from.

    Returns:
        ``(face_crop_jpeg, photo_jpeg, source)``: a 224 px crop around the face of the
        example portrait, and the example group photo upscaled to 12 megapixels; synthetic
        stand-ins when the examples are missing.
    """
    from detector.faces import FaceFinder, cut, scoring_region
    from detector.imaging import load_image

    rng = np.random.default_rng(0)
    if PORTRAIT.is_file() and GROUP_PHOTO.is_file():
        portrait = load_image(PORTRAIT)
        boxes = FaceFinder().find(portrait)
        if boxes:
            crop = cv2.resize(cut(portrait, scoring_region(portrait.shape, boxes[0])), (CROP_SIZE, CROP_SIZE),
                              interpolation=cv2.INTER_AREA)
            photo = cv2.resize(load_image(GROUP_PHOTO), PHOTO_SIZE, interpolation=cv2.INTER_CUBIC)
            return _jpeg(crop), _jpeg(photo), f"examples/{PORTRAIT.name}, examples/{GROUP_PHOTO.name}"
    crop = _synthetic_face(rng, CROP_SIZE)
    photo = np.clip(rng.normal(120, 30, (PHOTO_SIZE[1], PHOTO_SIZE[0], 3)), 0, 255).astype(np.uint8)
    for x in (800, 2400):
        photo[900 : 900 + 900, x : x + 900] = _synthetic_face(rng, 900)
    return _jpeg(crop), _jpeg(photo), "synthetic (examples/ not found)"


def _stage_times(detector, data: bytes, repeats: int) -> dict[str, np.ndarray]:
    """Times the stages of ``Detector.predict`` one by one, with the same public steps."""
    from detector.imaging import load_image

    rgb = load_image(data)
    _, regions, _ = detector.regions(rgb)

    def score():
        crops = detector.crops(rgb, regions)
        return crops, detector.logits(crops)

    crops, logits = score()
    floats = crops.astype(np.float32)
    # One warm-up run each: the end-to-end runs before have traced the graphs already.
    return {
        "decode": timings(lambda: load_image(data), repeats, warmup=1),
        "face search": timings(lambda: detector.finder.find(rgb), repeats, warmup=1),
        f"crop + CNN ({len(regions)} face{'s' if len(regions) > 1 else ''})": timings(score, repeats, warmup=1),
        "Grad-CAM": timings(lambda: detector.explainer().heatmaps(floats, logits), repeats, warmup=1),
    }


def _latency_figures(detector, crop_jpeg: bytes, photo_jpeg: bytes, r: Repeats) -> list[Figure]:
    figures = []
    for key, label, data, repeats, goals in (
        ("crop", "face crop 224 px", crop_jpeg, r.crop, (20, 60)),
        ("photo", "12 MP photo", photo_jpeg, r.photo, (None, 250)),
    ):
        figures.append(_ms(f"{key}_ms", f"{label}, end to end", timings(lambda: detector.predict(data), repeats), goals[0]))
        figures.append(_ms(f"{key}_gradcam_ms", f"{label}, end to end + Grad-CAM",
                           timings(lambda: detector.predict(data, gradcam=True), repeats), goals[1]))
        for stage, seconds in _stage_times(detector, data, repeats).items():
            name = stage.split(" (")[0].replace(" + ", "_").replace(" ", "_").replace("-", "").lower()
            figures.append(_ms(f"{key}_stage_{name}_ms", f"  {stage}", seconds))
    return figures


def _reference_model():
    import keras

    # The FaceForensics++ baseline detector's network: Xception, here with one logit.
    return keras.applications.Xception(weights=None, input_shape=(REFERENCE_SIZE, REFERENCE_SIZE, 3),
                                       classes=1, classifier_activation=None)


def _cnn_figures(detector, crop_jpeg: bytes, weights_bytes: int, r: Repeats, quick: bool) -> list[Figure]:
    import tensorflow as tf

    from detector.imaging import load_image
    from detector.model import flops

    rng = np.random.default_rng(1)
    face = load_image(crop_jpeg)
    # The same face, flipped and with a little noise per copy, so no two crops are equal.
    faces = np.stack([np.clip(face[:, :: 1 - 2 * (i % 2)] + rng.normal(0, 2, face.shape), 0, 255).astype(np.uint8)
                      for i in range(BATCH)])
    ours = np.stack([detector.prepare(f) for f in faces]).astype(np.float32)
    batch_s = timings(lambda: detector.logits(ours), r.batch)
    one_s = timings(lambda: detector.logits(ours[:1]), r.crop)

    reference = _reference_model()
    forward = tf.function(lambda x: reference(x, training=False), reduce_retracing=True)
    ref_batch = QUICK_REFERENCE_BATCH if quick else BATCH
    theirs = np.stack([cv2.resize(f, (REFERENCE_SIZE, REFERENCE_SIZE), interpolation=cv2.INTER_LINEAR)
                       for f in faces[:ref_batch]]).astype(np.float32)
    # Xception takes pixels scaled to [-1, 1].
    theirs = theirs / 127.5 - 1.0
    ref_batch_s = timings(lambda: forward(theirs).numpy(), r.reference_batch, warmup=1)
    ref_one_s = timings(lambda: forward(theirs[:1]).numpy(), r.reference_crop)

    rate, ref_rate = BATCH / np.median(batch_s), ref_batch / np.median(ref_batch_s)
    one = _ms("cnn_crop_ms", "one crop through the CNN", one_s)
    ref_one = float(np.median(ref_one_s)) * 1000
    one.reference, one.ratio = ref_one, ref_one / one.p50
    params, ref_params = detector.model.count_params(), reference.count_params()
    gflops, ref_gflops = flops(detector.model) / 1e9, flops(reference) / 1e9
    ratio = rate / ref_rate
    return [
        Figure("batch_crops_per_s", f"batch scoring ({BATCH} crops/call)", "crops/s", float(rate),
               reference=float(ref_rate), ratio=float(ratio), goal=">= 150 and >= 10x ref",
               met=bool(rate >= 150 and ratio >= 10)),
        one,
        Figure("parameters_m", "parameters", "M", params / 1e6, reference=ref_params / 1e6, ratio=ref_params / params),
        Figure("weights_mb", "weights file", "MB", weights_bytes / 1e6),
        Figure("gflops", "FLOPs per image", "GFLOP", gflops, reference=ref_gflops, ratio=ref_gflops / gflops),
    ]


def _training_figure(steps: int) -> Figure:
    """Images per second of the real training step at the shipped configuration."""
    import keras

    from detector.data import Arrays
    from detector.training import TrainConfig, build_trainer, training_dataset

    cfg = TrainConfig(out_dir=tempfile.gettempdir(), verbose=0)
    rng = np.random.default_rng(2)
    n = 4 * cfg.batch_size
    images = np.stack([_synthetic_face(rng, cfg.input_size) for _ in range(n)])
    images[1::2] = images[0::2]  # each fake is its real with the face altered, as in DFDC
    images[1::2, 40:88, 40:88] = images[1::2, 40:88, 40:88] // 2 + 60
    arrays = Arrays("synthetic", images, np.arange(n) % 2, np.full(n, "train"), np.repeat(np.arange(n // 2), 2).astype(str),
                    np.array([f"{i}.png" for i in range(n)]), np.ones(n, bool), np.full(n, cfg.input_size))
    _, trainer = build_trainer(cfg, steps_per_epoch=100)
    dataset = training_dataset([arrays], cfg, mask_size=trainer.get_layer("mask_logit").output.shape[1])

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    timer = StepTimes()
    warmup = 2  # the first steps trace the graph and fill the input pipeline
    trainer.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    step = np.diff(timer.ends[warmup - 1 :])
    return Figure("train_images_per_s", f"training ({cfg.input_size} px, batch {cfg.batch_size})", "images/s",
                  float(cfg.batch_size / np.median(step)))


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(weights: str | None, port: int, log: IO[str], startup_timeout: float = 300.0) -> subprocess.Popen:
    """Starts ``app.py`` on 127.0.0.1:``port`` and waits until it answers HTTP.

    Args:
        weights: Weights folder for ``--weights``; None for the app's default.
        port: A free TCP port.
        log: A file for the app's output (a pipe nobody reads would fill up and stall it).
        startup_timeout: Seconds to wait for the first HTTP answer.

    Returns:
        The running process (stop it with ``stop_app``).

    Raises:
        RuntimeError: the app exited or did not answer within ``startup_timeout`` seconds.
    """
    cmd = [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    if weights:
        cmd += ["--weights", str(weights)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with status {proc.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                if reply.status == 200:
                    return proc
        except OSError:
            time.sleep(0.05)
    stop_app(proc)
    raise RuntimeError(f"app.py did not answer on port {port} within {startup_timeout:.0f} s")


def tail(log: IO[str], chars: int = 3000) -> str:
    """The end of the app's output so far."""
    log.flush()
    with open(log.name, errors="replace") as f:
        return f.read()[-chars:]


def stop_app(proc: subprocess.Popen) -> None:
    """Stops the app: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def app_startup_seconds(weights: str | None, timeout: float = 300.0) -> float:
    """Seconds from starting ``python app.py`` to the first page it serves.

    Raises:
        RuntimeError: the app exits or serves nothing within ``timeout`` seconds.
    """
    with tempfile.NamedTemporaryFile("w+") as log:  # a file, not a pipe: a chatty app never blocks on it
        start = time.perf_counter()
        app = start_app(weights, free_port(), log, timeout)
        seconds = time.perf_counter() - start
        stop_app(app)
    return seconds


#: What the app does before it serves, for when ``app.py`` cannot start.
_APP_WORK = """
import sys, gradio
from detector.pipeline import Detector
Detector.load(sys.argv[1] or None).warm_up()
"""


def detector_startup_seconds(weights: str | None) -> float:
    """Seconds for a fresh process to import Gradio, load the detector and warm it up:
    the app's start-up less building and serving the page."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _APP_WORK, str(weights or "")], cwd=REPO, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - start


def _app_figure(weights: str | None, runs: int) -> Figure:
    label = "app start-up to first page"
    try:
        seconds = np.array([app_startup_seconds(weights) for _ in range(runs)])
    except RuntimeError as err:
        print(f"bench: {err}\nbench: timing import gradio + Detector.load + warm-up instead", file=sys.stderr)
        label = "app start-up (app.py failed: load only)"
        seconds = np.array([detector_startup_seconds(weights) for _ in range(runs)])
    p50, p95 = np.percentile(seconds, [50, 95])
    return Figure("app_startup_s", label, "s", float(p50), float(p95))


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "opencv": cv2.__version__}
    if hasattr(os, "getloadavg"):
        # Other work on the machine slows every figure: the load says whether there was any.
        info["load average at start"] = f"{os.getloadavg()[0]:.2f}"
    return info


#: The benchmark's parts, in the order run; ``--only`` picks some (``folder`` brings ``network``:
#: its figures are ratios to the reference measured there).
SECTIONS = BENCH_SECTIONS


def run_bench(weights: str | None = None, quick: bool = False, only: tuple[str, ...] = SECTIONS) -> dict:
    """Runs the measurements.

    Args:
        weights: Folder with ``model.keras`` and its card; the shipped ``weights/`` when
            ``None``.
        quick: Fewer repeats and a smaller reference batch (well under a minute).
        only: The sections to run (``SECTIONS``).

    Returns:
        ``{"machine": {...}, "inputs": str, "quick": bool, "reference_batch": int,
        "figures": [Figure as dict]}``.

    Raises:
        ValueError: an unknown section.
    """
    from detector.card import MODEL_FILE, WEIGHTS_DIR
    from detector.pipeline import Detector

    unknown = set(only) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown bench sections {sorted(unknown)}: choose from {', '.join(SECTIONS)}")
    only = set(only) | ({"network"} if "folder" in only else set())
    repeats = QUICK if quick else Repeats()
    info = machine()
    detector = Detector.load(weights)
    weights_bytes = (Path(weights or WEIGHTS_DIR) / MODEL_FILE).stat().st_size
    crop_jpeg, photo_jpeg, source = bench_inputs()
    figures = []
    if "latency" in only:
        figures += _latency_figures(detector, crop_jpeg, photo_jpeg, repeats)
    if "network" in only:
        figures += _cnn_figures(detector, crop_jpeg, weights_bytes, repeats, quick)
    if "folder" in only:
        from detector.bench_folder import folder_figures

        reference_rate = next(f.reference for f in figures if f.key == "batch_crops_per_s")
        folder, crops = folder_figures(detector, crop_jpeg, photo_jpeg, reference_rate, repeats.folder, quick)
        figures += folder
        source += f"; folder: {crops}"
    if "video" in only:
        from detector.bench_video import video_figures

        figures += video_figures(detector, weights, repeats.video, quick)
    if "training" in only:
        figures.append(_training_figure(repeats.train_steps))
    if "app" in only:
        figures.append(_app_figure(weights, repeats.app))
    return {"machine": info, "inputs": source, "quick": quick, "reference_batch": QUICK_REFERENCE_BATCH if quick else BATCH,
            "figures": [asdict(f) for f in figures]}


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def format_table(report: dict) -> str:
    """The report as a plain-text table (the README's)."""
    lines = [", ".join(f"{k}: {v}" for k, v in report["machine"].items()),
             f"inputs: {report['inputs']}{'  (--quick: few repeats)' if report['quick'] else ''}",
             "",
             f"{'figure':<44} {'unit':<9} {'p50':>8} {'p95':>8} {'Xception':>9} {'vs ref':>7}  goal"]
    for f in report["figures"]:
        ratio = f"{f['ratio']:.1f}x" if f["ratio"] is not None else ""
        goal = "" if f["goal"] is None else f"{f['goal']}: {'met' if f['met'] else 'NOT met'}"
        lines.append(f"{f['label']:<44} {f['unit']:<9} {_number(f['p50']):>8} {_number(f['p95']):>8} "
                     f"{_number(f['reference']):>9} {ratio:>7}  {goal}".rstrip())
    lines.append("")
    lines.append(f"vs ref: times better than Xception ({REFERENCE_SIZE} px, random weights, {report['reference_batch']} "
                 "crops per batch) on the same crops: throughput, latency, parameters, FLOPs.")
    return "\n".join(lines)


def main(weights: str | None = None, quick: bool = False, as_json: bool = False, only: tuple[str, ...] = SECTIONS) -> int:
    """Runs the benchmark and prints the table, or the report as JSON."""
    report = run_bench(weights, quick, only)
    print(json.dumps(report, indent=1) if as_json else format_table(report))
    return 0
