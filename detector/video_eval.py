"""``python -m detector video-eval``: what pooling a face's frames gains, on clips filmed
from the labelled sets, and the video calibration fitted on the validation clips.

The sets hold photos. Their ``group`` column keeps the images of one source together (a
DFDC source video, a cluster of frames of one interview), so each split's groups become
clips: one clip per group and label, showing that group's images of that label in turn,
``frames`` frames filmed with small moves (``detector.clipmaker``) and encoded as MPEG-4 at
``CLIP_FPS``, so that every frame is sampled. Each clip then goes through
``Detector.predict_video`` exactly as a user's clip would: decoding, faces, tracks, network.

Three ROC-AUCs per set, on the same images:

* **photo**: each source image through ``Detector.predict``, as ``python -m detector
  evaluate`` scores it;
* **frame**: each sampled video frame alone (its highest face logit);
* **clip**: each clip's pooled track logit (its highest deciding track), for every pooling
  of ``detector.pooling.POOLINGS``.

Of the poolings whose value does not grow with the clip's length
(``detector.pooling.LENGTH_FREE``: the fit is made on clips of a few frames and applied to
clips of up to 120), the one with the best clip ROC-AUC over all validation clips is kept;
Platt scaling, threshold and band are fitted on the validation clips for it and written to
the model card (``detector.pooling.CARD_KEY``). Test clips are scored once, for the report: the JSON
(``reports/video/video_eval.json``) and the Markdown page (``docs/VIDEO_EVAL.md``).

Most groups of these sets hold one image per label (DFDC keeps one frame per source
video), so most clips film one photo: what pooling averages out there is the codec's and
the moves' jitter, and the face finder's, not a face changing over time. The report says
how many clips show more than one image.
"""

from __future__ import annotations

import json
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from detector import evaluation
from detector.card import write_section
from detector.clipmaker import moving_frames, write_clip
from detector.data import read_records
from detector.defaults import VIDEO_EVAL_FRAMES, VIDEO_EVAL_JSON, VIDEO_EVAL_MD, VIDEO_EVAL_SETS
from detector.imaging import ImageError, load_image
from detector.pooling import CARD_KEY, LENGTH_FREE, MEASURED_ON, POOLINGS, TESTED, VideoCalibration, pool
from detector.video_scoring import deciding_tracks
from detector.wording import percent

#: The sets with both labels (``sfhq_t2i`` and ``utkface_wild_crops`` hold one label each).
DEFAULT_SETS = VIDEO_EVAL_SETS
#: Frames per clip: a few seconds at ``CLIP_FPS``.
FRAMES = VIDEO_EVAL_FRAMES
#: The clips' frame rate, the detector's default sampling rate: every frame is scored.
CLIP_FPS = 2.0
COMMAND = "python -m detector video-eval"


@dataclass(frozen=True)
class Clip:
    """One group's images of one label, to be filmed as a clip."""

    set: str
    group: str
    label: int  # 1 = fake
    images: tuple[Path, ...]


@dataclass
class ClipScores:
    """What one clip gave.

    Attributes:
        clip: The clip.
        tracks: The usable frame logits of each deciding track (empty: no face found).
        frames: The highest usable face logit of each sampled frame with a face.
        photos: Each source image's score through ``Detector.predict`` (``image_score``: its
            highest face's, or the whole image's when no face is found, as ``evaluate`` counts).
    """

    clip: Clip
    tracks: list[list[float]] = field(default_factory=list)
    frames: list[float] = field(default_factory=list)
    photos: list[float] = field(default_factory=list)

    def pooled(self, how: str) -> float:
        """The clip's logit: its highest pooled track."""
        return max(pool(z, how) for z in self.tracks)


def clips_of(root: str | Path, split: str, limit: int | None = None) -> list[Clip]:
    """The clips of one split of a set: one per group and label.

    Args:
        root: The set's folder.
        split: ``val`` or ``test``.
        limit: At most this many clips per label (the first groups by name: group names
            are file names or hashes, so this is an arbitrary but fixed subset).

    Returns:
        The clips, reals first, each group's images sorted by file name.
    """
    groups: dict[tuple[int, str], list[Path]] = defaultdict(list)
    for record in read_records(root):
        if record.split == split:
            groups[(record.label, record.group)].append(record.path)
    clips = [Clip(Path(root).name, group, label, tuple(sorted(paths))) for (label, group), paths in sorted(groups.items())]
    if limit is not None:
        clips = [c for label in (0, 1) for c in [c for c in clips if c.label == label][:limit]]
    return clips


