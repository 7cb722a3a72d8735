"""Score a video: sampled frames -> faces -> tracks -> one verdict per track and per clip.

``Detector.predict_video`` runs ``score_video``; the steps are the detector's public ones,
so a new face finder or network changes nothing here:

1. ``detector.video.sample_frames`` decodes the clip one sampled frame at a time;
2. per frame, one ``Detector.regions`` call finds the faces and their scored regions, and
   ``detector.tracking.Tracker`` links them to the faces of the frames before;
3. the crops (``Detector.crops``) of ``BATCH_FRAMES`` frames go through the network in one
   ``Detector.logits`` call, with the framing and scoring views of photos;
4. each track's frame logits are pooled and calibrated (``detector.pooling``); the clip
   takes the highest track probability, as a photo takes its highest face;
5. with ``gradcam=True``, the most suspicious frame (the highest-scoring frame of the track
   that decided the clip) is read again and its faces get Grad-CAM maps.

Only the frame being searched and the crops of one batch are held, so memory is bounded by
the number of samples (boxes and logits), not by the clip's length or resolution.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from detector.faces import Box, cut_off_by_edge
from detector.pooling import UNFITTED_NOTE, VideoCalibration, pool
from detector.provenance import Declaration, declared
from detector.render import Mark
from detector.tracking import Tracker
from detector.video import MAX_SAMPLES, SAMPLE_FPS, Frames, sample_frames
from detector.wording import BAND_REASON, EDGE_REASON, NO_FACE

if TYPE_CHECKING:
    from detector.pipeline import Detector

#: Sampled frames whose face crops go through the network in one call.
BATCH_FRAMES = 8
#: A track seen in fewer sampled frames than this (or than the clip has, if fewer) is too
#: brief to judge: a passer-by, or a face the finder saw in a sleeve for a moment.
MIN_TRACK_FRAMES = 3

TOO_FEW = "too few frames"

#: ``progress(done, total)`` after each sampled frame; ``total`` is an estimate.
Progress = Callable[[int, int], None]


@dataclass
class FrameScore:
    """One face in one sampled frame.

    Attributes:
        t: Seconds into the clip.
        box: The face as found, in pixels of the (upright) frame.
        region: The square region scored.
        logit: The network's fake logit (mean over the card's scoring views).
        fake_probability: The frame's probability alone, with the image calibration.
        judged: False when the crop is too flat to judge (dark, blown out, blurred); such
            frames are left out of the track's pooled score.
        sample: Index of the frame among the samples.
        whole: False when the frame's edge cuts the face off (``faces.cut_off_by_edge``,
            the rule photos follow); such frames are left out of the pooled score too.
    """

    t: float
    box: Box
    region: Box
    logit: float
    fake_probability: float
    judged: bool = True
    sample: int = field(default=0, repr=False)
    whole: bool = True

    @property
    def usable(self) -> bool:
        """Judged and whole: the frames a track's pooled score is made of."""
        return self.judged and self.whole

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "box": self.box.as_list(), "fake_probability": self.fake_probability}


@dataclass
class TrackResult:
    """One face followed through the clip, and its verdict.

    Attributes:
        id: The track's number (from 1, in order of appearance).
        fake_probability: Calibrated probability from the pooled frame logits.
        label: ``"fake"``, ``"real"`` or ``"uncertain"``.
        reason: Why "uncertain", else ``None``.
        first_s: When the face was first seen.
        last_s: When it was last seen.
        frames: The face in each sampled frame it was found in.
        pooled_logit: The pooled logit the probability was calibrated from.
    """

    id: int
    fake_probability: float
    label: str
    reason: str | None
    first_s: float
    last_s: float
    frames: list[FrameScore]
    pooled_logit: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "fake_probability": self.fake_probability, "label": self.label,
               "first_s": round(self.first_s, 3), "last_s": round(self.last_s, 3),
               "frames": [f.to_dict() for f in self.frames]}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class SuspiciousFrame:
    """The frame the clip's verdict leans on most, ready to draw with ``render.overlay``.

    Attributes:
        t: Seconds into the clip.
        rgb: The frame, upright RGB uint8.
        marks: Its faces, each with its track's verdict and a Grad-CAM map, in track order.
        numbers: The track id of each mark (the tag's number), ascending.
    """

    t: float
    rgb: np.ndarray = field(repr=False)
    marks: list[Mark]
    numbers: list[int]


