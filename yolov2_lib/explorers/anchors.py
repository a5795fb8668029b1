"""The anchor editor of chapter 3 (anchor boxes by k-means), in the page.

Chapter 3 explains it. The reader chooses k, moves each anchor's width and
height and watches the mean IoU of the boxes with those anchors; a button runs
IoU k-means from the current anchors. The page computes on a seeded sample of
the boxes embedded in it, with the formulas of :mod:`yolov2_lib.anchors`:

- the mean IoU is :func:`yolov2_lib.anchors.mean_iou` of the sample with the
  anchors (as fractions of the image);
- the k-means is :class:`yolov2_lib.anchors.AnchorKMeans` with the current
  anchors as ``init`` (Lloyd iterations with the mean update, the same stopping
  rule, empty clusters restarted at the farthest boxes, centres sorted by area).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import viz
from ..anchors import AnchorKMeans
from . import PageWidget
from ..errors import YOLOv2Error

__all__ = ["anchor_editor"]


def _positive_pairs(name: str, value, rows: int | None = None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    expected = "(n, 2)" if rows is None else f"({rows}, 2)"
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0 or (rows is not None and len(arr) != rows):
        raise YOLOv2Error(f"Expected {name} of shape {expected}, got {arr.shape}.")
    if not np.isfinite(arr).all() or (arr <= 0).any():
        raise YOLOv2Error(f"Expected {name} to hold positive finite widths and heights.")
    return arr


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgba[:3])


def anchor_editor(
    wh: np.ndarray,
    centers_by_k: Mapping[int, np.ndarray],
    *,
    k: int = 5,
    grid: int = 13,
    max_points: int = 4000,
    seed: int = 0,
) -> PageWidget:
    """Choose k, move every anchor's width and height, watch the mean IoU; run k-means from there.

    Chapter 3 (anchor boxes by k-means) explains it. Choosing k resets the anchors to
    the k-means centres for that k; each anchor then has a width and a height slider,
    in grid cells. The picture is that of :func:`yolov2_lib.viz.draw_clusters`: the
    boxes as points ``(w, h)`` coloured by the anchor of highest IoU, the anchors as
    crosses, and the anchors' shapes centred together. The button runs IoU k-means
    (:class:`yolov2_lib.anchors.AnchorKMeans` with the current anchors as ``init``).
    Every number is computed in the page on a seeded sample of ``max_points`` boxes,
    which the widget names; it runs without Python, in the static book as well.

    Args:
        wh: (n, 2) box widths and heights as fractions of the image.
        centers_by_k: k -> (k, 2) k-means centres as fractions of the image.
        k: the initial k (a key of ``centers_by_k``).
        grid: cells per side; the sliders are in grid cells, from 0.1 to ``grid``.
        max_points: most boxes in the sample (drawn and computed on).
        seed: seed of the sample (:func:`yolov2_lib.viz.cluster_sample`, the boxes ``draw_clusters`` draws).

    Returns:
        The explorer; ``.data["boxes"]`` is the sample exactly as the page holds it.
    """
    boxes = _positive_pairs("wh", wh)
    choices = sorted(int(key) for key in centers_by_k)
    if k not in choices:
        raise YOLOv2Error(f"k={k} is not a key of centers_by_k (keys: {choices}).")
    centres = {key: _positive_pairs(f"centers_by_k[{key}]", centers_by_k[key], rows=key) for key in choices}
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
        raise YOLOv2Error(f"grid must be a positive integer, got {grid!r}.")
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1:
        raise YOLOv2Error(f"max_points must be a positive integer, got {max_points!r}.")
    sample = boxes[viz.cluster_sample(len(boxes), max_points, seed)]
    defaults = AnchorKMeans().get_params()
    return PageWidget("anchors", {
        "boxes": sample.tolist(),  # fractions of the image; rounded to 6 digits by PageWidget
        "total": len(boxes),
        "centres": {str(key): c.tolist() for key, c in centres.items()},
        "k": int(k),
        "grid": int(grid),
        "colors": [_hex(c) for c in viz.cluster_colors(max(choices))],  # draw_clusters' colours
        "kmeans": {"max_iter": defaults["max_iter"], "tol": defaults["tol"]},
    })
