"""The head explorer of chapter 4 (the output feature map), in the page.

Chapter 4 explains it. The reader picks a cell (row, column) and an anchor and
sees the ``5 + C`` numbers that anchor of that cell predicts: their channel in
darknet's order (:func:`yolov2_lib.layout.channel_index`), their raw value and
what they decode to, as :func:`yolov2_lib.viz.describe_anchor` lists them:
``sigmoid(t_x)``, ``sigmoid(t_y)``, ``p_w exp(t_w)``, ``p_h exp(t_h)``,
``sigmoid(t_o)`` and the softmax over the class scores. Over the photo: the grid,
the cell, the anchor's prior (``t = 0``) and the box the numbers decode to
(:func:`yolov2_lib.decode.decode_boxes`). The page holds the whole head tensor and
decodes in the browser.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .. import layout, viz
from . import PageWidget, photo_url
from ..errors import YOLOv2Error

__all__ = ["head_explorer"]


def head_explorer(
    raw: torch.Tensor,
    anchors: torch.Tensor,
    class_names: Sequence[str],
    image: np.ndarray,
    *,
    row: int = 0,
    col: int = 0,
    anchor: int = 0,
    max_side: int = 480,
) -> PageWidget:
    """Pick a cell and an anchor; see its ``5 + C`` numbers and the box they decode to.

    Chapter 4 (the output feature map) explains it. Selects for the row, the column
    and the anchor; the photo with the grid, the cell shaded, the anchor's prior
    (dotted) and the decoded box; the table of ``channel, name, raw value, decoded
    value, meaning`` of :func:`yolov2_lib.viz.describe_anchor`. It runs in the page,
    without Python.

    Args:
        raw: (A*(5+C), H, W) head output of one image.
        anchors: (A, 2) anchors in grid cells.
        class_names: the C class names.
        image: (h, w, 3) uint8 image the grid covers.
        row: the initial row.
        col: the initial column.
        anchor: the initial anchor.
        max_side: longest side of the embedded photo, in pixels.

    Returns:
        The explorer. The root element carries ``data-row``, ``data-col``,
        ``data-anchor`` and ``data-box``: the decoded box as pixel ``(x1, y1, x2, y2)``.
    """
    if not isinstance(raw, torch.Tensor) or raw.dim() != 3:
        raise YOLOv2Error(f"Expected raw of shape (A*(5+C), H, W) for one image, got {getattr(raw, 'shape', raw)}.")
    anchors = torch.as_tensor(anchors)
    if anchors.dim() != 2 or anchors.shape[1] != 2 or anchors.shape[0] == 0 or not bool((anchors > 0).all()):
        raise YOLOv2Error(f"Expected anchors of shape (A, 2) with positive sizes, got {tuple(anchors.shape)}.")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise YOLOv2Error(f"Expected an (h, w, 3) image, got shape {image.shape}.")
    # describe_anchor checks the channels against A and C and (row, col, anchor) against the grid
    listing = viz.describe_anchor(raw, anchors, row, col, anchor, class_names)
    A, C = anchors.shape[0], len(class_names)
    _, H, W = raw.shape
    view = layout.head_view(raw[None].detach().cpu().double(), A)[0]  # (H, W, A, 5+C)
    if not bool(torch.isfinite(view).all()):
        raise YOLOv2Error("raw holds NaN or infinite values.")
    height, width = image.shape[:2]
    data = {
        "photo": photo_url(image, max_side),
        "width": int(width),
        "height": int(height),
        "grid": [int(H), int(W)],
        "anchors": anchors.double().tolist(),
        "names": list(layout.FIELDS) + [str(n) for n in class_names],
        "meanings": [meaning for *_, meaning in listing],
        # (H, W, A, 5+C) flattened: element ((r * W + c) * A + a) * (5 + C) + e; 5 decimals keep
        # the printed digits, and whole numbers as ints keep a tensor of round numbers small
        "raw": [int(v) if v.is_integer() else v for v in (round(x, 5) for x in view.reshape(-1).tolist())],
        "row": int(row),
        "col": int(col),
        "anchor": int(anchor),
        "colors": {"box": viz.CLASS_COLORS[5], "cell": "red"},
        "num_classes": C,
    }
    return PageWidget("head", data)
