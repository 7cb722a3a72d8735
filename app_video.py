"""The demo's Video tab: drop a clip, see every face followed and scored over time.

``app.py`` builds the page and calls ``video_tab`` inside it. One event is an API endpoint,
``/predict_video``: a video file in; each face's fake probability (the bars), its most suspicious
frame with the Grad-CAM map, and the details (JSON, as ``python -m detector predict --json``
prints them, without the path) out. The plot, the table, the status line and the faces up close
are filled from those details (and the close-ups, kept in the page's state, not in the API) by a
private event, as on the photo tab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from matplotlib.figure import Figure

import app_common
from detector import render
from detector.card import ModelCard
from detector.pooling import VideoCalibration
from detector.wording import also_given, declared_note, face_phrase, percent, reasons_summary, verdict_rule
from detector.video import MAX_SAMPLES, SAMPLE_FPS, SUPPORTED, VIDEO_SUFFIXES
from detector.video_scoring import failed_record

#: In the photo table's order (app.TABLE_HEADERS): what and why first, where and when last.
TRACK_HEADERS = ["face", "verdict", "fake probability", "reason (when uncertain)", "seen (s)", "frames"]
#: What the bars show for a clip without a face, as on the photo tab.
NO_FACE_BARS = "no face found"
EMPTY_STATUS = (f"Drop a video ({SUPPORTED}) into the Video box. "
                f"{SAMPLE_FPS:g} frames a second are scored; a clip longer than {MAX_SAMPLES / SAMPLE_FPS:g} s gets "
                f"its {MAX_SAMPLES} frames spread over all of it.")
#: The tab's example: two real photos filmed in turn, with a cut (examples/make_clip.py).
EXAMPLE_CLIP = Path(__file__).resolve().parent / "examples" / "two_scenes.mp4"
#: Line colours of the faces, in turn (matplotlib's default cycle).
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def video_tab(detector) -> None:
    """Adds the Video tab to the ``gr.Blocks`` being built, and its ``/predict_video`` event.

    Args:
        detector: A loaded ``detector.pipeline.Detector``.
    """
    card = detector.card

    def predict_video(video: dict | None, progress=gr.Progress()) -> tuple[dict[str, float] | None, str | None,
                                                                          dict[str, Any], list]:
        """Follows every face through a video and scores it for signs of a deepfake.

        Args:
            video: The clip (MP4, MOV, WebM, MKV, AVI or animated GIF).

        Returns:
            Each face's fake probability (``{"face 1": p, ...}``, numbered as its track;
            the words "no face found" when there is no face, nothing when the file is
            unusable), the most suspicious frame with the Grad-CAM map and each face boxed
            and tagged with its track's verdict, and the details as JSON: ``kind``
            ("video"), ``fake_probability``, ``label`` (fake, real, uncertain or "no face"),
            ``duration_s``, ``frames_scored``, ``tracks`` (each with ``id``,
            ``fake_probability``, ``label``, ``first_s``, ``last_s``, ``frames`` of ``t``,
            ``box`` and ``fake_probability``, and ``reason`` when uncertain), ``note``,
            ``declared`` (only when the file's C2PA manifest says generative AI made or edited
            it: ``says`` and ``evidence``; not part of the verdict) and ``error`` when the file
            is not a usable video.
            Last, for the page only (a ``gr.State``, which the API leaves out): each face of
            that frame up close with its caption (``render.closeups``).
        """
        if not video or not video.get("path"):
            return None, None, {}, []
        path, name = app_common.upload_name(video)

        def report(done: int, total: int) -> None:
            progress((done, total), desc="Scoring frames", unit="frames")

        # A VideoError is an ImageError: its message names the file.
        result = app_common.guarded(lambda: detector.predict_video(path, gradcam=True, progress=report), path, name)
        if isinstance(result, str):
            gr.Warning(result)
            return None, None, failed_record(result), []
        frame = result.suspicious
        if frame is None:
            picture, closeups = None, []
        else:  # downloads named after the visitor's clip, as on the photo tab
            stem = Path(name).stem
            picture = app_common.answer_picture(render.overlay(frame.rgb, frame.marks, numbers=frame.numbers),
                                                f"{stem}-most-suspicious-frame")
            closeups = app_common.closeup_files(render.closeups(frame.rgb, frame.marks, numbers=frame.numbers), stem)
        bars = {f"face {t.id}": t.fake_probability for t in result.tracks} or NO_FACE_BARS
        return bars, picture, {**result.to_dict(), "error": None}, closeups

    with gr.Tab("Video"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                # A file box, not gr.Video: a browser plays few of the formats scored (MPEG-4 Part 2,
                # AVI, MKV), and gr.Video refuses an animated GIF and flags the rest "not playable".
                video = gr.File(file_types=[*sorted(VIDEO_SUFFIXES), ".gif"], type="filepath",
                                label=f"Video ({SUPPORTED})", height=200, elem_id="video")
                if EXAMPLE_CLIP.is_file():
                    # Served from examples/, not copied to Gradio's cache: a gr.File example's copy
                    # is not kept there, and delete_cache removed it after two minutes, after which
                    # the example answered "File 'two_scenes.mp4' does not exist".
                    gr.set_static_paths([EXAMPLE_CLIP])
                    gr.Examples([str(EXAMPLE_CLIP)], inputs=video, api_visibility="private",
                                label="Example: two real photos filmed in turn, with a cut (examples/README.md)")
                gr.Markdown(
                    "Every face is followed from frame to frame and gets one verdict from all its frames. "
                    "At a cut, faces start new tracks. Faces the detector cannot find (turned away, tiny) "
                    "are not scored.",
                )
                # Beside the results, where the column is empty: the frame's faces are small there.
                closeup_box, closeups = app_common.closeup_section(
                    "**The faces of the most suspicious frame up close**, with the network's Grad-CAM map "
                    "and each face's verdict over the whole clip.", "video-closeups", columns=2)
            with gr.Column(scale=1):
                status = gr.Markdown(EMPTY_STATUS, elem_id="video-status")
                verdict = gr.Label(label="Fake probability per face", show_heading=False, elem_id="video-verdict")
                plot = gr.Plot(label="Fake probability of each face over time", show_label=False, format="png",
                               elem_id="video-plot")
                overlay = gr.Image(
                    **app_common.titled_picture("**Most suspicious frame**: where the network looked (Grad-CAM)"),
                    format="png", interactive=False, height=360, elem_id="video-overlay")
        table = gr.Dataframe(headers=TRACK_HEADERS, column_widths=app_common.column_widths(TRACK_HEADERS),
                             label="Faces followed through the clip", interactive=False,
                             wrap=True, elem_id="tracks")
        with gr.Accordion("Details as JSON (what the /predict_video API returns)", open=False):
            details = gr.JSON(label="Details", elem_id="video-details")
        faces_state = gr.State([])

    video.change(
        predict_video, inputs=video, outputs=[verdict, overlay, details, faces_state], api_name="predict_video",
        preprocess=False,
    ).then(
        lambda d, faces: (*explain_video(d, card), faces, app_common.shown(faces)), inputs=[details, faces_state],
        outputs=[plot, table, status, closeups, closeup_box], api_visibility="private", queue=False,
    ).then(None, js=app_common.reveal("video-status"), queue=False)


def explain_video(details: dict[str, Any] | None, card: ModelCard) -> tuple[Figure | None, list[list[str]], str]:
    """The plot, the tracks table and the status line, from ``/predict_video``'s details.

    Args:
        details: The JSON details (empty when there is no clip).
        card: The model card: its video calibration (threshold and band, drawn and stated)
            and what the model has seen.

    Returns:
        The plot (``None`` without faces), the table rows and the status Markdown.
    """
    if not details:
        return None, [], EMPTY_STATUS
    if details.get("error"):
        return None, [], f"### Cannot analyse this file\n{details['error']}"
    calibration = VideoCalibration.of(card)
    rows = [[str(t["id"]), t["label"], percent(t["fake_probability"]), t.get("reason") or "",
             f"{t['first_s']:g} – {t['last_s']:g}", str(len(t["frames"]))] for t in details["tracks"]]
    return plot_tracks(details, calibration), rows, _status(details, calibration, card.unseen_summary())


def plot_tracks(details: dict[str, Any], calibration: VideoCalibration) -> Figure | None:
    """Each face's frames (points joined by a thin line) and its pooled probability (a thick
    dashed line over the time it was seen), over the threshold and the uncertain band.

    Returns:
        A matplotlib figure, or ``None`` when no face was followed.
    """
    if not details.get("tracks"):
        return None
    figure = Figure(figsize=(5.6, 3.6), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    lo, hi = calibration.uncertain_band
    if hi > lo:
        axes.axhspan(lo, hi, color="#f59e0b", alpha=0.15, lw=0, label="uncertain")
    axes.axhline(calibration.threshold, color="#6b7280", ls=":", lw=1.2, label=f"fake from {percent(calibration.threshold)}")
    end = 0.0
    for i, track in enumerate(details["tracks"]):
        colour = COLOURS[i % len(COLOURS)]
        t = [f["t"] for f in track["frames"]]
        axes.plot(t, [f["fake_probability"] for f in track["frames"]], "o-", color=colour, ms=3, lw=0.8, alpha=0.8,
                  label=f"face {face_phrase(track['label'], track['fake_probability'], track['id'])}")
        axes.plot([track["first_s"], track["last_s"]], [track["fake_probability"]] * 2, "--", color=colour, lw=2.2)
        end = max(end, t[-1])
    axes.set(xlabel="time in the clip (s)", ylabel="fake probability", ylim=(0, 1),
             xlim=(0, max(end, details.get("duration_s") or 0, 0.5)))
    axes.set_title("Fake probability of each face over time", fontsize=10, loc="left")
    figure.legend(loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    axes.grid(alpha=0.3)
    return figure


def _status(details: dict[str, Any], calibration: VideoCalibration, seen: str) -> str:
    """The verdict in words, as the photo tab says it: the verdict, the rule, why faces are
    uncertain, the note, and what the model has seen."""
    n, frames = len(details["tracks"]), details["frames_scored"]
    length = f"{details['duration_s']:.1f} s clip" if details.get("duration_s") else "clip"
    if n == 0:
        lines = ["### Verdict: no face found",
                 f"The detector judges faces and found none in the {frames} frames it scored of this {length}, "
                 "so it gives no verdict."]
    else:
        rule = verdict_rule(calibration.threshold, calibration.uncertain_band)
        top = max(details["tracks"], key=lambda t: t["fake_probability"])
        lines = [f"### Verdict: {details['label']}",
                 f"{n} face{'s' if n > 1 else ''} followed through {frames} frames of a {length}; the highest fake "
                 f"probability is {percent(details['fake_probability'])} (face {top['id']}). {rule}"]
        verdict = details["label"]
        if verdict in ("fake", "real") and (rates := calibration.given_to_the_other_kind(verdict)):
            lines.append(also_given(verdict, rates, "clips"))  # how often the other kind's test clips got it
        uncertain = [(t["id"], t.get("reason")) for t in details["tracks"] if t["label"] == "uncertain"]
        if uncertain:
            lines.append(f"**Uncertain:** {reasons_summary(uncertain)}.")
    if details.get("note"):
        lines.append(f"Note: {details['note']}.")
    if note := declared_note(details.get("declared")):
        lines.append(note)
    lines.append(f"*What this model has seen:* {seen}")
    return "\n\n".join(lines)
