"""Direct location prediction: from the raw head tensor to boxes and detections.

Chapter 5 (direct location prediction) explains :func:`decode_boxes` and
:func:`encode_boxes`; its section "From 845 boxes to a few detections" takes
:func:`class_scores`, :func:`candidates` and the NMS of :func:`postprocess` step by
step; chapter 9 (detections on real images) uses :func:`postprocess` and
:func:`letterbox_params`.

For the cell in column ``c_x`` and row ``c_y`` of an ``H x W`` grid and an
anchor (prior) of size ``(p_w, p_h)`` in grid-cell units, YOLO v2 predicts
``t_x, t_y, t_w, t_h`` and reads the box as (paper, eq. 3; darknet's
``get_region_box``)::

    b_x = (sigmoid(t_x) + c_x) / W        b_w = p_w * exp(t_w) / W
    b_y = (sigmoid(t_y) + c_y) / H        b_h = p_h * exp(t_h) / H

so every box is in normalised ``cxcywh`` image units and its centre cannot
leave the cell that predicts it.

``location="offset"`` reads the same four numbers the unconstrained way of
Faster R-CNN's region proposal network, the alternative the paper rejects: the
anchor sits at the centre of its cell and ``t_x, t_y`` move it by multiples of
its own size, with no sigmoid, so the centre can land anywhere in the image::

    b_x = (c_x + 0.5 + t_x * p_w) / W     b_w = p_w * exp(t_w) / W
    b_y = (c_y + 0.5 + t_y * p_h) / H     b_h = p_h * exp(t_h) / H

Every function that reads or writes boxes takes ``location``
(:data:`LOCATIONS`); a detector records its own in ``YOLOv2Config.location``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from .boxes import batched_nms, cxcywh_to_xyxy
from .errors import YOLOv2Error

__all__ = [
    "LOCATIONS",
    "Decoded",
    "Letterbox",
    "cell_offsets",
    "check_location",
    "decode_boxes",
    "encode_boxes",
    "decode",
    "class_scores",
    "Candidates",
    "candidates",
    "letterbox_params",
    "letterbox_resized_size",
    "postprocess",
]


LOCATIONS = ("direct", "offset")
"""The readings of ``t_x, t_y``: YOLO v2's sigmoid offset in the cell, or the RPN-style offset."""


def check_location(location: str) -> str:
    """Check that ``location`` names one of the two readings of the box centre.

    Args:
        location: ``"direct"`` (YOLO v2's ``sigmoid(t_x) + c_x``) or ``"offset"``
            (the RPN-style ``c_x + 0.5 + t_x * p_w``).

    Returns:
        ``location`` itself.

    Raises:
        YOLOv2Error: any other value, with the allowed ones.
    """
    if not isinstance(location, str) or location not in LOCATIONS:
        raise YOLOv2Error(
            f"location must be one of {', '.join(map(repr, LOCATIONS))} (direct location prediction, or "
            f"the unconstrained RPN-style offset), got {location!r}."
        )
    return location


class Decoded(NamedTuple):
    """Decoded head output.

    Attributes:
        boxes: (B, H, W, A, 4) normalised ``cxcywh`` boxes.
        objectness: (B, H, W, A) probability that the anchor holds an object.
        class_probs: (B, H, W, A, C) class probabilities given an object.
    """

    boxes: Tensor
    objectness: Tensor
    class_probs: Tensor


class Letterbox(NamedTuple):
    """How an image sits inside a letterboxed network input.

    The image of size ``(w, h)`` is resized by ``scale`` to
    :func:`letterbox_resized_size` and pasted with its top-left corner at
    ``(pad_x, pad_y)`` of the input; a point ``x`` of the image lands at
    ``x * scale + pad_x``. Because the resized size is rounded to whole pixels,
    the exact factors are ``new_w / w`` and ``new_h / h`` (they differ from
    ``scale`` by less than half a pixel over the image); :func:`postprocess`
    undoes the letterbox with those exact factors.
    """

    scale: float
    pad_x: int
    pad_y: int


# ---------------------------------------------------------------- helpers


