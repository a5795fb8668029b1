"""Box formats, intersection over union and non-maximum suppression.

Chapter 3 (anchor boxes by k-means) uses the shape-only IoU of ``wh_iou``;
chapter 5 (direct location prediction) converts between ``xyxy`` and
``cxcywh``; the page "From 845 boxes to a few detections" (a section of
chapter 5) walks through ``nms_trace``, the one-box-at-a-time form of
``batched_nms``; chapter 9 (detections on real images) uses ``nms`` and
``batched_nms``.

Conventions used across the library:

- ``boxes`` are ``(x1, y1, x2, y2)`` ("xyxy") unless a name says ``cxcywh``
  (centre x, centre y, width, height).
- Coordinates are continuous: a box from x1 to x2 has width ``x2 - x1``.
- Every function accepts leading batch dimensions where that makes sense and
  works on whatever device its inputs live on; nothing is moved between
  devices.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .errors import YOLOv2Error

__all__ = [
    "xyxy_to_cxcywh",
    "cxcywh_to_xyxy",
    "normalize_boxes",
    "denormalize_boxes",
    "box_area",
    "box_iou",
    "aligned_box_iou",
    "wh_iou",
    "nms",
    "batched_nms",
    "NMSTrace",
    "nms_trace",
]


def _check_last_dim(t: Tensor, size: int, name: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"Expected {name} to be a torch.Tensor, got {type(t).__name__}.")
    if t.dim() == 0 or t.shape[-1] != size:
        raise YOLOv2Error(f"Expected {name} of shape (..., {size}), got {tuple(t.shape)}.")


def _check_same_device(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    if a.device != b.device:
        raise YOLOv2Error(
            f"Expected {name_a} and {name_b} on the same device, got {a.device} and {b.device}."
        )


def _safe_divide(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den > 0``, else 0 (and no NaN in the gradient)."""
    positive = den > 0
    return torch.where(positive, num / torch.where(positive, den, torch.ones_like(den)), 0.0)


# ---------------------------------------------------------------- formats


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """Convert ``(x1, y1, x2, y2)`` boxes to ``(cx, cy, w, h)``.

    Args:
        boxes: (..., 4) corners.

    Returns:
        (..., 4) centre and size, same dtype and device.
    """
    _check_last_dim(boxes, 4, "boxes")
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """Convert ``(cx, cy, w, h)`` boxes to ``(x1, y1, x2, y2)``.

    Args:
        boxes: (..., 4) centre and size.

    Returns:
        (..., 4) corners, same dtype and device.
    """
    _check_last_dim(boxes, 4, "boxes")
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def _xy_scale(boxes: Tensor, width: float | Tensor, height: float | Tensor) -> Tensor:
    """(..., 4) factors (width, height, width, height) broadcast against ``boxes``."""
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, Tensor):
            _check_same_device(boxes, value, "boxes", name)
    dtype = boxes.dtype if boxes.is_floating_point() else torch.get_default_dtype()
    w = torch.as_tensor(width, dtype=dtype, device=boxes.device)
    h = torch.as_tensor(height, dtype=dtype, device=boxes.device)
    if bool((w <= 0).any()) or bool((h <= 0).any()):
        raise YOLOv2Error(f"Expected positive width and height, got {width} and {height}.")
    w, h = torch.broadcast_tensors(w, h)
    return torch.stack((w, h, w, h), dim=-1)  # (..., 4)


def normalize_boxes(boxes: Tensor, width: float | Tensor, height: float | Tensor) -> Tensor:
    """Divide x coordinates by ``width`` and y coordinates by ``height``.

    Works for ``xyxy`` and ``cxcywh`` alike (both hold x, y, x-like, y-like).

    Args:
        boxes: (..., 4) boxes in pixels.
        width: image width, a number or a tensor broadcastable to ``boxes.shape[:-1]``
            (for example (B, 1) for per-image sizes of (B, N, 4) boxes).
        height: image height, same rules as ``width``.

    Returns:
        (..., 4) boxes in [0, 1] image units (floating point).
    """
    _check_last_dim(boxes, 4, "boxes")
    scale = _xy_scale(boxes, width, height)
    return boxes / scale


