"""Pictures for the book: images, grids, boxes and anchors drawn with matplotlib.

Only this module and ``widgets`` import matplotlib; everything below the
face of the library stays free of it. Used by every chapter.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
from matplotlib.colors import to_rgb
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from PIL import Image
import torch

from . import decode, layout
from .anchors import iou_distance as _iou_distance
from .evaluate import ImageMatch, VOCResult
from .passthrough import reorg_source

__all__ = [
    "load_rgb",
    "show_image",
    "draw_grid",
    "draw_boxes",
    "highlight_cells",
    "CLASS_COLORS",
    "FIELD_COLORS",
    "channel_labels",
    "draw_channel_grid",
    "draw_head_tensor",
    "overlay_grid_values",
    "describe_anchor",
    "draw_head_cell",
    "draw_anchor_block",
    "draw_location",
    "draw_direct_location",
    "draw_nms_before_after",
    "draw_nms_step",
    "draw_anchor_labels",
    "draw_assignment",
    "draw_cell_maps",
    "layer_table_html",
    "draw_network",
    "draw_prediction_grids",
    "plot_detector_comparison",
    "draw_reorg_planes",
    "draw_reorg_orders",
    "draw_reorg_channel",
    "draw_reorg_cell",
    "draw_anchor_shapes",
    "cluster_sample",
    "draw_clusters",
    "plot_history",
    "draw_detections",
    "plot_speed_accuracy",
    "plot_scale_experiment",
    "OUTCOME_COLORS",
    "draw_iou",
    "draw_matching",
    "plot_pr_curves",
    "draw_ap_rules",
]

# A colour-blind friendly cycle (Okabe-Ito), used for classes and anchors alike.
CLASS_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")


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
            color = CLASS_COLORS[i % len(CLASS_COLORS)]
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


# ---------------------------------------------------------------- the head's channels (chapter 4)

#: Colours of the kinds of channel in drawings of the head: centre, size, objectness, class scores.
FIELD_COLORS: dict[str, str] = {"xy": "#E69F00", "wh": "#56B4E9", "obj": "#009E73", "class": "#CC79A7"}
# Short labels of layout.FIELDS ("conf" is YOLO v1's name for objectness); any other label is a class.
_FIELD_KIND = {"x": "xy", "y": "xy", "w": "wh", "h": "wh", "obj": "obj", "conf": "obj"}


def _as_float_array(values) -> np.ndarray:
    """A float64 numpy copy of a tensor (any device) or array-like."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    return np.asarray(values, dtype=float)


def channel_labels(num_anchors: int, num_classes: int) -> list[list[str]]:
    """Short labels of the head's ``A * (5 + C)`` channels, one row per anchor, in darknet order.

    Row ``a`` is ``x, y, w, h, obj`` and then the class numbers ``0 .. C-1``, so the
    label in row ``a``, column ``e`` names channel ``a * (5 + C) + e``
    (:func:`yolov2_lib.layout.channel_index`).

    Args:
        num_anchors: A.
        num_classes: C.

    Returns:
        A rows of ``5 + C`` labels.
    """
    layout.num_channels(num_anchors, num_classes)  # raises on bad counts
    block = ["x", "y", "w", "h", "obj"] + [str(k) for k in range(num_classes)]
    return [list(block) for _ in range(num_anchors)]


def draw_channel_grid(
    ax: plt.Axes,
    labels: Sequence[Sequence[str]],
    *,
    highlight: int | Iterable[int] | None = None,
    values: Sequence[Sequence[float]] | np.ndarray | None = None,
    start: int = 0,
    row_names: Sequence[str] | None = None,
    fontsize: float = 6.0,
) -> None:
    """Draw channels as rows of labelled squares, coloured by kind (:data:`FIELD_COLORS`).

    Square ``(r, k)`` is channel ``start + r * n + k`` with ``n = len(labels[0])``:
    reading the rows left to right, top to bottom, is reading the channels in
    memory order. Each square shows its channel number above its label (or value).

    Args:
        ax: the axes to draw in.
        labels: rows of equal length; ``"x"``, ``"y"``, ``"w"``, ``"h"``, ``"obj"``
            (or ``"conf"``) are box fields, anything else is a class.
        highlight: rows drawn strongly (an int or several); ``None`` draws all strongly.
        values: numbers shaped like ``labels``, written instead of the labels.
        start: the channel number of the first square.
        row_names: a name written left of each row.
        fontsize: size of the labels.
    """
    n_rows = len(labels)
    n = len(labels[0]) if n_rows else 0
    if n_rows == 0 or n == 0 or any(len(row) != n for row in labels):
        lengths = [len(r) for r in labels]
        raise ValueError(f"Expected labels as non-empty rows of equal length, got row lengths {lengths}.")
    if highlight is None:
        strong = set(range(n_rows))
    else:
        strong = {highlight} if isinstance(highlight, (int, np.integer)) else set(highlight)
        bad = sorted(r for r in strong if not 0 <= r < n_rows)
        if bad:
            raise ValueError(f"highlight rows {bad} out of range for {n_rows} rows.")
    if values is not None:
        values = _as_float_array(values)
        if values.shape != (n_rows, n):
            raise ValueError(f"Expected values of shape {(n_rows, n)} like labels, got {values.shape}.")
    if row_names is not None and len(row_names) != n_rows:
        raise ValueError(f"Expected {n_rows} row_names, got {len(row_names)}.")
    for r, row in enumerate(labels):
        on = r in strong
        for k, label in enumerate(row):
            color = FIELD_COLORS[_FIELD_KIND.get(label, "class")]
            ax.add_patch(patches.Rectangle((k, r), 1, 1, facecolor=color, alpha=1.0 if on else 0.15,
                                           edgecolor="white", lw=0.8))
            text = label if values is None else f"{values[r, k]:.1f}"
            ink = "black" if on else "0.65"
            ax.text(k + 0.5, r + 0.3, str(start + r * n + k), ha="center", va="center",
                    fontsize=fontsize * 0.8, color=ink)
            ax.text(k + 0.5, r + 0.7, text, ha="center", va="center", fontsize=fontsize, color=ink,
                    fontweight="bold" if on else "normal")
        if row_names is not None:
            ax.text(-0.2, r + 0.5, row_names[r], ha="right", va="center", fontsize=fontsize + 2,
                    color="black" if on else "0.65")
    ax.set_xlim(0, n)
    ax.set_ylim(n_rows, 0)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_head_tensor(
    ax: plt.Axes,
    raw,
    *,
    cell: tuple[int, int] | None = None,
    channels: Iterable[int] | None = None,
    block: int | None = None,
    vmax: float | None = None,
):
    """Draw one image's raw head tensor unrolled: one picture row per cell, one column per channel.

    Cell ``(row, col)`` of an ``H x W`` grid is picture row ``row * W + col``.

    Args:
        ax: the axes to draw in.
        raw: (A*(5+C), H, W) head output of one image (tensor or array).
        cell: (row, col) of a cell whose picture row is outlined.
        channels: channels whose span (smallest to largest) is outlined.
        block: a thin line every ``block`` channels (``5 + C`` separates the anchors).
        vmax: the colour scale is ``[-vmax, vmax]`` (default: the largest absolute value).

    Returns:
        The image artist (for a colour bar).
    """
    arr = _as_float_array(raw)
    if arr.ndim != 3:
        raise ValueError(f"Expected raw of shape (A*(5+C), H, W) for one image, got {arr.shape}.")
    C, H, W = arr.shape
    pic = arr.reshape(C, H * W).T  # (H*W, C): picture row r*W + c is cell (r, c)
    if vmax is None:
        vmax = float(np.abs(pic).max()) or 1.0
    im = ax.imshow(pic, aspect="auto", cmap="coolwarm", vmin=-vmax, vmax=vmax, interpolation="nearest",
                   extent=(-0.5, C - 0.5, H * W - 0.5, -0.5))
    if block:
        for k in range(block, C, block):
            ax.axvline(k - 0.5, color="0.25", lw=0.6)
    y = lo = hi = None
    if cell is not None:
        r, c = cell
        if not (0 <= r < H and 0 <= c < W):
            raise ValueError(f"cell {cell} outside the {H} x {W} grid.")
        y = r * W + c
        ax.add_patch(patches.Rectangle((-0.5, y - 0.5), C, 1, fill=False, edgecolor="black", lw=1.0))
        ax.annotate("", xy=(-0.5, y), xytext=(-0.09 * C, y), annotation_clip=False,
                    arrowprops={"arrowstyle": "->", "color": "black"})
    if channels is not None:
        chs = list(channels)
        if not chs or min(chs) < 0 or max(chs) >= C:
            raise ValueError(f"channels must be non-empty and inside [0, {C}), got {chs}.")
        lo, hi = min(chs), max(chs)
        ax.add_patch(patches.Rectangle((lo - 0.5, -0.5), hi - lo + 1, H * W, fill=False, edgecolor="black", lw=1.2))
    if y is not None and lo is not None:
        ax.add_patch(patches.Rectangle((lo - 0.5, y - 2.5), hi - lo + 1, 5, fill=False, edgecolor="#F0E442", lw=2.5))
    ax.set_xlabel("channel")
    ax.set_ylabel("cell (row * W + col)")
    return im


