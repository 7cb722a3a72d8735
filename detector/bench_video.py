"""The video part of ``python -m detector bench``: how long a clip takes, and how much memory.

* a 10-second 720p clip of two people (the example photo of two people, filmed with small
  moves at 30 fps, MPEG-4; YuNet also finds the girl at its lower edge: three faces), scored end to end by ``Detector.predict_video`` as the CLI does,
  and with the Grad-CAM frame as the page does: the goal is to be faster than the clip
  plays (<= 10 s), and the ratio to its length is given;
* the same clip stage by stage: decoding and sampling, one face search per sampled frame,
  and the network on the crops of the clip in its batches;
* a 2-minute clip of the same, end to end as the CLI does: a clip over 60 s gets its
  ``detector.video.MAX_SAMPLES`` frames spread over all of it (one a second here), and every
  frame of it is decoded: the goal is again to be faster than the clip plays;
* peak memory while scoring (above the warmed-up detector, in a fresh process): the 10 s
  clip and the 2-minute one: memory grows with the samples scored (a box, a logit and a
  time each), not with the clip's length or the frames decoded. Beside each, what holding
  every sampled frame would take.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from detector.bench import GROUP_PHOTO, REPO, Figure, _ms, _synthetic_face, timings
from detector.clipmaker import moving_frames, write_clip
from detector.video import sample_frames
from detector.video_scoring import BATCH_FRAMES

#: The clip of the speed goal: (width, height), seconds, frames per second.
CLIP_SIZE = (1280, 720)
CLIP_SECONDS = 10.0
CLIP_FPS = 30
#: The long clip of the memory figure. --quick films it at 5 fps (the samples are the same).
LONG_SECONDS = 120.0

#: Run in a fresh process: the peak memory (VmHWM) of scoring a clip, above the warmed-up
#: detector. Writing 5 to clear_refs starts the peak again from the current use.
_PEAK_MEMORY = """
import sys
from pathlib import Path
from detector.pipeline import Detector

def kib(field):
    return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith(field))

detector = Detector.load(sys.argv[1] or None)
detector.predict_video(sys.argv[3], gradcam=True)  # warm-up: graphs traced, Grad-CAM built
base = kib("VmRSS:")
Path("/proc/self/clear_refs").write_text("5")
result = detector.predict_video(sys.argv[2], gradcam=True)
print(kib("VmHWM:") - base, result.frames_scored)
"""


def two_face_clip(path: Path, seconds: float, fps: float) -> Path:
    """The benchmark's clip: the example photo of two people (two synthetic faces without
    it), 720p, filmed with small moves."""
    if GROUP_PHOTO.is_file():
        from detector.imaging import load_image

        picture = load_image(GROUP_PHOTO)
    else:
        rng = np.random.default_rng(0)
        picture = np.clip(rng.normal(120, 30, (720, 1280, 3)), 0, 255).astype(np.uint8)
        for x in (250, 750):
            picture[160:560, x : x + 400] = _synthetic_face(rng, 400)[:400, :400]
    return write_clip(path, moving_frames(picture, round(seconds * fps), size=CLIP_SIZE, seed=5), fps)


def peak_memory_mb(weights: str | None, clip: Path, warmup: Path) -> tuple[float, int]:
    """Peak memory (MB) of scoring ``clip`` in a fresh process, above the warmed-up detector,
    and the number of frames it scored."""
    done = subprocess.run([sys.executable, "-c", _PEAK_MEMORY, str(weights or ""), str(clip), str(warmup)],
                          cwd=REPO, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    kib, frames = done.stdout.split()[-2:]
    return int(kib) / 1024, int(frames)


def _stages(detector, clip: Path, repeats: int) -> list[Figure]:
    """Decoding, face search and network, timed apart on the benchmark clip."""
    frames = [f.rgb for f in sample_frames(clip)[1]]
    decode = timings(lambda: sum(1 for _ in sample_frames(clip)[1]), repeats, warmup=1)
    search = timings(lambda: [detector.regions(f) for f in frames], repeats, warmup=1) / len(frames)
    crops = [detector.crops(f, r) for f in frames for _, r, found in [detector.regions(f)] if found]
    batches = [np.concatenate(crops[i : i + BATCH_FRAMES]) for i in range(0, len(crops), BATCH_FRAMES)]
    network = timings(lambda: [detector.logits(b) for b in batches], repeats, warmup=1)
    n = sum(len(b) for b in batches)
    return [
        Figure("video_stage_decode_s", f"  decode + sample ({len(frames)} of {round(CLIP_SECONDS * CLIP_FPS)} frames)",
               "s", *(float(v) for v in np.percentile(decode, [50, 95]))),
        _ms("video_stage_face_search_ms", "  face search, per sampled frame", search),
        _ms("video_stage_cnn_ms", f"  network: {n} crops in {len(batches)} calls", network),
    ]


def video_figures(detector, weights: str | None, repeats: int, quick: bool) -> list[Figure]:
    """Every video figure (see the module's docstring)."""
    with tempfile.TemporaryDirectory(prefix="bench-video-") as folder:
        clip = two_face_clip(Path(folder) / "clip.mp4", CLIP_SECONDS, CLIP_FPS)
        plain = timings(lambda: detector.predict_video(clip), repeats, warmup=1)
        page = timings(lambda: detector.predict_video(clip, gradcam=True), repeats, warmup=1)
        figures = []
        for key, label, seconds in (("video_s", "10 s 720p clip of 2 people (CLI)", plain),
                                    ("video_gradcam_s", "10 s 720p clip + Grad-CAM frame (page)", page)):
            p50, p95 = (float(v) for v in np.percentile(seconds, [50, 95]))
            figures.append(Figure(key, label, "s", p50, p95, goal=f"<= {CLIP_SECONDS:g} s", met=p50 <= CLIP_SECONDS))
        figures.append(Figure("video_speed_x", "  clip length / scoring time (CLI)", "x", CLIP_SECONDS / figures[0].p50))
        figures += _stages(detector, clip, repeats)

        long_clip = two_face_clip(Path(folder) / "long.mp4", LONG_SECONDS, 5 if quick else CLIP_FPS)
        seconds = timings(lambda: detector.predict_video(long_clip), max(1, repeats // 3), warmup=0)
        p50, p95 = (float(v) for v in np.percentile(seconds, [50, 95]))
        figures.append(Figure("video_2min_s", "2 min 720p clip, samples spread (CLI)", "s", p50, p95,
                              goal=f"<= {LONG_SECONDS:g} s", met=p50 <= LONG_SECONDS))
        frame_mb = CLIP_SIZE[0] * CLIP_SIZE[1] * 3 / 2**20
        for key, name, path in (("video_memory_10s_mb", "10 s", clip), ("video_memory_2min_mb", "2 min", long_clip)):
            mb, frames = peak_memory_mb(weights, path, clip)
            held = frames * frame_mb
            figures.append(Figure(key, f"peak memory, {name} clip ({frames} frames scored)", "MB", mb,
                                  goal=f"< {held:.0f} MB (every frame held)", met=mb < held))
    return figures