def denormalize_boxes(boxes: Tensor, width: float | Tensor, height: float | Tensor) -> Tensor:
    """Inverse of :func:`normalize_boxes`: multiply x by ``width`` and y by ``height``.

    Args:
        boxes: (..., 4) boxes in [0, 1] image units.
        width: image width (number or tensor broadcastable to ``boxes.shape[:-1]``).
        height: image height.

    Returns:
        (..., 4) boxes in pixels.
    """
    _check_last_dim(boxes, 4, "boxes")
    scale = _xy_scale(boxes, width, height)
    return boxes * scale


# ---------------------------------------------------------------- IoU


def box_area(boxes: Tensor) -> Tensor:
    """Area of ``(x1, y1, x2, y2)`` boxes; an inverted box (x2 < x1 or y2 < y1) has area 0.

    Args:
        boxes: (..., 4) corners.

    Returns:
        (...) areas.
    """
    _check_last_dim(boxes, 4, "boxes")
    w = (boxes[..., 2] - boxes[..., 0]).clamp(min=0)
    h = (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    return w * h


def aligned_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Elementwise IoU of two broadcastable sets of ``xyxy`` boxes.

    Args:
        boxes1: (..., 4) corners.
        boxes2: (..., 4) corners, broadcastable against ``boxes1``.

    Returns:
        (...) IoU in [0, 1]; 0 where the union is empty.
    """
    _check_last_dim(boxes1, 4, "boxes1")
    _check_last_dim(boxes2, 4, "boxes2")
    _check_same_device(boxes1, boxes2, "boxes1", "boxes2")
    top_left = torch.maximum(boxes1[..., :2], boxes2[..., :2])  # (..., 2)
    bottom_right = torch.minimum(boxes1[..., 2:], boxes2[..., 2:])  # (..., 2)
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(boxes1) + box_area(boxes2) - inter
    return _safe_divide(inter, union)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU between every box of ``boxes1`` and every box of ``boxes2``.

    Args:
        boxes1: (..., N, 4) corners.
        boxes2: (..., M, 4) corners; leading dimensions broadcast with ``boxes1``'s.

    Returns:
        (..., N, M) IoU in [0, 1]; 0 where the union is empty.
    """
    _check_last_dim(boxes1, 4, "boxes1")
    _check_last_dim(boxes2, 4, "boxes2")
    if boxes1.dim() < 2 or boxes2.dim() < 2:
        raise YOLOv2Error(
            f"Expected boxes1 (..., N, 4) and boxes2 (..., M, 4), "
            f"got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}."
        )
    return aligned_box_iou(boxes1.unsqueeze(-2), boxes2.unsqueeze(-3))  # (..., N, M)


def wh_iou(wh1: Tensor, wh2: Tensor) -> Tensor:
    """Shape-only IoU of ``(w, h)`` pairs, as if both boxes shared their centre.

    This is the similarity of chapter 3's k-means (distance ``1 - wh_iou``) and the
    rule that picks the responsible anchor in the loss.

    Args:
        wh1: (..., N, 2) widths and heights.
        wh2: (..., M, 2) widths and heights; leading dimensions broadcast.

    Returns:
        (..., N, M) IoU in [0, 1]; 0 where the union is empty.
    """
    _check_last_dim(wh1, 2, "wh1")
    _check_last_dim(wh2, 2, "wh2")
    _check_same_device(wh1, wh2, "wh1", "wh2")
    if wh1.dim() < 2 or wh2.dim() < 2:
        raise YOLOv2Error(
            f"Expected wh1 (..., N, 2) and wh2 (..., M, 2), "
            f"got {tuple(wh1.shape)} and {tuple(wh2.shape)}."
        )
    a = wh1.clamp(min=0).unsqueeze(-2)  # (..., N, 1, 2)
    b = wh2.clamp(min=0).unsqueeze(-3)  # (..., 1, M, 2)
    inter = torch.minimum(a, b).prod(-1)  # (..., N, M)
    union = a.prod(-1) + b.prod(-1) - inter
    return _safe_divide(inter, union)


# ---------------------------------------------------------------- NMS


def _check_nms_inputs(boxes: Tensor, scores: Tensor) -> None:
    _check_last_dim(boxes, 4, "boxes")
    if boxes.dim() != 2:
        raise YOLOv2Error(f"Expected boxes of shape (N, 4), got {tuple(boxes.shape)}.")
    if not isinstance(scores, Tensor) or scores.shape != boxes.shape[:1]:
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise YOLOv2Error(f"Expected scores of shape ({boxes.shape[0]},), got {got}.")
    _check_same_device(boxes, scores, "boxes", "scores")


_NMS_BLOCK = 128  # boxes per block: IoU matrices stay small


def _greedy_in_block(over: Tensor, limit: int) -> Tensor:
    """Greedy NMS inside one block, given ``over[i, j] = IoU(i, j) > threshold``.

    The pass is sequential (a box's fate depends on the kept boxes before it),
    so it runs in NumPy on the host: one small copy of the matrix instead of
    several tensor ops and a device sync per kept box.

    Args:
        over: (m, m) bool, boxes sorted by decreasing score.
        limit: keep at most this many.

    Returns:
        (k,) int64 positions of the kept boxes, increasing.
    """
    rows = over.cpu().numpy()
    suppressed = np.zeros(rows.shape[0], dtype=bool)
    chosen: list[int] = []
    for i in range(rows.shape[0]):
        if len(chosen) >= limit:
            break
        if not suppressed[i]:
            chosen.append(i)
            suppressed |= rows[i]
    return torch.tensor(chosen, dtype=torch.int64, device=over.device)


def _blocked_nms(boxes: Tensor, scores: Tensor, classes: Tensor | None, iou_threshold: float, limit: int) -> Tensor:
    """The greedy NMS of :func:`nms` and :func:`batched_nms` (``classes=None``: one class)."""
    order = torch.argsort(scores, descending=True, stable=True)  # (N,)
    sorted_boxes = boxes[order]
    sorted_classes = classes[order] if classes is not None else None
    kept: list[Tensor] = []  # positions in the sorted order
    n_kept = 0
    kept_boxes = sorted_boxes[:0]  # (K, 4) kept so far
    kept_classes = sorted_classes[:0] if sorted_classes is not None else None
    for start in range(0, len(boxes), _NMS_BLOCK):
        if n_kept >= limit:
            break
        stop = min(start + _NMS_BLOCK, len(boxes))
        block = sorted_boxes[start:stop]  # (M, 4)
        block_classes = sorted_classes[start:stop] if sorted_classes is not None else None
        positions = torch.arange(start, stop, device=boxes.device)
        if n_kept:  # what the kept boxes suppress: one (K, M) matrix
            hit = box_iou(kept_boxes, block) > iou_threshold
            if block_classes is not None:
                hit &= kept_classes[:, None] == block_classes[None, :]
            free = ~hit.any(dim=0)
            block, positions = block[free], positions[free]
            block_classes = block_classes[free] if block_classes is not None else None
        over = box_iou(block, block) > iou_threshold  # (m, m)
        if block_classes is not None:
            over &= block_classes[:, None] == block_classes[None, :]
        chosen = positions[_greedy_in_block(over, limit - n_kept)]
        kept.append(chosen)
        n_kept += len(chosen)
        kept_boxes = torch.cat((kept_boxes, sorted_boxes[chosen]))
        if kept_classes is not None:
            kept_classes = torch.cat((kept_classes, sorted_classes[chosen]))
    if not kept:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    return order[torch.cat(kept)]


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, *, max_kept: int | None = None) -> Tensor:
    """Greedy non-maximum suppression (torchvision semantics).

    Visit boxes by decreasing score; keep a box and drop every later box whose IoU
    with it is strictly greater than ``iou_threshold``.

    The boxes are taken in blocks of decreasing score: a block first loses every
    box that an already kept box suppresses (one IoU matrix), then the greedy
    pass inside the block runs on the block's own IoU matrix, one row per kept
    box. A box's fate depends only on higher-scored boxes, so the result
    is exactly the one-box-at-a-time greedy result; all matrices stay small, and
    with ``max_kept`` the work stops as soon as enough boxes are kept.

    Args:
        boxes: (N, 4) corners.
        scores: (N,) scores.
        iou_threshold: suppress boxes with IoU above this value.
        max_kept: stop after keeping this many boxes (the first ``max_kept`` of the
            full result); ``None`` keeps all.

    Returns:
        (K,) int64 indices into ``boxes`` of the kept boxes, by decreasing score
        (ties: lower index first).
    """
    _check_nms_inputs(boxes, scores)
    if max_kept is not None and max_kept < 0:
        raise YOLOv2Error(f"Expected max_kept >= 0 or None, got {max_kept}.")
    return _blocked_nms(boxes, scores, None, iou_threshold, len(boxes) if max_kept is None else max_kept)


