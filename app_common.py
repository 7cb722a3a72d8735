"""What the page's tabs share: scoring an uploaded photo, the pictures of an answer, and the "each
face up close" section.

``guarded`` runs a tab's work on an upload the way every tab does: a bad file turned into a
sentence that names the visitor's file (never the server's path), a bug logged with its
traceback and told as a plain sentence; ``score_upload`` scores a photo so, Grad-CAM maps on.

On a group photo, a 12-megapixel one or a video frame, the overlay is shrunk to fit the page and
a small face's heat map to a few pixels; the close-ups (``detector.render.closeups``) show every
face as large as any other. They ride in a ``gr.State`` beside the API's outputs, so the
endpoints keep the outputs they document, and the section stays hidden until there is a face.

Every picture of an answer goes out as a PNG file of its own (``answer_picture``), never as an
array: Gradio writes an array to a file named after its bytes, rewriting it in place, so two
visitors given the same picture at once (both clicked the same example) would share one file,
and one's download could be cut off while the other's answer rewrote it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder

from detector.imaging import ImageError, load_image
from detector.overlay_files import save_png
from detector.provenance import declared

if TYPE_CHECKING:
    from detector.pipeline import Detector, Result

log = logging.getLogger("app")
T = TypeVar("T")

#: Style of the answer pictures and the close-up galleries (``launch()`` takes it with the page's CSS).
CSS = """
/* Gradio stretches a gallery's few pictures over the whole row: one face would be 1200 px wide. */
.closeups .grid-container { grid-template-columns: repeat(auto-fill, minmax(180px, 240px)) !important; }
/* And shows every face in the page's flow: at its fixed 495 px, a crowd's faces scrolled in a box of
   their own inside the scrolling page (on a phone, the box caught the thumb's scroll). */
.closeups .grid-wrap { min-height: 0 !important; height: auto !important; max-height: none !important; }
/* Gradio floats a picture's buttons (full screen, download) over its top-right corner, where a face
   near the photo's top edge has its verdict tag: here they get a row of their own above it. */
