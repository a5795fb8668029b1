"""The loss: which anchor answers for which object, and where each term pulls (chapter 6).

The positive anchors of the RPN's, SSD's and YOLO v2's labelling rules, the
cell and anchor responsible for each object, and per-cell maps over the photo.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
import torch

from ..colors import class_color
from ..errors import YOLOv2Error
from .head import overlay_grid_values
from .images import _as_float_array, _cxcywh_to_pixels, draw_boxes, draw_grid, show_image


def draw_anchor_labels(
    ax: plt.Axes,
    image: np.ndarray,
    anchors: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    truths: np.ndarray | torch.Tensor,
    title: str | None = None,
) -> None:
    """The positive anchors of one labelling rule over the photo, with the objects.

    Objects dashed white; each positive anchor solid, in the colour of the object it
    overlaps most. The title counts positive, ignored and negative anchors. Chapter 6
    (the loss) draws the RPN's, SSD's and YOLO v2's rules side by side.

    Args:
        ax: where to draw.
        image: (H, W, 3) picture.
        anchors: (N, 4) anchor boxes in pixels (``xyxy``).
        labels: (N,) 1 positive, 0 negative, -1 ignored.
        truths: (M, 4) object boxes in pixels.
        title: the rule's name, put before the counts.
    """
    boxes = _as_float_array(anchors).reshape(-1, 4)
    lab = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    gt = _as_float_array(truths).reshape(-1, 4)
    if len(lab) != len(boxes):
        raise YOLOv2Error(f"Expected one label per anchor: {len(boxes)} anchors, {len(lab)} labels.")
    show_image(image, ax)
    draw_boxes(ax, gt, None, "white", lw=1.5, linestyle="--")
    pos = np.flatnonzero(lab == 1)
    if len(pos) and len(gt):
        x1 = np.maximum(boxes[pos, None, 0], gt[None, :, 0])
        y1 = np.maximum(boxes[pos, None, 1], gt[None, :, 1])
        x2 = np.minimum(boxes[pos, None, 2], gt[None, :, 2])
        y2 = np.minimum(boxes[pos, None, 3], gt[None, :, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        iou = inter / (area(boxes[pos])[:, None] + area(gt)[None, :] - inter)
        owner = iou.argmax(1)
    else:
        owner = np.zeros(len(pos), dtype=int)
    draw_boxes(ax, boxes[pos], None, [class_color(o) for o in owner], lw=1.6)
    counts = f"{len(pos)} positive, {int((lab == -1).sum())} ignored, {int((lab == 0).sum())} negative"
    ax.set_title(f"{title}\n{counts}" if title else counts, fontsize=9)


def draw_assignment(
    ax: plt.Axes,
    image: np.ndarray,
    truth,
    cells,
    anchor_wh,
    grid: int | tuple[int, int],
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """Draw which anchor answers for each ground truth: its cell and the anchor's box there.

    Over the image and its grid: each truth box (solid, its centre a dot), the cell
    holding its centre (shaded) and the responsible anchor drawn at rest in that
    cell, i.e. centred in it with the anchor's size (dashed, same colour).

    Args:
        ax: the axes to draw in.
        image: (h, w, 3) image the grid covers.
        truth: (N, 4) normalised ``cxcywh`` truth boxes.
        cells: (N, 2) ``(row, col)`` of each truth's cell.
        anchor_wh: (N, 2) size ``(p_w, p_h)`` in grid cells of each truth's anchor.
        grid: cells per side, or ``(rows, cols)``.
        labels: N labels for the truth boxes.

    Returns:
        (N, 4) pixel ``(x1, y1, x2, y2)`` of the anchor boxes drawn.
    """
    truth, cells, anchor_wh = _as_float_array(truth), _as_float_array(cells), _as_float_array(anchor_wh)
    n = truth.shape[0] if truth.ndim == 2 else -1
    if truth.shape != (n, 4) or cells.shape != (n, 2) or anchor_wh.shape != (n, 2):
        raise YOLOv2Error(f"Expected truth (N, 4), cells (N, 2) and anchor_wh (N, 2), got "
                         f"{truth.shape}, {cells.shape} and {anchor_wh.shape}.")
    if labels is not None and len(labels) != n:
        raise YOLOv2Error(f"Expected {n} labels (one per truth box), got {len(labels)}.")
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    height, width = image.shape[:2]
    cw, ch = width / cols, height / rows
    colors = [class_color(k) for k in range(n)]
    show_image(image, ax)
    draw_grid(ax, width, height, (rows, cols))
    for r, c in cells:
        ax.add_patch(patches.Rectangle((c * cw, r * ch), cw, ch, facecolor="red", alpha=0.3, edgecolor="none"))
    draw_boxes(ax, [_cxcywh_to_pixels(b, width, height) for b in truth], labels, colors, centres=True)
    centre_x, centre_y = (cells[:, 1] + 0.5) * cw, (cells[:, 0] + 0.5) * ch  # (N,) pixels
    prior = np.stack([centre_x - anchor_wh[:, 0] * cw / 2, centre_y - anchor_wh[:, 1] * ch / 2,
                      centre_x + anchor_wh[:, 0] * cw / 2, centre_y + anchor_wh[:, 1] * ch / 2], axis=1)
    draw_boxes(ax, prior, colors=colors, lw=1.5, linestyle="--")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    return prior


def draw_cell_maps(
    image: np.ndarray,
    maps: dict[str, object],
    boxes=None,
    ncols: int = 3,
    cmap: str = "magma",
) -> plt.Figure:
    """One panel per named (H, W) map of per-cell values, painted over the image.

    Each panel has its own colour scale, from the map's minimum to its maximum, and a
    colour bar: the maps may differ by orders of magnitude (the loss terms' gradients
    do), and a map that is nearly uniform still shows where it is lower.

    Args:
        image: (h, w, 3) image the grid covers.
        maps: title -> (H, W) non-negative values (tensor or array), one panel each.
        boxes: optional (N, 4) pixel ``(x1, y1, x2, y2)`` boxes drawn on every panel.
        ncols: panels per row.
        cmap: matplotlib colour map.

    Returns:
        The figure.
    """
    if not maps:
        raise YOLOv2Error("Expected at least one map to draw.")
    arrays = {name: _as_float_array(m) for name, m in maps.items()}
    for name, arr in arrays.items():
        if arr.ndim != 2:
            raise YOLOv2Error(f"Map {name!r}: expected per-cell values of shape (H, W), got {arr.shape}.")
        if (arr < 0).any():
            raise YOLOv2Error(f"Map {name!r}: expected non-negative values, got a minimum of {arr.min()}.")
    height, width = image.shape[:2]
    nrows = -(-len(arrays) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows * height / width + 0.4), squeeze=False)
    for ax in axes.flat[len(arrays):]:
        ax.axis("off")
    for ax, (name, arr) in zip(axes.flat, arrays.items()):
        show_image(image, ax, name)
        draw_grid(ax, width, height, arr.shape, lw=0.4, alpha=0.5)
        low, high = float(arr.min()), float(arr.max())
        art = overlay_grid_values(ax, arr, width, height, cmap=cmap, alpha=0.75, vmin=low,
                                  vmax=high if high > low else low + 1.0)
        if boxes is not None:
            draw_boxes(ax, boxes, colors="white", lw=1.0)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        fig.colorbar(art, ax=ax, fraction=0.046, pad=0.02)
    fig.tight_layout()
    return fig