def batched_nms(
    boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float, *, max_kept: int | None = None
) -> Tensor:
    """Class-wise NMS: boxes of different classes never suppress each other.

    The result is :func:`nms` run on each class's boxes, merged by score. It is
    computed in one pass over all boxes by decreasing score, with "IoU above the
    threshold *and* the same class" as the suppression test, so the work stops
    once ``max_kept`` boxes are kept, whatever the number of classes.

    Args:
        boxes: (N, 4) corners.
        scores: (N,) scores.
        classes: (N,) integer class of each box.
        iou_threshold: suppress boxes of the same class with IoU above this value.
        max_kept: keep at most this many boxes in all (the best-scored of the full
            result); ``None`` keeps all.

    Returns:
        (K,) int64 indices into ``boxes`` of the kept boxes, by decreasing score
        (ties: lower index first).
    """
    _check_nms_inputs(boxes, scores)
    if not isinstance(classes, Tensor) or classes.shape != scores.shape:
        got = tuple(classes.shape) if isinstance(classes, Tensor) else type(classes).__name__
        raise YOLOv2Error(f"Expected classes of shape ({boxes.shape[0]},), got {got}.")
    _check_same_device(boxes, classes, "boxes", "classes")
    if max_kept is not None and max_kept < 0:
        raise YOLOv2Error(f"Expected max_kept >= 0 or None, got {max_kept}.")
    return _blocked_nms(boxes, scores, classes, iou_threshold, len(boxes) if max_kept is None else max_kept)


