"""A person's first visit, in a real browser: drop a photo on the page, read the verdict.

Playwright drives Debian's Chromium (`apt-get install chromium`; Playwright's own browser
download is not used). The visits: a photo with two faces, a photo without a face and a
file that is not an image, iPhone photos (HEIC) with and without a type (dropped, chosen, and
dropped while the page is still loading), a crowd's close-ups, the phone layout, a small
phone's tabs and several photos on a phone, the About tab, a clip of two people and the
example clip on the Video tab, and four files at once on the "Several photos" tab. Their
screenshots land in artifacts/screenshots/ (faces.png, phone.png, heic.png, no_face.png,
bad_file.png, about.png, video.png, video_example.png, several_photos.png,
several_photos_phone.png) for a human to look at.
"""

from __future__ import annotations

import base64
import io
import re
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import videos
from conftest import EXAMPLES, REPO
from detector.bench import free_port, start_app, stop_app
from detector.clipmaker import moving_frames
from detector.imaging import load_image
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

# What a file manager hands the page on a drop: a DataTransfer holding the files.
MAKE_DROP = """(files) => {
    const data = new DataTransfer();
    for (const [b64, name, type] of files) {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        data.items.add(new File([bytes], name, {type}));
    }
    return data;
}"""
PHOTO_ZONE = '#photo [aria-label="Drop an image file here to upload"]'
#: A page function: ``(selector, files)`` chosen in a file input, as ``MAKE_DROP`` makes them.
CHOOSE_FILES = """([selector, files]) => {
    const input = document.querySelector(selector);
    input.files = (""" + MAKE_DROP + """)(files).files;
    input.dispatchEvent(new Event("change", {bubbles: true}));
}"""


def image_shown(element: str) -> str:
    """A page function: whether the element's picture has loaded."""
    return f"""() => {{
        const img = document.querySelector('{element} img');
        return img !== null && img.complete && img.naturalWidth > 0;
    }}"""


def covering_top(element: str) -> str:
    """A page function: what lies over the top strip of the element's first picture, where a face
    near the photo's top edge has its tag (each covering element's start; none when it is free)."""
    return f"""() => {{
        const img = document.querySelector('{element} img');
        img.scrollIntoView({{block: "center"}});
        const box = img.getBoundingClientRect();
        // The picture as drawn in its element: fitted, centred (CSS object-fit).
        const fit = getComputedStyle(img).objectFit;
        let scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
        if (fit === "scale-down") scale = Math.min(scale, 1);
        const [w, h] = ["contain", "scale-down"].includes(fit)
            ? [img.naturalWidth * scale, img.naturalHeight * scale] : [box.width, box.height];
        const left = box.left + (box.width - w) / 2, top = box.top + (box.height - h) / 2;
        const over = [];
        for (let i = 1; i < 10; i++) {{
            const hit = document.elementFromPoint(left + w * i / 10, top + 6);
            if (hit !== img) over.push(hit === null ? "outside the window" : hit.outerHTML.slice(0, 80));
        }}
        return over;
    }}"""


#: A page function: the texts in the tables a selector picks that break inside a word (more
#: lines than words).
WORDS_BROKEN = """(tables) => {
    const broken = [];
    for (const table of document.querySelectorAll(tables)) {
        const walker = document.createTreeWalker(table, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const text = node.textContent.trim();
            if (!text || node.parentElement.closest("button")) continue;  // the cells' menus
            const range = document.createRange();
            range.selectNodeContents(node);
            const lines = new Set(Array.from(range.getClientRects(), r => Math.round(r.top))).size;
            if (lines > text.split(/\\s+/).length) broken.push(text);
        }
    }
    return broken;
}"""

OVERLAY_SHOWN = image_shown("#overlay")
#: A page function: whether the Detector tab's verdict is in the upper half of the window.
STATUS_IN_VIEW = """() => {
    const top = document.getElementById("status").getBoundingClientRect().top;
    return top >= 0 && top < window.innerHeight / 2;
}"""


