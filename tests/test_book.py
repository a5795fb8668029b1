"""The book as a whole: its table of contents, the committed form of the chapters,
the build with warnings as errors, and the built HTML in a real headless browser."""

from __future__ import annotations

import functools
import json
import re
import shutil
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

import nbtools

ROOT = Path(__file__).resolve().parent.parent


def toc_files() -> list[str]:
    """Files named in _toc.yml (root and chapters), without extension."""
    text = (ROOT / "_toc.yml").read_text()
    return re.findall(r"^\s*(?:root|- file):\s*(\S+)", text, re.M)


def chapter_pages() -> list[str]:
    return [f for f in toc_files() if (ROOT / f"{f}.ipynb").is_file()]


def test_toc_lists_exactly_the_chapters_that_exist():
    listed = toc_files()
    for entry in listed:
        assert any((ROOT / f"{entry}{ext}").is_file() for ext in (".ipynb", ".md")), f"_toc.yml: {entry} missing"
    on_disk = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.ipynb")}
    assert on_disk <= set(listed), f"chapters not in _toc.yml: {sorted(on_disk - set(listed))}"


@pytest.mark.parametrize("path", nbtools.chapters(), ids=lambda p: p.name)
def test_chapter_is_in_committed_form(path):
    """Outputs only in cells tagged nbval-check-output, no visible test marker, the canonical setup cell first."""
    assert nbtools.problems(path) == []


def test_setup_cell_installs_from_the_configured_repository():
    url = nbtools.repository_url()
    assert url.startswith("https://github.com/"), url
    assert f"git+{url}" in nbtools.setup_cell()


def test_committed_form_checker_catches_stray_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(nbtools.setup_cell()), nbformat.v4.new_code_cell("print(1)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert any("not tagged" in p for p in nbtools.problems(path))
    nbtools.strip(nb)
    nbformat.write(nb, path)
    assert nbtools.problems(path) == []
    nb.cells[1].source = "# NBVAL_CHECK_OUTPUT\nprint(1)"
    nbformat.write(nb, path)
    assert any("test marker" in p for p in nbtools.problems(path))


# --- the built book ---------------------------------------------------------


def test_book_builds_with_warnings_as_errors(built_book):
    assert (built_book / "index.html").is_file()
    for page in chapter_pages():
        assert (built_book / f"{page}.html").is_file(), page


def test_no_page_references_an_external_script_or_stylesheet(built_book):
    bad = []
    for html in built_book.rglob("*.html"):
        text = html.read_text(errors="replace")
        for m in re.finditer(r"<(?:script|link)\b[^>]*?(?:src|href)=\"(https?:)?//([^\"]+)\"", text):
            tag = m.group(0)
            if "<link" in tag and not re.search(r'rel="(stylesheet|preload|modulepreload)"', tag):
                continue
            bad.append(f"{html.relative_to(built_book)}: {tag}")
    assert bad == []


def test_chapter_pages_have_a_colab_button_to_their_notebook(built_book):
    url = nbtools.repository_url().removeprefix("https://github.com/")
    for page in chapter_pages():
        text = (built_book / f"{page}.html").read_text()
        target = f"https://colab.research.google.com/github/{url}/blob/main/{page}.ipynb"
        assert target in text, f"{page}: no Colab link to {target}"


# --- headless Chromium ------------------------------------------------------

# Console errors allowed by exact text. Empty: the theme's duplicate THEBE_JS_URL
# declaration is fixed in book/_ext/bookfixes.py, the favicon is served.
ALLOWED_CONSOLE: set[str] = set()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def book_server(built_book):
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed (.ci/run installs the Debian packages chromium and chromium-driver)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=exe, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        yield context
        context.close()


def visit(browser, url: str) -> dict:
    """Open a page; collect console errors, page errors and any request leaving 127.0.0.1."""
    page = browser.new_page()
    seen = {"console": [], "errors": [], "external": [], "failed": []}

    def on_console(msg):
        if msg.type == "error" and not any(a in msg.text for a in ALLOWED_CONSOLE):
            seen["console"].append(msg.text)

    def on_route(route):
        host = urllib.parse.urlparse(route.request.url).hostname
        if host in {"127.0.0.1", None} or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            seen["external"].append(route.request.url)
            route.abort()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("requestfailed", lambda req: seen["failed"].append(req.url))
    page.route("**/*", on_route)
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(500)
    seen["page"] = page
    return seen


@pytest.mark.parametrize("page_name", ["book/intro"] + chapter_pages())
def test_page_renders_in_chromium_without_errors_or_external_requests(browser, book_server, page_name):
    seen = visit(browser, f"{book_server}/{page_name}.html")
    page = seen.pop("page")
    try:
        assert page.title().strip(), "empty <title>"
        assert page.locator("main h1").count() >= 1, "no chapter heading"
        assert seen["errors"] == [] and seen["console"] == [], seen
        assert seen["external"] == [], f"requests leaving the machine: {seen['external']}"
        assert seen["failed"] == [], f"failed requests: {seen['failed']}"
        if page_name != "book/intro":
            imgs = page.locator("main img")
            assert imgs.count() >= 1, "no figure"
            ok = page.evaluate("() => Array.from(document.querySelectorAll('main img'))"
                               ".every(i => i.complete && i.naturalWidth > 0)")
            assert ok, "a figure did not load"
            mathjax = page.locator("mjx-container")
            raw_tex = page.locator("main").inner_text().count("$$")
            assert raw_tex == 0 or mathjax.count() > 0, "math left unrendered"
    finally:
        page.close()


def widget_pages() -> list[str]:
    out = []
    for page in chapter_pages():
        nb = json.loads((ROOT / f"{page}.ipynb").read_text())
        if any("widgets" in c.get("source", "") if isinstance(c.get("source"), str)
               else "widgets" in "".join(c.get("source", [])) for c in nb["cells"] if c["cell_type"] == "code"):
            out.append(page)
    return out


@pytest.mark.parametrize("page_name", widget_pages() or [pytest.param("none", marks=pytest.mark.skip("no widget pages yet"))])
def test_widgets_render_from_embedded_state(browser, book_server, page_name):
    seen = visit(browser, f"{book_server}/{page_name}.html")
    page = seen.pop("page")
    try:
        page.wait_for_selector(".jupyter-widgets", timeout=15000)
        assert page.locator(".jupyter-widgets").count() >= 1
        # every kernel-free slider must switch its picture with no kernel behind the page
        sliders = page.locator(".kernel-free-slider")
        for i in range(sliders.count()):
            box = sliders.nth(i).locator("xpath=..")
            picture = lambda: box.locator(".kernel-free-stack img").evaluate_all(
                "imgs => imgs.filter(i => i.offsetParent !== null).map(i => i.src)")
            before = picture()
            assert len(before) == 1, f"slider {i}: {len(before)} visible pictures"
            sliders.nth(i).locator(".noUi-handle").focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(300)
            after = picture()
            assert len(after) == 1 and after != before, f"slider {i} did not switch its picture"
        assert seen["external"] == [] and seen["errors"] == [] and seen["console"] == [], seen
    finally:
        page.close()


def test_nbval_fails_when_a_checked_number_drifts(tmp_path):
    """The nbval-check-output tag really compares: a stored number that the code no longer prints fails."""
    import subprocess
    import sys

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("print(6 * 7)", execution_count=1, metadata={"tags": [nbtools.CHECK_TAG]})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="41\n")]
    nb.cells = [cell]
    path = tmp_path / "drift.ipynb"
    nbformat.write(nb, path)
    run = lambda: subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                                  "--nbval-current-env", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert run().returncode == 1
    cell.outputs[0]["text"] = "42\n"
    nbformat.write(nb, path)
    assert run().returncode == 0


