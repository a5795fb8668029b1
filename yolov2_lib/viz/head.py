"""The head's channels: the ``A * (5 + C)`` numbers every cell predicts (chapter 4).

The channels as a table of labelled squares, the whole tensor unrolled, one
cell and anchor with its numbers decoded, one anchor's block over the image.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
import torch

from .. import decode, layout
from ..colors import CLASS_COLORS
from ..errors import YOLOv2Error
from .images import _as_float_array, _cxcywh_to_pixels, draw_boxes, draw_grid, show_image


#: Colours of the kinds of channel in drawings of the head: centre, size, objectness, class scores.
FIELD_COLORS: dict[str, str] = {"xy": "#E69F00", "wh": "#56B4E9", "obj": "#009E73", "class": "#CC79A7"}
# Short labels of layout.FIELDS ("conf" is YOLO v1's name for objectness); any other label is a class.
_FIELD_KIND = {"x": "xy", "y": "xy", "w": "wh", "h": "wh", "obj": "obj", "conf": "obj"}


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
        raise YOLOv2Error(f"Expected labels as non-empty rows of equal length, got row lengths {lengths}.")
    if highlight is None:
        strong = set(range(n_rows))
    else:
        strong = {highlight} if isinstance(highlight, (int, np.integer)) else set(highlight)
        bad = sorted(r for r in strong if not 0 <= r < n_rows)
        if bad:
            raise YOLOv2Error(f"highlight rows {bad} out of range for {n_rows} rows.")
    if values is not None:
        values = _as_float_array(values)
        if values.shape != (n_rows, n):
            raise YOLOv2Error(f"Expected values of shape {(n_rows, n)} like labels, got {values.shape}.")
    if row_names is not None and len(row_names) != n_rows:
        raise YOLOv2Error(f"Expected {n_rows} row_names, got {len(row_names)}.")
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
        raise YOLOv2Error(f"Expected raw of shape (A*(5+C), H, W) for one image, got {arr.shape}.")
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
            raise YOLOv2Error(f"cell {cell} outside the {H} x {W} grid.")
        y = r * W + c
        ax.add_patch(patches.Rectangle((-0.5, y - 0.5), C, 1, fill=False, edgecolor="black", lw=1.0))
        ax.annotate("", xy=(-0.5, y), xytext=(-0.09 * C, y), annotation_clip=False,
                    arrowprops={"arrowstyle": "->", "color": "black"})
    if channels is not None:
        chs = list(channels)
        if not chs or min(chs) < 0 or max(chs) >= C:
            raise YOLOv2Error(f"channels must be non-empty and inside [0, {C}), got {chs}.")
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
        raise YOLOv2Error(f"Expected per-cell values of shape (H, W), got {arr.shape}.")
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
        raise YOLOv2Error(f"Expected raw of shape (A*(5+C), H, W) for one image, got {getattr(raw, 'shape', raw)}.")
    A, C = anchors.shape[0], len(class_names)
    if raw.shape[0] != layout.num_channels(A, C):
        raise YOLOv2Error(f"raw has {raw.shape[0]} channels, but {A} anchors and {C} class names "
                         f"need {layout.num_channels(A, C)}.")
    _, H, W = raw.shape
    if not (0 <= row < H and 0 <= col < W and 0 <= anchor < A):
        raise YOLOv2Error(f"(row, col, anchor) = {(row, col, anchor)} outside the {H} x {W} grid of {A} anchors.")
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
        raise YOLOv2Error(f"Expected raw of shape (A*(5+C), H, W) for one image, got {getattr(raw, 'shape', raw)}.")
    A = anchors.shape[0]
    if not 0 <= anchor < A:
        raise YOLOv2Error(f"anchor {anchor} out of range for {A} anchors.")
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
