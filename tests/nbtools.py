"""Keep the chapters in the one committed form the tests expect.

Chapters are committed with every output stripped, except the outputs of
cells tagged ``nbval-check-output``: nbval compares those, so a number the
prose claims cannot drift from the code. The tag lives in the cell's
metadata, so readers never see a test marker (a first-line
``# NBVAL_CHECK_OUTPUT`` comment, which nbval also reads, is refused). The first
cell of every chapter is :func:`setup_cell`, made from the repository URL
in ``_config.yml`` (the one place that names it).

    python tests/nbtools.py refresh book/03_anchor_boxes.ipynb   # run it, keep checked outputs
    python tests/nbtools.py check                                # what tests/test_book.py enforces
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHECK_TAG = "nbval-check-output"
VISIBLE_MARKS = ("# NBVAL_", "# nbval-")  # test markers a reader would see in a cell


def repository_url() -> str:
    """The repository URL from _config.yml (read without a YAML dependency)."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", text, re.M)
    if not match:
        raise ValueError("_config.yml: no `repository: url:` entry")
    return match.group(1)


def setup_cell() -> str:
    """The source of every chapter's first cell."""
    return (
        "# Setup: installs yolov2_lib when it is missing (as in Colab); does nothing otherwise.\n"
        "try:\n"
        "    import yolov2_lib\n"
        "except ImportError:\n"
        f'    %pip install -q "yolov2-lib[book] @ git+{repository_url()}"\n'
        "from yolov2_lib.runtime import setup\n"
        "\n"
        "device = setup(seed=0)  # seeds Python, NumPy and torch; picks CUDA when there is one"
    )


def chapters() -> list[Path]:
    return sorted(p for p in BOOK.glob("*.ipynb"))


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def problems(path: Path) -> list[str]:
    """Everything that differs from the committed form, as readable lines."""
    nb = nbformat.read(path, as_version=4)
    out = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        out.append(f"{path.name}: invalid notebook: {exc.message}")
    if "widgets" in nb.metadata:
        out.append(f"{path.name}: stores widget state in its metadata (strip it)")
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or code[0].source != setup_cell():
        out.append(f"{path.name}: the first code cell is not tests/nbtools.py's setup_cell()")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(VISIBLE_MARKS):
            out.append(f"{path.name}: cell {i} starts with a test marker readers would see (use the "
                       f"{CHECK_TAG!r} tag)")
        if is_checked(cell):
            if not cell.outputs:
                out.append(f"{path.name}: cell {i} is tagged {CHECK_TAG} but has no stored output")
            if any(o.get("output_type") == "error" for o in cell.outputs):
                out.append(f"{path.name}: cell {i} stores an error output")
            if cell.outputs and cell.execution_count is None:  # nbval: "unrun reference cell has outputs"
                out.append(f"{path.name}: cell {i} has stored output but no execution count (run strip)")
            if any(is_glue(o) for o in cell.outputs):
                out.append(f"{path.name}: cell {i} stores a glue record (run strip): a kernel without myst-nb "
                           "(Colab) does not write it")
        elif cell.outputs or cell.execution_count is not None:
            out.append(f"{path.name}: cell {i} keeps outputs but is not tagged {CHECK_TAG}")
    return out


def is_glue(output) -> bool:
    """A hidden value handed to the book's prose (myst-nb's glue): written only where myst-nb is installed."""
    return bool(output.get("metadata", {}).get("scrapbook"))


def strip(nb) -> None:
    """Drop every output except those of checked cells, which get a stable execution count and lose
    their glue records (the page reads those from the book build's own run)."""
    # the widget state nbclient saves is megabytes of PNGs; the book build re-creates it
    nb.metadata.pop("widgets", None)
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        cell.metadata.pop("execution", None)
        if is_checked(cell):
            # nbval refuses a cell with outputs and no execution count ("unrun reference cell")
            cell.execution_count = count
            cell.outputs = [o for o in cell.outputs if not is_glue(o)]
            for o in cell.outputs:
                if "execution_count" in o:
                    o["execution_count"] = count
        else:
            cell.execution_count = None
            cell.outputs = []


def refresh(path: Path, timeout: int = 1200) -> None:
    """Execute a chapter in its folder, then store it in the committed form."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    strip(nb)
    nbformat.write(nb, path)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"refresh", "check", "strip"}:
        print(__doc__)
        return 2
    paths = [Path(a).resolve() for a in argv[1:]] or chapters()
    if argv[0] == "check":
        found = [p for path in paths for p in problems(path)]
        print("\n".join(found) or f"{len(paths)} chapter(s) in committed form")
        return 1 if found else 0
    for path in paths:
        if argv[0] == "refresh":
            refresh(path)
        else:
            nb = nbformat.read(path, as_version=4)
            strip(nb)
            nbformat.write(nb, path)
        print(f"{argv[0]}: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