@pytest.fixture(scope="module")
def page_url(tiny_weights, tmp_path_factory):
    port = free_port()
    with open(tmp_path_factory.mktemp("browser") / "app.log", "w+") as log:
        server = start_app(str(app_weights(tiny_weights)), port, log)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            stop_app(server)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_a_photo_with_faces_shows_each_face_s_verdict_and_the_overlay(browser, page_url):
    from playwright.sync_api import expect

    page = drop(browser, page_url, PHOTO.name, PHOTO.read_bytes(), "image/jpeg")
    status = page.locator("#status")
    expect(status).to_contain_text("Verdict:", timeout=90_000)
    expect(status).to_contain_text("3 faces found")  # Obama, Biden and a girl looking down
    expect(status).to_contain_text("What this model has seen")
    expect(page.locator("#verdict")).to_contain_text("face 1")
    expect(page.locator("#verdict")).to_contain_text("face 2")
    page.wait_for_function(OVERLAY_SHOWN, timeout=30_000)
    # The table's grid announces its rows to screen readers: a header and three faces.
    expect(page.locator("#faces [role=grid]")).to_have_attribute("aria-rowcount", "4")
    # Each face up close, captioned with its number and verdict.
    expect(page.locator("#closeups img")).to_have_count(3)
    expect(page.locator("#closeups")).to_contain_text("1: ")
    assert page.evaluate("window.scrollY") == 0  # beside the photo the verdict is in view: no scrolling
    # A face at the photo's top has its tag along the top edge: no title may hide it.
    assert page.evaluate(covering_top("#overlay")) == []
    screenshot(page, "faces.png")