def overlay_grid_values(
    ax: plt.Axes, values, width: float, height: float, *, cmap: str = "viridis", alpha: float = 0.55,
    vmin: float = 0.0, vmax: float = 1.0,
):
    """Paint an (H, W) array of per-cell values over an image of ``width x height`` pixels.

    Returns:
        The image artist (for a colour bar).
    """
    arr = _as_float_array(values)
    if arr.ndim != 2:
        raise ValueError(f"Expected per-cell values of shape (H, W), got {arr.shape}.")
    return ax.imshow(arr, extent=(0, width, height, 0), cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax,
                     interpolation="nearest")


def describe_anchor(
    raw: torch.Tensor, anchors: torch.Tensor, row: int, col: int, anchor: int, class_names: Sequence[str]
) -> list[tuple[int, str, float, float, str]]:
    """The ``5 + C`` numbers one anchor of one cell predicts: where they sit and what they mean.

    Args:
        raw: (A*(5+C), H, W) head output of one image.
        anchors: (A, 2) anchors in grid cells.
        row: the cell's row.
        col: the cell's column.
        anchor: the anchor's index.
        class_names: the C class names.

    Returns:
        One ``(channel, name, raw value, decoded value, meaning)`` per number, in channel order:
        ``sigmoid(t_x)``, ``sigmoid(t_y)`` (offsets in the cell), ``p_w exp(t_w)``,
        ``p_h exp(t_h)`` (size in grid cells), ``sigmoid(t_o)`` and the softmax over classes.
    """
    if not isinstance(raw, torch.Tensor) or raw.dim() != 3:
        raise ValueError(f"Expected raw of shape (A*(5+C), H, W) for one image, got {getattr(raw, 'shape', raw)}.")
    A, C = anchors.shape[0], len(class_names)
    if raw.shape[0] != layout.num_channels(A, C):
        raise ValueError(f"raw has {raw.shape[0]} channels, but {A} anchors and {C} class names "
                         f"need {layout.num_channels(A, C)}.")
    _, H, W = raw.shape
    if not (0 <= row < H and 0 <= col < W and 0 <= anchor < A):
        raise ValueError(f"(row, col, anchor) = {(row, col, anchor)} outside the {H} x {W} grid of {A} anchors.")
    t = layout.head_view(raw[None], A)[0, row, col, anchor].detach().cpu().double()  # (5+C,)
    p_w, p_h = anchors[anchor].tolist()
    probs = torch.softmax(t[5:], dim=0)
    decoded = [torch.sigmoid(t[0]), torch.sigmoid(t[1]), p_w * torch.exp(t[2]), p_h * torch.exp(t[3]),
               torch.sigmoid(t[4])] + list(probs)
    meaning = ["sigmoid: x offset in the cell", "sigmoid: y offset in the cell", "p_w exp(t_w): width, cells",
               "p_h exp(t_h): height, cells", "sigmoid: P(object)"]
    meaning += ["softmax: P(class | object)"] * C
    names = list(layout.FIELDS) + list(class_names)
    return [(layout.channel_index(anchor, e, C), names[e], float(t[e]), float(decoded[e]), meaning[e])
            for e in range(5 + C)]


def _cxcywh_to_pixels(cxcywh, width: float, height: float) -> np.ndarray:
    cx, cy, w, h = _as_float_array(cxcywh)
    return np.array([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])


def draw_head_cell(
    raw: torch.Tensor, anchors: torch.Tensor, class_names: Sequence[str], image: np.ndarray,
    row: int, col: int, anchor: int,
) -> plt.Figure:
    """One cell and anchor of the head: its box on the image, its place in the tensor, its numbers.

    Left: the image with the grid, the cell shaded, the anchor's prior (dotted) and the
    box its numbers decode to. Right: the tensor unrolled (:func:`draw_head_tensor`) with
    the cell's row and the anchor's ``5 + C`` channels outlined. Below: the raw numbers.

    Args:
        raw: (A*(5+C), H, W) head output of one image.
        anchors: (A, 2) anchors in grid cells.
        class_names: the C class names.
        image: (h, w, 3) image the grid covers.
        row: the cell's row.
        col: the cell's column.
        anchor: the anchor's index.

    Returns:
        The figure.
    """
    rows = describe_anchor(raw, anchors, row, col, anchor, class_names)
    C = len(class_names)
    _, H, W = raw.shape
    height, width = image.shape[:2]
    fig = plt.figure(figsize=(11, 7))
    grid = fig.add_gridspec(2, 2, height_ratios=(1.25, 1), width_ratios=(1.2, 1))
    ax_img, ax_t, ax_bar = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    show_image(image, ax_img, f"cell (row {row}, col {col}), anchor {anchor}")
    draw_grid(ax_img, width, height, (H, W))
    ax_img.add_patch(patches.Rectangle((col * width / W, row * height / H), width / W, height / H,
                                       facecolor="red", alpha=0.35, edgecolor="none"))
    box = decode.decode(raw[None].detach().cpu().double(), anchors.cpu().double(), C).boxes[0, row, col, anchor]
    p_w, p_h = anchors[anchor].tolist()
    prior = [(col + 0.5) / W, (row + 0.5) / H, p_w / W, p_h / H]  # t = 0: the anchor, centred in the cell
    draw_boxes(ax_img, [_cxcywh_to_pixels(prior, width, height)], colors="white", lw=1.5, linestyle=":")
    draw_boxes(ax_img, [_cxcywh_to_pixels(box, width, height)], [f"decoded box, P(object) {rows[4][3]:.2f}"],
               colors=CLASS_COLORS[5], centres=True)
    ax_img.set_xlim(0, width)
    ax_img.set_ylim(height, 0)
    channels = [ch for ch, *_ in rows]
    draw_head_tensor(ax_t, raw, cell=(row, col), channels=channels, block=5 + C)
    ax_t.set_title(f"the tensor: {H * W} cells x {raw.shape[0]} channels")
    values = [v for _, _, v, _, _ in rows]
    kinds = [_FIELD_KIND.get(lab, "class") for lab in channel_labels(1, C)[0]]
    ax_bar.bar(range(5 + C), values, color=[FIELD_COLORS[k] for k in kinds])
    ax_bar.set_xticks(range(5 + C), [f"{name}\n{ch}" for ch, name, *_ in rows], rotation=90, fontsize=7)
    ax_bar.axhline(0, color="0.3", lw=0.6)
    ax_bar.set_ylabel("raw value")
    ax_bar.set_title(f"its {5 + C} numbers: channels {channels[0]} to {channels[-1]} (name, channel)")
    fig.tight_layout()
    return fig