.answer-picture .image-container { display: flex; flex-direction: column; }
.answer-picture .image-container > .top-panel { position: static; align-self: flex-end; }
.answer-picture .image-container > button { flex: 1 1 0; min-height: 0; }
@media (max-width: 600px) {
  /* On a phone the rule above leaves one 240 px face a row and the rest of the width empty: two
     a row, and every caption wrapped rather than cut ("3: uncertain (…" hid the probability). */
  .closeups .grid-container { grid-template-columns: repeat(2, 1fr) !important; }
  .answer-picture .caption-label { white-space: normal !important; }
  /* A picture as tall as it is drawn: at a fixed height a landscape photo floated in white. */
  .answer-picture:not(.closeups) { height: auto !important; }
  .answer-picture .image-container > button { flex: none !important; height: auto !important; }
  .answer-picture .image-frame, .answer-picture .image-frame img { width: 100% !important; height: auto !important; }
}
/* NO_PREVIEW's words, in the middle of the box where the photo would be. */
#photo .image-frame:has(> .no-preview) { display: flex; align-items: center; justify-content: center; height: 100%; }
#photo .no-preview { padding: 1em; max-width: 24em; text-align: center; }
"""


#: A script for the page's head (``launch(head=...)``). A browser that knows no HEIC type
#: (Windows without Microsoft's HEIF extension, some Linux desktops) gives an iPhone photo an
#: empty type, and the Photo box, which takes "image/*", ignores it without a word. Such files
#: are given the type "image/heic": a dropped one by dropping the re-typed files in its place, a
#: chosen one by replacing the file input's files before Gradio reads them. In the head, it is
#: in place before the Photo box is drawn; as ``launch(js=...)`` it ran only once every part of
#: the page had loaded, and a photo dropped before the slowest part arrived was lost.
RETYPE_HEIC = """<script>
(() => {
    const heic = (file) => !file.type && /\\.(heic|heif)$/i.test(file.name);
    const retyped = (files) => {
        const data = new DataTransfer();
        for (const file of files) data.items.add(heic(file) ? new File([file], file.name, {type: "image/heic"}) : file);
        return data;
    };
    window.addEventListener("drop", (event) => {
        const files = [...(event.dataTransfer?.files ?? [])];
        if (!files.some(heic)) return;
        event.stopImmediatePropagation();
        event.preventDefault();
        event.target.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: retyped(files)}));
    }, true);
    window.addEventListener("change", (event) => {
        const input = event.target;
        if (input instanceof HTMLInputElement && input.type === "file" && [...(input.files ?? [])].some(heic)) {
            input.files = retyped(input.files).files;
        }
    }, true);
})();
</script>"""


#: A script for the page's head: a photo in a format Chromium and Firefox cannot show (HEIC,
#: TIFF) left a broken picture in the Photo box, as if the upload had failed. Such a picture
#: is hidden and words say why in its place; the overlay shows the photo, drawn by the server.
#: (Gradio draws another photo in a new picture, which takes the words with it.)
NO_PREVIEW = """<script>
(() => {
    window.addEventListener("error", (event) => {
        const img = event.target;
        const parent = img instanceof HTMLImageElement && img.closest("#photo") ? img.parentElement : null;
        if (!parent || !/\\.(heic|heif|tiff?)$/i.test(img.src)) return;
        img.style.display = "none";
        if (parent.querySelector(".no-preview")) return;
        const note = document.createElement("p");
        note.className = "no-preview";
        note.textContent = "No preview: this browser cannot show HEIC or TIFF photos. The detector reads them: "
            + "the photo is under \u201cWhere the network looked\u201d.";
        parent.append(note);
    }, true);
})();
</script>"""


def reveal(elem_id: str) -> str:
    """A page function (an event's ``js``) that scrolls an answer's status into view when it is
    out of sight: on a phone the columns stack, and the verdict lands under the photo and the
    examples, a screen or more below. It does nothing while the status is the empty page's (no
    heading) or already in the upper half of the window, as beside the photo on a wide screen.

    Args:
        elem_id: The status Markdown's ``elem_id``.
    """
    return f"""() => {{
        const status = document.getElementById({elem_id!r});
        if (!status || !status.querySelector("h3")) return;
        const top = status.getBoundingClientRect().top;
        if (top < 0 || top > window.innerHeight / 2) status.scrollIntoView({{behavior: "smooth", block: "start"}});
    }}"""


def guarded(work: Callable[[], T], path: str, name: str) -> T | str:
    """Runs ``work`` on an upload; a file that cannot be used, or a bug, becomes the sentence to
    show the visitor instead.

    Args:
        work: What to do with the upload.
        path: Where the server keeps the upload.
        name: The visitor's name for the file (what messages call it).

    Returns:
        What ``work`` returned, or the message: an ``ImageError``'s, naming the visitor's file
        rather than the server's path; for any other error (logged with its traceback), a
        plain sentence.
    """
    try:
        return work()
    except ImageError as err:
        return str(err).replace(path, name)
    except Exception:
        log.exception("analysing %s failed", path)
        return f"Something went wrong while analysing '{name}'; the server log has the details."


def score_upload(detector: "Detector", path: str, name: str) -> tuple["Result", np.ndarray] | str:
    """Reads and scores one uploaded photo, with a Grad-CAM map per face (``guarded``).

    Returns:
        ``(result, rgb)``, or the message that says why the file could not be scored.
    """
    def work() -> tuple["Result", np.ndarray]:
        rgb = load_image(path)  # kept for the pictures; the metadata is read from the file
        return dataclasses.replace(detector.predict(rgb, gradcam=True), declared=declared(path)), rgb

    return guarded(work, path, name)


#: Each table column's width, by its header: the short ones in pixels, room for their header and
#: values on one line; the long text a share of the table's width, the rest of it on a computer.
#: Gradio turns a share into pixels of the screen's width, and with shares only, on a phone,
#: "fake probability" stood a letter a line; now the table scrolls sideways there instead.
COLUMN_WIDTHS = {"photo": "160px", "face": "64px", "verdict": "110px", "fake prob.": "80px",
                 "fake probability": "130px", "faces": "64px", "box (x, y, w × h)": "170px", "seen (s)": "90px",
                 "frames": "76px", "reason (when uncertain)": "50%", "details": "50%"}


def column_widths(headers: list[str]) -> list[str]:
    """``gr.Dataframe``'s ``column_widths`` for a table with these headers (``COLUMN_WIDTHS``)."""
    return [COLUMN_WIDTHS[header] for header in headers]


