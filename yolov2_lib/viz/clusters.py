"""Anchor boxes by k-means: box shapes, their clusters and the anchors (chapter 3)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches

from ..anchors import iou_distance as _iou_distance
from ..errors import YOLOv2Error
from .images import _as_float_array


def cluster_colors(k: int) -> list:
    """k distinct colours (matplotlib's tab10, cycled beyond 10)."""
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(k)]


def draw_anchor_shapes(
    ax: plt.Axes,
    anchors,
    colors: Sequence | str | None = None,
    lw: float = 2.0,
    linestyle: str = "-",
    label: str | None = None,
) -> None:
    """Draw ``(w, h)`` shapes as rectangles sharing one centre, as in the paper's Figure 2.

    The axes stand for the image: a unit square, ``(w, h)`` are fractions of it and
    every rectangle is centred at (0.5, 0.5), so only the shapes compare.

    Args:
        ax: the axes (made square, ticks removed).
        anchors: (k, 2) widths and heights as fractions of the image (tensor or array).
        colors: one colour, k colours, or None for distinct colours.
        lw: line width.
        linestyle: line style.
        label: legend label, given to the first rectangle.
    """
    wh = _as_float_array(anchors)
    if wh.ndim != 2 or wh.shape[1] != 2 or len(wh) == 0 or (wh <= 0).any():
        raise YOLOv2Error(f"Expected anchors of shape (k, 2) with positive widths and heights, got {wh.shape}.")
    k = len(wh)
    if colors is None:
        colors = cluster_colors(k)
    elif isinstance(colors, str):
        colors = [colors] * k
    elif len(colors) != k:
        raise YOLOv2Error(f"Expected {k} colours for {k} anchors, got {len(colors)}.")
    for i, ((w, h), color) in enumerate(zip(wh, colors)):
        ax.add_patch(patches.Rectangle((0.5 - w / 2, 0.5 - h / 2), w, h, fill=False, edgecolor=color, lw=lw,
                                       linestyle=linestyle, label=label if i == 0 else None))
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def cluster_sample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Indices of the boxes :func:`draw_clusters` draws: a seeded sample of at most ``max_points`` of ``n``
    (the anchor editor of :mod:`yolov2_lib.explorers` computes on the same sample)."""
    return np.random.RandomState(seed).permutation(n)[:max_points]


def draw_clusters(
    wh,
    centers,
    grid: int = 13,
    max_points: int = 4000,
    seed: int = 0,
    title: str | None = None,
) -> plt.Figure:
    """Boxes in the ``(w, h)`` plane coloured by their anchor, beside the anchors' shapes.

    Each box goes to the anchor of highest shape IoU (the k-means assignment with
    ``d = 1 - IoU``). The mean best IoU over *all* boxes is in the title; only a
    seeded sample of ``max_points`` boxes is drawn.

    Args:
        wh: (n, 2) box widths and heights as fractions of the image.
        centers: (k, 2) anchors as fractions of the image.
        grid: cells per side, to label the anchors in grid cells.
        max_points: most boxes drawn.
        seed: seed of the sample.
        title: the figure's title (default: k and the mean IoU).

    Returns:
        The figure (two axes).
    """
    boxes, anchors = _as_float_array(wh), _as_float_array(centers)
    for name, arr in (("wh", boxes), ("centers", anchors)):
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0 or (arr <= 0).any():
            raise YOLOv2Error(f"Expected {name} of shape (n, 2) with positive widths and heights, got {arr.shape}.")
    distance = _iou_distance(boxes, anchors)  # (n, k)
    labels, mean_iou = distance.argmin(axis=1), 1.0 - float(distance.min(axis=1).mean())
    shown = cluster_sample(len(boxes), max_points, seed)
    colors = cluster_colors(len(anchors))
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 4.0), gridspec_kw={"width_ratios": [1.25, 1]})
    left.scatter(boxes[shown, 0], boxes[shown, 1], s=4, c=[colors[j] for j in labels[shown]], alpha=0.6, lw=0)
    left.scatter(anchors[:, 0], anchors[:, 1], s=120, c=colors, marker="X", edgecolors="black", linewidths=1.2,
                 zorder=3)
    left.set(xlim=(0, 1), ylim=(0, 1), xlabel="box width / image width", ylabel="box height / image height",
             title=f"{len(shown):,} of {len(boxes):,} boxes, by anchor")
    left.set_aspect("equal")
    left.grid(alpha=0.3)
    draw_anchor_shapes(right, anchors, colors=colors)
    right.set_title("grid cells: " + ", ".join(f"{w * grid:.1f}x{h * grid:.1f}" for w, h in anchors)
                    if len(anchors) <= 5 else f"{len(anchors)} anchors, centred together", fontsize=8)
    fig.suptitle(title or f"k = {len(anchors)}: mean IoU {100 * mean_iou:.1f} %")
    fig.tight_layout()
    return fig