def _as_anchors(anchors: Tensor | Sequence[Sequence[float]], like: Tensor) -> Tensor:
    """(A, 2) anchors as a tensor of ``like``'s dtype; never moves a tensor across devices."""
    if isinstance(anchors, Tensor):
        if anchors.device != like.device:
            raise YOLOv2Error(
                f"Expected anchors on {like.device} (the device of the input), got {anchors.device}."
            )
        anchors = anchors.to(like.dtype)
    else:
        anchors = torch.as_tensor(anchors, dtype=like.dtype, device=like.device)
    if anchors.dim() != 2 or anchors.shape[1] != 2 or anchors.shape[0] == 0:
        raise YOLOv2Error(f"Expected anchors of shape (A, 2) with A >= 1, got {tuple(anchors.shape)}.")
    bad = (anchors <= 0).any(dim=1).nonzero().flatten()
    if bad.numel() > 0:
        raise YOLOv2Error(f"Anchor sizes must be positive; rows {bad.tolist()} are not: {anchors[bad].tolist()}.")
    return anchors


def _check_grid_tensor(t: Tensor, anchors: Tensor, name: str) -> None:
    if not isinstance(t, Tensor) or t.dim() < 4 or t.shape[-1] != 4:
        shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise YOLOv2Error(f"Expected {name} of shape (..., H, W, A, 4), got {shape}.")
    if not t.is_floating_point():
        raise YOLOv2Error(f"Expected {name} to be floating point, got {t.dtype}.")
    if t.shape[-2] != anchors.shape[0]:
        raise YOLOv2Error(
            f"{name} has {t.shape[-2]} anchors per cell (dim -2) but {anchors.shape[0]} anchors were given."
        )


