"""The Gradio demo: drop a photo, see the verdict for every face and where the network looked.

    python app.py                          # http://127.0.0.1:7860, the shipped weights/
    python app.py --host 0.0.0.0 --port 8080 --weights /tmp/my_run
    python app.py --share                  # also a public gradio.live link, when online

``GRADIO_SERVER_NAME`` and ``GRADIO_SERVER_PORT`` set the default host and port (Hugging Face
Spaces sets them), ``DETECTOR_WEIGHTS`` the default weights folder.

This file only wires the page: the ``detector`` package decodes, finds and scores faces,
``detector.render`` draws the overlay, ``detector.wording`` writes the numbers. One event is
an API endpoint, ``/predict``: an image file in; each face's fake probability (the bars), the
overlay image and the details (JSON) out. Everything else on the page is filled from those
details (and the faces' close-ups, kept in the page's state, not in the API) by a private
event. The Video tab (``app_video.py``) adds ``/predict_video`` the same way; the "Several
photos" tab (``app_batch.py``) scores many photos at once, without an endpoint.
"""

from __future__ import annotations

import os

# Read by gradio when it is imported: no usage reports from a demo that may run offline.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

import gradio as gr

import app_common
from app_batch import batch_tab
from app_video import video_tab
from detector import render
from detector.card import ModelCard, WeightsError
from detector.defaults import EXAMPLES
from detector.startup import import_tensorflow
from detector.wording import NO_FACE, declared_note, percent, reasons_summary, verdict_rule


#: Shown first in the gallery: one face, two faces, three faces, then the rest.
EXAMPLE_ORDER = (
    "skimage_astronaut_eileen_collins.png",
    "facerec_obama_and_biden.jpg",
    "dlib_voc_2008_001322.jpg",
    "facerec_obama.jpg",
    "facerec_biden.jpg",
    "facerec_two_people.jpg",
    "dlib_voc_2009_004587.jpg",
)

#: Largest upload the server accepts. A 45-megapixel camera JPEG is 15-30 MB; a minute of
#: 1080p phone video 100-130 MB.
MAX_FILE_SIZE = "200mb"
#: Requests scored at once. Each holds a decoded photo and its pictures (a 108-megapixel one,
#: the largest accepted, ~0.6 GB: ``bench/large_photos.py``), so this bounds memory; on a 2-core
#: CPU more would not be faster anyway.
CONCURRENCY_LIMIT = 2
#: Requests waiting beyond that; later ones are told the queue is full instead of piling up.
MAX_QUEUE = 64
#: Gradio deletes uploads and an answer's pictures older than AGE seconds every FREQUENCY
#: seconds. Half an hour: a visitor reads the answer, then downloads the overlay, which fails
#: once its file is gone (at two minutes, as it was, Chromium's download was "canceled").
#: (Deleting each upload right after scoring would race: identical uploads share one
#: content-addressed path, so one request could delete another's input.)
DELETE_CACHE = (300, 1800)

#: What a face is and why first, where it is last: on a phone the table scrolls sideways.
TABLE_HEADERS = ["face", "verdict", "fake probability", "reason (when uncertain)", "box (x, y, w × h)"]
#: What the bars show for a photo without a face (the API's first output: {"label": "no face found"}).
NO_FACE_BARS = "no face found"
EMPTY_STATUS = "Drop a photo of people into the Photo box, paste one, take one with the webcam, or pick an example."

CSS = """
#status { min-height: 6em; }
#status h3 { margin: 0 0 0.3em 0; }
#status p { margin: 0.2em 0; }
/* On a phone the card's tables scroll sideways, each cell on one line: squeezed to the screen,
   their headers stood a letter a line ("t r a i n"). Its long hashes break anywhere. */
@media (max-width: 600px) {
  #about table { display: block; overflow-x: auto; }
  #about th, #about td { white-space: nowrap; }
  #about code { word-break: break-all; }
}
""" + app_common.CSS


