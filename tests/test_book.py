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


def test_committed_form_drops_glue_records_from_checked_cells(tmp_path):
    """A kernel without myst-nb (Colab) writes no glue record: a stored one would fail nbval there."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)\nglue('x', 1)", metadata={"tags": [nbtools.CHECK_TAG]})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n"),
                    nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": "1"},
                                           metadata={"scrapbook": {"name": "x", "mime_prefix": "application/papermill.record/"}})]
    nb.cells = [nbformat.v4.new_code_cell(nbtools.setup_cell()), cell]
    path = tmp_path / "g.ipynb"
    nbformat.write(nb, path)
    assert any("glue record" in p for p in nbtools.problems(path))
    nbtools.strip(nb)
    nbformat.write(nb, path)
    assert nbtools.problems(path) == [] and [o.output_type for o in nb.cells[1].outputs] == ["stream"]


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
def browser(chromium):
    """The session's headless Chromium (``tests/conftest.py``)."""
    return chromium


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
        assert drive_kernel_free_sliders(page)["failures"] == []
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


def test_live_detector_opened_from_disk_says_how_to_serve_the_book(browser, built_book):
    """Opened as file:// (the path `make book` prints), the page either runs or says how to serve it."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto((built_book / f"{LIVE_PAGE}.html").as_uri(), wait_until="load")
        _check_live_state_from_disk(page)
        assert errors == [], errors
    finally:
        page.close()


def _check_live_state_from_disk(page) -> None:
    page.wait_for_function("() => ['ready', 'error', 'no-webassembly', 'needs-server'].includes("
                           "document.getElementById('live-detector').dataset.state)", timeout=90000)
    state = page.get_attribute("#live-detector", "data-state")
    text = page.inner_text("#live-detector")
    assert state in {"ready", "needs-server"}, (state, text)
    if state == "needs-server":
        assert "\n" not in text.strip(), f"not one line: {text!r}"
        assert "make serve" in text and "http.server" in text, text
        link = page.get_attribute("#live-detector .live-status a", "href")
        assert link == "http://127.0.0.1:8000/book/10_in_your_browser.html", link
        assert text.strip().endswith(f"{link}."), text


def test_live_script_asks_for_a_server_when_opened_from_disk(browser, tmp_path):
    """live.js alone, in the book's layout, opened from disk: no fetch tried, one line that says what to do."""
    static = tmp_path / "_static" / "live"
    static.mkdir(parents=True)
    for name in ("live.js", "live.css"):
        shutil.copy(ROOT / "book" / "_static" / "live" / name, static / name)
    chapter = (ROOT / f"{LIVE_PAGE}.md").read_text()
    raw = re.search(r"```\{raw\} html\n(.*?)```", chapter, re.S).group(1)
    html_page = tmp_path / "book" / "10_in_your_browser.html"
    html_page.parent.mkdir()
    html_page.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{raw}</body></html>")
    page = browser.new_page()
    seen = {"errors": [], "console": [], "requests": []}
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("console", lambda msg: seen["console"].append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda req: seen["requests"].append(req.url))
    try:
        page.goto(html_page.as_uri(), wait_until="load")
        _check_live_state_from_disk(page)
        assert page.get_attribute("#live-detector", "data-state") == "needs-server"
        assert seen["errors"] == [] and seen["console"] == [], seen
        asked = [u for u in seen["requests"] if "live-data" in u or "onnxruntime" in u]
        assert asked == [], asked
    finally:
        page.close()


# --- every control of every widget, on every page -----------------------------------------------

# ipywidgets models a reader can operate. In the static book their Python callbacks have no
# kernel: only a kernel-free slider (class kernel-free-slider, jslinked to a Stack of pictures)
# still does something. An Output widget only shows what a callback drew when the notebook ran.
LIVE_WIDGET_MODELS = {
    "BoundedFloatTextModel", "BoundedIntTextModel", "ButtonModel", "CheckboxModel", "ColorPickerModel",
    "ComboboxModel", "DatePickerModel", "DropdownModel", "FileUploadModel", "FloatLogSliderModel",
    "FloatRangeSliderModel", "FloatSliderModel", "FloatTextModel", "IntRangeSliderModel", "IntSliderModel",
    "IntTextModel", "OutputModel", "PlayModel", "RadioButtonsModel", "SelectModel", "SelectMultipleModel",
    "SelectionRangeSliderModel", "SelectionSliderModel", "TagsInputModel", "TextModel", "TextareaModel",
    "ToggleButtonModel", "ToggleButtonsModel",
}
KERNEL_FREE = "kernel-free-slider"
_STATE_MIME, _VIEW_MIME = "application/vnd.jupyter.widget-state+json", "application/vnd.jupyter.widget-view+json"


