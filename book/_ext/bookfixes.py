"""Small Sphinx fixes for this book.

sphinx-thebe registers its inline configuration script once per
`env-before-read-docs` event, which Jupyter Book fires more than once, so
each page declared `const THEBE_JS_URL` twice and the browser raised
"Identifier 'THEBE_JS_URL' has already been declared". Keep the first copy
of every script a page would load.

The page "The detector in your browser" loads files made at build time, never
committed: the shipped BCCD detector as ONNX, a few BCCD test images and a
manifest (`yolov2_lib.onnx_export.browser_bundle`). They are written under the
build folder (`_build/live-static/live-data/`, kept between builds and
remade only when the detector or the exporter changes) and served as
`_static/live-data/`.
"""

from pathlib import Path

LIVE_DATA = "live-data"  # the folder under _static that book/_static/live/live.js reads
LIVE_PAGE = "book/10_in_your_browser"


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (getattr(js, "filename", js) or "", repr(getattr(js, "attributes", None)))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # in place: myst-nb appends the widget state to this very list later


def _browser_files(app):
    if app.builder.format != "html":
        return
    from sphinx.errors import ExtensionError
    from sphinx.util import logging

    try:
        from yolov2_lib.onnx_export import browser_bundle
    except ImportError as exc:
        raise ExtensionError(f"the live detector page needs yolov2_lib: {exc}") from exc
    static = Path(app.outdir).parent / "live-static"  # _build/live-static: a build product
    logging.getLogger(__name__).info("bookfixes: the live detector's ONNX file and images ...")
    try:
        browser_bundle(static / LIVE_DATA)
    except Exception as exc:  # data not found, exporter missing...: one clear build error
        raise ExtensionError(f"the live detector page's files could not be made: {exc}") from exc
    if str(static) not in map(str, app.config.html_static_path):
        app.config.html_static_path.append(str(static))


def _live_page_outdated(app, env, added, changed, removed):
    # The page depends on files Sphinx does not track (its script, the detector, the images), and
    # Sphinx copies static files only when some page is rewritten: rewrite this one every build.
    return [LIVE_PAGE] if LIVE_PAGE in env.found_docs else []


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    app.connect("builder-inited", _browser_files)
    app.connect("env-get-outdated", _live_page_outdated)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
