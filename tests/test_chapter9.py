"""What the built book says about its own runs: chapter 9's fixed number of updates and a test mAP
near the shipped reference run's, and no page showing a number that was not computed (``nan``)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

# What chapter 9 promises a reader on a CPU: a fixed number of updates, whatever the machine's speed.
UPDATES_ON_A_CPU = 640
# A recipe or library change that breaks learning falls far below this floor.
MAP_FLOOR = 70.0
# How far the page's test mAP may be from the shipped reference run (points of mAP@0.5). On the reference's
# own kind of CPU, in its precision, the run repeats: the issue asks for 0.02. Another CPU rounds some sums
# differently, which from random weights acts like another seed (chapter 8's record: seeds of one recipe
# differ by up to 3.0 points at 416): twice that.
SAME_CPU_TOLERANCE = 2.0
OTHER_CPU_TOLERANCE = 6.0


def page_text(path: Path) -> str:
    """The visible prose of a built page: code blocks, scripts and tags removed."""
    text = path.read_text(errors="replace")
    text = re.sub(r"<(script|style|pre)\b.*?</\1>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text))


def number_after(text: str, lead: str) -> float:
    match = re.search(re.escape(lead) + r"\s*([0-9]+(?:\.[0-9]+)?)", text)
    assert match, f"the page does not say {lead!r} followed by a number"
    return float(match.group(1))


@pytest.fixture(scope="module")
def chapter9(built_book) -> str:
    return page_text(built_book / "book" / "09_training.html")


def test_chapter9_made_its_fixed_number_of_updates(chapter9):
    updates = number_after(chapter9, "This run made")
    hardware = re.search(r"training images per second, on (.*?)\. The history", chapter9)
    assert hardware, "the page does not say where it trained"
    if "CUDA" not in hardware.group(1):
        assert updates == UPDATES_ON_A_CPU


def test_chapter9_reaches_the_reference_map(chapter9):
    from yolov2_lib.bench.chapter9 import cpu_model, reference

    reached = number_after(chapter9, "this run reached a test mAP@0.5 of")
    assert MAP_FLOOR <= reached <= 100
    ref = reference()
    assert number_after(chapter9, "The reference run above reached") == pytest.approx(ref["test_map"], abs=0.051)
    precision = re.search(r"This run made [0-9]+ updates in (\S+)\s*,", chapter9).group(1)  # a glued value
    # is its own element: the page text has a space before the comma
    same = cpu_model() == ref["cpu"] and precision == ref["precision"]
    tolerance = SAME_CPU_TOLERANCE if same else OTHER_CPU_TOLERANCE
    assert abs(reached - ref["test_map"]) <= tolerance, (
        f"test mAP {reached} on {cpu_model()} in {precision}; the reference {ref['test_map']} on {ref['cpu']} "
        f"in {ref['precision']} (tolerance {tolerance})")


def test_no_built_page_shows_nan(built_book):
    pages = sorted(built_book.rglob("*.html"))
    assert pages
    # Python prints a missing number as lowercase 'nan'; prose may well speak of a NaN loss
    bad = [str(p.relative_to(built_book)) for p in pages if re.search(r"\bnan\b", page_text(p))]
    assert bad == []


def test_page_text_ignores_code_and_finds_nan_in_prose(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<p>ran <b>nan</b> times</p><pre>x = float('nan')</pre>")
    assert re.search(r"\bnan\b", page_text(page))
    assert page_text(page).count("nan") == 1
    page.write_text("<p>ran 2.1 times</p><pre>x = float('nan')</pre><p>nanoseconds, a NaN loss</p>")
    assert not re.search(r"\bnan\b", page_text(page))
    assert "NaN" in page_text(page)
