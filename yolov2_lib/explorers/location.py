"""The location explorer of chapter 5 (direct location prediction), in the page.

Chapter 5 explains it. The reader moves ``t_x, t_y, t_w, t_h`` of one cell and
anchor and sees two readings of the same four numbers over the photo, computed in
the browser with the formulas of the library:

- YOLO v2's (:func:`yolov2_lib.decode.decode_boxes`): ``b_x = (sigmoid(t_x) + c_x) / W``,
  ``b_w = p_w exp(t_w) / W``, and the same for ``y`` and ``h``; the centre stays in the cell;
- the unconstrained reading of Faster R-CNN's region proposal network, as
  :func:`yolov2_lib.viz.draw_location` draws it: ``x = x_a + t_x w_a`` with the anchor
  centred in the cell (``x_a = c_x + 0.5`` cells), the size as YOLO v2's
  (:func:`yolov2_lib.decode.decode_boxes` with ``location="offset"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .. import viz
from . import PageWidget, photo_url
from ..errors import YOLOv2Error

__all__ = ["location_explorer"]


def location_explorer(
    image: np.ndarray,
    anchors: torch.Tensor | Sequence[Sequence[float]],
    *,
    grid: int = 13,
    row: int = 6,
    col: int = 6,
    anchor: int = 0,
    t: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
    t_range: float = 4.0,
    max_side: int = 480,
) -> PageWidget:
    """Move ``t_x, t_y, t_w, t_h`` of one cell and anchor; watch YOLO v2's box and the unconstrained one.

    Chapter 5 (direct location prediction) explains it. Four sliders and selects for the
    row, the column and the anchor; over the photo and its grid (the cell shaded): the
    anchor itself (``t = 0``, dotted yellow), YOLO v2's box (solid blue, its centre a dot)
    and the RPN-style reading of the same numbers (dashed red, its centre a cross), as
    :func:`yolov2_lib.viz.draw_location` draws them with ``unconstrained=True``; below,
    the centre and size of both in grid cells. It runs in the page, without Python.

    Args:
        image: (h, w, 3) uint8 image the grid covers.
        anchors: (A, 2) anchors in grid cells.
        grid: cells per side.
        row: the initial row.
        col: the initial column.
        anchor: the initial anchor.
        t: the initial ``(t_x, t_y, t_w, t_h)``, each within ``[-t_range, t_range]``.
        t_range: each slider spans ``[-t_range, t_range]``.
        max_side: longest side of the embedded photo, in pixels.

    Returns:
        The explorer. The root element carries ``data-t`` (the four numbers) and
        ``data-prior``, ``data-box`` (YOLO v2) and ``data-rpn``: pixel ``(x1, y1, x2, y2)`` boxes.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise YOLOv2Error(f"Expected an (h, w, 3) image, got shape {image.shape}.")
    priors = torch.as_tensor(anchors, dtype=torch.float64)
    if priors.dim() != 2 or priors.shape[1] != 2 or priors.shape[0] == 0 or not bool((priors > 0).all()):
        raise YOLOv2Error(f"Expected anchors of shape (A, 2) with positive sizes, got {tuple(priors.shape)}.")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise YOLOv2Error(f"grid must be a positive integer, got {grid!r}.")
    if not (0 <= row < grid and 0 <= col < grid and 0 <= anchor < priors.shape[0]):
        raise YOLOv2Error(f"(row, col, anchor) = {(row, col, anchor)} outside the {grid} x {grid} grid "
                         f"of {priors.shape[0]} anchors.")
    if len(t) != 4:
        raise YOLOv2Error(f"Expected t = (t_x, t_y, t_w, t_h), got {t!r}.")
    t = [float(v) for v in t]
    if not (t_range > 0 and math.isfinite(t_range)):
        raise YOLOv2Error(f"t_range must be positive and finite, got {t_range!r}.")
    if not all(abs(v) <= t_range for v in t):
        raise YOLOv2Error(f"Expected every t in [-{t_range}, {t_range}] (the sliders' range), got {t}.")
    height, width = image.shape[:2]
    data = {
        "photo": photo_url(image, max_side),
        "width": int(width),
        "height": int(height),
        "grid": int(grid),
        "anchors": priors.tolist(),
        "row": int(row),
        "col": int(col),
        "anchor": int(anchor),
        "t": t,
        "t_range": float(t_range),
        "margin": 0.3,
        "colors": {"prior": viz.CLASS_COLORS[3], "yolo": viz.CLASS_COLORS[1], "rpn": viz.CLASS_COLORS[5],
                   "cell": "red"},
    }
    return PageWidget("location", data)
