"""A person's first visit, in a real browser: drop a photo on the page, read the verdict.

Playwright drives Debian's Chromium (`apt-get install chromium`; Playwright's own browser
download is not used). The screenshot lands in artifacts/screenshots/app.png for a human to
look at.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from detector.bench import free_port, start_app, stop_app
from conftest import EXAMPLES, REPO
from test_app import app_weights

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
PHOTO = EXAMPLES / "facerec_obama_and_biden.jpg"

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing: apt-get install chromium")

# What a file manager hands the page on a drop: a DataTransfer holding the file.
MAKE_DROP = """([b64, name, type]) => {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], name, {type}));
    return data;
}"""
OVERLAY_SHOWN = """() => {
    const img = document.querySelector('#overlay img');
    return img !== null && img.complete && img.naturalWidth > 0;
}"""


def test_dropping_a_photo_shows_the_verdict_and_the_overlay(tiny_weights, tmp_path):
    port = free_port()
    with open(tmp_path / "app.log", "w+") as log:
        server = start_app(str(app_weights(tiny_weights)), port, log)
        try:
            drive_the_page(f"http://127.0.0.1:{port}/")
        finally:
            stop_app(server)


def drive_the_page(url: str) -> None:
    """Drops the photo, waits for the verdict, checks what is shown, saves a screenshot."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            zone = page.locator('#photo [aria-label="Drop an image file here to upload"]')
            drop = page.evaluate_handle(MAKE_DROP, [base64.b64encode(PHOTO.read_bytes()).decode(), PHOTO.name, "image/jpeg"])
            for event in ("dragenter", "dragover", "drop"):
                zone.dispatch_event(event, {"dataTransfer": drop})

            status = page.locator("#status")
            expect(status).to_contain_text("Verdict:", timeout=90_000)
            expect(status).to_contain_text("2 faces found")
            expect(page.locator("#verdict")).to_contain_text("fake")
            expect(page.locator("#verdict")).to_contain_text("real")
            page.wait_for_function(OVERLAY_SHOWN, timeout=30_000)
            # The table's grid announces its rows to screen readers: a header and two faces.
            expect(page.locator("#faces [role=grid]")).to_have_attribute("aria-rowcount", "3")

            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "app.png"), full_page=True)
        finally:
            browser.close()