def score_clip(detector, clip: Clip, folder: Path, frames: int = FRAMES) -> ClipScores:
    """Films a clip into ``folder``, scores it as a user's clip, and its photos as photos."""
    images = [load_image(p) for p in clip.images]
    seed = zlib.crc32(f"{clip.set}/{clip.group}/{clip.label}".encode())
    path = write_clip(folder / "clip.mp4", moving_frames(images, frames, seed=seed), fps=CLIP_FPS)
    result = detector.predict_video(path, sample_fps=CLIP_FPS)
    scores = ClipScores(clip, photos=[detector.predict(image).image_score for image in images])
    if not result.tracks:
        return scores
    scores.tracks = [[f.logit for f in t.frames if f.usable] or [f.logit for f in t.frames]
                     for t in deciding_tracks(result.tracks)]
    by_frame: dict[int, float] = {}
    for track in result.tracks:
        for f in track.frames:
            if f.usable:
                by_frame[f.sample] = max(by_frame.get(f.sample, -np.inf), f.logit)
    scores.frames = list(by_frame.values())
    return scores


def score_split(detector, sets: list[Path], split: str, frames: int, limit: int | None) -> dict[str, list[ClipScores]]:
    """Every clip of one split of each set, scored (``score_clip``)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="video-eval-") as folder:
        for root in sets:
            clips = clips_of(root, split, limit)
            scored = []
            for clip in tqdm(clips, desc=f"{root.name} {split}", unit="clip", leave=False):
                try:
                    scored.append(score_clip(detector, clip, Path(folder), frames))
                except ImageError as err:  # an unreadable image costs its clip, not the run
                    tqdm.write(f"skipped {clip.set} {clip.group}: {err}")
            out[root.name] = scored
    return out


def _auc(labels: list[int], scores: list[float]) -> float | None:
    """ROC-AUC of any scores (logits or probabilities); ``None`` without both labels."""
    return float(roc_auc_score(labels, scores)) if len(set(labels)) == 2 else None


def set_figures(scored: list[ClipScores]) -> dict[str, Any]:
    """ROC-AUCs of one set's clips in which a face was found: photo, frame, and clip for
    every pooling, all three on the same clips."""
    with_face = [s for s in scored if s.tracks]
    labels = [s.clip.label for s in with_face]
    return {
        "clips": {"real": sum(s.clip.label == 0 for s in scored), "fake": sum(s.clip.label == 1 for s in scored)},
        "clips_without_face": len(scored) - len(with_face),
        "clips_of_several_images": sum(len(s.clip.images) > 1 for s in scored),
        "frames": sum(len(s.frames) for s in with_face),
        "photo_roc_auc": _auc([s.clip.label for s in with_face for _ in s.photos], [p for s in with_face for p in s.photos]),
        "frame_roc_auc": _auc([s.clip.label for s in with_face for _ in s.frames], [z for s in with_face for z in s.frames]),
        "clip_roc_auc": {how: _auc(labels, [s.pooled(how) for s in with_face]) for how in POOLINGS},
    }


def choose_pooling(val_auc: Mapping[str, float | None]) -> str:
    """The pooling of ``pooling.LENGTH_FREE`` with the best validation clip ROC-AUC.

    A pooling whose value grows with the clip's length (the top frames' mean, the maximum)
    is never chosen, however well it does: the calibration fitted on these few-frame clips
    would call a minute of the same face more fake than its first seconds.

    Args:
        val_auc: ROC-AUC per pooling (``None`` where it cannot be computed).
    """
    return max(LENGTH_FREE, key=lambda how: val_auc.get(how) or 0.0)


def evaluate_video(
    detector,
    data_dir: str | Path,
    sets: tuple[str, ...] = DEFAULT_SETS,
    frames: int = FRAMES,
    limit: int | None = None,
    weights_dir: str | Path | None = None,
    write_card: bool = True,
) -> dict[str, Any]:
    """Scores the validation and test clips, chooses the pooling, fits the video
    calibration and reports (see the module's docstring).

    Args:
        detector: A loaded ``Detector``.
        data_dir: Folder holding the sets, by name.
        sets: Set names (each needs both labels in its splits).
        frames: Frames per clip.
        limit: At most this many clips per label, set and split.
        weights_dir: Where the card is rewritten (the shipped ``weights/`` by default).
        write_card: Store the fitted calibration in the card.

    Returns:
        The report (also what ``VIDEO_EVAL_JSON`` holds).
    """
    started = time.monotonic()
    roots = [Path(data_dir) / name for name in sets]
    val = score_split(detector, roots, "val", frames, limit)
    test = score_split(detector, roots, "test", frames, limit)

    val_clips = [s for scored in val.values() for s in scored if s.tracks]
    val_labels = np.array([s.clip.label for s in val_clips])
    val_auc = {how: _auc(list(val_labels), [s.pooled(how) for s in val_clips]) for how in POOLINGS}
    chosen = choose_pooling(val_auc)
    card = detector.card
    config = card.training.get("config", {})
    measured = {"clips": len(val_clips), "sets": ", ".join(sets), "frames per clip": frames,
                **{f"ROC-AUC {how}": auc for how, auc in val_auc.items()}}
    val_per_set = {name: (np.array([s.clip.label for s in clips]), np.array([s.pooled(chosen) for s in clips]))
                   for name, clips in ((name, [s for s in scored if s.tracks]) for name, scored in val.items()) if clips}
    calibration = VideoCalibration.fit(card, chosen, val_per_set, config.get("uncertain_width", 0.1), measured,
                                       config.get("max_false_fake", 0.05))

    test_clips = {name: [s for s in scored if s.tracks] for name, scored in test.items()}
    per_set = {name: (np.array([s.clip.label for s in clips]),
                      np.array([calibration.probability(s.pooled(chosen)) for s in clips]))
               for name, clips in test_clips.items() if clips}
    calibrated = evaluation.report(per_set, calibration.threshold, uncertain_band=calibration.uncertain_band)
    # Real-first: the share of each set's real test clips called fake, and of its fakes called
    # real (the card keeps both, for a clip's answer to say how often its verdict goes astray).
    reals_called_fake = {name: row.get("real_called_fake") for name, row in calibrated["sets"].items()}
    fakes_called_real = {name: row.get("fake_called_real") for name, row in calibrated["sets"].items()}
    tested = {TESTED["fake"]: reals_called_fake, TESTED["real"]: fakes_called_real}
    calibration = replace(calibration, tested={key: {name: share for name, share in rates.items() if share is not None}
                                               for key, rates in tested.items()})
    report = {
        "command": COMMAND,
        "weights_sha256": card.sha256,
        "frames_per_clip": frames,
        "clip_fps": CLIP_FPS,
        "limit": limit,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "chosen_pooling": chosen,
        "max_false_fake": config.get("max_false_fake", 0.05),
        "val_clip_roc_auc": val_auc,
        "calibration": calibration.card_block(),
        "test": {name: set_figures(scored) for name, scored in test.items()},
        "test_all_sets": set_figures([s for scored in test.values() for s in scored]),
        "test_calibrated": {key: calibrated["overall"].get(key) for key in
                            ("n", "roc_auc", "accuracy", "balanced_accuracy", "ece", "share_uncertain")},
        "test_reals_called_fake": reals_called_fake,
        "test_fakes_called_real": fakes_called_real,
    }
    if write_card:
        write_section(weights_dir, CARD_KEY, calibration.card_block())
    return report


def markdown(report: dict[str, Any]) -> str:
    """The report as the Markdown page ``docs/VIDEO_EVAL.md``."""
    names = list(POOLINGS)
    chosen = report["chosen_pooling"]
    lines = [
        "# Video: pooling measured on clips filmed from the test splits",
        "",
        f"_Generated by `{report['command']}` (weights sha256 `{report['weights_sha256'][:12]}…`, "
        f"{report['minutes']} min); do not edit by hand. How the clips are made: `detector/video_eval.py`, "
        "[VIDEO.md](VIDEO.md)._",
        "",
        f"One clip per group and label of each test split, {report['frames_per_clip']} frames at "
        f"{report['clip_fps']:g} fps filmed from the group's images with small moves and encoded as MPEG-4, "
        "then scored by `Detector.predict_video`. ROC-AUC of the same images scored as photos, as single "
        "video frames, and as clips (each pooling of a track's frame logits):",
        "",
        "| set | clips real/fake | no face | several images | photo | frame | "
        + " | ".join(f"clip: {n}" + (" (chosen)" if n == chosen else "") for n in names) + " | gain |",
        "|---|---|---|---|---|---|" + "---|" * len(names) + "---|",
    ]
    rows = {**report["test"], "all sets": report["test_all_sets"]}
    for name, f in rows.items():
        clip = f["clip_roc_auc"]
        gain = None if clip[chosen] is None or f["frame_roc_auc"] is None else clip[chosen] - f["frame_roc_auc"]
        cells = [f"{f['clips']['real']}/{f['clips']['fake']}", str(f["clips_without_face"]),
                 str(f["clips_of_several_images"]), _cell(f["photo_roc_auc"]), _cell(f["frame_roc_auc"]),
                 *(_cell(clip[n]) for n in names), "–" if gain is None else f"{gain:+.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cal = report["calibration"][chosen]
    test = report["test_calibrated"]
    lo, hi = cal["uncertain from"], cal["uncertain to"]
    lines += [
        "",
        "gain: clip minus frame ROC-AUC with the chosen pooling. \"all sets\" pools every set's clips "
        "(DFDC's dominate). Clips in which no face was found (\"no face\") have no clip score and are left "
        "out of all three columns, so that photo, frame and clip are scored on the same images.",
        "",
        f"**Pooling chosen on validation clips: `{chosen}`** (validation clip ROC-AUC: "
        + ", ".join(f"{n} {_cell(v)}" for n, v in report["val_clip_roc_auc"].items()) + ").",
        "",
        f"Video calibration fitted on {cal[MEASURED_ON]['clips']} validation clips and stored in the model card: "
        f"sigmoid(pooled logit / {cal['temperature']:.3f} + {cal['bias']:.3f}), threshold {cal['threshold']:.3f}, "
        f"uncertain band [{lo:.3f}, {hi:.3f}). On the {test['n']} test clips with a face: ROC-AUC "
        f"{_cell(test['roc_auc'])}, accuracy {_cell(test['accuracy'])}, balanced accuracy "
        f"{_cell(test['balanced_accuracy'])}, ECE {_cell(test['ece'])}. The threshold puts real faces first, as "
        "the photos' does: the lowest at which no set calls more than "
        f"{percent(report['max_false_fake'])} of its real validation clips fake. Real test clips called fake: "
        + _shares(report["test_reals_called_fake"]) + "; fake test clips called real: "
        + _shares(report.get("test_fakes_called_real", {})) + ".",
        "",
    ]
    return "\n".join(lines)


def _shares(by_set: dict[str, float | None]) -> str:
    """``dfdc_faces 1%, ffhq_stylegan 8%``: the sets' shares that are known."""
    return ", ".join(f"{name} {percent(share)}" for name, share in by_set.items() if share is not None) or "–"


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main(weights: str | None, data_dir: str, sets: list[str], frames: int, limit: int | None, write_card: bool,
         out_md: str | Path = VIDEO_EVAL_MD, out_json: str | Path = VIDEO_EVAL_JSON) -> dict[str, Any]:
    """The command: evaluate, write the card, the JSON and the Markdown page."""
    from detector.pipeline import Detector

    detector = Detector.load(weights)
    report = evaluate_video(detector, data_dir, tuple(sets), frames, limit, weights, write_card)
    for path, text in ((Path(out_json), json.dumps(report, indent=1) + "\n"), (Path(out_md), markdown(report))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return report