def _script_json(text: str, mime: str) -> list:
    pattern = rf'<script\b[^>]*\btype="{re.escape(mime)}"[^>]*>(.*?)</script>'
    return [json.loads(body) for body in re.findall(pattern, text, re.S)]


def _model_refs(value) -> list[str]:
    if isinstance(value, str):
        return [value[len("IPY_MODEL_"):]] if value.startswith("IPY_MODEL_") else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [ref for v in value for ref in _model_refs(v)]
    return []


def _shown_models(text: str):
    """(view number, model id, model or None, is jslinked) of every model a page's widget views show,
    walking each embedded view through its children."""
    models: dict[str, dict] = {}
    for blob in _script_json(text, _STATE_MIME):
        models.update(blob.get("state", {}))
    linked = {ref for m in models.values() if m.get("model_name") in {"LinkModel", "DirectionalLinkModel"}
              for ref in _model_refs(m.get("state", {}))}
    for n, view in enumerate(_script_json(text, _VIEW_MIME)):
        todo, seen = [view.get("model_id", "")], set()
        while todo:
            mid = todo.pop()
            if mid in seen:
                continue
            seen.add(mid)
            model = models.get(mid)
            yield n, mid, model, mid in linked
            if model is not None:
                todo.extend(_model_refs(model.get("state", {})))


def _kernel_free(model: dict, linked: bool) -> bool:
    return (model.get("model_name") != "OutputModel" and linked
            and KERNEL_FREE in model.get("state", {}).get("_dom_classes", []))


def frozen_widget_views(text: str) -> list[str]:
    """The ipywidgets a built page shows that need a kernel: an Output, or a control that is not a
    kernel-free slider jslinked to something."""
    frozen = []
    for n, mid, model, linked in _shown_models(text):
        if model is None:
            frozen.append(f"view {n}: model {mid} is not in the page's widget state")
        elif model.get("model_name") in LIVE_WIDGET_MODELS and not _kernel_free(model, linked):
            state = model.get("state", {})
            label = state.get("description") or state.get("tooltip") or ""
            frozen.append(f"view {n}: {model['model_name']} {label!r}")
    return frozen


def kernel_free_slider_count(text: str) -> int:
    """How many kernel-free sliders a page's widget views show."""
    return sum(1 for _, _, model, linked in _shown_models(text)
               if model is not None and model.get("model_name") in LIVE_WIDGET_MODELS and _kernel_free(model, linked))


@pytest.mark.parametrize("page_name", toc_files())
def test_no_page_leaves_an_ipywidgets_view_frozen(built_book, page_name):
    """No Output widget and no control whose callback needs a kernel: the static page would show it frozen."""
    assert frozen_widget_views((built_book / f"{page_name}.html").read_text()) == []


def _page_with_widgets(*widgets) -> str:
    """The embedded widget state and views of `widgets`, as myst-nb writes them into a page."""
    from ipywidgets.embed import embed_data

    data = embed_data(views=list(widgets))
    views = "".join(f'<script type="{_VIEW_MIME}">{json.dumps(v)}</script>' for v in data["view_specs"])
    return f'<script type="{_STATE_MIME}">{json.dumps(data["manager_state"])}</script>{views}'


def test_frozen_view_checker_tells_kernel_free_sliders_from_live_widgets():
    import ipywidgets as W
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from yolov2_lib import widgets

    def draw(v):
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.set_title(str(v))
        return fig

    free = widgets.kernel_free_slider([1, 2], draw, "n")
    assert frozen_widget_views(_page_with_widgets(free)) == []
    assert kernel_free_slider_count(_page_with_widgets(free)) == 1
    out = W.Output()
    live = W.VBox([W.Dropdown(options=[1, 2], description="k"), W.Button(description="go"), out])
    found = frozen_widget_views(_page_with_widgets(free, live))
    assert len(found) == 3 and all(f.startswith("view 1") for f in found), found
    assert {f.split()[2] for f in found} == {"DropdownModel", "ButtonModel", "OutputModel"}
    unlinked = W.SelectionSlider(options=["a", "b"])
    unlinked.add_class(KERNEL_FREE)  # the class alone does not make it work: it must be jslinked
    assert len(frozen_widget_views(_page_with_widgets(unlinked))) == 1


