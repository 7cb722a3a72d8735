"""Where ``predict --overlays DIR`` writes each image's overlay (the CLI test draws them)."""

from __future__ import annotations

from pathlib import Path

from detector.overlay_files import overlay_path


def test_an_overlay_keeps_its_input_s_path_and_suffix_inside_the_folder():
    out = Path("/tmp/ov")
    assert overlay_path(out, "photos/a.jpg") == out / "photos" / "a.jpg.png"
    assert overlay_path(out, "photos/a.png") == out / "photos" / "a.png.png", "a.jpg and a.png do not collide"
    assert overlay_path(out, "/data/x/a.jpg") == out / "data" / "x" / "a.jpg.png", "an absolute path loses its root"
    assert overlay_path(out, "../../up/./a.jpg") == out / "up" / "a.jpg.png", "nothing lands outside the folder"
    assert overlay_path(out, "a.jpg") == out / "a.jpg.png"
