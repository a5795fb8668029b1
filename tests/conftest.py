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
    """
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