def draw_anchor_block(raw: torch.Tensor, anchors: torch.Tensor, image: np.ndarray, anchor: int) -> plt.Figure:
    """The ``5 + C`` channels of one anchor: in the table of channels, in the tensor, over the image.

    Top: :func:`draw_channel_grid` with the anchor's row highlighted. Bottom left: the
    tensor unrolled with the anchor's channels outlined. Bottom right: the anchor's
    objectness ``sigmoid(t_o)`` in every cell over the image, and the anchor's shape
    (dotted) in the middle of the image.

    Args:
        raw: (A*(5+C), H, W) head output of one image.
        anchors: (A, 2) anchors in grid cells.
        image: (h, w, 3) image the grid covers.
        anchor: the anchor's index.

    Returns:
        The figure.
    """
    if not isinstance(raw, torch.Tensor) or raw.dim() != 3:
        raise ValueError(f"Expected raw of shape (A*(5+C), H, W) for one image, got {getattr(raw, 'shape', raw)}.")
    A = anchors.shape[0]
    if not 0 <= anchor < A:
        raise ValueError(f"anchor {anchor} out of range for {A} anchors.")
    view = layout.head_view(raw[None], A)[0].detach().cpu()  # (H, W, A, 5+C), checks the channels
    H, W, _, per_anchor = view.shape
    height, width = image.shape[:2]
    p_w, p_h = anchors[anchor].tolist()
    fig = plt.figure(figsize=(11, 6.6))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 2), width_ratios=(1, 1.15))
    ax_grid, ax_t, ax_img = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    draw_channel_grid(ax_grid, channel_labels(A, per_anchor - 5), highlight=anchor,
                      row_names=[f"anchor {a}" for a in range(A)])
    first = layout.channel_index(anchor, 0, per_anchor - 5)
    ax_grid.set_title(f"anchor {anchor}: channels {first} to {first + per_anchor - 1} "
                      "(channel number above, field below)")
    draw_head_tensor(ax_t, raw, channels=range(first, first + per_anchor), block=per_anchor)
    ax_t.set_title(f"the tensor: {H * W} cells x {raw.shape[0]} channels")
    show_image(image, ax_img, f"sigmoid(t_o) of anchor {anchor} ({p_w:.2f} x {p_h:.2f} cells)")
    draw_grid(ax_img, width, height, (H, W))
    overlay_grid_values(ax_img, torch.sigmoid(view[:, :, anchor, 4]), width, height)
    centred = [(0.5 - p_w / W / 2) * width, (0.5 - p_h / H / 2) * height,
               (0.5 + p_w / W / 2) * width, (0.5 + p_h / H / 2) * height]
    draw_boxes(ax_img, [centred], colors="white", lw=1.5, linestyle=":")
    ax_img.set_xlim(0, width)
    ax_img.set_ylim(height, 0)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- direct location prediction (chapter 5)


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
    ``x = x_a + t_x w_a`` (dashed, its centre a cross), whose centre can leave the cell.

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
        raise ValueError(f"Expected t = (t_x, t_y, t_w, t_h), got {t!r}.")
    row, col = cell
    if not (0 <= row < grid and 0 <= col < grid):
        raise ValueError(f"cell {cell} outside the {grid} x {grid} grid.")
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
        t_x, t_y, t_w, t_h = (float(v) for v in t)
        p_w, p_h = float(anchor[0]), float(anchor[1])
        rpn = torch.tensor([(col + 0.5 + t_x * p_w) / grid, (row + 0.5 + t_y * p_h) / grid,
                            p_w * np.exp(t_w) / grid, p_h * np.exp(t_h) / grid])
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
        raise ValueError(f"Expected t = (t_x, t_y, t_w, t_h), got {t!r}.")
    rows, cols = cells
    c_y, c_x = cell
    if not (0 <= c_y < rows and 0 <= c_x < cols):
        raise ValueError(f"cell {cell} outside the {rows} x {cols} cells shown.")
    p_w, p_h = float(anchor[0]), float(anchor[1])
    raw = torch.zeros(rows, cols, 1, 4, dtype=torch.float64)
    raw[c_y, c_x, 0] = torch.tensor([float(v) for v in t], dtype=torch.float64)
    b = decode.decode_boxes(raw, torch.tensor([[p_w, p_h]], dtype=torch.float64))[c_y, c_x, 0]
    bx, by, bw, bh = (b * torch.tensor([cols, rows, cols, rows], dtype=torch.float64)).tolist()  # grid cells
    sx, sy = bx - c_x, by - c_y  # sigma(t_x), sigma(t_y)
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


# ---------------------------------------------------------------- from 845 boxes to a few detections (chapter 5)


def _class_color(k: int) -> str:
    return CLASS_COLORS[int(k) % len(CLASS_COLORS)]


def draw_nms_before_after(
    image: np.ndarray,
    boxes: np.ndarray | torch.Tensor,
    scores: np.ndarray | torch.Tensor,
    classes: np.ndarray | torch.Tensor,
    kept: np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    *,
    threshold: float | None = None,
    iou_threshold: float | None = None,
) -> plt.Figure:
    """Two panels: every candidate above the threshold, then what non-maximum suppression keeps.

    Boxes are drawn in their class colour, thin on the left, with their score on
    the right. The section "From 845 boxes to a few detections" of chapter 5 uses it.

    Args:
        image: (H, W, 3) picture.
        boxes: (N, 4) candidate corners in the image's pixels.
        scores: (N,) their scores.
        classes: (N,) their classes.
        kept: (K,) indices of the candidates NMS keeps.
        class_names: names of the classes (for the legend and the labels).
        threshold: the score threshold, for the title.
        iou_threshold: the NMS IoU, for the title.

    Returns:
        The figure (its two axes hold one rectangle per candidate and per kept box).
    """
    boxes = _as_float_array(boxes).reshape(-1, 4)
    scores = _as_float_array(scores).reshape(-1)
    classes = _as_float_array(classes).reshape(-1).astype(int)
    kept = np.asarray(kept.cpu() if isinstance(kept, torch.Tensor) else kept, dtype=int).reshape(-1)
    if not (len(boxes) == len(scores) == len(classes)):
        raise ValueError(f"boxes, scores and classes differ in length: {len(boxes)}, {len(scores)}, {len(classes)}.")
    if kept.size and (kept.min() < 0 or kept.max() >= len(boxes)):
        raise ValueError(f"kept indices must lie in [0, {len(boxes)}).")
    fig, (ax_before, ax_after) = plt.subplots(1, 2, figsize=(12, 4.8))
    show_image(image, ax_before)
    show_image(image, ax_after)
    draw_boxes(ax_before, boxes, colors=[_class_color(k) for k in classes], lw=0.9)
    draw_boxes(ax_after, boxes[kept], [f"{s:.2f}" for s in scores[kept]],
               [_class_color(k) for k in classes[kept]], lw=1.8)
    rule = f"score > {threshold:g}" if threshold is not None else "above the threshold"
    ax_before.set_title(f"before NMS: {len(boxes)} (box, class) pairs with {rule}", fontsize=10)
    after = f"after class-wise NMS at IoU {iou_threshold:g}" if iou_threshold is not None else "after NMS"
    ax_after.set_title(f"{after}: {len(kept)} detections", fontsize=10)
    present = sorted(set(classes.tolist()))
    handles = [patches.Patch(facecolor="none", edgecolor=_class_color(k), label=class_names[k]) for k in present]
    if handles:
        ax_after.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    return fig


def draw_nms_step(
    ax: plt.Axes,
    image: np.ndarray,
    boxes: np.ndarray | torch.Tensor,
    scores: np.ndarray | torch.Tensor,
    suppressed_by: np.ndarray | torch.Tensor,
    iou: np.ndarray | torch.Tensor,
    winner: int,
    *,
    margin: float = 0.25,
) -> list[int]:
    """One decision of greedy NMS: a kept box (solid) and the boxes it removed (dashed).

    The title gives how many it removed and the range of their IoU with it.

    The view is zoomed on those boxes. Fed by :func:`yolov2_lib.boxes.nms_trace`; the
    section "From 845 boxes to a few detections" of chapter 5 steps through it.

    Args:
        ax: where to draw.
        image: (H, W, 3) picture.
        boxes: (N, 4) candidate corners in pixels.
        scores: (N,) their scores.
        suppressed_by: (N,) ``NMSTrace.suppressed_by``.
        iou: (N,) ``NMSTrace.iou``.
        winner: index of a kept candidate.
        margin: extra room around the boxes, as a fraction of their extent.

    Returns:
        Indices of the removed boxes, by decreasing score.
    """
    boxes = _as_float_array(boxes).reshape(-1, 4)
    scores = _as_float_array(scores).reshape(-1)
    by = np.asarray(suppressed_by.cpu() if isinstance(suppressed_by, torch.Tensor) else suppressed_by, dtype=int)
    iou = _as_float_array(iou).reshape(-1)
    if not 0 <= winner < len(boxes) or by[winner] != -1:
        raise ValueError(f"candidate {winner} is not a kept box.")
    removed = [int(i) for i in np.flatnonzero(by == winner)]
    removed.sort(key=lambda i: (-scores[i], i))
    show_image(image, ax)
    draw_boxes(ax, boxes[removed], None, CLASS_COLORS[5], lw=1.2, linestyle="--")
    draw_boxes(ax, boxes[[winner]], [f"kept {scores[winner]:.2f}"], CLASS_COLORS[2], lw=2.5)
    group = boxes[[winner] + removed]
    x1, y1 = group[:, 0].min(), group[:, 1].min()
    x2, y2 = group[:, 2].max(), group[:, 3].max()
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    height, width = image.shape[:2]
    ax.set_xlim(max(x1 - dx, 0), min(x2 + dx, width))
    ax.set_ylim(min(y2 + dy, height), max(y1 - dy, 0))
    span = f" (IoU {iou[removed].min():.2f} to {iou[removed].max():.2f})" if removed else ""
    ax.set_title(f"kept {scores[winner]:.2f}, removes {len(removed)}{span}", fontsize=9)
    return removed


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
        raise ValueError(f"Expected one label per anchor: {len(boxes)} anchors, {len(lab)} labels.")
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
    draw_boxes(ax, boxes[pos], None, [CLASS_COLORS[int(o) % len(CLASS_COLORS)] for o in owner], lw=1.6)
    counts = f"{len(pos)} positive, {int((lab == -1).sum())} ignored, {int((lab == 0).sum())} negative"
    ax.set_title(f"{title}\n{counts}" if title else counts, fontsize=9)


