"""Every exercise of every chapter has a hint and a worked solution, both hidden until opened."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
CHAPTERS = sorted(p for p in BOOK.glob("*.ipynb") if "## Exercises" in p.read_text())
ITEM = re.compile(r"^(\d+)\. ", re.M)
HINT = re.compile(r"^:::\{admonition\} Hint\s*\n:class: dropdown", re.M)
SOLUTION = re.compile(r"^:::\{admonition\} Solution\s*\n:class: dropdown", re.M)


def _exercise_cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    start = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                  and re.search(r"^## Exercises", "".join(c["source"]), re.M)), None)
    assert start is not None, f"{path.name} has no Exercises section"
    first = "".join(cells[start]["source"])
    return [{**cells[start], "source": first[first.index("## Exercises"):]}, *cells[start + 1:]]


def _events(cells: list[dict]) -> list[tuple[str, str]]:
    """The exercises section as a sequence of ("item", n), ("hint", ""), ("solution", ""), ("code", tags)."""
    events = []
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code":
            events.append(("code", cell))
            continue
        marks = [(m.start(), "item", m.group(1)) for m in ITEM.finditer(text)]
        marks += [(m.start(), "hint", "") for m in HINT.finditer(text)]
        marks += [(m.start(), "solution", "") for m in SOLUTION.finditer(text)]
        events += [(kind, value) for _, kind, value in sorted(marks)]
    return events


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_each_exercise_has_a_hint_and_a_solution(chapter):
    events = _events(_exercise_cells(chapter))
    items = [v for kind, v in events if kind == "item"]
    assert items, f"{chapter.name}: no exercises"
    assert items == [str(k) for k in range(1, len(items) + 1)], f"{chapter.name}: exercises numbered {items}"
    current, seen = None, {}
    for kind, value in events:
        if kind == "item":
            current = value
            seen[current] = set()
        elif kind in ("hint", "solution"):
            assert current is not None, f"{chapter.name}: a {kind} before the first exercise"
            seen[current].add(kind)
    missing = {n: sorted({"hint", "solution"} - kinds) for n, kinds in seen.items() if {"hint", "solution"} - kinds}
    assert not missing, f"{chapter.name}: exercises without {missing}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_solution_code_is_hidden_until_opened(chapter):
    for kind, cell in _events(_exercise_cells(chapter)):
        if kind != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        hidden = cell.get("metadata", {}).get("jupyter", {})
        assert "hide-cell" in tags, f"{chapter.name}: a solution cell without the hide-cell tag"
        assert hidden.get("source_hidden") and hidden.get("outputs_hidden"), f"{chapter.name}: not collapsed"
        assert "nbval-check-output" not in tags, f"{chapter.name}: solution outputs are not stored"


def test_every_chapter_ends_with_exercises():
    numbered = {p.name for p in BOOK.glob("[0-9]*.ipynb")}
    assert numbered and numbered <= {p.name for p in CHAPTERS}