class NMSTrace(NamedTuple):
    """What greedy NMS did to each box, one decision at a time.

    Attributes:
        order: (N,) indices of the boxes by decreasing score (ties: lower index first),
            the order in which NMS visits them.
        kept: (K,) indices of the kept boxes, by decreasing score (as :func:`batched_nms`).
        suppressed_by: (N,) for each box, the index of the kept box that removed it, or
            -1 for a kept box.
        iou: (N,) the IoU with that box (0 for a kept box).
    """

    order: Tensor
    kept: Tensor
    suppressed_by: Tensor
    iou: Tensor


def nms_trace(boxes: Tensor, scores: Tensor, iou_threshold: float, classes: Tensor | None = None) -> NMSTrace:
    """Greedy (class-wise) NMS written as the textbook loop, recording who removed whom.

    Visit the boxes by decreasing score; a box that no kept box has removed is
    kept, and it removes every later box of its class whose IoU with it is
    strictly above ``iou_threshold``. The kept boxes are exactly those of
    :func:`batched_nms` (or :func:`nms` when ``classes`` is None); this version
    holds the whole (N, N) IoU matrix, so it is for explaining a few hundred
    boxes, not for speed. The page "From 845 boxes to a few detections"
    (chapter 5) steps through it.

    Args:
        boxes: (N, 4) corners.
        scores: (N,) scores.
        iou_threshold: a box is removed by a kept box of its class overlapping it above this IoU.
        classes: (N,) integer class of each box; ``None``: one class.

    Returns:
        :class:`NMSTrace`.
    """
    _check_nms_inputs(boxes, scores)
    if classes is not None and (not isinstance(classes, Tensor) or classes.shape != scores.shape):
        got = tuple(classes.shape) if isinstance(classes, Tensor) else type(classes).__name__
        raise YOLOv2Error(f"Expected classes of shape ({boxes.shape[0]},), got {got}.")
    n = boxes.shape[0]
    order = torch.argsort(scores, descending=True, stable=True)  # (N,)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=boxes.device)
    iou = box_iou(boxes, boxes)  # (N, N)
    same = classes[:, None] == classes[None, :] if classes is not None else torch.ones_like(iou, dtype=torch.bool)
    suppressed_by = torch.full((n,), -1, dtype=torch.int64, device=boxes.device)
    by_iou = torch.zeros(n, dtype=iou.dtype, device=boxes.device)
    kept = []
    for i in order.tolist():
        if suppressed_by[i] >= 0:
            continue  # an earlier kept box removed it
        kept.append(i)
        hit = (iou[i] > iou_threshold) & same[i] & (rank > rank[i]) & (suppressed_by < 0)
        suppressed_by[hit] = i
        by_iou[hit] = iou[i, hit]
    kept_t = torch.tensor(kept, dtype=torch.int64, device=boxes.device)
    return NMSTrace(order, kept_t, suppressed_by, by_iou)