# A fingerprint of what a widget shows, controls and their readouts left out: its SVG, text,
# pictures and canvases. A control passes when moving it changes this.
_FINGERPRINT_JS = """(root) => {
  const clone = root.cloneNode(true);
  clone.querySelectorAll('input, select, button, output, .yx-readout, .live-status').forEach((n) => n.remove());
  let text = clone.innerHTML;
  for (const c of root.querySelectorAll('canvas')) {
    let url = '';
    try { url = c.toDataURL(); } catch (e) { url = 'tainted'; }
    let h = 0;
    for (let i = 0; i < url.length; i++) h = (h * 31 + url.charCodeAt(i)) | 0;
    text += '|canvas ' + c.width + 'x' + c.height + ' ' + h;
  }
  return text;
}"""
_WIDGET_ROOTS = ".yolov2-explorer, #live-detector"
_CONTROLS = "input[type=range], select, button"  # the live detector's file input has its own test
_BUSY = ("loading", "running")


def _wait_for_change(page, root, before: str, timeout_ms: int) -> bool:
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        busy = root.evaluate("(r) => r.dataset.state") in _BUSY
        if not busy and root.evaluate(_FINGERPRINT_JS) != before:
            return True
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(50)


def _step_range(page, control, direction: str) -> bool:
    """One keyboard step of a range input, as a reader would; False when it did not move."""
    before = control.input_value()
    control.focus()
    page.keyboard.press(direction)
    if control.input_value() != before:
        return True
    # a step of "any" or a range so fine that one key press rounds away: move by a hundredth
    return control.evaluate("""(el, dir) => {
        const before = el.value, min = Number(el.min || 0), max = Number(el.max || 100);
        const step = el.step && el.step !== 'any' ? Number(el.step) : (max - min) / 100;
        el.value = String(Number(el.value) + (dir === 'ArrowRight' ? 1 : -1) * Math.max(step, (max - min) / 100));
        el.dispatchEvent(new Event('input', {bubbles: true}));
        el.dispatchEvent(new Event('change', {bubbles: true}));
        return el.value !== before; }""", direction)


def _direction(control) -> str:
    """Right, unless the range input is at its maximum."""
    return "ArrowRight" if float(control.input_value()) < float(control.get_attribute("max") or 100) else "ArrowLeft"


def _act(page, root, control, kind: str, timeout_ms: int) -> str | None:
    """Move or click one control; None when what the widget shows changed, else what went wrong."""
    before = root.evaluate(_FINGERPRINT_JS)
    if kind == "range":
        direction = _direction(control)
        for _ in range(10):  # a fine slider may need a few steps before a shown number changes
            if not _step_range(page, control, direction):
                return f"did not move ({direction})"
            if _wait_for_change(page, root, before, 500):
                return None
        return "moved ten steps, nothing it drives changed"
    if kind == "select":
        options = control.evaluate("(s) => Array.from(s.options).map((o) => o.value)")
        current = control.input_value()
        # "own" opens a file chooser (the live detector's own picture, tested on its own)
        choices = [o for o in options[options.index(current) + 1:] + options if o not in {current, "own"}]
        if not choices:
            return None if len(options) <= 1 else f"no other option to pick among {options}"
        control.select_option(choices[0])
        return None if _wait_for_change(page, root, before, timeout_ms) else f"picked {choices[0]!r}, nothing changed"
    control.click()
    if _wait_for_change(page, root, before, timeout_ms):
        return None
    # a button that restores or refits may do nothing in the state it starts from: move a slider first
    ranges = root.locator("input[type=range]")
    if ranges.count():
        r = ranges.first
        _step_range(page, r, _direction(r))
        _wait_for_change(page, root, before, 500)
        before = root.evaluate(_FINGERPRINT_JS)
        control.click()
        if _wait_for_change(page, root, before, timeout_ms):
            return None
    return "clicked, nothing changed"


