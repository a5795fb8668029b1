"""Each chapter as a reader runs it alone in Colab: an empty folder, a fresh Python, no data.

For every chapter (``nbtools.chapters()``) the notebook is copied alone into an
empty folder and run by nbval (quick mode, ``YOLOV2_QUICK=1``) with a kernel
whose Python has only what Colab preinstalls (:data:`COLAB_PACKAGES` at the
versions of ``requirements.txt``), so its first cell really installs the
library, and the cells tagged ``nbval-check-output`` must print what the committed
chapter stores: this is the project's nbval pass over the chapters. Two things
differ from Colab, and only those:

- the install cell's requirement ``git+<repository>`` is rewritten, in the copy,
  to a wheel of this checkout (built once per session; ``PIP_NO_INDEX=1``, so a
  dependency Colab lacks fails the chapter instead of being downloaded);
- the data is resolved as a reader's is (``YOLOV2_DATA`` unset, an empty
  ``YOLOV2_CACHE``), but downloads come from the local data mirror through the
  registry's ``YOLOV2_MIRROR`` (same files, same checks, no network).

Afterwards the chapter's cache holds exactly what it fetched: each file is
classified by the registry as copied from the package, downloaded (its bytes
are what a reader downloads), or built from the official archives (what a
reader would stream: gigabytes for VOC). A chapter must build nothing and
download at most :data:`MAX_DOWNLOAD` bytes. What each chapter fetched is
written to ``colab-downloads.json`` in pytest's base temporary folder.

The Python environment is built once per session: a base venv with the Colab
packages (pip's cache makes a second session quick), and per chapter a bare
venv that sees the base's packages through a ``.pth`` file, so every chapter
starts without ``yolov2_lib``. The chapter runs are marked ``colab``: ``-m "not colab"`` skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import nbformat
import pytest

import nbtools
from yolov2_lib.data.registry import default_registry

ROOT = Path(__file__).resolve().parent.parent
# What a fresh Colab runtime has, of what the book needs (the rest comes with the library)
COLAB_PACKAGES = ("torch", "numpy", "matplotlib", "scikit-learn", "pillow", "ipywidgets", "tqdm", "ipykernel",
                  "requests")  # fmt: skip
MAX_DOWNLOAD = 25_000_000  # bytes one chapter may download (BCCD's images are 7.6 MB)
CELL_TIMEOUT = 600
_RECORD: dict[str, dict] = {}


def _pins() -> list[str]:
    """The Colab packages at the versions requirements.txt pins."""
    pinned = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name, sep, _ = line.partition("==")
        if sep:
            pinned[name.strip().lower().replace("_", "-")] = line.strip()
    return [pinned.get(p, p) for p in COLAB_PACKAGES]


def _site_packages(prefix: Path) -> Path:
    return next((prefix / "lib").glob("python3*/site-packages"))


@pytest.fixture(scope="session")
def colab_env(tmp_path_factory):
    """The base venv with Colab's packages and a wheel of this checkout (built once per session)."""
    tmp = tmp_path_factory.mktemp("colab")
    base = tmp / "base"
    start = time.perf_counter()
    venv.EnvBuilder(with_pip=True).create(base)
    find_links = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []
    pip = [str(base / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", *find_links]
    proc = subprocess.run([*pip, *_pins()], capture_output=True, text=True)
    assert proc.returncode == 0, f"installing Colab's packages failed:\n{proc.stdout}\n{proc.stderr}"
    venv_seconds = time.perf_counter() - start

    # the wheel, from a copy of the package's sources: no build files land in the working tree
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "yolov2_lib", src / "yolov2_lib", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp / "wheel"), str(src)], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, f"building the wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheel = next((tmp / "wheel").glob("yolov2_lib-*.whl"))
    yield {"base": base, "wheel": wheel, "venv_seconds": venv_seconds, "tmp": tmp,
           "setup_seconds": time.perf_counter() - start}  # fmt: skip
    shutil.rmtree(base, ignore_errors=True)  # 1.5 GB; pytest keeps the temporary folders of 3 sessions


def _fresh_python(base: Path, where: Path) -> Path:
    """A bare venv that sees the base venv's packages (after its own): yolov2_lib is not there."""
    venv.EnvBuilder(with_pip=False).create(where)
    (_site_packages(where) / "colab_base.pth").write_text(f"{_site_packages(base)}\n")
    return where / "bin" / "python"


