"""From 845 boxes to a few detections: non-maximum suppression (chapter 5, section 5.1).

Every candidate before and the detections after, and one decision of the
greedy suppression at a time.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
import torch

from ..colors import CLASS_COLORS, class_color
from ..errors import YOLOv2Error
from .images import _as_float_array, draw_boxes, show_image


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
        raise YOLOv2Error(f"boxes, scores and classes differ in length: {len(boxes)}, {len(scores)}, {len(classes)}.")
    if kept.size and (kept.min() < 0 or kept.max() >= len(boxes)):
        raise YOLOv2Error(f"kept indices must lie in [0, {len(boxes)}).")
    fig, (ax_before, ax_after) = plt.subplots(1, 2, figsize=(12, 4.8))
    show_image(image, ax_before)
    show_image(image, ax_after)
    draw_boxes(ax_before, boxes, colors=[class_color(k) for k in classes], lw=0.9)
    draw_boxes(ax_after, boxes[kept], [f"{s:.2f}" for s in scores[kept]],
               [class_color(k) for k in classes[kept]], lw=1.8)
    rule = f"score > {threshold:g}" if threshold is not None else "above the threshold"
    ax_before.set_title(f"before NMS: {len(boxes)} (box, class) pairs with {rule}", fontsize=10)
    after = f"after class-wise NMS at IoU {iou_threshold:g}" if iou_threshold is not None else "after NMS"
    ax_after.set_title(f"{after}: {len(kept)} detections", fontsize=10)
    present = sorted(set(classes.tolist()))
    handles = [patches.Patch(facecolor="none", edgecolor=class_color(k), label=class_names[k]) for k in present]
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
        raise YOLOv2Error(f"candidate {winner} is not a kept box.")
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