def drive_in_page_widgets(page, timeout_ms: int = 10000, slow_ms: int = 90000) -> dict:
    """Move every range input, pick another option of every select and click every button of every
    in-page widget (the explorers and the live detector), one after the other, and check that what
    each widget shows changes every time. Returns {"driven": [...], "failures": [...]}."""
    driven, failures = [], []
    roots = page.locator(_WIDGET_ROOTS)
    for r in range(roots.count()):
        root = roots.nth(r)
        name = root.get_attribute("data-kind") or root.get_attribute("id")
        slow = root.get_attribute("id") == "live-detector"
        try:
            page.wait_for_function("(r) => r.dataset.state && !['loading', 'running'].includes(r.dataset.state)",
                                   arg=root.element_handle(), timeout=slow_ms if slow else timeout_ms)
        except Exception:
            pass
        state = root.get_attribute("data-state")
        if state != "ready":
            failures.append(f"{name}: data-state {state!r}, not 'ready': {root.inner_text()[:300]}")
            continue
        i = 0
        while i < root.locator(_CONTROLS).count():  # a control may add or remove others (the anchors' k)
            control = root.locator(_CONTROLS).nth(i)
            i += 1
            tag = control.evaluate("(el) => el.tagName.toLowerCase()")
            kind = "range" if tag == "input" else tag
            label = control.evaluate("(el) => (el.className || '') + (el.tagName === 'BUTTON' ? "
                                     "' \"' + el.textContent.trim().slice(0, 40) + '\"' : '')").strip()
            if not control.is_visible() or control.is_disabled():
                failures.append(f"{name}: {kind} {label!r} is hidden or disabled")
                continue
            problem = _act(page, root, control, kind, slow_ms if slow else timeout_ms)
            driven.append(f"{name}: {kind} {label}".rstrip())
            if problem:
                failures.append(f"{name}: {kind} {label!r}: {problem}")
            if root.get_attribute("data-state") != "ready":
                failures.append(f"{name}: data-state {root.get_attribute('data-state')!r} after {kind} {label!r}")
                break
    return {"driven": driven, "failures": failures}


def drive_kernel_free_sliders(page) -> dict:
    """Move every kernel-free ipywidgets slider one step; its stack must show exactly one other picture."""
    driven, failures = [], []
    sliders = page.locator(f".{KERNEL_FREE}")
    for i in range(sliders.count()):
        box = sliders.nth(i).locator("xpath=..")

        def picture():
            return box.locator(".kernel-free-stack img").evaluate_all(
                "imgs => imgs.filter(i => i.offsetParent !== null).map(i => i.src)")

        before = picture()
        if len(before) != 1:
            failures.append(f"kernel-free slider {i}: {len(before)} visible pictures")
            continue
        handle = sliders.nth(i).locator(".noUi-handle")
        for key in ("ArrowRight", "ArrowLeft"):  # the other way when it starts at its last value
            handle.focus()
            page.keyboard.press(key)
            page.wait_for_timeout(300)
            after = picture()
            if after != before:
                break
        driven.append(f"kernel-free slider {i}")
        if len(after) != 1 or after == before:
            failures.append(f"kernel-free slider {i} did not switch its picture ({len(after)} visible)")
    return {"driven": driven, "failures": failures}


@pytest.mark.parametrize("page_name", toc_files())
def test_every_control_of_every_page_changes_what_it_drives(browser, book_server, page_name):
    """Every kernel-free slider, and every range input, select and button of every in-page explorer
    (and of the live detector): moved or clicked, the picture, SVG or text it drives changes, with no
    error in the console and no request leaving 127.0.0.1."""
    seen = visit(browser, f"{book_server}/{page_name}.html")
    page = seen.pop("page")
    try:
        html_text = page.content()
        if _VIEW_MIME in html_text:  # the widget manager renders the embedded views after load
            page.wait_for_selector(".jupyter-widgets", timeout=15000)
            page.wait_for_timeout(500)
        explorers = drive_in_page_widgets(page)
        sliders = drive_kernel_free_sliders(page)
        assert len(sliders["driven"]) == kernel_free_slider_count(html_text), "a kernel-free slider did not render"
        driven = explorers["driven"] + sliders["driven"]
        print(f"{page_name}: {len(driven)} controls driven: {driven}")
        assert explorers["failures"] + sliders["failures"] == []
        if page.locator(".yolov2-explorer").count():
            assert explorers["driven"], "an explorer with no control"
        assert seen["errors"] == [] and seen["console"] == [], seen
        assert seen["external"] == [], f"requests leaving the machine: {seen['external']}"
        assert seen["failed"] == [], f"failed requests: {seen['failed']}"
    finally:
        page.close()