# --- the live detector (book/10_in_your_browser) ----------------------------

LIVE_PAGE = "book/10_in_your_browser"


def _live_state(page, timeout=90000) -> str:
    page.wait_for_function("() => ['ready', 'error', 'no-webassembly'].includes("
                           "document.getElementById('live-detector').dataset.state)", timeout=timeout)
    return page.get_attribute("#live-detector", "data-state")


def _library_detections(image, conf: float, nms: float):
    """What `yolov2 detect bccd IMAGE` finds: the shipped detector in PyTorch, float32."""
    import torch

    from yolov2_lib import pretrained
    from yolov2_lib.data.voc import load_image
    from yolov2_lib.train import detect_images

    loaded = pretrained.load("bccd")
    with torch.no_grad():
        return detect_images(loaded.model, [load_image(image)], input_size=416, letterbox=loaded.letterbox,
                             conf_threshold=conf, nms_threshold=nms, amp="off")[0]


def _unmatched(wanted, found, min_score: float = 0.25) -> list:
    """Rows of `wanted` (score >= min_score) with no row of `found` of the same class at IoU >= 0.9."""
    import torch

    from yolov2_lib.boxes import box_iou

    wanted, found = torch.as_tensor(wanted).reshape(-1, 6), torch.as_tensor(found, dtype=torch.float32).reshape(-1, 6)
    taken = torch.zeros(len(found), dtype=torch.bool)
    missing = []
    for row in wanted[wanted[:, 4] >= min_score]:
        iou = box_iou(row[None, :4], found[:, :4])[0] if len(found) else torch.zeros(0)
        ok = (iou >= 0.9) & (found[:, 5] == row[5]) & ~taken
        if not ok.any():
            missing.append(row.tolist())
        else:
            taken[torch.where(ok, iou, -1).argmax()] = True
    return missing