def test_on_a_phone_the_close_ups_sit_two_a_row_with_whole_captions(browser, page_url):
    from playwright.sync_api import expect

    page = drop(browser, page_url, PHOTO.name, PHOTO.read_bytes(), "image/jpeg",
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    expect(page.locator("#closeups img")).to_have_count(3, timeout=90_000)
    # The columns stack: the verdict lands a screen below the photo, and the page scrolls to it.
    page.wait_for_function(STATUS_IN_VIEW, timeout=10_000)
    page.locator("#closeups").scroll_into_view_if_needed()
    first, second, third = (page.locator("#closeups img").nth(i).bounding_box() for i in range(3))
    assert first["y"] == second["y"] < third["y"] and first["x"] < second["x"], (first, second, third)
    assert captions_cut(page, "#closeups") == []  # "3: uncertain (65% fake)" whole, not "3: uncertain (…"
    assert page.evaluate(covering_top("#overlay")) == []  # the photo fills the column: its top too
    # As tall as the picture is drawn across the column (and its buttons' row), not a fixed
    # height with the landscape photo floating in white.
    block, drawn = page.evaluate("""() => {
        const block = document.getElementById("overlay"), img = block.querySelector("img");
        return [block.getBoundingClientRect().height, block.clientWidth * img.naturalHeight / img.naturalWidth];
    }""")
    assert drawn < block < drawn + 60, (block, drawn)
    # Too narrow for the faces table: it scrolls sideways rather than stand "fake" a letter a line.
    assert page.evaluate(WORDS_BROKEN, "#faces") == []
    screenshot(page, "phone.png")


def test_a_crowd_s_close_ups_are_all_in_the_page_s_flow(browser, page_url):
    from playwright.sync_api import expect

    two = cv2.imread(str(EXAMPLES / "facerec_two_people.jpg"))
    crowd = cv2.imencode(".jpg", np.vstack([np.hstack([two] * 3)] * 2))[1].tobytes()  # six times two people
    page = drop(browser, page_url, "crowd.jpg", crowd, "image/jpeg")
    expect(page.locator("#status")).to_contain_text("12 faces found", timeout=90_000)
    expect(page.locator("#closeups img")).to_have_count(12)
    # Not in a box of their own that scrolls inside the scrolling page.
    assert page.evaluate("() => { const g = document.querySelector('#closeups .grid-wrap'); "
                         "return g.scrollHeight - g.clientHeight; }") <= 1
    page.close()


def test_on_a_phone_several_photos_have_whole_captions(browser, page_url):
    from playwright.sync_api import expect

    page = drop(browser, page_url, PHOTO.name, PHOTO.read_bytes(), "image/jpeg", tab="Several photos",
                zone="#photos [aria-dropeffect]", viewport={"width": 390, "height": 844}, is_mobile=True,
                has_touch=True)
    expect(page.locator("#batch-overlays img")).to_have_count(1, timeout=120_000)
    assert captions_cut(page, "#batch-overlays") == []  # "uncertain (65% fake) · facerec_obama_and_biden.jpg"
    screenshot(page, "several_photos_phone.png")


def test_on_a_small_phone_every_tab_and_the_card_s_tables_are_in_sight(browser, page_url):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page.goto(page_url)
    for tab in ("Detector", "Several photos", "Video", "About the model"):  # not behind a "..." menu
        expect(page.get_by_role("tab", name=tab)).to_be_visible(timeout=30_000)
    # The card's tables scroll sideways rather than stand "train" a letter a line.
    page.get_by_role("tab", name="About the model").click()
    expect(page.locator("#about table").first).to_be_visible()
    assert page.evaluate(WORDS_BROKEN, "#about table") == []
    page.close()


# A browser that knows no HEIC type (Windows without the HEIF extension) gives the file none.
@pytest.mark.parametrize("mime", ["image/heic", ""], ids=["typed", "untyped"])
def test_an_iphone_photo_in_heic_is_analysed(browser, page_url, mime):
    from playwright.sync_api import expect

    page = drop(browser, page_url, "IMG_0001.HEIC", two_people_heic(), mime)
    status = page.locator("#status")
    expect(status).to_contain_text("Verdict:", timeout=90_000)
    expect(status).to_contain_text("2 faces found")
    page.wait_for_function(OVERLAY_SHOWN, timeout=30_000)  # the browser cannot show HEIC; the overlay can
    # In the Photo box, words instead of a broken picture.
    expect(page.locator("#photo")).to_contain_text("No preview: this browser cannot show HEIC")
    expect(page.locator("#photo img")).to_be_hidden()
    screenshot(page, "heic.png")


def test_a_tiff_says_why_there_is_no_preview_and_a_jpeg_after_it_is_shown(browser, page_url):
    from playwright.sync_api import expect

    buffer = io.BytesIO()
    Image.open(EXAMPLES / "facerec_two_people.jpg").save(buffer, format="TIFF", compression="tiff_lzw")
    page = drop(browser, page_url, "scan.tif", buffer.getvalue(), "image/tiff")
    expect(page.locator("#status")).to_contain_text("2 faces found", timeout=90_000)
    expect(page.locator("#photo")).to_contain_text("No preview", timeout=10_000)
    drop_on(page, [(PHOTO.name, PHOTO.read_bytes(), "image/jpeg")])
    expect(page.locator("#status")).to_contain_text("3 faces found", timeout=90_000)
    page.wait_for_function(image_shown("#photo"), timeout=30_000)
    expect(page.locator("#photo")).not_to_contain_text("No preview")
    page.close()


def test_an_untyped_heic_dropped_while_the_page_is_still_loading_is_analysed(browser, page_url):
    # The Faces table's code held back: the Photo box is there, the page's last part is not.
    # Typed by a page function that ran once every part had loaded, such a photo was lost
    # without a word; the official CI, on a busy machine, dropped it that early.
    from playwright.sync_api import expect

    page = drop_files(browser, page_url, [("IMG_0003.HEIC", two_people_heic(), "")], held_back="**/assets/dsv-*.js")
    expect(page.locator("#status")).to_contain_text("2 faces found", timeout=90_000)
    assert page.held_back, "no dsv-*.js any more: hold back another part the page loads late"
    page.close()


def test_an_untyped_heic_chosen_in_the_file_picker_is_analysed(browser, page_url):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    # As the browser hands it over: a File of no type (Playwright's own file chooser would type it).
    page.locator("#photo input[type=file]").wait_for(state="attached")
    page.evaluate(CHOOSE_FILES, ["#photo input[type=file]", [[base64.b64encode(two_people_heic()).decode(),
                                                               "IMG_0002.HEIC", ""]]])
    expect(page.locator("#status")).to_contain_text("2 faces found", timeout=90_000)
    page.close()


def test_a_photo_without_a_face_gets_no_verdict(browser, page_url):
    from playwright.sync_api import expect

    page = drop(browser, page_url, "landscape.png", landscape_png(), "image/png")
    status = page.locator("#status")
    expect(status).to_contain_text("Verdict: no face found", timeout=90_000)
    for verdict in ("Verdict: fake", "Verdict: real", "Verdict: uncertain"):
        expect(status).not_to_contain_text(verdict)
    page.wait_for_function(OVERLAY_SHOWN, timeout=30_000)
    expect(page.locator("#closeups")).to_be_hidden()  # no face, no close-ups
    screenshot(page, "no_face.png")


def test_a_bad_file_is_explained(browser, page_url):
    from playwright.sync_api import expect

    page = drop(browser, page_url, "holiday.jpg", b"<html>not a photo at all</html>", "image/jpeg")
    expect(page.locator("#status")).to_contain_text("Cannot analyse this file", timeout=90_000)
    expect(page.locator("#status")).to_contain_text("holiday.jpg")
    screenshot(page, "bad_file.png")


def test_the_about_tab_shows_the_card_as_tables(browser, page_url):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    page.get_by_role("tab", name="About the model").click()
    about = page.locator("#about")
    expect(about).to_contain_text("What it has seen", timeout=30_000)
    expect(about.locator("table").first).to_be_visible()
    assert "{'" not in about.inner_text() and "--out" not in about.inner_text()
    screenshot(page, "about.png")


@pytest.mark.skipif(not videos.HAVE_FACES, reason="../shared/data and ../shared/examples not present")
def test_a_clip_shows_each_face_over_time_and_the_most_suspicious_frame(browser, page_url, tmp_path):
    from playwright.sync_api import expect

    frames = list(moving_frames(load_image(videos.TWO_PEOPLE), 40, size=(640, 360), seed=5))
    clip = videos.h264(tmp_path / "two people.mp4", frames)  # 4 s at 10 fps, as a phone writes it
    page = drop(browser, page_url, clip.name, clip.read_bytes(), "video/mp4", tab="Video", zone="#video [aria-dropeffect]")
    status = page.locator("#video-status")
    expect(status).to_contain_text("Verdict:", timeout=120_000)
    expect(status).to_contain_text("followed through 8 frames of a 4.0 s clip")
    expect(page.locator("#video-verdict")).to_contain_text("face 1")  # a bar per face, numbered as its track
    expect(page.locator("#video-verdict")).to_contain_text("face 2")
    page.wait_for_function(image_shown("#video-overlay"), timeout=30_000)
    page.wait_for_function(image_shown("#video-plot"), timeout=30_000)
    rows = int(page.locator("#tracks [role=grid]").get_attribute("aria-rowcount")) - 1  # less the header
    assert rows >= 2 and f"{rows} faces followed" in status.inner_text()
    # The suspicious frame's faces up close: the deciding face among them, captioned as its track.
    top = re.search(r"\(face (\d+)\)", status.inner_text()).group(1)
    closeups = page.locator("#video-closeups")
    expect(closeups).to_contain_text(f"{top}: ", timeout=30_000)
    assert 1 <= closeups.locator("img").count() <= rows
    assert page.evaluate(covering_top("#video-overlay")) == []
    screenshot(page, "video.png")


def test_the_video_tab_s_example_clip_shows_new_tracks_after_its_cut(browser, page_url):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    page.get_by_role("tab", name="Video").click()
    page.get_by_text("two_scenes.mp4").first.click()  # the example under the Video box
    status = page.locator("#video-status")
    expect(status).to_contain_text("Verdict:", timeout=120_000)
    expect(status).to_contain_text("followed through 12 frames of a 6.0 s clip")
    # Two people in the first scene and at least two in the second: a cut starts new tracks.
    rows = int(page.locator("#tracks [role=grid]").get_attribute("aria-rowcount")) - 1
    assert rows >= 4, rows
    expect(page.locator("#video-closeups img").first).to_be_visible()
    screenshot(page, "video_example.png")


def test_several_photos_get_a_verdict_each_and_their_overlays(browser, page_url):
    from playwright.sync_api import expect

    two = EXAMPLES / "facerec_two_people.jpg"
    files = [(PHOTO.name, PHOTO.read_bytes(), "image/jpeg"), (two.name, two.read_bytes(), "image/jpeg"),
             ("landscape.png", landscape_png(), "image/png"), ("notes.jpg", b"<html>not a photo</html>", "image/jpeg")]
    page = drop_files(browser, page_url, files, tab="Several photos", zone="#photos [aria-dropeffect]")
    status = page.locator("#batch-status")
    expect(status).to_contain_text("4 photos:", timeout=120_000)
    expect(status).to_contain_text("1 no face, 1 could not be scored")
    table = page.locator("#batch-table")
    expect(table.locator("[role=grid]")).to_have_attribute("aria-rowcount", "5")  # a header and a row each
    for name in (PHOTO.name, two.name, "landscape.png", "notes.jpg"):
        expect(table).to_contain_text(name)
    expect(table).to_contain_text("'notes.jpg' is")  # why, naming the visitor's file
    expect(page.locator("#batch-overlays img")).to_have_count(3)  # the unreadable file has none
    expect(page.locator("#batch-overlays")).to_contain_text(f"fake) · {PHOTO.name}")  # its verdict, then its name
    assert page.evaluate(covering_top("#batch-overlays")) == []
    with page.expect_download() as download:
        page.locator("#batch-csv").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "path,kind,verdict,fake_probability,faces,details" and len(lines) == 5
    assert [line.split(",")[0] for line in lines[1:]] == [PHOTO.name, two.name, "landscape.png", "notes.jpg"]
    with page.expect_download() as download:
        page.locator("#batch-zip").click()
    with zipfile.ZipFile(download.value.path()) as bundle:  # the table and the three overlays drawn
        assert bundle.read("photos.csv").decode("utf-8-sig").splitlines() == lines
        assert bundle.namelist()[1:] == [f"overlays/{Path(name).stem}-overlay.png"
                                         for name in (PHOTO.name, two.name, "landscape.png")]
    screenshot(page, "several_photos.png")


def drop(browser, url: str, name: str, data: bytes, mime: str, tab: str | None = None, zone: str = PHOTO_ZONE,
         **page_options):
    """Opens the page (on ``tab``) and drops a file on a drop zone (the Photo box), as a file
    manager would."""
    return drop_files(browser, url, [(name, data, mime)], tab, zone, **page_options)


def drop_files(browser, url: str, files: list[tuple[str, bytes, str]], tab: str | None = None, zone: str = PHOTO_ZONE,
               held_back: str | None = None, **page_options):
    """Opens the page (on ``tab``; ``page_options`` for Playwright's ``new_page``, a 1280 x 900
    window by default) and drops ``(name, data, mime)`` files on a drop zone at once. The page's
    files matching the glob ``held_back`` never arrive, as over a slow line: the page is still
    loading when the files are dropped."""
    page = browser.new_page(**{"viewport": {"width": 1280, "height": 900}, **page_options})
    if held_back:
        page.held_back = []
        page.route(held_back, lambda route: (page.held_back.append(route.request.url), route.abort()))
    page.goto(url)
    if tab:
        page.get_by_role("tab", name=tab).click()
    drop_on(page, files, zone)
    return page


def drop_on(page, files: list[tuple[str, bytes, str]], zone: str = PHOTO_ZONE) -> None:
    """Drops ``(name, data, mime)`` files on a drop zone of the open page at once."""
    handle = page.evaluate_handle(MAKE_DROP, [[base64.b64encode(data).decode(), name, mime] for name, data, mime in files])
    for event in ("dragenter", "dragover", "drop"):
        page.locator(zone).dispatch_event(event, {"dataTransfer": handle})


def captions_cut(page, gallery: str) -> list[str]:
    """The captions of a gallery's pictures that do not show whole."""
    return page.locator(f"{gallery} .caption-label").evaluate_all(
        "labels => labels.filter(l => l.scrollWidth > l.clientWidth).map(l => l.textContent)")


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    page.close()


def two_people_heic() -> bytes:
    """The gallery's photo of two people as an iPhone would store it: HEIC (written with
    pillow-heif; the detector reads it with pi-heif)."""
    import pillow_heif

    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.open(EXAMPLES / "facerec_two_people.jpg")).save(buffer, quality=90)
    return buffer.getvalue()


def landscape_png() -> bytes:
    """A 480x320 'landscape': sky, hills and grass, no face anywhere."""
    image = np.zeros((320, 480, 3), np.uint8)
    image[:] = np.linspace(250, 150, 320, dtype=np.uint8)[:, None, None] * np.array([0.55, 0.75, 1.0])  # sky
    cv2.ellipse(image, (140, 330), (260, 140), 0, 180, 360, (70, 150, 60), -1)
    cv2.ellipse(image, (400, 340), (220, 110), 0, 180, 360, (60, 130, 50), -1)
    ok, png = cv2.imencode(".png", image[..., ::-1])
    return png.tobytes()