def test_control_driver_moves_explorers_and_kernel_free_sliders_and_catches_dead_controls(browser, tmp_path):
    """The driver on a hand-made page: chapter 3's anchor editor, a kernel-free slider, a slider of
    step "any", and an explorer whose button and select drive nothing (both must be reported)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from yolov2_lib import widgets
    from yolov2_lib.anchors import AnchorKMeans
    from yolov2_lib.explorers import anchor_editor

    rng = np.random.RandomState(0)
    wh = np.clip(np.exp(rng.normal(-1.5, 0.5, (400, 2))), 1e-3, 1.0)
    centres = {k: AnchorKMeans(k, n_init=1, random_state=0).fit(wh).cluster_centers_ for k in (2, 3)}
    editor = anchor_editor(wh, centres, k=2)

    def draw(v):
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.set_title(str(v))
        return fig

    free = widgets.kernel_free_slider([1, 2, 3], draw, "n")
    fine = ('<div class="yolov2-explorer" data-kind="fine" data-state="ready">'
            '<input type="range" min="-4" max="4" step="any" value="0"'
            ' oninput="this.parentNode.querySelector(\'b\').textContent = Number(this.value).toFixed(3)">'
            '<b>0.000</b></div>')
    dead = ('<div class="yolov2-explorer" data-kind="dead" data-state="ready"><select><option>a</option>'
            '<option>b</option></select><button type="button">does nothing</button><svg></svg></div>')
    embed = (ROOT / "book" / "_static" / "vendor" / "html-manager" / "embed.js")
    if not embed.is_file():
        pytest.skip("the vendored widget manager is absent (make vendor)")
    path = tmp_path / "controls.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'>"
                    f"<script src='{embed.as_uri()}'></script></head><body>"
                    f"{editor.html()}{_page_with_widgets(free)}{fine}{dead}</body></html>")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_selector(f".{KERNEL_FREE} .noUi-handle", timeout=15000)
        explorers = drive_in_page_widgets(page, timeout_ms=2000)  # short: the dead controls wait it out
        sliders = drive_kernel_free_sliders(page)
        assert sliders == {"driven": ["kernel-free slider 0"], "failures": []}, sliders
        anchors = [d for d in explorers["driven"] if d.startswith("anchors:")]
        # k select, k-means and reset buttons, then a width and a height slider per anchor (k = 3 after the select)
        assert len(anchors) == 3 + 2 * 3, anchors
        assert [d for d in explorers["driven"] if d.startswith("fine:")] == ["fine: range"]
        assert all(f.startswith("dead:") for f in explorers["failures"]), explorers["failures"]
        assert len(explorers["failures"]) == 2, explorers["failures"]
        assert errors == [], errors
    finally:
        page.close()


# --- what a built page shows: no local path, no Python warning ----------------------------------

# Python's default warning format, `path/to/file.py:123: SomeWarning: message`.
WARNING_LOCATION = re.compile(r"[\w.-]+\.py:\d+: \w*Warning\b")


def shown_text(text: str) -> str:
    """What a reader sees of a built page: prose and every cell's output (a warning lands in an
    output's <pre>, which test_chapter9.page_text drops), without scripts, styles, the code of code
    cells and code blocks written in the chapters."""
    import html.parser

    void = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    class Shown(html.parser.HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.stack: list[tuple[str, bool, bool]] = []  # (tag, hidden, inside an output)
            self.out: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag in void:
                return
            hidden, output = self.stack[-1][1:] if self.stack else (False, False)
            classes = (dict(attrs).get("class") or "").split()
            output = output or "cell_output" in classes
            code = "cell_input" in classes or (not output and any(c.startswith("highlight-") for c in classes))
            self.stack.append((tag, hidden or code or tag in {"script", "style", "template"}, output))

        def handle_endtag(self, tag):
            for k in range(len(self.stack) - 1, -1, -1):  # tolerate unclosed tags
                if self.stack[k][0] == tag:
                    del self.stack[k:]
                    break

        def handle_data(self, data):
            if not (self.stack and self.stack[-1][1]):
                self.out.append(data)

    parser = Shown()
    parser.feed(text)
    return re.sub(r"\s+", " ", " ".join(parser.out))


def local_leaks(text: str) -> list[str]:
    """Local absolute paths and Python warning locations in a page's shown text."""
    shown = shown_text(text)
    needles = {str(ROOT), "/tmp/", "site-packages", str(Path.home()).rstrip("/") + "/"}
    found = [n for n in sorted(needles) if len(n) > 2 and n in shown]
    found += [m.group(0) for m in WARNING_LOCATION.finditer(shown)]
    return found