# ---------------------------------------------------------------- the loss (chapter 6)


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
        raise ValueError(f"Expected truth (N, 4), cells (N, 2) and anchor_wh (N, 2), got "
                         f"{truth.shape}, {cells.shape} and {anchor_wh.shape}.")
    if labels is not None and len(labels) != n:
        raise ValueError(f"Expected {n} labels (one per truth box), got {len(labels)}.")
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    height, width = image.shape[:2]
    cw, ch = width / cols, height / rows
    colors = [CLASS_COLORS[k % len(CLASS_COLORS)] for k in range(n)]
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
        raise ValueError("Expected at least one map to draw.")
    arrays = {name: _as_float_array(m) for name, m in maps.items()}
    for name, arr in arrays.items():
        if arr.ndim != 2:
            raise ValueError(f"Map {name!r}: expected per-cell values of shape (H, W), got {arr.shape}.")
        if (arr < 0).any():
            raise ValueError(f"Map {name!r}: expected non-negative values, got a minimum of {arr.min()}.")
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


# ---------------------------------------------------------------- the whole network in one picture (chapters 2, 7)

_BRANCH_COLORS = {"input": "#DDDDDD", "main": "#B9DCF2", "passthrough": "#F6CF8A", "head": "#A8DCC8"}


def _shape_text(shape: Sequence[int]) -> str:
    c, h, w = shape
    return f"{h} x {w} x {c}"


def _layers_text(layers: Sequence[int]) -> str:
    if not layers:
        return ""
    if len(layers) == 1:
        return f"layer {layers[0]}"
    return f"layers {layers[0]}-{layers[-1]}"


def draw_network(
    ax: plt.Axes,
    model,
    input_size: int | tuple[int, int] = 416,
    *,
    highlight: str | None = None,
) -> list:
    """The YOLO v2 detector as a block diagram, with the shape of every stage's output.

    The boxes are ``model.network_stages(model, input_size)``: Darknet-19's
    convolutions grouped between its max-pools (drawn on the arrows), the two
    3 x 3 convolutions on the 13 x 13 map, the passthrough branch from
    darknet layer 16 on the right (1 x 1 conv, reorg), the concatenation, the
    last 3 x 3 convolution and the 1 x 1 head. Every label is read from the
    model, so a narrower model or the 2016 variant draws its own channels.
    Chapter 2 shows the whole network; chapter 7 highlights the passthrough.

    Args:
        ax: the axes (about 10 x 9 inches suits it).
        model: a ``model.YOLOv2``.
        input_size: image side, or (height, width).
        highlight: ``"passthrough"`` to colour only the passthrough branch
            and the concatenation it joins (the rest in grey), or ``None``.

    Returns:
        The stages drawn (``model.Stage`` rows).
    """
    from .model import network_stages  # the face imports the network; the network never imports the face

    if highlight not in (None, "passthrough"):
        raise ValueError(f"highlight must be None or 'passthrough', got {highlight!r}.")
    stages = network_stages(model, input_size)
    main_w, side_w, box_h, side_x = 5.2, 3.4, 0.62, 6.6
    pos: dict[int, tuple[float, float, float]] = {}  # stage index -> (x centre, y centre, width)
    pool_after: dict[int, str] = {}
    row, last_main = 0, None
    branch = [k for k, s in enumerate(stages) if s.branch == "passthrough"]
    for k, s in enumerate(stages):
        if s.name == "max-pool":
            pool_after[last_main] = f"max-pool {s.detail}"
            continue
        if s.branch == "passthrough":
            continue
        pos[k] = (0.0, -row, main_w)
        last_main, row = k, row + 1
    # the passthrough reads the last map before the final max-pool (darknet layer 16)
    pools = [k for k, s in enumerate(stages) if s.name == "max-pool"]
    source = max(k for k in pos if k < pools[-1])
    concat = next(k for k, s in enumerate(stages) if s.name == "concat")
    concat_y = pos[concat][1]
    for j, k in enumerate(branch):  # stacked just above the concatenation
        pos[k] = (side_x, concat_y + len(branch) - j, side_w)

    def faded(k: int) -> bool:
        return highlight == "passthrough" and not (stages[k].branch == "passthrough" or k in (concat, source))

    for k, (x, y, width) in pos.items():
        s = stages[k]
        color = "#EEEEEE" if faded(k) else _BRANCH_COLORS[s.branch]
        edge = "#999999" if faded(k) else "#333333"
        ax.add_patch(patches.FancyBboxPatch((x - width / 2, y - box_h / 2), width, box_h,
                                            boxstyle="round,pad=0.02,rounding_size=0.08",
                                            facecolor=color, edgecolor=edge, lw=1.6 if not faded(k) else 0.8))
        text_color = "#888888" if faded(k) else "black"
        ax.text(x, y + 0.12, f"{s.name}: {s.detail}", ha="center", va="center", fontsize=7.5, color=text_color)
        ax.text(x, y - 0.15, _shape_text(s.output_shape), ha="center", va="center", fontsize=9,
                fontweight="bold", color=text_color)
        if s.darknet_layers:
            ax.text(x - width / 2 - 0.1, y, _layers_text(s.darknet_layers), ha="right", va="center",
                    fontsize=7, color="#777777")

    arrow = dict(arrowstyle="-|>", color="#444444", lw=1.1, shrinkA=0, shrinkB=0)
    mains = [k for k in pos if stages[k].branch != "passthrough"]
    for a, b in zip(mains, mains[1:]):
        (xa, ya, _), (xb, yb, _) = pos[a], pos[b]
        ax.annotate("", (xb, yb + box_h / 2), (xa, ya - box_h / 2), arrowprops=arrow)
        if a in pool_after:
            ax.text(xa + 0.12, (ya + yb) / 2, pool_after[a], ha="left", va="center", fontsize=7, style="italic",
                    color="#555555")
    if branch:
        hot = dict(arrow, color=CLASS_COLORS[5] if highlight else "#444444", lw=1.8 if highlight else 1.1)
        xs, ys, ws = pos[source]
        x0, y0, _ = pos[branch[0]]
        ax.plot([xs + ws / 2, x0], [ys, ys], color=hot["color"], lw=hot["lw"])
        ax.annotate("", (x0, y0 + box_h / 2), (x0, ys), arrowprops=hot)
        for a, b in zip(branch, branch[1:]):
            ax.annotate("", (pos[b][0], pos[b][1] + box_h / 2), (pos[a][0], pos[a][1] - box_h / 2), arrowprops=hot)
        xl, yl, _ = pos[branch[-1]]
        xc, yc, wc = pos[concat]
        ax.plot([xl, xl], [yl - box_h / 2, yc], color=hot["color"], lw=hot["lw"])
        ax.annotate("", (xc + wc / 2, yc), (xl, yc), arrowprops=hot)
        ax.text(x0, ys + 0.12, "passthrough", ha="center", va="bottom", fontsize=8.5, fontweight="bold",
                color=hot["color"])
    ax.set_xlim(-main_w / 2 - 1.2, side_x + side_w / 2 + 0.2)
    ax.set_ylim(-row + 0.4, 0.6)
    ax.set_aspect("auto")
    ax.axis("off")
    return stages


def draw_prediction_grids(
    ax: plt.Axes,
    maps: Sequence[tuple[str, int, int]],
    *,
    image_size: int,
    title: str | None = None,
    color: str = CLASS_COLORS[4],
) -> int:
    """The maps a detector predicts from, side by side: each one the image cut into its grid.

    Every square stands for the whole image; the lines are the cells of one
    prediction map, and the label under it gives the grid, the cell size in
    pixels and the boxes that map predicts. Chapter 7 draws SSD300's six maps
    next to YOLO v2's single 13 x 13 one.

    Args:
        ax: the axes (one row of squares).
        maps: (name, grid side, boxes per cell) for each map, e.g.
            ``paper.SSD300_MAPS``.
        image_size: the input side in pixels (300 for SSD300, 416 for YOLO v2).
        title: the detector's name; the title adds the total number of boxes.
        color: the colour of the grid lines.

    Returns:
        The total number of boxes per image.
    """
    if not maps:
        raise ValueError("maps must list at least one (name, grid side, boxes per cell).")
    total = 0
    for k, (name, side, per_cell) in enumerate(maps):
        if side < 1 or per_cell < 1:
            raise ValueError(f"map {name!r}: grid side and boxes per cell must be >= 1, got {side}, {per_cell}.")
        x0 = k * 1.25
        ax.add_patch(patches.Rectangle((x0, 0), 1, 1, facecolor="#F4F4F4", edgecolor="#333333", lw=1.2))
        lines = np.linspace(0, 1, side + 1)[1:-1]
        ax.vlines(x0 + lines, 0, 1, color=color, lw=0.6)
        ax.hlines(lines, x0, x0 + 1, color=color, lw=0.6)
        boxes = side * side * per_cell
        total += boxes
        ax.text(x0 + 0.5, -0.08, name, ha="center", va="top", fontsize=8.5, fontweight="bold")
        ax.text(x0 + 0.5, -0.22, f"{side} x {side} cells of {image_size / side:.0f} px", ha="center", va="top",
                fontsize=8)
        ax.text(x0 + 0.5, -0.36, f"x {per_cell} = {boxes:,} boxes", ha="center", va="top", fontsize=8)
    ax.set_xlim(-0.1, max(len(maps), 1) * 1.25)
    ax.set_ylim(-0.5, 1.05)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(f"{title}: {total:,} boxes per image", fontsize=10, loc="left")
    return total