@dataclass
class VideoResult:
    """The verdict on one clip.

    Attributes:
        fake_probability: The highest track probability (``None`` when no face was found).
        label: ``"fake"`` if a track is fake, else ``"uncertain"`` if one is, else
            ``"real"``; ``"no face"`` when no face was found in any sampled frame.
        duration_s: The clip's length (as far as it was read, when its container does not
            say).
        frames_scored: Sampled frames decoded and searched for faces.
        tracks: The faces followed through the clip, in order of appearance.
        notes: What the user should know: a clip scored only in part, a file that ends
            early, no face, a missing video calibration.
        cuts: Times (s) of the cuts found: tracks end there.
        suspicious: The most suspicious frame with Grad-CAM, when asked for.
        declared: What the file's own metadata says about generative AI (``detector.provenance``):
            beside the verdict, never part of it.
    """

    fake_probability: float | None
    label: str
    duration_s: float | None
    frames_scored: int
    tracks: list[TrackResult]
    notes: list[str] = field(default_factory=list)
    cuts: list[float] = field(default_factory=list)
    suspicious: SuspiciousFrame | None = field(default=None, repr=False)
    declared: Declaration | None = None

    @property
    def note(self) -> str | None:
        return "; ".join(self.notes) or None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the CLI prints (without the path and error fields)."""
        return {
            "kind": "video",
            "fake_probability": self.fake_probability,
            "label": self.label,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "frames_scored": self.frames_scored,
            "tracks": [t.to_dict() for t in self.tracks],
            "note": self.note,
        } | ({"declared": self.declared.to_dict()} if self.declared is not None else {})


def failed_record(error: str | None = None) -> dict[str, Any]:
    """The JSON form of a clip that could not be scored: ``VideoResult.to_dict``'s keys,
    empty, and the ``error``."""
    return {"kind": "video", "fake_probability": None, "label": None, "duration_s": None, "frames_scored": 0,
            "tracks": [], "error": error, "note": None}


def score_video(
    detector: "Detector",
    path: str | os.PathLike,
    *,
    gradcam: bool = False,
    progress: Progress | None = None,
    sample_fps: float = SAMPLE_FPS,
    max_samples: int = MAX_SAMPLES,
) -> VideoResult:
    """Scores every face of a clip (see the module's docstring for the steps).

    Args:
        detector: A loaded ``Detector``.
        path: A video file (see ``detector.video``).
        gradcam: Also find the most suspicious frame and draw Grad-CAM maps on its faces.
        progress: Called after each sampled frame with ``(done, total)``.
        sample_fps: Frames scored per second of the clip.
        max_samples: Most frames scored; a longer clip gets them spread over its whole
            length (one of unknown length is scored on its first ``max_samples / sample_fps``
            seconds), and the note says so.

    Returns:
        The ``VideoResult``.

    Raises:
        detector.video.VideoError: the file is not a usable video.
    """
    info, frames = sample_frames(path, sample_fps, max_samples)
    expected = max_samples if info.duration_s is None else min(max_samples, math.ceil(info.duration_s * info.sample_fps - 1e-6))
    tracker = Tracker()
    faces: list[tuple[int, FrameScore]] = []  # (track id, face) in frame order
    batch: list[np.ndarray] = []
    logits: list[float] = []

    def flush() -> None:
        if batch:
            logits.extend(detector.logits(np.concatenate(batch)).tolist())
            batch.clear()

    times: list[float] = []
    for frame in frames:
        times.append(frame.t)
        boxes, regions, found = detector.regions(frame.rgb)  # the one face search of this frame
        if not found:
            boxes, regions = [], []
        ids = tracker.update(frame.index, boxes, frame.rgb)
        if boxes:
            crops = detector.crops(frame.rgb, regions)
            batch.append(crops)
            size = (frame.rgb.shape[1], frame.rgb.shape[0])
            for track_id, box, region, crop in zip(ids, boxes, regions, crops):
                whole = not cut_off_by_edge(box, region, size, detector.card.face_margin)
                faces.append((track_id, FrameScore(frame.t, box, region, 0.0, 0.0, _judgeable(crop), frame.index, whole)))
        if len(batch) >= BATCH_FRAMES:
            flush()
        if progress is not None:
            progress(len(times), max(expected, len(times)))
    flush()
    probabilities = detector.calibrate(np.array(logits))
    for (_, face), z, p in zip(faces, logits, probabilities):
        face.logit, face.fake_probability = float(z), float(p)

    calibration = VideoCalibration.of(detector.card)
    tracks = [_track_result(track_id, [f for i, f in faces if i == track_id], calibration, len(times))
              for track_id in tracker.tracks]
    notes = _notes(info, frames)
    if tracks and not calibration.fitted:
        notes.append(UNFITTED_NOTE)
    result = _clip_result(tracks, len(times), _duration(info, frames), notes)
    result.cuts = [times[i] for i in tracker.cuts]
    result.declared = declared(path)
    if gradcam and result.tracks:
        result.suspicious = _suspicious_frame(detector, path, sample_fps, max_samples, result, faces)
    return result


def _judgeable(crop: np.ndarray) -> bool:
    from detector.pipeline import MIN_CONTRAST

    return float(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).std()) >= MIN_CONTRAST


def _track_result(track_id: int, frames: list[FrameScore], calibration: VideoCalibration,
                  frames_scored: int) -> TrackResult:
    """A track's pooled probability and verdict, with the reasons photos have for
    "uncertain" (small, flat or cut-off faces) and one of its own: too few frames. Frames
    where the face is flat or cut off by the frame's edge are left out of the pooled score."""
    from detector.pipeline import MIN_JUDGE_FACE

    judged = [f for f in frames if f.usable]
    pooled = pool([f.logit for f in judged or frames], calibration.pooling)
    p = calibration.probability(pooled)
    label, reason = calibration.verdict(p), None
    side = float(np.median([min(f.box.w, f.box.h) for f in frames]))
    if len(frames) < min(MIN_TRACK_FRAMES, frames_scored):
        reason = f"{TOO_FEW} with this face to judge ({len(frames)} of {frames_scored})"
    elif side < MIN_JUDGE_FACE:
        reason = f"face too small to judge (median {side:.0f} px)"
    elif not judged:
        reason = EDGE_REASON if any(f.judged for f in frames) else "face too dark, flat or blurred to judge"
    elif label == "uncertain":
        reason = BAND_REASON
    if reason:
        label = "uncertain"
    return TrackResult(track_id, p, label, reason, frames[0].t, frames[-1].t, frames, pooled)


def _clip_result(tracks: list[TrackResult], frames_scored: int, duration: float | None, notes: list[str]) -> VideoResult:
    """The clip's verdict from its tracks. Tracks too brief to judge count only when no
    track is long enough: a face glimpsed once must not outvote the people on screen."""
    if not tracks:
        notes = [f"no face found in the {frames_scored} sampled frame{'s' if frames_scored != 1 else ''}", *notes]
        return VideoResult(None, NO_FACE, duration, frames_scored, [], notes)
    counted = deciding_tracks(tracks)
    labels = {t.label for t in counted}
    label = "fake" if "fake" in labels else "uncertain" if "uncertain" in labels else "real"
    top = max(t.fake_probability for t in counted)
    return VideoResult(top, label, duration, frames_scored, tracks, notes)


def deciding_tracks(tracks: list[TrackResult]) -> list[TrackResult]:
    """The tracks the clip's verdict is taken from: those seen in enough frames, or all
    when none is."""
    return [t for t in tracks if not (t.reason or "").startswith(TOO_FEW)] or tracks


def _duration(info, frames: Frames) -> float | None:
    if info.duration_s is not None:
        return info.duration_s
    if frames.cut_short:
        return None  # only the scored part was read: the length is unknown
    return frames.last_t + (1.0 / info.fps if info.fps else 0.0)


def _notes(info, frames: Frames) -> list[str]:
    notes = []
    if info.spread:
        notes.append(f"the clip is {info.duration_s:.0f} s long: its {frames.max_samples} frames scored are spread "
                     f"over all of it, one every {1 / info.sample_fps:.1f} s")
    if frames.cut_short:
        length = f"{info.duration_s:.0f} s long" if info.duration_s else "longer than that"
        notes.append(f"only the first {info.scored_s:g} s were scored (at most {frames.max_samples} frames); "
                     f"the clip is {length}")
    elif info.duration_s and frames.last_t < info.duration_s - max(1.0, 2.0 / info.sample_fps):
        notes.append(f"the file ends at {frames.last_t:.1f} s although it says it lasts {info.duration_s:.1f} s: "
                     "it may be truncated; what could be read was scored")
    return notes


def _suspicious_frame(detector: "Detector", path, sample_fps: float, max_samples: int, result: VideoResult,
                      faces: list[tuple[int, FrameScore]]) -> SuspiciousFrame | None:
    """The highest-scoring judged frame of the track with the clip's probability, read
    again (decoding is cheap beside the face search), with Grad-CAM over its faces."""
    track = max(deciding_tracks(result.tracks), key=lambda t: t.fake_probability)
    best = max((f for f in track.frames if f.judged), key=lambda f: f.logit, default=track.frames[0])
    _, frames = sample_frames(path, sample_fps, max_samples)
    rgb = next((f.rgb for f in frames if f.index == best.sample), None)
    frames.close()
    if rgb is None:
        return None
    here = sorted((p for p in faces if p[1].sample == best.sample), key=lambda p: p[0])  # in track order
    crops = detector.crops(rgb, [f.region for _, f in here]).astype(np.float32)
    maps = detector.explainer().heatmaps(crops, np.array([f.logit for _, f in here]))
    by_id = {t.id: t for t in result.tracks}
    marks = [Mark(f.box, by_id[i].fake_probability, by_id[i].label, m, f.region) for (i, f), m in zip(here, maps)]
    return SuspiciousFrame(best.t, rgb, marks, [i for i, _ in here])
