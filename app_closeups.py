"""The page's "each face up close" section, shared by the photo and the Video tab.

On a group photo, a 12-megapixel one or a video frame, the overlay is shrunk to fit the page and
a small face's heat map to a few pixels; the close-ups (``detector.render.closeups``) show every
face as large as any other. They ride in a ``gr.State`` beside the API's outputs, so the
endpoints keep the outputs they document, and the section stays hidden until there is a face.
"""

from __future__ import annotations

import gradio as gr

#: Style of every close-up gallery (``launch()`` takes it with the page's CSS).
CSS = """
/* Gradio stretches a gallery's few pictures over the whole row: one face would be 1200 px wide. */
.closeups .grid-container { grid-template-columns: repeat(auto-fill, minmax(180px, 240px)) !important; }
.closeups .grid-wrap { min-height: 0 !important; height: auto !important; }
"""


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
        gr.Markdown(title)
        gallery = gr.Gallery(
            label=title.replace("*", ""),
            show_label=False,  # a floating label would cover the first face
            columns=columns,
            height="auto",
            object_fit="contain",
            allow_preview=True,
            elem_id=elem_id,
            elem_classes=["closeups"],
        )
    return section, gallery


def shown(closeups: list) -> gr.Column:
    """The section's update: visible when there is a close-up to show."""
    return gr.Column(visible=bool(closeups))