def build_demo(detector) -> gr.Blocks:
    """The page: input and examples on the left, verdict, overlay and table on the right.

    Args:
        detector: A loaded ``detector.pipeline.Detector``; the About tab shows its card.

    Returns:
        The Blocks, not launched (see ``launch``).
    """
    card = detector.card

    def predict(image: dict | None) -> tuple[dict[str, float] | None, str | None, dict[str, Any], list]:
        """Scores every face in a photo for signs of a deepfake.

        Args:
            image: The photo (JPEG, PNG, WebP, AVIF, HEIC, BMP, TIFF or GIF).

        Returns:
            Each face's fake probability (``{"face 1": p, ...}``; the words "no face found"
            when there is no face, nothing when the file is unusable), the photo with the
            Grad-CAM map blended in and each face boxed and tagged, and the details as JSON:
            ``fake_probability`` (the highest face's; null without a face), ``label`` (fake,
            real, uncertain or "no face"), ``reason`` (why uncertain or no face), ``faces``
            (each with ``box`` [x, y, w, h], ``fake_probability``, ``label`` and, when
            uncertain, ``reason``), ``whole_image`` (only without a face: the image's own
            score, not a verdict), ``declared`` (only when the file's metadata says generative AI
            made or edited it: ``says`` and ``evidence``; not part of the verdict) and ``error``
            (why the file is not a usable image, else null).
            Last, for the page only (a ``gr.State``, which the API leaves out): each face up
            close with its caption (``render.closeups``).
        """
        # preprocess=False hands us the raw upload, so detector.imaging, not Pillow, judges
        # it: size limits before decoding, EXIF orientation, clear messages.
        if not image or not image.get("path"):
            return None, None, {}, []
        path, name = app_common.upload_name(image)
        scored = app_common.score_upload(detector, path, name)
        if isinstance(scored, str):
            gr.Warning(scored)
            return None, None, {"fake_probability": None, "label": None, "faces": [], "error": scored}, []
        result, rgb = scored
        # The bars: each face's fake probability; without a face, the words instead of bars.
        bars = {f"face {i}": face.fake_probability for i, face in enumerate(result.faces, 1)} or NO_FACE_BARS
        # Downloads are named after the visitor's photo: IMG_0001-overlay-….png, IMG_0001-face-1-….png.
        stem = Path(name).stem
        return (bars, app_common.answer_picture(render.overlay(rgb, result), f"{stem}-overlay"),
                {**result.to_dict(), "error": None}, app_common.closeup_files(render.closeups(rgb, result), stem))

    with gr.Blocks(title="Deepfake face detector", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(
            "# Deepfake face detector\n"
            "Drop a photo of people. Every face gets a fake probability, and the heat map shows "
            "where the network looked. A high score is evidence, not proof."
        )
        # On a phone the four tabs take two rows: as a menu ("...") they hid the Video and About
        # tabs from a 360 px screen, with only "Detector" in sight.
        with gr.Tabs(overflow_behavior="wrap"):
            with gr.Tab("Detector"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1):
                        image = gr.Image(
                            sources=["upload", "clipboard", "webcam"],
                            type="filepath",
                            label="Photo",
                            buttons=["fullscreen"],  # no "share": see app_common.titled_picture
                            height=440,
                            elem_id="photo",
                        )
                        gr.Examples(
                            [str(EXAMPLES / name) for name in EXAMPLE_ORDER if (EXAMPLES / name).is_file()],
                            inputs=image,
                            label="Examples: real photos (sources in examples/README.md)",
                            examples_per_page=8,
                            api_visibility="private",
                        )
                    with gr.Column(scale=1):
                        status = gr.Markdown(EMPTY_STATUS, elem_id="status")
                        verdict = gr.Label(label="Fake probability per face", show_heading=False, elem_id="verdict")
                        overlay = gr.Image(
                            **app_common.titled_picture("**Where the network looked** (Grad-CAM)"),
                            format="png",
                            interactive=False,
                            height=440,
                            elem_id="overlay",
                        )
                closeup_box, closeups = app_common.closeup_section(
                    "**Each face up close**: the square the network scored, with its Grad-CAM map.", "closeups")
                faces_state = gr.State([])
                table = gr.Dataframe(
                    headers=TABLE_HEADERS,
                    column_widths=app_common.column_widths(TABLE_HEADERS),
                    label="Faces",
                    interactive=False,
                    wrap=True,
                    elem_id="faces",
                )
                with gr.Accordion("Details as JSON (what the /predict API returns)", open=False):
                    details = gr.JSON(label="Details", elem_id="details")
            batch_tab(detector)
            video_tab(detector)
            with gr.Tab("About the model"):
                gr.Markdown(card.to_markdown(), elem_id="about")

        image.change(
            predict,
            inputs=image,
            outputs=[verdict, overlay, details, faces_state],
            api_name="predict",
            preprocess=False,
        ).then(
            lambda d, faces: (*explain(d, card), faces, app_common.shown(faces)),
            inputs=[details, faces_state],
            outputs=[table, status, closeups, closeup_box],
            api_visibility="private",
            queue=False,
        ).then(None, js=app_common.reveal("status"), queue=False)
    return demo


def explain(details: dict[str, Any] | None, card: ModelCard) -> tuple[list[list[str]], str]:
    """The per-face table and the status, from the details /predict returned.

    Args:
        details: The JSON details of ``/predict`` (empty when there is no photo).
        card: The model card: the threshold, the uncertain band and what the model has seen.

    Returns:
        The table rows and the status Markdown.
    """
    if not details:
        return [], EMPTY_STATUS
    if details.get("error"):
        return [], f"### Cannot analyse this file\n{details['error']}"
    rows = [_row(i, face) for i, face in enumerate(details["faces"], 1)]
    return rows, _status(details, card)


def _row(number: int, face: dict[str, Any]) -> list[str]:
    x, y, w, h = face["box"]
    reason = face.get("reason") or ""
    return [str(number), face["label"], percent(face["fake_probability"]), reason, f"{x}, {y}, {w} × {h}"]


def _status(details: dict[str, Any], card: ModelCard) -> str:
    """The verdict in words: the verdict, the rule, why faces are uncertain, and what the
    model has seen (so a "real" on a kind of fake it never met is read for what it is worth)."""
    seen = f"*What this model has seen:* {card.unseen_summary()}"
    said = [note] if (note := declared_note(details.get("declared"))) else []  # beside the verdict, not in it
    if details["label"] == NO_FACE:
        return "\n\n".join([
            "### Verdict: no face found",
            "The detector judges faces and found none in this photo, so it gives no verdict. "
            "(The JSON details keep the whole image's score as `whole_image`: it is not a verdict.)",
            *said,
            seen,
        ])
    rule = verdict_rule(card.threshold, card.uncertain_band)
    faces = details["faces"]
    top = max(range(len(faces)), key=lambda i: faces[i]["fake_probability"])
    lines = [
        f"### Verdict: {details['label']}",
        f"{len(faces)} face{'s' if len(faces) > 1 else ''} found; the highest fake probability is "
        f"{percent(details['fake_probability'])}" + (f" (face {top + 1})" if len(faces) > 1 else "") + f". {rule}",
    ]
    if details["label"] in ("fake", "real"):
        lines += card.verdict_caveats(details["label"])
    uncertain = [(i, f.get("reason")) for i, f in enumerate(faces, 1) if f["label"] == "uncertain"]
    if uncertain:
        lines.append(f"**Uncertain:** {reasons_summary(uncertain, numbered=len(faces) > 1)}.")
    lines += [*said, seen]
    return "\n\n".join(lines)


def launch(demo: gr.Blocks, host: str, port: int, share: bool = False, block: bool = True) -> gr.Blocks:
    """Serves the demo with the project's queue, upload limit and style.

    Args:
        demo: The page from ``build_demo``.
        host: Interface to listen on (``0.0.0.0`` for all).
        port: TCP port.
        share: Also open a public gradio.live link; when that fails (offline), the demo
            keeps serving locally and says so.
        block: Serve until interrupted; False returns once the server is up.

    Returns:
        The launched demo.
    """
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=MAX_QUEUE)
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=MAX_FILE_SIZE,
        theme=gr.themes.Soft(),
        css=CSS,
        head=app_common.RETYPE_HEIC + app_common.NO_PREVIEW,
        show_error=False,
        prevent_thread_lock=True,
    )
    if share and not demo.share_url:
        print("* No public link (see above): serving locally only.", file=sys.stderr, flush=True)
    if block:
        demo.block_thread()
    return demo


def port_in_use(host: str, port: int) -> bool:
    """Whether another process listens on ``host:port`` (binding it fails)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def busy_port_message(host: str, port: int) -> str:
    return (f"error: port {port} on {host} is already in use (is the demo already running?). "
            f"Choose another port with --port, e.g. `python app.py --port {port + 1}` "
            "(or set GRADIO_SERVER_PORT).")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the deepfake detector demo.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                        help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--weights", default=os.environ.get("DETECTOR_WEIGHTS"),
                        help="folder with model.keras and model_card.json (default: $DETECTOR_WEIGHTS or weights/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if port_in_use(args.host, args.port):  # say so now, not after loading the model
        print(busy_port_message(args.host, args.port), file=sys.stderr)
        return 2
    import_tensorflow()
    from detector.pipeline import Detector  # imports TensorFlow: after argument errors

    try:
        detector = Detector.load(args.weights)
    except WeightsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    detector.warm_up()  # now, not on the first visitor's photo
    try:
        launch(build_demo(detector), args.host, args.port, args.share)
    except OSError:
        if not port_in_use(args.host, args.port):
            raise
        print(busy_port_message(args.host, args.port), file=sys.stderr)  # taken while the model loaded
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