#: Longest start of an answer picture's file name: a visitor's file may be named up to the
#: file system's 255 bytes, and "<its name>-overlay-<random>.png" was refused as too long.
MAX_NAME = 120


def answer_file(name: str, suffix: str) -> Path:
    """A new, empty file of an answer, ``<name>-<random><suffix>``, in the ``answers`` folder of
    Gradio's cache.

    The file is this answer's alone, so no other answer can rewrite it while it is downloaded
    (``bench/load.py`` on one photo: 6 of 200 overlay downloads cut off mid-file when Gradio
    was handed arrays). Being in the cache, Gradio serves it as it is and deletes it with the
    rest (``delete_cache``); one folder for all, so no empty folder is left behind per answer.

    Args:
        name: The start of the file's name (what a visitor's download is called); characters
            other than ASCII letters, digits, ``.``, ``-`` and ``_`` become ``_``, and only its
            last ``MAX_NAME`` characters are kept (they say what the file is).
        suffix: Its extension, with the dot.
    """
    folder = Path(get_upload_folder()) / "answers"
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-MAX_NAME:] or "answer"
    handle, path = tempfile.mkstemp(prefix=f"{name}-", suffix=suffix, dir=folder)
    os.close(handle)
    return Path(path)


def answer_picture(rgb: np.ndarray, name: str) -> str:
    """Writes one picture of an answer as a PNG of its own (``answer_file``).

    Args:
        rgb: The picture, RGB uint8.
        name: The start of the file's name.

    Returns:
        The PNG's path.
    """
    return str(save_png(rgb, answer_file(name, ".png")))


def closeup_files(closeups: list[tuple[np.ndarray, str]], stem: str) -> list[tuple[str, str]]:
    """``render.closeups``' pictures as files of this answer's own (``answer_picture``), named
    ``<stem>-face-<number>-<random>.png``, captions kept."""
    return [(answer_picture(rgb, f"{stem}-face-{i}"), caption) for i, (rgb, caption) in enumerate(closeups, 1)]


def upload_name(upload: dict | str) -> tuple[str, str]:
    """``(server path, the visitor's file name)`` of an upload (a Gradio file dict or a path)."""
    if isinstance(upload, str):
        return upload, Path(upload).name
    return upload["path"], upload.get("orig_name") or Path(upload["path"]).name


def closeup_section(title: str, elem_id: str, columns: int = 6) -> tuple[gr.Column, gr.Gallery]:
    """Adds a hidden section with a title and a gallery of close-ups to the Blocks being built.

    Args:
        title: What the pictures are, in Markdown (also the gallery's label, for screen readers).
        elem_id: The gallery's HTML id.
        columns: Close-ups in a row at most.

    Returns:
        The section (show it with ``shown(closeups)``) and its gallery.
    """
    with gr.Column(visible=False) as section:
        gallery = gr.Gallery(
            **titled_picture(title, "closeups"),
            columns=columns,
            height="auto",
            object_fit="contain",
            allow_preview=True,
            elem_id=elem_id,
        )
    return section, gallery


def titled_picture(title: str, *classes: str) -> dict[str, Any]:
    """Writes ``title`` (Markdown) above the picture component built next, and returns that
    component's settings: its label (the title for screen readers, not drawn), its CSS classes
    (``answer-picture`` and ``classes``) and its buttons.

    Gradio floats a picture's own label over its top-left corner, where a face near the photo's
    top edge has its verdict tag: the tag was hidden under "Where the network looked". Of
    Gradio's buttons, "share" is left out: it uploads the picture, a visitor's photo of someone,
    to Hugging Face to post in the Space's public discussions, and off Spaces it does not work.
    """
    gr.Markdown(title)
    return {"label": title.replace("*", ""), "show_label": False, "elem_classes": ["answer-picture", *classes],
            "buttons": ["download", "fullscreen"]}


def shown(closeups: list) -> gr.Column:
    """The section's update: visible when there is a close-up to show."""
    return gr.Column(visible=bool(closeups))
