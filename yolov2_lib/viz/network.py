"""The network's structure, drawn: its blocks, its prediction grids, its layers (chapters 2 and 7).

YOLO v2 as one block diagram with the shape of every stage, the grids a
detector predicts from, and Darknet-19's layer table as HTML.
"""

from __future__ import annotations

import html
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches

from ..colors import CLASS_COLORS
from ..errors import YOLOv2Error


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
    from ..model import network_stages  # the face imports the network; the network never imports the face

    if highlight not in (None, "passthrough"):
        raise YOLOv2Error(f"highlight must be None or 'passthrough', got {highlight!r}.")
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
        raise YOLOv2Error("maps must list at least one (name, grid side, boxes per cell).")
    total = 0
    for k, (name, side, per_cell) in enumerate(maps):
        if side < 1 or per_cell < 1:
            raise YOLOv2Error(f"map {name!r}: grid side and boxes per cell must be >= 1, got {side}, {per_cell}.")
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
        raise YOLOv2Error("layer_table_html needs at least one row.")

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