# ---------------------------------------------------------------- the paper's comparison (chapter 1)


def plot_detector_comparison(ax: plt.Axes, results: Sequence, *, realtime_fps: float = 30.0) -> None:
    """Speed against accuracy for the detectors of a comparison table (the paper's Table 3).

    The YOLOv2 rows (one network at several input sizes) are joined into one
    curve; every other detector is a labelled point. The speed axis is
    logarithmic, so 0.5 and 91 frames per second fit on one plot. Chapter 1
    draws it.

    Args:
        ax: the axes.
        results: rows with ``detector``, ``map`` and ``fps`` (``paper.TABLE3_DETECTORS``).
        realtime_fps: where a dashed line marks real time (``None`` for none).
    """
    rows = [r for r in results if r.fps]
    if not rows:
        raise ValueError("results must hold at least one row with a speed (fps).")
    yolo = [r for r in rows if r.detector.startswith("YOLOv2")]
    others = [r for r in rows if not r.detector.startswith("YOLOv2")]
    if yolo:
        sizes = [r.detector.split()[-1].split("x")[0] for r in yolo]
        plot_speed_accuracy(ax, sizes, [r.fps for r in yolo], [r.map for r in yolo], label="YOLOv2 (one network)",
                            color=CLASS_COLORS[5])
    for r in others:
        ax.plot(r.fps, r.map, marker="s", linestyle="none", color=CLASS_COLORS[4])
        ax.annotate(r.detector, (r.fps, r.map), textcoords="offset points", xytext=(5, -10), fontsize=8)
    if realtime_fps:
        ax.axvline(realtime_fps, color="#777777", linestyle="--", lw=1)
        ax.text(realtime_fps * 0.95, max(r.map for r in rows), "real time", fontsize=8, color="#555555",
                ha="right", va="top")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("frames per second (log scale)")
    ax.set_ylabel("VOC 2007 mAP (%)")
    ax.grid(alpha=0.3, which="both")
    if yolo:
        ax.legend(loc="lower left", fontsize=8)


# ---------------------------------------------------------------- Darknet-19's layer table (chapter 2)


def layer_table_html(rows: Sequence, *, caption: str | None = None) -> str:
    """An HTML table of :func:`yolov2_lib.model.layer_table` rows, with a total row.

    Columns: layer, type, filters, size/stride, input and output shapes (C x H x W),
    parameters and GFLOPs (a multiply-add counted as 2, as the paper does).

    Args:
        rows: ``LayerRow``s (anything with their fields).
        caption: an optional caption above the table.

    Returns:
        The HTML text (display it with ``IPython.display.HTML``).
    """
    rows = list(rows)
    if not rows:
        raise ValueError("layer_table_html needs at least one row.")

    def shape(s: tuple) -> str:
        if s and isinstance(s[0], tuple):  # a route: the shapes it concatenates
            return " + ".join(shape(t) for t in s)
        return "&times;".join(str(int(v)) for v in s)

    # inline styles: the table must look the same in Jupyter, Colab and the built book
    left = ' style="padding:1px 6px;white-space:nowrap;text-align:left"'
    right = ' style="padding:1px 6px;white-space:nowrap;text-align:right"'
    head = ["layer", "type", "filters", "size/stride", "input", "output", "parameters", "GFLOPs"]
    out = ['<table class="layer-table" style="font-size:0.8em;border-collapse:collapse">']
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th{right if i in (0, 2, 6, 7) else left}>{h}</th>"
                                       for i, h in enumerate(head)) + "</tr></thead><tbody>")
    for r in rows:
        size = f"{r.size}&times;{r.size}/{r.stride}" if r.size else (f"/{r.stride}" if r.stride else "")
        cells = [str(r.index), html.escape(str(r.type)), "" if r.filters is None else str(r.filters), size,
                 shape(r.input_shape), shape(r.output_shape), f"{r.params:,}", f"{r.flops / 1e9:.3f}"]
        out.append("<tr>" + "".join(f"<td{right if i in (0, 2, 6, 7) else left}>{c}</td>"
                                    for i, c in enumerate(cells)) + "</tr>")
    total_p = sum(r.params for r in rows)
    total_f = sum(r.flops for r in rows)
    out.append(f'<tr><th colspan="6"{left}>total ({len(rows)} layers)</th><th{right}>{total_p:,}</th>'
               f"<th{right}>{total_f / 1e9:.3f}</th></tr></tbody></table>")
    return "\n".join(out)


# ---------------------------------------------------------------- the passthrough's reorg (chapter 7)


def _check_source(source) -> np.ndarray:
    arr = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
    if arr.ndim != 4 or arr.shape[0] != 3:
        raise ValueError(f"Expected a (3, C, H, W) source tensor (from passthrough.reorg_source), got {arr.shape}.")
    return arr.astype(int)


