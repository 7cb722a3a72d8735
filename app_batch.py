"""The demo's "Several photos" tab: drop up to ``MAX_PHOTOS`` photos at once, get a verdict for each.

Each photo is scored as the Detector tab scores one (``app_common.score_upload``) and written as
the command line writes it (``python -m detector predict``: verdict, highest fake probability,
faces, details), and drawn as the Detector tab draws it; the table downloads as ``predict --csv``
writes it, alone or in a ZIP with every overlay. A visitor on a hosted demo has no command line:
this is their folder. The event is private: an API client sends photos one by one to ``/predict``,
and a folder goes to the CLI.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import gradio as gr

import app_common
from detector import render
from detector.batch_scoring import empty_record
from detector.card import ModelCard
from detector.imaging import IMAGE_SUFFIXES, SUPPORTED_FORMATS
from detector.wording import CSV_HEADER, NO_FACE, csv_line, csv_row, face_phrase, record_cells, verdict_rule

#: Photos scored per drop. A 12-megapixel photo takes about 0.14 s here with its Grad-CAM maps
#: (docs/speed.md), uploading it longer, and the page waits for all of them: more belong on the
#: command line.
MAX_PHOTOS = 20
BATCH_HEADERS = ["photo", "verdict", "fake prob.", "faces", "details"]
EMPTY_STATUS = (f"Drop up to {MAX_PHOTOS} photos ({', '.join(SUPPORTED_FORMATS)}) into the Photos box: each gets its "
                "verdict and its faces drawn as on the Detector tab.")
#: The order verdicts are counted in, the most pressing first.
VERDICTS = ("fake", "uncertain", "real", NO_FACE, "error")


def batch_tab(detector) -> None:
    """Adds the "Several photos" tab to the ``gr.Blocks`` being built (a private event).

    Args:
        detector: A loaded ``detector.pipeline.Detector``.
    """
    card = detector.card

    # The buttons' updates are gr.update()s, not components: a component built here copies its
    # file into another folder of the cache at once, a second file for every answer.
    def score_photos(files: list | None, progress=gr.Progress()) -> tuple[list[list[str]], list, str, dict, dict]:
        if not files:
            hidden = gr.update(value=None, visible=False)
            return [], [], EMPTY_STATUS, hidden, hidden
        records, pictures = [], []
        for upload in progress.tqdm(files[:MAX_PHOTOS], desc="Scoring photos", unit="photos"):
            record, picture = score_one(detector, upload)
            records.append(record)
            pictures.append(picture)
        drawn = [(r["path"], picture) for r, picture in zip(records, pictures) if picture is not None]
        return ([table_row(r) for r in records], [picture for _, picture in drawn],
                batch_status(records, len(files), card), gr.update(value=table_file(records), visible=True),
                gr.update(value=bundle_file(records, [(name, png) for name, (png, _) in drawn]), visible=True))

    with gr.Tab("Several photos"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                photos = gr.File(file_count="multiple", file_types=sorted(IMAGE_SUFFIXES), type="filepath",
                                 label=f"Photos (up to {MAX_PHOTOS} at once)", height=200, elem_id="photos")
                # No period after the command: on a phone it stood on a line of its own.
                gr.Markdown("For a folder of any size, use the command line: "
                            "`python -m detector predict --overlays out/ photos/`")
            with gr.Column(scale=2):
                status = gr.Markdown(EMPTY_STATUS, elem_id="batch-status")
                table = gr.Dataframe(headers=BATCH_HEADERS, label="Verdict per photo", interactive=False, wrap=True,
                                     column_widths=app_common.column_widths(BATCH_HEADERS), elem_id="batch-table")
                with gr.Row():
                    download = gr.DownloadButton("Download the table (CSV)", visible=False, size="sm",
                                                 elem_id="batch-csv")
                    bundle = gr.DownloadButton("Download the table and overlays (ZIP)", visible=False, size="sm",
                                               elem_id="batch-zip")
        gallery = gr.Gallery(**app_common.titled_picture("**Where the network looked** (Grad-CAM), photo by photo"),
                             columns=4, height="auto", object_fit="contain", allow_preview=True,
                             elem_id="batch-overlays")

    photos.change(score_photos, inputs=photos, outputs=[table, gallery, status, download, bundle],
                  api_visibility="private").then(
        None, js=app_common.reveal("batch-status"), queue=False)


def score_one(detector, upload: dict | str) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """One photo's record, as ``python -m detector predict --json`` prints it but named as the
    visitor named the file, and its overlay with a caption (``None`` for an unusable file)."""
    path, name = app_common.upload_name(upload)
    scored = app_common.score_upload(detector, path, name)
    record = empty_record(name, video=False)
    if isinstance(scored, str):
        return {**record, "error": scored}, None
    result, rgb = scored
    record.update(result.to_dict())
    said = face_phrase(result.label, result.fake_probability) if result.faces else "no face found"
    picture = app_common.answer_picture(render.overlay(rgb, result), f"{Path(name).stem}-overlay")
    return record, (picture, f"{said} · {name}")  # the verdict first: a long name is cut


def table_file(records: list[dict[str, Any]]) -> str:
    """The photos' records as ``python -m detector predict --csv`` writes them (each photo named
    as the visitor named it, its fake probability unrounded), in a file of this answer's own.

    Returns:
        The CSV's path.
    """
    path = app_common.answer_file("photos", ".csv")
    path.write_bytes(table_bytes(records))
    return str(path)


def table_bytes(records: list[dict[str, Any]]) -> bytes:
    """The CSV of ``table_file``, encoded."""
    # With a byte-order mark: without it, Excel reads UTF-8 as the local code page and garbles
    # every accented file name.
    return ("\n".join(csv_line(cells) for cells in [CSV_HEADER, *map(csv_row, records)]) + "\n").encode("utf-8-sig")


def bundle_file(records: list[dict[str, Any]], overlays: list[tuple[str, str]]) -> str:
    """The table and every photo's overlay in one ZIP of this answer's own: ``photos.csv`` as
    ``table_file`` writes it, and ``overlays/<photo>-overlay.png`` for each photo drawn, named after
    the visitor's file (a name met twice, as ``a.jpg`` beside ``a.png``, gets a number).

    Args:
        records: The photos' records.
        overlays: ``(the visitor's file name, its overlay PNG's path)`` for each photo drawn.

    Returns:
        The ZIP's path.
    """
    path = app_common.answer_file("photos", ".zip")
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("photos.csv", table_bytes(records), zipfile.ZIP_DEFLATED)
        entries: set[str] = set()
        for name, png in overlays:
            stem, n = Path(name).stem, 1
            while (entry := f"overlays/{stem}{f'-{n}' if n > 1 else ''}-overlay.png") in entries:
                n += 1
            entries.add(entry)
            bundle.write(png, entry)  # stored: a PNG is compressed already
    return str(path)


def table_row(record: dict[str, Any]) -> list[str]:
    """A record's row: the photo, its verdict, highest fake probability, faces and details."""
    return [record["path"], *record_cells(record)]


def batch_status(records: list[dict[str, Any]], dropped: int, card: ModelCard) -> str:
    """The tab's summary: how many photos got each verdict, the rule, and what the model has seen.

    Args:
        records: The scored photos' records.
        dropped: How many photos were dropped (more than ``MAX_PHOTOS`` are not scored).
        card: The model card (threshold, band, what the model has seen).
    """
    counts = Counter(r["label"] or "error" for r in records)
    summary = ", ".join(f"{counts[v]} {'could not be scored' if v == 'error' else v}" for v in VERDICTS if counts[v])
    lines = [f"### {len(records)} photo{'s' if len(records) > 1 else ''}: {summary}"]
    if dropped > len(records):
        lines.append(f"Only the first {len(records)} of the {dropped} photos dropped were scored; "
                     "score the others in another drop, or a folder with the command line.")
    lines.append(f"{verdict_rule(card.threshold, card.uncertain_band)} A photo is fake if any face is, else "
                 "uncertain if any face is, else real.")
    lines += [caveat for verdict in ("fake", "real") if counts[verdict] for caveat in card.verdict_caveats(verdict)]
    lines.append(f"*What this model has seen:* {card.unseen_summary()}")
    return "\n\n".join(lines)