def _colab_copy(chapter: Path, wheel: Path, folder: Path) -> Path:
    """The chapter alone in ``folder``, its install cell pointed at ``wheel`` instead of GitHub."""
    nb = nbformat.read(chapter, as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    remote = f"git+{nbtools.repository_url()}"
    assert setup.source.count(remote) == 1, f"{chapter.name}: no {remote} in the setup cell"
    setup.source = setup.source.replace(remote, wheel.as_uri())
    nb.metadata["kernelspec"] = {"name": "colab", "display_name": "Colab-like Python", "language": "python"}
    path = folder / chapter.name
    nbformat.write(nb, path)
    return path


def _kernel_env(cache: Path, mirror: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("YOLOV2_", "PYTHON", "VIRTUAL_ENV", "JUPYTER", "PIP_"))}  # fmt: skip
    env.update(YOLOV2_CACHE=str(cache), YOLOV2_MIRROR=mirror.as_uri(), YOLOV2_QUICK="1", PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", MPLBACKEND="module://matplotlib_inline.backend_inline")
    if os.environ.get("YOLOV2_NO_BF16"):
        env["YOLOV2_NO_BF16"] = os.environ["YOLOV2_NO_BF16"]
    return env


def _what_was_fetched(cache: Path) -> dict:
    """Each file in the cache, classified by the registry: package copy, download, or build."""
    registry = default_registry()
    out = {"datasets": {}, "download_bytes": 0, "package_bytes": 0, "builds": [], "unknown": []}
    for folder in sorted(p for p in cache.iterdir() if p.is_dir()):
        if folder.name not in registry.datasets:
            out["unknown"].append(folder.name)
            continue
        ds = registry.dataset(folder.name)
        entry = {"downloaded": 0, "files_downloaded": 0, "from_package": 0}
        for f in ds.files:
            path = folder / f.path
            if not path.is_file():
                continue
            size = path.stat().st_size
            if f.shipped is not None:
                entry["from_package"] += size
            elif f.url is None:  # a derived file: a reader would build it from the official sources
                out["builds"].append(f"{ds.name}/{f.path} from {f.build.describe() if f.build else f.derived}")
            else:
                entry["downloaded"] += size
                entry["files_downloaded"] += 1
        out["datasets"][ds.name] = entry
        out["download_bytes"] += entry["downloaded"]
        out["package_bytes"] += entry["from_package"]
    return out


@pytest.fixture(scope="module", autouse=True)
def _write_record(tmp_path_factory):
    yield
    if _RECORD:
        (tmp_path_factory.getbasetemp() / "colab-downloads.json").write_text(json.dumps(_RECORD, indent=1))


def test_the_record_counts_downloads_and_flags_builds(tmp_path):
    """The classification the chapters are judged by, on a hand-made cache."""
    (tmp_path / "bccd" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "bccd" / "JPEGImages" / "BloodImage_00000.jpg").write_bytes(b"x" * 1000)
    (tmp_path / "bccd" / "bccd_boxes.csv").write_bytes(b"y" * 50)  # ships: copied, not downloaded
    (tmp_path / "voc_boxes").mkdir()
    (tmp_path / "voc_boxes" / "voc_boxes.csv").write_bytes(b"z")  # a reader would build it
    (tmp_path / "stray").mkdir()
    fetched = _what_was_fetched(tmp_path)
    assert fetched["download_bytes"] == 1000 and fetched["package_bytes"] == 50
    assert fetched["datasets"]["bccd"] == {"downloaded": 1000, "files_downloaded": 1, "from_package": 50}
    assert len(fetched["builds"]) == 1 and fetched["builds"][0].startswith("voc_boxes/voc_boxes.csv from ")
    assert "VOCtrainval_11-May-2012.tar" in fetched["builds"][0] and fetched["unknown"] == ["stray"]


@pytest.mark.colab
@pytest.mark.parametrize("chapter", nbtools.chapters(), ids=lambda p: p.stem)
def test_chapter_runs_alone_as_in_colab(chapter, shared_data, colab_env, tmp_path, record_property):
    """nbval runs the copy in the Colab-like Python: every cell runs, and the checked cells print what the
    committed chapter stores (the book's only nbval pass over the chapters)."""
    python = _fresh_python(colab_env["base"], tmp_path / "venv")
    kernels = tmp_path / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like Python", "language": "python"}))  # fmt: skip
    folder, cache = tmp_path / "content", tmp_path / "cache"
    folder.mkdir()
    path = _colab_copy(chapter, colab_env["wheel"], folder)
    env = _kernel_env(cache, shared_data) | {"JUPYTER_PATH": str(tmp_path / "jupyter")}
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder), path.name,
             "--nbval", "--nbval-kernel-name", "colab", "--nbval-sanitize-with", str(ROOT / "tests" / "sanitize.cfg"),
             "--nbval-cell-timeout", str(CELL_TIMEOUT)],
            cwd=folder, env=env, capture_output=True, text=True)  # fmt: skip
    finally:  # what it fetched is recorded even when a cell fails
        seconds = time.perf_counter() - start
        cache.mkdir(exist_ok=True)
        fetched = _what_was_fetched(cache)
        fetched["seconds"] = round(seconds, 1)
        _RECORD[chapter.name] = fetched
        _RECORD["_session"] = {"venv_seconds": round(colab_env["venv_seconds"], 1),
                               "setup_seconds": round(colab_env["setup_seconds"], 1)}  # fmt: skip
        record_property("download_bytes", fetched["download_bytes"])
        print(f"{chapter.name}: {seconds:.0f} s, downloads {fetched['download_bytes']:,} bytes "
              f"({', '.join(fetched['datasets']) or 'no data'})")
    assert proc.returncode == 0, f"{chapter.name} under nbval in a Colab-like Python:\n{proc.stdout[-6000:]}{proc.stderr[-2000:]}"

    installed = list(_site_packages(tmp_path / "venv").glob("yolov2_lib-*.dist-info"))
    assert installed, f"{chapter.name}: the setup cell did not install yolov2_lib into the fresh Python"
    assert not fetched["builds"], f"{chapter.name} made a reader build: {fetched['builds']}"
    assert not fetched["unknown"], f"{chapter.name} left unregistered folders in the cache: {fetched['unknown']}"
    assert fetched["download_bytes"] <= MAX_DOWNLOAD, (
        f"{chapter.name} downloads {fetched['download_bytes']:,} bytes (limit {MAX_DOWNLOAD:,}): {fetched}")