def _plane_origins(num: int, height: int, width: int, ncols: int) -> list[tuple[float, float]]:
    gap = 0.6
    return [((k % ncols) * (width + gap), (k // ncols) * (height + gap + 0.5) + 0.5) for k in range(num)]


def draw_reorg_planes(
    ax: plt.Axes,
    source,
    *,
    ncols: int | None = None,
    highlight=None,
    notes: dict[tuple[int, int, int], str] | None = None,
    title: str | None = None,
    fontsize: float = 7.0,
    plane_name: str = "ch",
    start: int = 0,
    faded_labels: bool = True,
) -> None:
    """Draw a (C, H, W) tensor as C small grids, each cell labelled with the input value it holds.

    Cell ``(k, y, x)`` shows ``c,y,x``: the input channel, row and column its value
    comes from, coloured by that input channel. ``passthrough.reorg_source`` gives the
    sources of a reorg's output; ``reorg_source(C, H, W, stride=1)`` is the input itself.

    Args:
        ax: the axes to draw in.
        source: (3, C, H, W) integers, as returned by :func:`yolov2_lib.passthrough.reorg_source`.
        ncols: grids per row (default: about the square root of C).
        highlight: optional (C, H, W) booleans; highlighted cells are outlined, the others faded.
        notes: ``(k, y, x) -> text`` written under the label of that cell.
        title: the axes title.
        fontsize: size of the labels.
        plane_name: the word before each grid's number.
        start: the number of the first grid (grid k is named ``plane_name start + k``).
        faded_labels: also label the faded cells (drawing is faster without).
    """
    src = _check_source(source)
    _, num, height, width = src.shape
    ncols = ncols or int(np.ceil(np.sqrt(num)))
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}.")
    mask = np.ones((num, height, width), bool)
    if highlight is not None:
        mask = highlight.detach().cpu().numpy() if isinstance(highlight, torch.Tensor) else np.asarray(highlight)
        if mask.shape != (num, height, width):
            raise ValueError(f"Expected highlight of shape {(num, height, width)}, got {mask.shape}.")
        mask = mask.astype(bool)
    notes = notes or {}
    palette = np.array([to_rgb(c) for c in CLASS_COLORS])
    alpha_on = 0.45 if highlight is None else 0.85
    for k, (ox, oy) in enumerate(_plane_origins(num, height, width, ncols)):
        ax.text(ox + width / 2, oy - 0.12, f"{plane_name} {start + k}", ha="center", va="bottom",
                fontsize=fontsize + 1)
        # one picture per grid (fast to draw): colour of the source channel, faded where not highlighted
        rgba = np.concatenate([palette[src[0, k] % len(palette)],
                               np.where(mask[k], alpha_on, 0.08)[..., None]], axis=-1)  # (H, W, 4)
        ax.imshow(rgba, extent=(ox, ox + width, oy + height, oy), interpolation="nearest")
        ax.vlines(ox + np.arange(1, width), oy, oy + height, colors="white", lw=0.8)
        ax.hlines(oy + np.arange(1, height), ox, ox + width, colors="white", lw=0.8)
        for y, x in zip(*np.nonzero(mask[k] | faded_labels)):
            c, sy, sx = src[:, k, y, x]
            on = mask[k, y, x]
            if on and highlight is not None:
                ax.add_patch(patches.Rectangle((ox + x, oy + y), 1, 1, fill=False, edgecolor="black", lw=1.4))
            note = notes.get((k, int(y), int(x)))
            ink = "black" if on else "0.7"
            ax.text(ox + x + 0.5, oy + y + (0.38 if note else 0.5), f"{c},{sy},{sx}", ha="center",
                    va="center", fontsize=fontsize, color=ink)
            if note:
                ax.text(ox + x + 0.5, oy + y + 0.75, note, ha="center", va="center", fontsize=fontsize * 0.85,
                        color=ink, fontweight="bold")
    nrows = -(-num // ncols)
    ax.set_xlim(-0.1, ncols * (width + 0.6) - 0.5)
    ax.set_ylim(nrows * (height + 1.1) + 0.1, 0)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=fontsize + 3)


def draw_reorg_orders(channels: int, height: int, width: int, stride: int = 2) -> plt.Figure:
    """The input of a reorg and its output in both orders, every value labelled by its origin.

    Three rows at one scale: the input, darknet's order, space-to-depth; output
    channel k sits at the same place in both output rows.

    Args:
        channels, height, width: the input shape (C, H, W); keep it small (C=4, H=W=4) to read labels.
        stride: s.

    Returns:
        The figure.
    """
    identity = reorg_source(channels, height, width, 1, "space_to_depth")
    darknet = reorg_source(channels, height, width, stride, "darknet")
    s2d = reorg_source(channels, height, width, stride, "space_to_depth")
    c2, h2, w2 = darknet.shape[1:]
    panels = [  # (source, grids per row, title, grid name)
        (identity, min(channels, 8), f"input: {channels} x {height} x {width}", "input ch"),
        (darknet, min(c2, 8), f"darknet reorg: {c2} x {h2} x {w2}", "ch"),
        (s2d, min(c2, 8), f"space_to_depth: {c2} x {h2} x {w2}", "ch"),
    ]
    # data extents of each panel (see draw_reorg_planes), so that a cell has one size everywhere
    spans = [(ncols * (src.shape[3] + 0.6), -(-src.shape[1] // ncols) * (src.shape[2] + 1.1))
             for src, ncols, _, _ in panels]
    x_span = max(w for w, _ in spans)
    fig_width = 10.0
    fig, axes = plt.subplots(3, 1, figsize=(fig_width, fig_width * sum(h for _, h in spans) / x_span + 1.2),
                             height_ratios=[h for _, h in spans])
    for ax, (src, ncols, title, name) in zip(axes, panels):
        draw_reorg_planes(ax, src, ncols=ncols, title=title, plane_name=name, fontsize=8.5)
        ax.set_xlim(-0.1, x_span)
    fig.tight_layout()
    return fig


def draw_reorg_channel(channels: int, height: int, width: int, out_channel: int, stride: int = 2) -> plt.Figure:
    """Where the values of one output channel of a reorg come from, for both orders.

    One row per order: the input with the cells feeding ``out_channel`` highlighted and
    marked with the output cell they go to, then that output channel itself.

    Args:
        channels, height, width: the input shape (C, H, W).
        out_channel: an output channel, in ``[0, C * s^2)``.
        stride: s.

    Returns:
        The figure.
    """
    num_out = channels * stride * stride
    if not 0 <= out_channel < num_out:
        raise ValueError(f"out_channel must be in [0, {num_out}) for {channels} input channels, got {out_channel}.")
    identity = reorg_source(channels, height, width, 1, "space_to_depth")
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 8.4), gridspec_kw={"width_ratios": [2.0, 0.8]})
    for row, order in enumerate(("darknet", "space_to_depth")):
        src = reorg_source(channels, height, width, stride, order)[:, out_channel]  # (3, H/s, W/s)
        highlight = torch.zeros(channels, height, width, dtype=torch.bool)
        notes = {}
        for y in range(src.shape[1]):
            for x in range(src.shape[2]):
                c, sy, sx = src[:, y, x].tolist()
                highlight[c, sy, sx] = True
                notes[(c, sy, sx)] = f"-> {y},{x}"
        draw_reorg_planes(axes[row, 0], identity, highlight=highlight, notes=notes, plane_name="input ch",
                          faded_labels=False,
                          title=f"{order}: the input values of output channel {out_channel}")
        draw_reorg_planes(axes[row, 1], src[:, None], ncols=1, plane_name="output ch", start=out_channel,
                          title=f"{order}: output channel {out_channel}")
        # the same scale as the input panel, so that a cell is a cell
        x0, x1 = axes[row, 0].get_xlim()
        axes[row, 1].set_xlim(x0, x0 + (x1 - x0) / 2.0)
        axes[row, 1].set_ylim(axes[row, 0].get_ylim())
    fig.tight_layout()
    return fig


def draw_reorg_cell(
    channels: int, height: int, width: int, cell: tuple[int, int], stride: int = 2
) -> plt.Figure:
    """Where the ``C * s^2`` values of one output cell come from, on the input plane, for both orders.

    Each panel is the input's H x W plane; a position's colour (and number, on small
    planes) counts how many of the output cell's values come from it, over all input
    channels. The cell's own ``s x s`` block is outlined: space-to-depth never leaves it,
    darknet's order does.

    Args:
        channels, height, width: the input shape (C, H, W).
        cell: (row, col) of the output cell, on the (H/s, W/s) grid.
        stride: s.

    Returns:
        The figure.
    """
    row, col = cell
    if not (0 <= row < height // stride and 0 <= col < width // stride):
        raise ValueError(f"cell {cell} outside the {height // stride} x {width // stride} output grid.")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for ax, order in zip(axes, ("darknet", "space_to_depth")):
        src = reorg_source(channels, height, width, stride, order)[:, :, row, col]  # (3, C*s^2)
        counts = np.zeros((height, width), int)
        np.add.at(counts, (src[1].numpy(), src[2].numpy()), 1)
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1), interpolation="nearest")
        ax.add_patch(patches.Rectangle((col * stride - 0.5, row * stride - 0.5), stride, stride, fill=False,
                                       edgecolor="#D55E00", lw=2.0))
        if height * width <= 144:
            for (y, x), n in np.ndenumerate(counts):
                if n:
                    ax.text(x, y, str(n), ha="center", va="center", fontsize=9,
                            color="white" if n > counts.max() / 2 else "black")
        ax.set_title(f"{order}: output cell {tuple(cell)} reads\n{int((counts > 0).sum())} input positions")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("input column")
        ax.set_ylabel("input row")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- chapter 3: anchor boxes by k-means


def _cluster_colors(k: int) -> list:
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
        raise ValueError(f"Expected anchors of shape (k, 2) with positive widths and heights, got {wh.shape}.")
    k = len(wh)
    if colors is None:
        colors = _cluster_colors(k)
    elif isinstance(colors, str):
        colors = [colors] * k
    elif len(colors) != k:
        raise ValueError(f"Expected {k} colours for {k} anchors, got {len(colors)}.")
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
            raise ValueError(f"Expected {name} of shape (n, 2) with positive widths and heights, got {arr.shape}.")
    distance = _iou_distance(boxes, anchors)  # (n, k)
    labels, mean_iou = distance.argmin(axis=1), 1.0 - float(distance.min(axis=1).mean())
    shown = cluster_sample(len(boxes), max_points, seed)
    colors = _cluster_colors(len(anchors))
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


# ---------------------------------------------------------------- training and its results (chapter 9)


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (shorter at the start), NaN-free input assumed."""
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) == 0:
        return v
    c = np.cumsum(np.r_[0.0, v])
    lo = np.maximum(np.arange(1, len(v) + 1) - window, 0)
    return (c[1:] - c[lo]) / (np.arange(1, len(v) + 1) - lo)


def plot_history(history: dict, terms: Sequence[str] = ("loss", "coord", "obj", "noobj", "cls"),
                 smooth: int = 10) -> plt.Figure:
    """The loss terms per update (log scale, trailing mean) and the validation mAP of a run.

    Args:
        history: :attr:`yolov2_lib.train.Trainer.history` (or ``history.json`` of a run).
        terms: which loss terms to draw.
        smooth: updates in the trailing mean.

    Returns:
        The figure: losses on the left, input size and learning rate under them, val mAP on the right.
    """
    train, val = history["train"], history["val"]
    if not train["iteration"]:
        raise ValueError("the history has no training updates to plot.")
    fig = plt.figure(figsize=(11, 4.2))
    grid = fig.add_gridspec(2, 2, height_ratios=(3, 1), width_ratios=(2, 1), hspace=0.08)
    ax, ax_size, ax_map = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[:, 1])
    it = np.asarray(train["iteration"])
    for k, term in enumerate(terms):
        ax.plot(it, _smooth(train[term], smooth), label=term, color="black" if term == "loss" else
                CLASS_COLORS[k % len(CLASS_COLORS)], lw=2 if term == "loss" else 1.2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.1, 1, 10: no mathtext
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel(f"loss (mean of {smooth} updates)")
    ax.legend(ncol=len(terms), fontsize=8, loc="upper right")
    ax.tick_params(labelbottom=False)
    ax_size.step(it, train["size"], where="post", color="grey", lw=1)
    ax_size.set_ylabel("input", fontsize=8)
    ax_size.set_xlabel("update")
    lr_ax = ax_size.twinx()
    lr_ax.plot(it, train["lr"], color=CLASS_COLORS[4], lw=1)
    lr_ax.set_ylabel("lr", fontsize=8, color=CLASS_COLORS[4])
    points = [(i, m) for i, m in zip(val["iteration"], val["map"]) if m is not None]
    if points:
        ax_map.plot(*zip(*points), "o-", color=CLASS_COLORS[2])
        best = max(points, key=lambda p: p[1])
        ax_map.annotate(f"best {best[1]:.3f}", best, textcoords="offset points", xytext=(-40, -18))
    ax_map.set_ylim(0, 1)
    ax_map.set_xlabel("update")
    ax_map.set_title("validation mAP@0.5 (EMA weights)", fontsize=10)
    ax_map.grid(alpha=0.3)
    return fig


def draw_detections(
    ax: plt.Axes,
    image: np.ndarray,
    detections: np.ndarray | torch.Tensor,
    truths: np.ndarray | torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    iou_threshold: float = 0.5,
    title: str | None = None,
) -> None:
    """Detections over an image, judged against its ground truth.

    Without ``truths`` every detection is drawn in its class colour. With them,
    detections are matched by the VOC rule (:func:`yolov2_lib.evaluate.match_detections`):
    true positives solid in their class colour, false positives solid red,
    and the objects no detection found dashed white.

    Args:
        ax: where to draw.
        image: (H, W, 3) picture.
        detections: (N, 6) rows ``(x1, y1, x2, y2, score, class)`` in the image's pixels.
        truths: (M, 6) rows ``(x1, y1, x2, y2, class, difficult)``, or ``None``.
        class_names: names for the labels (default: the class numbers).
        iou_threshold: the overlap that makes a true positive.
        title: axis title; with ``truths`` the counts are appended.
    """
    from .evaluate import match_detections

    det = _as_float_array(detections).reshape(-1, 6)
    names = list(class_names) if class_names is not None else None
    label = lambda c, s=None: (names[int(c)] if names else str(int(c))) + ("" if s is None else f" {s:.2f}")
    show_image(image, ax)
    if truths is None:
        colors = [CLASS_COLORS[int(c) % len(CLASS_COLORS)] for c in det[:, 5]]
        draw_boxes(ax, det[:, :4], [label(c, s) for s, c in det[:, 4:6]], colors, lw=1.5)
        if title:
            ax.set_title(title, fontsize=9)
        return
    gt = _as_float_array(truths).reshape(-1, 6)
    m = match_detections(det, gt, iou_threshold=iou_threshold)
    draw_boxes(ax, gt[m.missed, :4], None, "white", lw=1.5, linestyle="--")
    colors = ["#D00000" if fp else CLASS_COLORS[int(c) % len(CLASS_COLORS)] for fp, c in zip(m.fp, det[:, 5])]
    shown = m.tp | m.fp
    draw_boxes(ax, det[shown, :4], None, [c for c, keep in zip(colors, shown) if keep], lw=1.5)
    counts = f"{int(m.tp.sum())} right, {int(m.fp.sum())} wrong, {int(m.missed.sum())} missed"
    ax.set_title(f"{title}: {counts}" if title else counts, fontsize=9)


# ---------------------------------------------------------------- measuring a detector (after chapter 9)

#: Colours of a detection's verdict in drawings of the VOC matching.
OUTCOME_COLORS: dict[str, str] = {"TP": "#009E73", "FP": "#D55E00", "ignored": "#8C8C8C"}


def _square_limits(ax: plt.Axes, boxes: np.ndarray, margin: float = 0.08) -> None:
    """Equal-aspect limits around (x1, y1, x2, y2) boxes, y down as in an image."""
    x1, y1 = boxes[:, :2].min(0)
    x2, y2 = boxes[:, 2:4].max(0)
    pad = margin * max(x2 - x1, y2 - y1)
    ax.set_xlim(x1 - pad, x2 + pad)
    ax.set_ylim(y2 + pad, y1 - pad)
    ax.set_aspect("equal")


def draw_iou(ax: plt.Axes, box1: Sequence[float], box2: Sequence[float],
             labels: tuple[str, str] = ("A", "B")) -> float:
    """Two boxes, their intersection filled and their union outlined, titled with the IoU.

    The picture of intersection over union from first principles: the overlap
    (dark) divided by the area the two boxes cover together (light and dark).
    Boxes are continuous (a box from x1 to x2 is ``x2 - x1`` wide). Explained in
    the section "Measuring a detector" (after chapter 9).

    Args:
        ax: the axes.
        box1, box2: ``(x1, y1, x2, y2)`` corners.
        labels: the names written in the boxes' corners.

    Returns:
        The IoU, as :func:`yolov2_lib.boxes.box_iou` computes it.
    """
    from .boxes import box_area, box_iou

    pair = torch.tensor([list(box1), list(box2)], dtype=torch.float64)
    if pair.shape != (2, 4) or bool((pair[:, 2:] < pair[:, :2]).any()):
        raise ValueError(f"Expected two (x1, y1, x2, y2) boxes with x2 >= x1 and y2 >= y1, got {pair.tolist()}.")
    iou = float(box_iou(pair[:1], pair[1:])[0, 0])
    lo = torch.maximum(pair[0, :2], pair[1, :2])
    hi = torch.minimum(pair[0, 2:], pair[1, 2:])
    inter_wh = (hi - lo).clamp(min=0)
    inter = float(inter_wh.prod())
    union = float(box_area(pair).sum()) - inter
    for k, ((x1, y1, x2, y2), color, label) in enumerate(zip(pair.tolist(), CLASS_COLORS[:2], labels)):
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, facecolor=color, alpha=0.3, edgecolor=color, lw=2))
        # the first name in its top-left corner, the second in its bottom-right: never both in the overlap
        ax.text(*((x1, y1) if k == 0 else (x2, y2)), label, color=color, fontsize=10, fontweight="bold",
                va="top" if k == 0 else "bottom", ha="left" if k == 0 else "right", zorder=5,
                bbox={"facecolor": "white", "alpha": 0.85, "pad": 1.5, "edgecolor": "none"})
    if inter > 0:
        ax.add_patch(patches.Rectangle(tuple(lo.tolist()), *inter_wh.tolist(), facecolor="#555555", alpha=0.45,
                                       edgecolor="black", hatch="//", lw=0.8))
    _square_limits(ax, pair.numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"IoU = {inter:g} / {union:g} = {iou:.2f}", fontsize=10)
    return iou


def draw_matching(
    ax: plt.Axes,
    detections: np.ndarray | torch.Tensor,
    ground_truth: np.ndarray | torch.Tensor,
    match: ImageMatch,
    image: np.ndarray | None = None,
) -> None:
    """The VOC matching of one image: every detection coloured by its verdict.

    Objects are dashed (grey and hatched when difficult); detections are solid,
    green for a true positive, red for a false positive (too little overlap, or
    a duplicate of an object already taken), grey when ignored on a difficult
    object, each labelled with its rank by score. Explained in the section
    "Measuring a detector" (after chapter 9).

    Args:
        ax: the axes.
        detections: (N, 6) rows ``(x1, y1, x2, y2, score, class)``.
        ground_truth: (M, 6) rows ``(x1, y1, x2, y2, class, difficult)``.
        match: the :class:`yolov2_lib.evaluate.ImageMatch` of these rows
            (from :func:`~yolov2_lib.evaluate.match_detections`).
        image: optional (H, W, 3) picture under the boxes; without it the boxes
            are drawn on a blank canvas.
    """
    det = _as_float_array(detections).reshape(-1, 6)
    gt = _as_float_array(ground_truth).reshape(-1, 6)
    if len(match.tp) != len(det) or len(match.missed) != len(gt):
        raise ValueError(f"The match is for {len(match.tp)} detections and {len(match.missed)} objects, "
                         f"got {len(det)} and {len(gt)}.")
    if image is not None:
        show_image(image, ax)
    for k, (x1, y1, x2, y2, _, difficult) in enumerate(gt):
        color = OUTCOME_COLORS["ignored"] if difficult else "black"
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, lw=1.5,
                                       linestyle="--", hatch="///" if difficult else None))
        ax.text(x2, y2, "difficult" if difficult else f"object {k}", color=color, fontsize=8, ha="right",
                va="bottom", zorder=5, bbox={"facecolor": "white", "alpha": 0.85, "pad": 1, "edgecolor": "none"})
    rank = np.empty(len(det), dtype=np.int64)
    rank[np.argsort(-det[:, 4], kind="stable")] = np.arange(1, len(det) + 1)
    for i, (x1, y1, x2, y2, score, _) in enumerate(det):
        kind = "TP" if match.tp[i] else "FP" if match.fp[i] else "ignored"
        color = OUTCOME_COLORS[kind]
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, lw=2))
        ax.text(x1, y1, f"{rank[i]}", color="white", fontsize=8, va="center", ha="center",
                bbox={"facecolor": color, "edgecolor": "none", "boxstyle": "circle,pad=0.25"})
    if image is None:
        everything = np.concatenate([det[:, :4], gt[:, :4]]) if len(det) + len(gt) else np.array([[0, 0, 1, 1.0]])
        _square_limits(ax, everything)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [patches.Patch(color=OUTCOME_COLORS[k], label=k) for k in ("TP", "FP", "ignored")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _envelope_steps(recall: np.ndarray, precision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The envelope as a step line from recall 0 to 1 (0 past the largest recall)."""
    from .evaluate import precision_envelope

    rec = np.asarray(recall, dtype=np.float64)
    env = precision_envelope(precision)
    if rec.size == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 0.0])
    # on (rec[i-1], rec[i]] the envelope is env[i]; "pre" steps draw exactly that
    x = np.concatenate(([0.0], rec, [rec[-1], 1.0]))
    y = np.concatenate(([env[0]], env, [0.0, 0.0]))
    return x, y


