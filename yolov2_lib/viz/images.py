"""Images and what is drawn over them: reading a photo, its grid of cells, boxes.

The layer under every other picture of the book, used by every chapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
from PIL import Image
import torch

from ..colors import class_color


def _as_float_array(values) -> np.ndarray:
    """A float64 numpy copy of a tensor (any device) or array-like."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    return np.asarray(values, dtype=float)


def _cxcywh_to_pixels(cxcywh, width: float, height: float) -> np.ndarray:
    """A normalised ``(cx, cy, w, h)`` box as ``(x1, y1, x2, y2)`` pixels of a ``width x height`` image."""
    cx, cy, w, h = _as_float_array(cxcywh)
    return np.array([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as an (H, W, 3) uint8 RGB array (grayscale and RGBA converted)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def show_image(image: np.ndarray, ax: plt.Axes | None = None, title: str | None = None) -> plt.Axes:
    """Show an (H, W, 3) image without axes ticks; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6 * image.shape[0] / image.shape[1]))
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def draw_grid(ax: plt.Axes, width: float, height: float, grid: int | tuple[int, int], **kw) -> None:
    """Draw an S x S (or rows x cols) grid over an image of the given size in pixels."""
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    style = {"color": "white", "lw": 0.8, "alpha": 0.8} | kw
    for k in range(1, cols):
        ax.axvline(k * width / cols, **style)
    for k in range(1, rows):
        ax.axhline(k * height / rows, **style)


def highlight_cells(
    ax: plt.Axes, cells: Iterable[tuple[int, int]], width: float, height: float, grid: int, **kw
) -> None:
    """Shade grid cells given as (row, col) on an S x S grid."""
    style = {"facecolor": "red", "alpha": 0.35, "edgecolor": "none"} | kw
    cw, ch = width / grid, height / grid
    for r, c in cells:
        ax.add_patch(patches.Rectangle((c * cw, r * ch), cw, ch, **style))


def draw_boxes(
    ax: plt.Axes,
    boxes: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[str] | None = None,
    colors: Sequence[str] | str | None = None,
    centres: bool = False,
    lw: float = 2.0,
    linestyle: str = "-",
) -> None:
    """Draw (x1, y1, x2, y2) pixel boxes, with optional labels and centre dots."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if colors is None:
            color = class_color(i)
        elif isinstance(colors, str):
            color = colors
        else:
            color = colors[i]
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color,
                                       lw=lw, linestyle=linestyle))
        if labels is not None:
            ax.text(x1, y1, f" {labels[i]}", color="white", fontsize=8, va="bottom",
                    bbox={"facecolor": color, "alpha": 0.8, "pad": 1, "edgecolor": "none"})
        if centres:
            ax.plot([(x1 + x2) / 2], [(y1 + y2) / 2], "o", color=color, ms=5, mec="white")
