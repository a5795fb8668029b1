"""The passthrough's reorg: where every value of a reorganised tensor comes from (chapter 7).

Darknet's order against space-to-depth, grid by grid, channel by channel and
cell by cell.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
from matplotlib.colors import to_rgb
from matplotlib.ticker import MaxNLocator
import torch

from ..colors import CLASS_COLORS
from ..errors import YOLOv2Error
from ..passthrough import reorg_source


def _check_source(source) -> np.ndarray:
    arr = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
    if arr.ndim != 4 or arr.shape[0] != 3:
        raise YOLOv2Error(f"Expected a (3, C, H, W) source tensor (from passthrough.reorg_source), got {arr.shape}.")
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
        raise YOLOv2Error(f"ncols must be >= 1, got {ncols}.")
    mask = np.ones((num, height, width), bool)
    if highlight is not None:
        mask = highlight.detach().cpu().numpy() if isinstance(highlight, torch.Tensor) else np.asarray(highlight)
        if mask.shape != (num, height, width):
            raise YOLOv2Error(f"Expected highlight of shape {(num, height, width)}, got {mask.shape}.")
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
        raise YOLOv2Error(f"out_channel must be in [0, {num_out}) for {channels} input channels, got {out_channel}.")
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
        raise YOLOv2Error(f"cell {cell} outside the {height // stride} x {width // stride} output grid.")
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