def plot_pr_curves(result: VOCResult, *, mark_score: float | None = None, class_names: Sequence[str] | None = None) -> plt.Figure:
    """The precision-recall curve of each class, with its monotone envelope.

    Walking down a class's detections by decreasing score, each one moves the
    curve: a true positive right (recall) and up, a false positive down. The
    thin line is that walk; the thick step line is the envelope every AP rule
    reads. Explained in the section "Measuring a detector" (after chapter 9).

    Args:
        result: a :class:`yolov2_lib.evaluate.VOCResult`.
        mark_score: optional score threshold; a dot marks the point of the curve
            where the detections scoring at least this much end.
        class_names: titles (default: the result's class names).

    Returns:
        The figure, one panel per class with ground truth.
    """
    names = list(class_names) if class_names is not None else list(result.class_names)
    shown = [c for c in range(len(names)) if result.num_positives[c] > 0]
    if not shown:
        raise ValueError("No class has ground truth: there is no precision-recall curve to draw.")
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6), squeeze=False)
    for ax, c in zip(axes[0], shown):
        rec, prec = result.recall[c], result.precision[c]
        color = CLASS_COLORS[c % len(CLASS_COLORS)]
        ax.plot(rec, prec, color=color, lw=0.8, alpha=0.6, label="after each detection")
        x, y = _envelope_steps(rec, prec)
        ax.step(x, y, where="pre", color="black", lw=1.6, label="envelope")
        if mark_score is not None and rec.size:
            last = int(np.searchsorted(-result.scores[c], -mark_score, side="right")) - 1
            if last >= 0:
                ax.plot([rec[last]], [prec[last]], "o", color=color, mec="black", ms=7,
                        label=f"score >= {mark_score:g}")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.grid(alpha=0.3)
        ax.set_title(f"{names[c]}: {result.num_positives[c]} objects, {result.num_detections[c]} detections",
                     fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def draw_ap_rules(recall: np.ndarray, precision: np.ndarray, title: str | None = None) -> plt.Figure:
    """One precision-recall curve scored by the three AP rules, one panel each.

    Left, the area under the envelope (VOC 2010+); middle, the 11 heights VOC
    2007 averages (recall 0, 0.1, ..., 1); right, the 101 heights of COCO's
    rule (recall 0, 0.01, ..., 1). A height is 0 past the largest recall the
    detector reaches. Explained in the section "Measuring a detector" (after
    chapter 9).

    Args:
        recall: (D,) recall after each detection in score order.
        precision: (D,) precision after each detection.
        title: the figure's title (e.g. the class).

    Returns:
        The figure; each panel's title gives its AP.
    """
    from .evaluate import average_precision, recall_levels, sampled_precision

    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    x, y = _envelope_steps(rec, prec)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    names = {"area": "area (VOC 2010+)", "11point": "11 points (VOC 2007)", "101point": "101 points (COCO)"}
    for ax, rule in zip(axes, ("area", "11point", "101point")):
        ax.plot(rec, prec, color="#8C8C8C", lw=0.8, alpha=0.7)
        ax.step(x, y, where="pre", color="black", lw=1.4)
        if rule == "area":
            ax.fill_between(x, y, step="pre", color=CLASS_COLORS[1], alpha=0.45)
        else:
            levels = recall_levels(rule)
            heights = sampled_precision(rec, prec, levels)
            big = rule == "11point"
            ax.vlines(levels, 0, heights, color=CLASS_COLORS[0], lw=2.5 if big else 1.0)
            ax.plot(levels, heights, "o", color=CLASS_COLORS[0], ms=6 if big else 2.5,
                    mec="black" if big else CLASS_COLORS[0], mew=0.6)
        ax.set_title(f"{names[rule]}: AP = {average_precision(rec, prec, rule):.3f}", fontsize=10)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("recall")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("precision")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- chapter 8: multi-scale training


def plot_speed_accuracy(
    ax: plt.Axes,
    sizes: Sequence[int],
    speed: Sequence[float],
    accuracy: Sequence[float],
    *,
    label: str | None = None,
    color: str | None = None,
    marker: str = "o",
):
    """One point per input size, speed across and accuracy up, each labelled with its size.

    The picture of the paper's Table 3: a multi-scale network is one curve of
    operating points, from fast and coarse to slow and sharp.

    Args:
        ax: the axes.
        sizes: the input side of each point.
        speed: images per second at each size.
        accuracy: mAP at each size.
        label: legend label of the curve.
        color: its colour (default: the next of the axes' cycle).
        marker: the point marker.

    Returns:
        The matplotlib line.
    """
    if not len(sizes) == len(speed) == len(accuracy) or len(sizes) == 0:
        raise ValueError(
            f"Expected as many speeds and accuracies as sizes (at least one), got {len(sizes)} sizes, "
            f"{len(speed)} speeds and {len(accuracy)} accuracies."
        )
    (line,) = ax.plot(speed, accuracy, marker=marker, color=color, label=label)
    for size, x, y in zip(sizes, speed, accuracy):
        ax.annotate(str(size), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8, color=line.get_color())
    ax.set_xlabel("images per second")
    ax.set_ylabel("mAP")
    ax.grid(alpha=0.3)
    return line


def plot_scale_experiment(ax: plt.Axes, record: dict, colors: Sequence[str] | None = None) -> dict[str, Any]:
    """mAP against the test input size, one curve per way of training: single-size against multi-scale.

    Each arm of the experiment is drawn as the mean over its seeds (a line),
    every seed's own run (small dots), and the band of sizes it was trained at
    (shaded), so one sees where a network is tested outside what it learned.

    Args:
        ax: the axes.
        record: a record of ``python -m yolov2_lib.bench multiscale``: ``arms``
            (name -> training sizes), ``test_sizes`` and ``runs`` (each with
            ``arm`` and ``map``, test size -> mAP).
        colors: one colour per arm (default: the axes' cycle).

    Returns:
        name -> the arm's mean line.
    """
    for key in ("arms", "test_sizes", "runs"):
        if key not in record:
            raise ValueError(f"Expected a multi-scale experiment record with {key!r}; it has {sorted(record)}.")
    sizes = [int(s) for s in record["test_sizes"]]
    lines = {}
    for k, (arm, trained) in enumerate(record["arms"].items()):
        runs = [r for r in record["runs"] if r["arm"] == arm]
        if not runs:
            raise ValueError(f"The record has no run of the arm {arm!r}.")
        try:
            scores = np.array([[r["map"][str(s)] for s in sizes] for r in runs], dtype=float)
        except KeyError as err:
            raise ValueError(f"A run of {arm!r} has no mAP at test size {err.args[0]}.") from None
        color = colors[k] if colors is not None else f"C{k}"
        span = f"{min(trained)}" if len(trained) == 1 else f"{min(trained)}-{max(trained)}"
        (line,) = ax.plot(sizes, scores.mean(0), marker="o", color=color,
                          label=f"{arm}: trained at {span} (mean of {len(runs)})")
        for row in scores:
            ax.plot(sizes, row, ls="none", marker=".", ms=4, alpha=0.45, color=color)
        ax.axvspan(min(trained) - 8, max(trained) + 8, color=color, alpha=0.08, lw=0)
        lines[arm] = line
    ax.set(xlabel="test input size", ylabel="mAP@0.5", xticks=sizes)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return lines
