"""Interactive explorers for the chapters (ipywidgets).

Every widget here is **kernel-free**: its pictures are computed in advance
and switched in the browser by a client-side link (``jslink``) between a
slider and a :class:`ipywidgets.Stack`, so it keeps working in the static
HTML book, where no Python runs. Explorers that recompute what the reader
changes (anchors, a cell of the head, a predicted box) run in the page
itself, in JavaScript: :mod:`yolov2_lib.explorers`.

Only this module and ``viz`` import ipywidgets and matplotlib.
"""

from __future__ import annotations

import io
from typing import Callable, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt

from . import viz
from .errors import YOLOv2Error

__all__ = [
    "figure_png", "png_image", "kernel_free_slider", "kernel_free_grid", "reorg_explorer",
]


def figure_png(fig: plt.Figure, dpi: int = 80) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def png_image(png: bytes, width: str | None = None) -> W.Image:
    """An Image widget holding PNG bytes (embedded in the page's widget state)."""
    layout = W.Layout(width=width) if width else W.Layout()
    return W.Image(value=png, format="png", layout=layout)


def kernel_free_slider(
    values: Sequence[int | float | str],
    draw: Callable[[int | float | str], plt.Figure],
    description: str,
    value: int | float | str | None = None,
    dpi: int = 80,
) -> W.VBox:
    """A slider over ``values`` that switches between figures drawn in advance.

    ``draw(v)`` makes the figure for each value once; the slider and a Stack of
    images are linked in the browser, so the widget works in the static HTML.

    Args:
        values: the slider's positions, in order.
        draw: makes the figure for one value.
        description: the slider's label.
        value: the initial value (default: the first).
        dpi: resolution of the stored pictures.

    Returns:
        A VBox(slider, stack); ``box.children[0]`` is the slider (its value is an index
        into ``values`` when they are not integers 0..n-1) and ``box.children[1]`` the stack.
    """
    values = list(values)
    if not values:
        raise YOLOv2Error("kernel_free_slider needs at least one value")
    start = values.index(value) if value is not None else 0
    images = [png_image(figure_png(draw(v), dpi=dpi)) for v in values]
    stack = W.Stack(images, selected_index=start)
    slider = W.SelectionSlider(options=[(str(v), i) for i, v in enumerate(values)], value=start,
                               description=description, continuous_update=True,
                               layout=W.Layout(width="420px"))
    W.jslink((slider, "index"), (stack, "selected_index"))
    # classes let the book's browser test find and drive every kernel-free slider
    slider.add_class("kernel-free-slider")
    stack.add_class("kernel-free-stack")
    return W.VBox([slider, stack])


def kernel_free_grid(
    rows: Sequence[int | float | str],
    cols: Sequence[int | float | str],
    draw: Callable[[int | float | str, int | float | str], plt.Figure],
    descriptions: tuple[str, str],
    value: tuple[int | float | str, int | float | str] | None = None,
    dpi: int = 80,
) -> W.VBox:
    """Two sliders over a grid of settings, switching between figures drawn in advance.

    ``draw(r, c)`` makes the figure of every pair once. The first slider picks a
    row of pictures (an outer Stack), the second the picture within every row
    (one inner Stack per row, all linked to it), with client-side links only, so
    the widget works in the static HTML. The section "From 845 boxes to a few
    detections" of chapter 5 uses it for the score threshold and the NMS IoU.

    Args:
        rows: the first slider's positions.
        cols: the second slider's positions.
        draw: makes the figure for one ``(row value, column value)``.
        descriptions: the two sliders' labels.
        value: the initial ``(row value, column value)`` (default: the first of each).
        dpi: resolution of the stored pictures.

    Returns:
        A VBox(slider over rows, slider over columns, outer stack); the outer stack's
        children are the inner stacks, one per row value.
    """
    rows, cols = list(rows), list(cols)
    if not rows or not cols:
        raise YOLOv2Error("kernel_free_grid needs at least one value on each slider")
    start = (rows.index(value[0]), cols.index(value[1])) if value is not None else (0, 0)
    inner = [W.Stack([png_image(figure_png(draw(r, c), dpi=dpi)) for c in cols], selected_index=start[1])
             for r in rows]
    outer = W.Stack(inner, selected_index=start[0])
    sliders = []
    for values, label, at in ((rows, descriptions[0], start[0]), (cols, descriptions[1], start[1])):
        slider = W.SelectionSlider(options=[(str(v), i) for i, v in enumerate(values)], value=at,
                                   description=label, continuous_update=True,
                                   style={"description_width": "110px"}, layout=W.Layout(width="480px"))
        slider.add_class("kernel-free-slider")
        sliders.append(slider)
    W.jslink((sliders[0], "index"), (outer, "selected_index"))
    for stack in inner:
        W.jslink((sliders[1], "index"), (stack, "selected_index"))
    outer.add_class("kernel-free-stack")
    return W.VBox([*sliders, outer])


# ---------------------------------------------------------------- chapter 7: the passthrough layer


def reorg_explorer(channels: int = 4, height: int = 4, width: int = 4, stride: int = 2) -> W.VBox:
    """Slide over the output channels of a reorg; see where each one's values come from.

    A kernel-free widget: one :func:`yolov2_lib.viz.draw_reorg_channel` picture per
    output channel (darknet's order above, space-to-depth below), drawn in advance.

    Args:
        channels, height, width: the input shape (C, H, W); small, the labels must be readable.
        stride: s.

    Returns:
        The :func:`kernel_free_slider` box (``C * s^2`` positions).
    """
    if channels * height * width > 256:
        raise YOLOv2Error(f"reorg_explorer labels every value: keep C*H*W <= 256, got {channels}x{height}x{width}.")
    return kernel_free_slider(list(range(channels * stride * stride)),
                              lambda k: viz.draw_reorg_channel(channels, height, width, k, stride),
                              "output ch")