def _check_against_library(page, image_path, conf: float, nms: float) -> int:
    got = json.loads(page.get_attribute("#live-detector", "data-detections"))
    expected = _library_detections(image_path, conf, nms)
    assert _unmatched(expected, got, conf) == [], ("library boxes the page lacks", got, expected.tolist())
    assert _unmatched(got, expected, conf + 0.01) == [], ("page boxes the library lacks", got, expected.tolist())
    return len(got)


def _set_slider(page, cls: str, value: float) -> None:
    page.evaluate("([cls, v]) => { const s = document.querySelector('#live-detector .' + cls); "
                  "s.value = v; s.dispatchEvent(new Event('input')); }", [cls, str(value)])


def test_live_detector_runs_the_shipped_detector_like_the_library(browser, book_server, built_book):
    seen = visit(browser, f"{book_server}/{LIVE_PAGE}.html")
    page = seen.pop("page")
    try:
        assert _live_state(page) == "ready", page.inner_text("#live-detector")
        data = built_book / "_static" / "live-data"
        image = page.get_attribute("#live-detector", "data-image")
        assert (data / image).is_file(), image
        n = _check_against_library(page, data / image, 0.25, 0.45)
        assert n >= 5, "a blood smear with almost no cells found"
        # the sliders redraw at once, as the library would decode the same head
        _set_slider(page, "live-score", 0.6)
        assert page.get_attribute("#live-detector", "data-score") == "0.60"
        assert _check_against_library(page, data / image, 0.6, 0.45) < n
        _set_slider(page, "live-nms", 0.1)
        _check_against_library(page, data / image, 0.6, 0.1)
        _set_slider(page, "live-score", 0.05)  # low scores: boxes of other classes on the same cell
        _check_against_library(page, data / image, 0.05, 0.1)
        # another shipped image: a second forward pass
        _set_slider(page, "live-score", 0.25)
        _set_slider(page, "live-nms", 0.45)
        other = json.loads((data / "detector.json").read_text())["images"][1]["file"]
        page.select_option("#live-detector select.live-image", "1")
        page.wait_for_function(f"() => document.getElementById('live-detector').dataset.image === '{other}'",
                               timeout=60000)
        assert _live_state(page) == "ready"
        _check_against_library(page, data / other, 0.25, 0.45)
        forward_ms = float(page.get_attribute("#live-detector", "data-forward-ms"))
        assert 0 < forward_ms < 60000
        print(f"live detector: one forward pass at 416 in headless Chromium: {forward_ms:.0f} ms")
        assert seen["errors"] == [] and seen["console"] == [], seen
        assert seen["external"] == [], f"requests leaving the machine: {seen['external']}"
        assert seen["failed"] == [], f"failed requests: {seen['failed']}"
    finally:
        page.close()


def test_live_detector_runs_on_the_readers_own_image(browser, book_server):
    """Pictures that are not blood smears nor 640 x 480, given through the file input and dropped."""
    from yolov2_lib.data import fetch

    photos = fetch("demo_images") / "skimage"
    seen = visit(browser, f"{book_server}/{LIVE_PAGE}.html")
    page = seen.pop("page")
    try:
        assert _live_state(page) == "ready"
        photo = photos / "coffee.png"
        page.set_input_files("#live-detector input.live-file", str(photo))
        page.wait_for_function("() => document.getElementById('live-detector').dataset.image === 'coffee.png'",
                               timeout=60000)
        assert _live_state(page) == "ready"
        _set_slider(page, "live-score", 0.05)
        assert _check_against_library(page, photo, 0.05, 0.45) >= 1
        # dropped on the image instead
        import base64

        dropped = photos / "chelsea.png"
        transfer = page.evaluate_handle(
            "([b64, name]) => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));"
            " const dt = new DataTransfer(); dt.items.add(new File([bytes], name, {type: 'image/png'}));"
            " return dt; }", [base64.b64encode(dropped.read_bytes()).decode(), dropped.name])
        page.dispatch_event("#live-detector .live-stage", "drop", {"dataTransfer": transfer})
        page.wait_for_function("() => document.getElementById('live-detector').dataset.image === 'chelsea.png'",
                               timeout=60000)
        assert _live_state(page) == "ready"
        _check_against_library(page, dropped, 0.05, 0.45)
        assert seen["errors"] == [] and seen["console"] == [] and seen["external"] == [], seen
    finally:
        page.close()


def test_live_detector_explains_itself_without_webassembly(browser, book_server):
    page = browser.new_page()
    try:
        page.add_init_script("delete globalThis.WebAssembly;")
        page.goto(f"{book_server}/{LIVE_PAGE}.html", wait_until="load")
        assert _live_state(page, timeout=15000) == "no-webassembly"
        text = page.inner_text("#live-detector")
        assert "cannot run WebAssembly" in text and "yolov2 detect" in text, text
    finally:
        page.close()
