"""Tests for yolov2_lib.colors: the class colours shared by the book's pictures and the command line."""

from __future__ import annotations

import ast
from pathlib import Path

from yolov2_lib import colors
from yolov2_lib.colors import CLASS_COLORS, class_color, class_rgb


def test_class_rgb_is_the_hex_colour():
    assert class_rgb(0) == (0xE6, 0x9F, 0x00)
    for k, hex_ in enumerate(CLASS_COLORS):
        assert "#%02X%02X%02X" % class_rgb(k) == hex_.upper()
        assert class_color(k) == hex_


def test_colours_cycle():
    n = len(CLASS_COLORS)
    assert n == 8
    for k in range(3 * n):
        assert class_rgb(k) == class_rgb(k % n)
        assert class_color(k) == CLASS_COLORS[k % n]
    assert all(isinstance(v, int) and 0 <= v <= 255 for k in range(n) for v in class_rgb(k))


def test_viz_uses_the_same_colours():
    from yolov2_lib import viz

    assert viz.CLASS_COLORS is CLASS_COLORS


def test_plain_python():
    """colors imports nothing, so pictures drawn with PIL need no matplotlib."""
    tree = ast.parse(Path(colors.__file__).read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert modules <= {"__future__"}
