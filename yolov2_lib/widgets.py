"""Interactive explorers for the chapters (ipywidgets).

Two kinds of interaction live here:

- **kernel-free** widgets, whose pictures are computed in advance and
  switched in the browser by a client-side link (``jslink``) between a
  slider and a :class:`ipywidgets.Stack`. They keep working in the static
  HTML book, where no Python runs;
- **live** widgets, whose callbacks recompute in Python (in Jupyter or
  Colab). In the static book they show the state they were saved with.

Only this module and ``viz`` import ipywidgets and matplotlib.
"""

from __future__ import annotations

import base64
import contextlib
import io
from typing import Callable, Mapping, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch

from . import viz
from .anchors import iou_distance as _iou_distance

__all__ = [
    "figure_png", "png_image", "draw_into", "kernel_free_slider", "kernel_free_grid", "live", "head_explorer", "location_explorer",
    "reorg_explorer",
    "anchor_editor",
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
        raise ValueError("kernel_free_slider needs at least one value")
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
        raise ValueError("kernel_free_grid needs at least one value on each slider")
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


def draw_into(out: W.Output, draw: Callable[[], object], dpi: int = 80) -> None:
    """Replace what an Output widget shows with the figures ``draw()`` makes (as PNG) and its prints.

    The figures go straight into the widget's state (``out.outputs``), not through
    ``with out:``: capturing a running cell's output into a widget depends on the
    kernel's message routing, which a notebook run without a browser (a book build)
    does not always get right. The figures are closed afterwards.
    """
    before = set(plt.get_fignums())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        draw()
    outputs = []
    if printed.getvalue():
        outputs.append({"output_type": "stream", "name": "stdout", "text": printed.getvalue()})
    for number in [n for n in plt.get_fignums() if n not in before]:
        png = base64.b64encode(figure_png(plt.figure(number), dpi=dpi)).decode("ascii")
        outputs.append({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": png, "text/plain": "<Figure>"}})
    out.outputs = tuple(outputs)


def live(controls: Mapping[str, W.ValueWidget], update: Callable[..., None]) -> W.VBox:
    """Controls that re-run ``update(**values)`` in the kernel, drawing into an Output."""
    out = W.Output()

    def refresh(_=None):
        draw_into(out, lambda: update(**{k: c.value for k, c in controls.items()}))

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    return W.VBox([W.HBox(list(controls.values())), out])


# ---------------------------------------------------------------- chapter 4: the output feature map


def head_explorer(
    raw: torch.Tensor,
    anchors: torch.Tensor,
    class_names: Sequence[str],
    image: np.ndarray,
    *,
    row: int = 0,
    col: int = 0,
    anchor: int = 0,
) -> W.VBox:
    """Pick a cell and an anchor; see its ``5 + C`` numbers and where they sit in the tensor.

    A live widget (it needs a kernel): dropdowns for the cell's row and column and for
    the anchor; the picture is :func:`yolov2_lib.viz.draw_head_cell` and the numbers are
    listed with their channel and decoded meaning (:func:`yolov2_lib.viz.describe_anchor`).

    Args:
        raw: (A*(5+C), H, W) head output of one image.
        anchors: (A, 2) anchors in grid cells.
        class_names: the C class names.
        image: (h, w, 3) image the grid covers.
        row: the initial row.
        col: the initial column.
        anchor: the initial anchor.

    Returns:
        A VBox(controls, output).
    """
    viz.describe_anchor(raw, anchors, row, col, anchor, class_names)  # checks shapes and the start
    _, H, W_ = raw.shape
    small = W.Layout(width="160px")
    controls = {
        "row": W.Dropdown(options=list(range(H)), value=row, description="row", layout=small),
        "col": W.Dropdown(options=list(range(W_)), value=col, description="col", layout=small),
        "anchor": W.Dropdown(options=[(f"{a}: {w:.2f} x {h:.2f}", a) for a, (w, h) in enumerate(anchors.tolist())],
                             value=anchor, description="anchor", layout=W.Layout(width="240px")),
    }

    def update(row: int, col: int, anchor: int) -> None:
        viz.draw_head_cell(raw, anchors, class_names, image, row, col, anchor)
        for ch, name, value, decoded, meaning in viz.describe_anchor(raw, anchors, row, col, anchor, class_names):
            print(f"channel {ch:>3}  {name:<11} {value:+7.3f} -> {decoded:7.3f}  {meaning}")

    return live(controls, update)


# ---------------------------------------------------------------- chapter 5: direct location prediction


def location_explorer(
    image: np.ndarray,
    anchors: torch.Tensor,
    *,
    grid: int = 13,
    row: int = 6,
    col: int = 6,
    anchor: int = 0,
    t: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
    t_range: float = 4.0,
) -> W.VBox:
    """Move ``t_x, t_y, t_w, t_h`` of one cell and anchor and watch the box over an image.

    A live widget (it needs a kernel): four sliders and dropdowns for the cell and the
    anchor; the picture is :func:`yolov2_lib.viz.draw_location` with the unconstrained
    (RPN-style) reading of the same numbers beside YOLO v2's.

    Args:
        image: (h, w, 3) image the grid covers.
        anchors: (A, 2) anchors in grid cells.
        grid: cells per side.
        row: the initial row.
        col: the initial column.
        anchor: the initial anchor.
        t: the initial ``(t_x, t_y, t_w, t_h)``.
        t_range: each slider spans ``[-t_range, t_range]``.

    Returns:
        A VBox(controls, output).
    """
    if len(t) != 4:
        raise ValueError(f"Expected t = (t_x, t_y, t_w, t_h), got {t!r}.")
    if not (0 <= row < grid and 0 <= col < grid and 0 <= anchor < anchors.shape[0]):
        raise ValueError(f"(row, col, anchor) = {(row, col, anchor)} outside the {grid} x {grid} grid "
                         f"of {anchors.shape[0]} anchors.")
    sliders = {name: W.FloatSlider(value=float(v), min=-t_range, max=t_range, step=0.05, description=name,
                                   continuous_update=False, readout_format=".2f")
               for name, v in zip(("t_x", "t_y", "t_w", "t_h"), t)}
    small = W.Layout(width="160px")
    controls = sliders | {
        "row": W.Dropdown(options=list(range(grid)), value=row, description="row", layout=small),
        "col": W.Dropdown(options=list(range(grid)), value=col, description="col", layout=small),
        "anchor": W.Dropdown(options=[(f"{a}: {w:.2f} x {h:.2f}", a) for a, (w, h) in enumerate(anchors.tolist())],
                             value=anchor, description="anchor", layout=W.Layout(width="240px")),
    }

    def update(t_x: float, t_y: float, t_w: float, t_h: float, row: int, col: int, anchor: int) -> None:
        _, ax = plt.subplots(figsize=(8, 6))
        p_w, p_h = anchors[anchor].tolist()
        boxes = viz.draw_location(ax, image, (t_x, t_y, t_w, t_h), (row, col), (p_w, p_h), grid=grid,
                                  unconstrained=True, margin=0.3)
        height, width = image.shape[:2]
        for name in ("yolo", "rpn"):
            x1, y1, x2, y2 = boxes[name]
            print(f"{name:>4}: centre ({(x1 + x2) / 2 / width * grid:6.2f}, {(y1 + y2) / 2 / height * grid:6.2f}) "
                  f"size {(x2 - x1) / width * grid:5.2f} x {(y2 - y1) / height * grid:5.2f} (grid cells)")

    box = live(controls, update)
    box.children[0].layout.flex_flow = "row wrap"
    return box


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
        raise ValueError(f"reorg_explorer labels every value: keep C*H*W <= 256, got {channels}x{height}x{width}.")
    return kernel_free_slider(list(range(channels * stride * stride)),
                              lambda k: viz.draw_reorg_channel(channels, height, width, k, stride),
                              "output ch")


# ---------------------------------------------------------------- chapter 3: anchor boxes by k-means


def anchor_editor(
    wh: np.ndarray,
    centers_by_k: Mapping[int, np.ndarray],
    *,
    k: int = 5,
    grid: int = 13,
    max_points: int = 3000,
    seed: int = 0,
) -> W.VBox:
    """Choose k, then move every anchor's width and height and watch the mean IoU.

    A live widget (it needs a kernel). Choosing k resets the anchors to the k-means
    centres for that k; each anchor then has a width and a height slider, in grid
    cells. The picture is :func:`yolov2_lib.viz.draw_clusters`; the line above it
    compares the mean IoU of the edited anchors with that of the k-means centres.

    Args:
        wh: (n, 2) box widths and heights as fractions of the image.
        centers_by_k: k -> (k, 2) k-means centres as fractions of the image.
        k: the initial k (a key of ``centers_by_k``).
        grid: cells per side; the sliders are in grid cells, from 0.1 to ``grid``.
        max_points: most boxes drawn.
        seed: seed of the drawn sample.

    Returns:
        A VBox(HBox(k slider, mean-IoU line), VBox of one HBox(w, h) per anchor, output).
    """
    boxes = np.asarray(wh, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 2 or len(boxes) == 0 or (boxes <= 0).any():
        raise ValueError(f"Expected wh of shape (n, 2) with positive widths and heights, got {boxes.shape}.")
    choices = sorted(centers_by_k)
    if k not in choices:
        raise ValueError(f"k={k} is not a key of centers_by_k (keys: {choices}).")
    for key in choices:
        shape = np.shape(centers_by_k[key])
        if shape != (key, 2):
            raise ValueError(f"centers_by_k[{key}] must have shape ({key}, 2), got {shape}.")
    k_slider = W.SelectionSlider(options=choices, value=k, description="k", continuous_update=False,
                                 layout=W.Layout(width="320px"))
    score = W.HTML()
    rows = W.VBox()
    out = W.Output()

    def anchors() -> np.ndarray:
        return np.array([[row.children[0].value, row.children[1].value] for row in rows.children]) / grid

    def redraw(_=None) -> None:
        current = anchors()
        ours = 1.0 - _iou_distance(boxes, current).min(axis=1).mean()
        fitted = 1.0 - _iou_distance(boxes, np.asarray(centers_by_k[k_slider.value])).min(axis=1).mean()
        score.value = (f"mean IoU <b>{100 * ours:.1f} %</b> with these anchors; "
                       f"{100 * fitted:.1f} % with the k-means centres")
        draw_into(out, lambda: viz.draw_clusters(boxes, current, grid=grid, max_points=max_points, seed=seed))

    def reset(_=None) -> None:
        new_rows = []
        for j, (w, h) in enumerate(np.asarray(centers_by_k[k_slider.value]) * grid):
            pair = [W.FloatSlider(value=float(np.clip(v, 0.1, grid)), min=0.1, max=float(grid), step=0.05,
                                  description=f"{name} {j}", continuous_update=False, readout_format=".2f")
                    for name, v in (("w", w), ("h", h))]
            for slider in pair:
                slider.observe(redraw, names="value")
            new_rows.append(W.HBox(pair))
        rows.children = new_rows
        redraw()

    k_slider.observe(reset, names="value")
    reset()
    return W.VBox([W.HBox([k_slider, score]), rows, out])