def cell_offsets(height: int, width: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Column and row index of every cell, shaped to broadcast against (..., H, W, A).

    Args:
        height: H, rows of the grid.
        width: W, columns of the grid.
        dtype: dtype of the result (default: the default float dtype).
        device: device of the result.

    Returns:
        ``(c_x, c_y)``: (1, W, 1) column indices and (H, 1, 1) row indices.
    """
    c_x = torch.arange(width, dtype=dtype, device=device).view(1, width, 1)  # (1, W, 1)
    c_y = torch.arange(height, dtype=dtype, device=device).view(height, 1, 1)  # (H, 1, 1)
    return c_x, c_y


# ---------------------------------------------------------------- boxes


def decode_boxes(t: Tensor, anchors: Tensor | Sequence[Sequence[float]], location: str = "direct") -> Tensor:
    """Turn raw ``(t_x, t_y, t_w, t_h)`` into normalised ``cxcywh`` boxes.

    Args:
        t: (..., H, W, A, 4) raw box predictions.
        anchors: (A, 2) anchor widths and heights in grid-cell units.
        location: ``"direct"``, ``b_x = (sigmoid(t_x) + c_x) / W``, or ``"offset"``,
            ``b_x = (c_x + 0.5 + t_x p_w) / W`` (see the module docstring).

    Returns:
        (..., H, W, A, 4) boxes ``(b_x, b_y, b_w, b_h)`` in [0, 1] image units
        (sizes may exceed 1; with ``"offset"`` centres may leave the image).
    """
    check_location(location)
    anchors = _as_anchors(anchors, t) if isinstance(t, Tensor) else anchors
    _check_grid_tensor(t, anchors, "t")
    H, W = t.shape[-4], t.shape[-3]
    c_x, c_y = cell_offsets(H, W, dtype=t.dtype, device=t.device)
    if location == "direct":
        b_x = (torch.sigmoid(t[..., 0]) + c_x) / W  # (..., H, W, A)
        b_y = (torch.sigmoid(t[..., 1]) + c_y) / H
    else:  # the anchor centred in its cell, moved by t times its own size
        b_x = (c_x + 0.5 + t[..., 0] * anchors[:, 0]) / W  # (..., H, W, A)
        b_y = (c_y + 0.5 + t[..., 1] * anchors[:, 1]) / H
    b_w = anchors[:, 0] * torch.exp(t[..., 2]) / W
    b_h = anchors[:, 1] * torch.exp(t[..., 3]) / H
    return torch.stack((b_x, b_y, b_w, b_h), dim=-1)  # (..., H, W, A, 4)


def encode_boxes(boxes: Tensor, anchors: Tensor | Sequence[Sequence[float]], location: str = "direct") -> Tensor:
    """Exact inverse of :func:`decode_boxes`.

    Args:
        boxes: (..., H, W, A, 4) normalised ``cxcywh`` boxes; with ``"direct"`` the box
            at grid position (row i, column j) must have its centre strictly inside cell (i, j).
        anchors: (A, 2) anchor widths and heights in grid-cell units.
        location: ``"direct"`` or ``"offset"``, as for :func:`decode_boxes`.

    Returns:
        (..., H, W, A, 4) raw ``(t_x, t_y, t_w, t_h)`` with ``t_w = log(b_w * W / p_w)`` and
        ``t_x = logit(b_x * W - c_x)`` (direct) or ``t_x = (b_x * W - c_x - 0.5) / p_w`` (offset).

    Raises:
        ValueError: when a width or height is not positive, or (direct) a centre is not
            strictly inside its cell (the logit would be infinite).
    """
    check_location(location)
    anchors = _as_anchors(anchors, boxes) if isinstance(boxes, Tensor) else anchors
    _check_grid_tensor(boxes, anchors, "boxes")
    H, W = boxes.shape[-4], boxes.shape[-3]
    c_x, c_y = cell_offsets(H, W, dtype=boxes.dtype, device=boxes.device)
    offset_x = boxes[..., 0] * W - c_x  # (..., H, W, A), in (0, 1) when inside the cell
    offset_y = boxes[..., 1] * H - c_y
    offsets = torch.stack((offset_x, offset_y), dim=-1)
    if location == "offset":
        _check_sizes(boxes[..., 2:])
        t_xy = (offsets - 0.5) / anchors  # (..., H, W, A, 2): from the cell's centre, in anchor sizes
        return torch.cat((t_xy, _size_targets(boxes, anchors, H, W)), dim=-1)  # (..., H, W, A, 4)
    outside = ~((offsets > 0) & (offsets < 1)).all(dim=-1)
    if bool(outside.any()):
        where = outside.nonzero()[0].tolist()
        raise YOLOv2Error(
            f"Box centre outside its cell at index {where} of (..., H, W, A): in-cell offset "
            f"{offsets[tuple(where)].tolist()} is not strictly between 0 and 1."
        )
    _check_sizes(boxes[..., 2:])
    t_xy = torch.logit(offsets)
    return torch.cat((t_xy, _size_targets(boxes, anchors, H, W)), dim=-1)  # (..., H, W, A, 4)


def _check_sizes(sizes: Tensor) -> None:
    """Raise naming the first (..., H, W, A) index whose (w, h) is not positive."""
    bad_size = ~(sizes > 0).all(dim=-1)
    if bool(bad_size.any()):
        where = bad_size.nonzero()[0].tolist()
        raise YOLOv2Error(
            f"Non-positive box size at index {where} of (..., H, W, A): (w, h) = {sizes[tuple(where)].tolist()}."
        )


def _size_targets(boxes: Tensor, anchors: Tensor, H: int, W: int) -> Tensor:
    """(..., H, W, A, 2) ``(t_w, t_h) = log(b_w W / p_w), log(b_h H / p_h)``: the same for both locations."""
    t_w = torch.log(boxes[..., 2] * W / anchors[:, 0])
    t_h = torch.log(boxes[..., 3] * H / anchors[:, 1])
    return torch.stack((t_w, t_h), dim=-1)


def decode(raw: Tensor, anchors: Tensor | Sequence[Sequence[float]], num_classes: int,
           location: str = "direct") -> Decoded:
    """Decode the raw head tensor into boxes, objectness and class probabilities.

    Args:
        raw: (B, A*(5+C), H, W) head output, darknet channel order (see ``layout``).
        anchors: (A, 2) anchors in grid-cell units.
        num_classes: C.
        location: how ``t_x, t_y`` are read, ``"direct"`` or ``"offset"`` (:func:`decode_boxes`).

    Returns:
        :class:`Decoded` with boxes (B, H, W, A, 4) normalised ``cxcywh``, objectness
        (B, H, W, A) after a sigmoid and class_probs (B, H, W, A, C) after a softmax.
    """
    check_location(location)
    if not isinstance(raw, Tensor) or raw.dim() != 4:
        shape = tuple(raw.shape) if isinstance(raw, Tensor) else type(raw).__name__
        raise YOLOv2Error(f"Expected raw of shape (B, A*(5+C), H, W), got {shape}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise YOLOv2Error(f"Expected num_classes to be an integer >= 1, got {num_classes!r}.")
    anchors = _as_anchors(anchors, raw)
    B, channels, H, W = raw.shape
    A = anchors.shape[0]
    if channels != A * (5 + num_classes):
        raise YOLOv2Error(
            f"raw has {channels} channels but {A} anchors and {num_classes} classes "
            f"need A*(5+C) = {A * (5 + num_classes)}."
        )
    # The same view as layout.head_view (geometry modules import only boxes).
    view = raw.view(B, A, 5 + num_classes, H, W).permute(0, 3, 4, 1, 2)  # (B, H, W, A, 5+C)
    # A channels-last head gives this layout as it is; from NCHW one copy is cheaper than a
    # softmax over a strided last dimension (7x slower at 416 with 20 classes).
    view = view.contiguous()
    boxes = decode_boxes(view[..., :4], anchors, location)
    objectness = torch.sigmoid(view[..., 4])
    class_probs = torch.softmax(view[..., 5:], dim=-1)
    return Decoded(boxes, objectness, class_probs)


def class_scores(decoded: Decoded) -> Tensor:
    """The class-specific score of every anchor and class: objectness times the class probability.

    ``Pr(object) * Pr(class | object)``, the number a detection is ranked and
    thresholded by (the section "From 845 boxes to a few detections" of chapter 5).

    Args:
        decoded: the output of :func:`decode`.

    Returns:
        (B, H, W, A, C) scores in [0, 1].
    """
    return decoded.objectness.unsqueeze(-1) * decoded.class_probs  # (B, H, W, A, C)


class Candidates(NamedTuple):
    """The (box, class) pairs of one image whose score passed the threshold, before NMS.

    Attributes:
        boxes: (N, 4) ``xyxy`` corners, in the image's pixels when an image size was
            given, else normalised.
        scores: (N,) class-specific scores.
        classes: (N,) int64 class of each pair.
        anchor_index: (N,) which of the H*W*A boxes, in (row, column, anchor) order.
    """

    boxes: Tensor
    scores: Tensor
    classes: Tensor
    anchor_index: Tensor


def candidates(
    raw: Tensor,
    anchors: Tensor | Sequence[Sequence[float]],
    num_classes: int,
    conf_threshold: float,
    *,
    image_size: Sequence[float] | None = None,
    index: int = 0,
    location: str = "direct",
) -> Candidates:
    """Every (box, class) pair of one image whose class-specific score is above the threshold.

    The first half of :func:`postprocess` (which then runs class-wise NMS), for one
    image stretched to the network input; explained in the section "From 845
    boxes to a few detections" of chapter 5.

    Args:
        raw: (B, A*(5+C), H, W) head output.
        anchors: (A, 2) anchors in grid-cell units.
        num_classes: C.
        conf_threshold: keep pairs with a score strictly above this.
        image_size: (width, height) of the image in pixels; ``None`` keeps normalised boxes.
        index: which image of the batch.
        location: ``"direct"`` or ``"offset"``, as for :func:`decode_boxes`.

    Returns:
        :class:`Candidates`, in (row, column, anchor, class) order.
    """
    decoded = decode(raw, anchors, num_classes, location)
    if not 0 <= index < raw.shape[0]:
        raise YOLOv2Error(f"index {index} out of range for a batch of {raw.shape[0]}.")
    scores = class_scores(decoded)[index].reshape(-1, num_classes)  # (H*W*A, C)
    boxes = cxcywh_to_xyxy(decoded.boxes[index]).reshape(-1, 4)  # (H*W*A, 4)
    if image_size is not None:
        w, h = _check_size(image_size, "image_size")
        boxes = boxes * boxes.new_tensor([w, h, w, h])
    box_idx, cls = (scores > conf_threshold).nonzero(as_tuple=True)
    return Candidates(boxes[box_idx], scores[box_idx, cls], cls, box_idx)


# ---------------------------------------------------------------- letterbox


def _check_size(size: Sequence[float], name: str) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in size)
    except (TypeError, ValueError):
        raise YOLOv2Error(f"Expected {name} as (width, height), got {size!r}.") from None
    if not (w > 0 and h > 0):
        raise YOLOv2Error(f"Expected positive {name} (width, height), got {size!r}.")
    return w, h


def letterbox_params(image_size: Sequence[float], input_size: Sequence[float]) -> Letterbox:
    """Scale and padding that fit an image inside the network input, keeping its aspect.

    The image is resized by ``scale = min(W_in / w, H_in / h)`` to
    :func:`letterbox_resized_size` and centred; the padding on the left and top
    is rounded down, as darknet's ``letterbox_image`` does.

    Args:
        image_size: (w, h) of the original image in pixels.
        input_size: (W_in, H_in) of the network input in pixels.

    Returns:
        :class:`Letterbox` ``(scale, pad_x, pad_y)``.
    """
    new_w, new_h = letterbox_resized_size(image_size, input_size)
    w, h = _check_size(image_size, "image_size")
    w_in, h_in = _check_size(input_size, "input_size")
    scale = min(w_in / w, h_in / h)
    return Letterbox(scale, int(w_in - new_w) // 2, int(h_in - new_h) // 2)


def letterbox_resized_size(image_size: Sequence[float], input_size: Sequence[float]) -> tuple[int, int]:
    """Size (new_w, new_h) of the image once resized for the letterbox.

    Args:
        image_size: (w, h) of the original image.
        input_size: (W_in, H_in) of the network input.

    Returns:
        ``(round(w * scale), round(h * scale))``, at least 1 and at most the input size.
    """
    w, h = _check_size(image_size, "image_size")
    w_in, h_in = _check_size(input_size, "input_size")
    scale = min(w_in / w, h_in / h)
    new_w = min(max(1, round(w * scale)), int(w_in))
    new_h = min(max(1, round(h * scale)), int(h_in))
    return new_w, new_h


# ---------------------------------------------------------------- detections


_PREFIX_START = 2  # the first prefix of candidates looked at is this many times top_k


def _first_by_score(scores: Tensor, m: int) -> Tensor:
    """Indices of the first ``m`` scores in (score descending, index ascending) order, sorted by index.

    A partial selection (``topk``) and the ties at the cut taken by lowest index:
    the same set as the first ``m`` of a stable descending sort, at a tenth of its cost.
    """
    kth = torch.topk(scores, m, sorted=False).values.min()  # the m-th largest score
    above = (scores > kth).nonzero().flatten()  # fewer than m
    ties = (scores == kth).nonzero().flatten()[: m - above.shape[0]]
    return torch.cat((above, ties)).sort().values


def _classwise_nms_top_k(
    boxes: Tensor, box_idx: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float, top_k: int | None
) -> Tensor:
    """:func:`~yolov2_lib.boxes.batched_nms` with ``max_kept=top_k``, looking only as far as it must.

    A candidate's fate depends only on the higher-scored candidates of its class
    (ties: lower index first). So the boxes kept among the first ``m`` candidates
    in (score descending, index ascending) order are exactly the first kept boxes
    of the whole set: once ``top_k`` are kept there, the rest cannot change the
    answer. The prefix starts at ``2 * top_k`` candidates and grows (at least
    doubling) until that happens or it holds them all. With a low threshold (0.005 for VOC mAP) an
    image can have all ``H*W*A*C`` pairs as candidates (16,900 at 416 for VOC),
    of which 100 are kept: there this is many times faster, with the same result.

    Args:
        boxes: (M, 4) corners of every box of the image.
        box_idx: (N,) the box of each candidate (only the boxes looked at are gathered).
        scores: (N,) scores of the candidates (finite: they passed the threshold).
        classes: (N,) integer classes of the candidates.
        iou_threshold: suppress boxes of the same class with IoU above this value.
        top_k: keep at most this many (``None``: all, and no shortcut).

    Returns:
        (K,) int64 indices into the candidates of the kept ones, by decreasing score.
    """
    n = scores.shape[0]
    if top_k is None or top_k == 0 or n <= 2 * _PREFIX_START * top_k:
        return batched_nms(boxes[box_idx], scores, classes, iou_threshold, max_kept=top_k)
    m = _PREFIX_START * top_k
    while True:
        prefix = _first_by_score(scores, m) if m < n else torch.arange(n, device=scores.device)
        keep = batched_nms(boxes[box_idx[prefix]], scores[prefix], classes[prefix], iou_threshold, max_kept=top_k)
        if keep.shape[0] >= top_k or m >= n:
            return prefix[keep]
        # Too few kept: aim the next prefix at top_k from the share kept in this one.
        m = max(2 * m, int(1.25 * m * top_k / max(keep.shape[0], 1)))


def _image_sizes(image_sizes: Sequence[Sequence[float]] | Tensor, batch: int) -> list[tuple[float, float]]:
    if isinstance(image_sizes, Tensor):
        image_sizes = image_sizes.tolist()
    sizes = list(image_sizes)
    if len(sizes) != batch:
        raise YOLOv2Error(f"Expected {batch} image_sizes (one (width, height) per image), got {len(sizes)}.")
    return [_check_size(s, f"image_sizes[{i}]") for i, s in enumerate(sizes)]


def postprocess(
    raw: Tensor,
    anchors: Tensor | Sequence[Sequence[float]],
    num_classes: int,
    *,
    conf_threshold: float = 0.005,
    nms_threshold: float = 0.45,
    top_k: int | None = 100,
    input_size: Sequence[float] | None = None,
    image_sizes: Sequence[Sequence[float]] | Tensor | None = None,
    letterbox: bool = False,
    clip: bool = True,
    location: str = "direct",
) -> list[Tensor]:
    """Detections per image: scores, threshold, class-wise NMS, top-k, original pixels.

    As in darknet, every (box, class) pair whose score
    ``objectness * P(class | object)`` exceeds ``conf_threshold`` is a candidate,
    so one box can be reported for several classes.

    Args:
        raw: (B, A*(5+C), H, W) head output.
        anchors: (A, 2) anchors in grid-cell units.
        num_classes: C.
        conf_threshold: keep pairs with score strictly above this.
        nms_threshold: class-wise NMS suppresses IoU above this.
        top_k: keep at most this many detections per image (``None``: all).
        input_size: (W_in, H_in) network input in pixels; needed when ``letterbox``.
        image_sizes: (width, height) of each original image, a list or a (B, 2)
            tensor; ``None`` returns boxes in normalised [0, 1] input units.
        letterbox: the input held the image letterboxed (see :func:`letterbox_params`);
            undo scale and padding. Otherwise the image was stretched to the input.
        clip: clip boxes to the image (to [0, 1] when ``image_sizes`` is None).
        location: how the detector reads ``t_x, t_y``, ``"direct"`` or ``"offset"``
            (:func:`decode_boxes`; a model's ``config.location``).

    Returns:
        One (N_i, 6) tensor per image, rows ``(x1, y1, x2, y2, score, class)`` sorted
        by decreasing score, on ``raw``'s device and dtype.
    """
    if top_k is not None and top_k < 0:
        raise YOLOv2Error(f"Expected top_k >= 0 or None, got {top_k}.")
    decoded = decode(raw, anchors, num_classes, location)
    B = raw.shape[0]
    sizes = _image_sizes(image_sizes, B) if image_sizes is not None else None
    if letterbox and sizes is not None:
        if input_size is None:
            raise YOLOv2Error("letterbox=True needs input_size=(W_in, H_in) to undo the padding.")
        w_in, h_in = _check_size(input_size, "input_size")

    boxes_xyxy = cxcywh_to_xyxy(decoded.boxes).reshape(B, -1, 4)  # (B, H*W*A, 4)
    results = []
    for b in range(B):
        # Scores per image and only the boxes NMS looks at: the tensors stay under the size at
        # which torch splits an op over threads (on a busy CPU each such op waits milliseconds
        # for a core; at 416 a whole-batch score tensor has 135,200 entries, an image 16,900).
        scores = (decoded.objectness[b].unsqueeze(-1) * decoded.class_probs[b]).reshape(-1, num_classes)
        passed = scores > conf_threshold
        box_idx, cls = passed.nonzero(as_tuple=True)  # candidate pairs, row-major
        cand_scores = torch.masked_select(scores, passed)  # (N,) in the same order; scores[passed] is threaded
        keep = _classwise_nms_top_k(boxes_xyxy[b], box_idx, cand_scores, cls, nms_threshold, top_k)
        det_boxes = boxes_xyxy[b, box_idx[keep]]  # (N_b, 4), by decreasing score
        if sizes is None:
            if clip:
                det_boxes = det_boxes.clamp(0.0, 1.0)
        else:
            w, h = sizes[b]
            if letterbox:
                _, pad_x, pad_y = letterbox_params((w, h), (w_in, h_in))
                new_w, new_h = letterbox_resized_size((w, h), (w_in, h_in))
                input_scale = det_boxes.new_tensor([w_in, h_in, w_in, h_in])
                pad = det_boxes.new_tensor([pad_x, pad_y, pad_x, pad_y])
                resize = det_boxes.new_tensor([new_w / w, new_h / h, new_w / w, new_h / h])
                det_boxes = (det_boxes * input_scale - pad) / resize  # input pixels -> image pixels
            else:
                det_boxes = det_boxes * det_boxes.new_tensor([w, h, w, h])
            if clip:
                upper = det_boxes.new_tensor([w, h, w, h])
                det_boxes = torch.minimum(det_boxes.clamp(min=0.0), upper)
        det = torch.cat(
            (det_boxes, cand_scores[keep, None], cls[keep, None].to(det_boxes.dtype)), dim=1
        )  # (N_b, 6)
        results.append(det)
    return results
