"""Direct location prediction: where ``t_x, t_y, t_w, t_h`` put a box (chapter 5).

The box over the photo, against the anchor and against the unconstrained
offsets of a region proposal network, and the paper's labelled Figure 3.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
import torch

from .. import decode
from ..colors import CLASS_COLORS
from ..errors import YOLOv2Error
from .images import _cxcywh_to_pixels, draw_boxes, draw_grid, highlight_cells, show_image


def draw_location(
    ax: plt.Axes,
    image: np.ndarray,
    t: Sequence[float],
    cell: tuple[int, int],
    anchor: Sequence[float],
    *,
    grid: int = 13,
    unconstrained: bool = False,
    margin: float = 0.0,
) -> dict[str, np.ndarray]:
    """Draw where ``t = (t_x, t_y, t_w, t_h)`` puts the box of one cell and anchor.

    Over the image and its ``grid x grid`` cells (the chosen cell shaded): the anchor
    itself, i.e. ``t = 0`` (dotted white); YOLO v2's box from
    :func:`yolov2_lib.decode.decode_boxes` (solid, its centre a dot); with
    ``unconstrained`` also the same ``t`` read as Faster R-CNN's region proposal offsets,
    ``x = x_a + t_x w_a`` (dashed, its centre a cross), whose centre can leave the cell:
    :func:`yolov2_lib.decode.decode_boxes` with ``location="offset"``.

    Args:
        ax: the axes to draw in.
        image: (h, w, 3) image the grid covers.
        t: the four raw numbers.
        cell: (row, col) of the predicting cell.
        anchor: (p_w, p_h) in grid cells.
        grid: cells per side.
        unconstrained: also draw the RPN-style reading of ``t``.
        margin: show this fraction of the image size around it (boxes may leave the image).

    Returns:
        ``{"prior", "yolo"[, "rpn"]}``: (4,) pixel ``(x1, y1, x2, y2)`` boxes.
    """
    if len(t) != 4:
        raise YOLOv2Error(f"Expected t = (t_x, t_y, t_w, t_h), got {t!r}.")
    row, col = cell
    if not (0 <= row < grid and 0 <= col < grid):
        raise YOLOv2Error(f"cell {cell} outside the {grid} x {grid} grid.")
    height, width = image.shape[:2]
    anchors = torch.tensor([list(anchor)], dtype=torch.float64)  # (1, 2)
    raw = torch.zeros(grid, grid, 1, 4, dtype=torch.float64)
    prior = decode.decode_boxes(raw, anchors)[row, col, 0]
    raw[row, col, 0] = torch.tensor([float(v) for v in t], dtype=torch.float64)
    yolo = decode.decode_boxes(raw, anchors)[row, col, 0]
    out = {"prior": _cxcywh_to_pixels(prior, width, height), "yolo": _cxcywh_to_pixels(yolo, width, height)}
    show_image(image, ax)
    draw_grid(ax, width, height, grid)
    highlight_cells(ax, [(row, col)], width, height, grid)
    draw_boxes(ax, [out["prior"]], colors=CLASS_COLORS[3], lw=1.5, linestyle=":")
    draw_boxes(ax, [out["yolo"]], colors=CLASS_COLORS[1], centres=True, lw=2.5)
    handles = [patches.Patch(facecolor="none", edgecolor=CLASS_COLORS[3], linestyle=":", label="anchor (t = 0)"),
               patches.Patch(facecolor="none", edgecolor=CLASS_COLORS[1], label="YOLO v2: sigmoid offset")]
    if unconstrained:
        rpn = decode.decode_boxes(raw, anchors, location="offset")[row, col, 0]  # (c_x + 0.5 + t_x p_w) / W
        out["rpn"] = _cxcywh_to_pixels(rpn, width, height)
        draw_boxes(ax, [out["rpn"]], colors=CLASS_COLORS[5], lw=2.0, linestyle="--")
        ax.plot([rpn[0] * width], [rpn[1] * height], "X", color=CLASS_COLORS[5], ms=9, mec="white")
        handles.append(patches.Patch(facecolor="none", edgecolor=CLASS_COLORS[5], linestyle="--",
                                     label="unconstrained: x_a + t_x w_a"))
    ax.set_xlim(-margin * width, (1 + margin) * width)
    ax.set_ylim((1 + margin) * height, -margin * height)
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.85)
    return out


def draw_direct_location(
    ax: plt.Axes,
    t: Sequence[float] = (0.5, 0.3, 0.35, 0.3),
    cell: tuple[int, int] = (2, 2),
    anchor: Sequence[float] = (2.4, 2.2),
    *,
    cells: tuple[int, int] = (5, 6),
) -> dict[str, np.ndarray]:
    """The labelled diagram of direct location prediction (the paper's Figure 3), in grid cells.

    A few cells of the grid from its top-left corner; the predicting cell at column
    ``c_x`` and row ``c_y`` (shaded), reached by arrows labelled ``c_x`` and ``c_y``;
    the prior (dashed, ``p_w x p_h``, centred in the cell); the predicted box (solid,
    ``b_w x b_h``) whose centre sits ``sigma(t_x)``, ``sigma(t_y)`` from the cell's corner,
    with the formulas beside it. Chapter 5 draws it next to its sliders.

    Args:
        ax: where to draw.
        t: ``(t_x, t_y, t_w, t_h)``.
        cell: ``(c_y, c_x)``, the row and column of the predicting cell.
        anchor: ``(p_w, p_h)`` in grid cells.
        cells: ``(rows, cols)`` of the grid shown.

    Returns:
        ``{"cell", "prior", "box"}``: (4,) ``(x1, y1, x2, y2)`` in grid cells, the box as
        :func:`yolov2_lib.decode.decode_boxes` gives it (times the grid size).
    """
    if len(t) != 4:
        raise YOLOv2Error(f"Expected t = (t_x, t_y, t_w, t_h), got {t!r}.")
    rows, cols = cells
    c_y, c_x = cell
    if not (0 <= c_y < rows and 0 <= c_x < cols):
        raise YOLOv2Error(f"cell {cell} outside the {rows} x {cols} cells shown.")
    p_w, p_h = float(anchor[0]), float(anchor[1])
    raw = torch.zeros(rows, cols, 1, 4, dtype=torch.float64)
    raw[c_y, c_x, 0] = torch.tensor([float(v) for v in t], dtype=torch.float64)
    b = decode.decode_boxes(raw, torch.tensor([[p_w, p_h]], dtype=torch.float64))[c_y, c_x, 0]
    bx, by, bw, bh = (b * torch.tensor([cols, rows, cols, rows], dtype=torch.float64)).tolist()  # grid cells
    out = {"cell": np.array([c_x, c_y, c_x + 1, c_y + 1], dtype=float),
           "prior": np.array([c_x + 0.5 - p_w / 2, c_y + 0.5 - p_h / 2, c_x + 0.5 + p_w / 2, c_y + 0.5 + p_h / 2]),
           "box": np.array([bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2])}
    for k in range(cols + 1):
        ax.plot([k, k], [0, rows], color="0.75", lw=0.8, zorder=0)
    for k in range(rows + 1):
        ax.plot([0, cols], [k, k], color="0.75", lw=0.8, zorder=0)
    ax.add_patch(patches.Rectangle((c_x, c_y), 1, 1, facecolor=CLASS_COLORS[0], alpha=0.3, edgecolor="none"))
    x1, y1, x2, y2 = out["prior"]
    ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="0.35", lw=1.5,
                                   linestyle="--", label="prior"))
    x1, y1, x2, y2 = out["box"]
    ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=CLASS_COLORS[4], lw=2.5,
                                   label="predicted box"))
    ax.plot([bx], [by], "o", color=CLASS_COLORS[4], ms=6)
    arrow = {"arrowstyle": "->", "lw": 1.3, "color": "black"}
    ax.annotate("", (c_x, -0.15), (0, -0.15), arrowprops=arrow)
    ax.text(c_x / 2, -0.25, "$c_x$", ha="center", va="bottom", fontsize=12)
    ax.annotate("", (-0.15, c_y), (-0.15, 0), arrowprops=arrow)
    ax.text(-0.25, c_y / 2, "$c_y$", ha="right", va="center", fontsize=12)
    red = dict(arrow, color=CLASS_COLORS[5])
    ax.annotate("", (bx, c_y), (c_x, c_y), arrowprops=red)
    ax.text((c_x + bx) / 2, c_y - 0.05, r"$\sigma(t_x)$", ha="center", va="bottom", fontsize=11,
            color=CLASS_COLORS[5])
    ax.annotate("", (c_x, by), (c_x, c_y), arrowprops=red)
    ax.text(c_x - 0.05, (c_y + by) / 2, r"$\sigma(t_y)$", ha="right", va="center", fontsize=11,
            color=CLASS_COLORS[5])
    blue = dict(arrow, arrowstyle="<->", color=CLASS_COLORS[4])
    ax.annotate("", (x2, y2 + 0.12), (x1, y2 + 0.12), arrowprops=blue)
    ax.text(bx, y2 + 0.18, "$b_w$", ha="center", va="top", fontsize=12, color=CLASS_COLORS[4])
    ax.annotate("", (x2 + 0.12, y2), (x2 + 0.12, y1), arrowprops=blue)
    ax.text(x2 + 0.18, by, "$b_h$", ha="left", va="center", fontsize=12, color=CLASS_COLORS[4])
    px1, py1, px2, _ = out["prior"]
    ax.text((px1 + px2) / 2, py1 + 0.05, "$p_w$", ha="center", va="top", fontsize=11, color="0.35")
    ax.text(px1 + 0.05, c_y + 1.1, "$p_h$", ha="left", va="center", fontsize=11, color="0.35")
    formulas = (r"$b_x = \sigma(t_x) + c_x$" "\n" r"$b_y = \sigma(t_y) + c_y$" "\n"
                r"$b_w = p_w\,e^{t_w}$" "\n" r"$b_h = p_h\,e^{t_h}$")
    ax.text(cols + 0.3, 0.2, formulas, ha="left", va="top", fontsize=12, linespacing=1.8)
    ax.set_xlim(-0.8, cols + 2.6)
    ax.set_ylim(rows + 0.5, -0.7)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return out