def test_no_built_page_shows_a_local_path_or_a_warning_location(built_book):
    pages = [p for p in sorted(built_book.rglob("*.html")) if not p.relative_to(built_book).parts[0].startswith("_")]
    assert len(pages) >= len(toc_files())
    bad = {}
    for page in pages:
        leaks = local_leaks(page.read_text(errors="replace"))
        if leaks:
            bad[str(page.relative_to(built_book))] = leaks
    assert bad == {}


def test_leak_scanner_reads_outputs_and_skips_code():
    warning = f"{ROOT}/yolov2_lib/train.py:88: UserWarning: something"
    page = ("<p>prose</p><div class='cell docutils container'><div class='cell_input docutils container'>"
            "<div class='highlight-ipython3 notranslate'><div class='highlight'><pre>open('/tmp/x')</pre></div>"
            "</div></div>"
            "<div class='cell_output docutils container'><div class='output stderr highlight-myst-ansi notranslate'>"
            f"<div class='highlight'><pre>{warning}</pre></div></div></div></div>"
            "<script>const p = '/tmp/y';</script><div class='highlight-python notranslate'><pre>'/tmp/z'</pre></div>")
    leaks = local_leaks(page)
    assert str(ROOT) in leaks and "train.py:88: UserWarning" in leaks and "/tmp/" not in leaks, leaks
    assert local_leaks("<p>a plain page, <code>_build/html</code>, a NaN loss</p>") == []
    assert local_leaks("<p>saved to /tmp/run/best.pt</p>") == ["/tmp/"]
    assert local_leaks("<p>see .venv/lib/python3.11/site-packages/torch</p>") == ["site-packages"]


def _exercise_pages() -> list[str]:
    return [f"book/{p.stem}" for p in sorted((ROOT / "book").glob("*.ipynb")) if "## Exercises" in p.read_text()]


@pytest.mark.parametrize("page_name", _exercise_pages())
def test_hints_and_solutions_stay_closed_until_the_reader_opens_them(browser, book_server, page_name):
    page = browser.new_page()
    try:
        page.goto(f"{book_server}/{page_name}.html")
        page.wait_for_load_state("load")
        dropdowns = page.locator(".admonition.dropdown")
        titles = [dropdowns.nth(k).locator(".admonition-title").inner_text().strip() for k in range(dropdowns.count())]
        assert titles.count("Hint") >= 1 and titles.count("Solution") == titles.count("Hint"), titles
        for k in range(dropdowns.count()):
            body = dropdowns.nth(k).locator(":scope > :not(.admonition-title):not(button)").first
            assert not body.is_visible(), f"{page_name}: {titles[k]} {k} is open before it is asked for"
            dropdowns.nth(k).locator(".admonition-title").click()
            assert body.is_visible(), f"{page_name}: {titles[k]} {k} does not open"
        cells = page.locator("div.tag_hide-cell")
        for k in range(cells.count()):
            code = cells.nth(k).locator(".cell_input").first
            assert not code.is_visible(), f"{page_name}: solution code {k} is shown before it is asked for"
            cells.nth(k).locator("summary").first.click()
            assert code.is_visible(), f"{page_name}: solution code {k} does not open"
    finally:
        page.close()
