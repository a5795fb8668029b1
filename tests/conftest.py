"""Shared fixtures: the real data folder, and the book built once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"


def data_root() -> Path | None:
    """The local data mirror (YOLOV2_DATA, else ../shared/data beside the repository), if any."""
    env = os.environ.get("YOLOV2_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data")
    for c in candidates:
        if (c / "README.md").is_file():
            return c
    return None


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny models: they run fastest on one, and on a busy
    machine a team of OpenMP threads waits for its slowest member."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Three synthetic images per split (train, val) and their boxes CSV: ``(csv_path, images)``
    (see tests/_train_worker.py)."""
    import _train_worker

    root = tmp_path_factory.mktemp("tiny-data")
    return _train_worker.make_synthetic(root, num_images=3, splits=("train", "val"))


def pytest_collection_modifyitems(config, items):
    """Every test of a module that builds the book, runs chapters or several processes is ``slow``
    (``-m "not slow"`` leaves them out)."""
    slow = pytest.mark.slow
    for item in items:
        if item.module.__name__ in SLOW_MODULES:
            item.add_marker(slow)


SLOW_MODULES = {"test_book", "test_colab", "test_chapter9", "test_ddp", "test_explorers_anchors",
                "test_explorers_detections", "test_explorers_head", "test_explorers_location"}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    if root is None:
        pytest.skip("the real data folder is absent (set YOLOV2_DATA)")
    return root


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build the whole book with warnings as errors; returns the html folder.

    Uses the execution cache in _build (a fresh clone executes every chapter).
    With YOLOV2_BUILT_BOOK set to a built html folder (e.g. the ``_build/html`` of
    ``jupyter-book build . --path-output /tmp/book-quick``), nothing is built: the tests run
    against that build as it is (its build log and warnings are not checked).
    """
    prebuilt = os.environ.get("YOLOV2_BUILT_BOOK")
    if prebuilt:
        html_dir = Path(prebuilt).resolve()
        assert (html_dir / "index.html").is_file(), f"YOLOV2_BUILT_BOOK={prebuilt}: no index.html there"
        return html_dir
    root = data_root()
    env = dict(os.environ)
    env.pop("YOLOV2_QUICK", None)  # the book runs every chapter in full; only nbval's run is quick
    if root is not None:
        env["YOLOV2_DATA"] = str(root)
    vendor = subprocess.run([sys.executable, str(ROOT / ".ci" / "vendor.py")], cwd=ROOT,
                            capture_output=True, text=True)
    assert vendor.returncode == 0, vendor.stdout + vendor.stderr
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    proc = subprocess.run([jb, "build", str(ROOT), "-W", "--keep-going"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3000)
    log = proc.stdout + proc.stderr
    (tmp_path_factory.getbasetemp() / "book-build.log").write_text(log)
    assert proc.returncode == 0, f"book build failed:\n{log[-8000:]}"
    return BUILD / "html"


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """A headless Chromium (the Debian package) driven by Playwright, for pages made in a test."""
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed (.ci/run installs the Debian packages chromium and chromium-driver)")
    profile = tmp_path_factory.mktemp("chromium-fragments")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=exe, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        yield context
        context.close()


@pytest.fixture
def open_explorer(chromium, tmp_path):
    """Open an in-page explorer (``yolov2_lib.explorers.PageWidget``) alone in a page from disk.

    Returns ``open(widget) -> (page, errors)``; ``errors`` collects page errors and console
    errors. The page is closed after the test.
    """
    pages = []

    def open_(widget):
        path = tmp_path / f"explorer-{len(pages)}.html"
        path.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{widget.html()}</body></html>")
        page = chromium.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(path.as_uri())
        page.wait_for_selector(".yolov2-explorer[data-state]", timeout=10000)
        pages.append(page)
        return page, errors

    yield open_
    for page in pages:
        page.close()
