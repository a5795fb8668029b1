"""The output feature map of YOLO v2 and its channel layout.

Chapter 4 (the output feature map) explains this module.

The detection head is a linear 1x1 convolution with ``A * (5 + C)`` output
channels: 125 for VOC (A = 5 anchors, C = 20 classes), 425 for COCO (C = 80).
Darknet orders the channels anchor by anchor; inside an anchor's block come the
fields ``x, y, w, h, objectness`` and then the ``C`` class scores::

    channel = a * (5 + C) + field

Every function here is a *view*: reshaping and permuting, never copying, so
that writing through a field writes the raw tensor.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from .errors import YOLOv2Error

__all__ = [
    "FIELDS",
    "HeadFields",
    "num_channels",
    "channel_index",
    "head_view",
    "raw_from_view",
    "split_fields",
]

#: The five box fields that precede the class scores in each anchor's block.
FIELDS: tuple[str, ...] = ("x", "y", "w", "h", "objectness")


class HeadFields(NamedTuple):
    """The named fields of a head view; every entry is a view of the raw tensor.

    Attributes:
        tx, ty: (B, H, W, A) raw centre offsets (sigmoid gives the in-cell offset).
        tw, th: (B, H, W, A) raw log size ratios to the anchor.
        to: (B, H, W, A) raw objectness logit.
        class_logits: (B, H, W, A, C) raw class scores (softmax gives probabilities).
    """

    tx: Tensor
    ty: Tensor
    tw: Tensor
    th: Tensor
    to: Tensor
    class_logits: Tensor


def _check_positive_int(value: int, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise YOLOv2Error(f"Expected {name} to be an integer >= {minimum}, got {value!r}.")


def num_channels(num_anchors: int, num_classes: int) -> int:
    """Number of output channels of the head: ``A * (5 + C)``.

    Args:
        num_anchors: A, anchors per cell.
        num_classes: C, object classes.

    Returns:
        ``num_anchors * (5 + num_classes)`` (125 for VOC, 425 for COCO).
    """
    _check_positive_int(num_anchors, "num_anchors")
    _check_positive_int(num_classes, "num_classes", minimum=0)
    return num_anchors * (len(FIELDS) + num_classes)


def channel_index(
    anchor: int, field: str | int, num_classes: int, *, num_anchors: int | None = None
) -> int:
    """Index of one channel of the raw head tensor.

    Args:
        anchor: anchor index ``a`` (0-based).
        field: a name from :data:`FIELDS`, ``"class:k"`` for class ``k``, or an int
            offset inside the anchor's block (0..4 box fields, 5.. classes).
        num_classes: C.
        num_anchors: if given, ``anchor`` is checked against it.

    Returns:
        ``anchor * (5 + num_classes) + offset``.
    """
    _check_positive_int(num_classes, "num_classes", minimum=0)
    _check_positive_int(anchor, "anchor", minimum=0)
    if num_anchors is not None:
        _check_positive_int(num_anchors, "num_anchors")
        if anchor >= num_anchors:
            raise YOLOv2Error(f"anchor {anchor} out of range for num_anchors={num_anchors}.")
    block = len(FIELDS) + num_classes
    if isinstance(field, bool):
        raise YOLOv2Error(f"Expected field to be a name or an int, got {field!r}.")
    if isinstance(field, int):
        offset = field
    elif isinstance(field, str) and field in FIELDS:
        offset = FIELDS.index(field)
    elif isinstance(field, str) and field.startswith("class:"):
        try:
            k = int(field[len("class:"):])
        except ValueError:
            raise YOLOv2Error(f"Expected field 'class:k' with an integer k, got {field!r}.") from None
        if not 0 <= k < num_classes:
            raise YOLOv2Error(f"class {k} out of range for num_classes={num_classes}.")
        offset = len(FIELDS) + k
    else:
        raise YOLOv2Error(f"Unknown field {field!r}; expected one of {FIELDS}, 'class:k' or an int.")
    if not 0 <= offset < block:
        raise YOLOv2Error(f"field offset {offset} out of range [0, {block}) for num_classes={num_classes}.")
    return anchor * block + offset


def head_view(raw: Tensor, num_anchors: int) -> Tensor:
    """View the raw head output as one vector of ``5 + C`` numbers per cell and anchor.

    Args:
        raw: (B, A*(5+C), H, W) output of the head.
        num_anchors: A.

    Returns:
        (B, H, W, A, 5+C) view sharing ``raw``'s storage (no copy; not contiguous).
    """
    _check_positive_int(num_anchors, "num_anchors")
    if not isinstance(raw, Tensor) or raw.dim() != 4:
        shape = tuple(raw.shape) if isinstance(raw, Tensor) else type(raw).__name__
        raise YOLOv2Error(f"Expected raw of shape (B, A*(5+C), H, W), got {shape}.")
    B, channels, H, W = raw.shape
    if channels % num_anchors != 0 or channels // num_anchors < len(FIELDS):
        raise YOLOv2Error(
            f"raw has {channels} channels, which is not num_anchors * (5 + num_classes) "
            f"for num_anchors={num_anchors}."
        )
    per_anchor = channels // num_anchors  # 5 + C
    view = raw.view(B, num_anchors, per_anchor, H, W)  # (B, A, 5+C, H, W)
    return view.permute(0, 3, 4, 1, 2)  # (B, H, W, A, 5+C)


def raw_from_view(view: Tensor) -> Tensor:
    """Inverse of :func:`head_view`.

    Args:
        view: (B, H, W, A, 5+C).

    Returns:
        (B, A*(5+C), H, W); a view when ``view`` came from :func:`head_view`
        (or is otherwise laid out compatibly), a copy otherwise.
    """
    if not isinstance(view, Tensor) or view.dim() != 5 or view.shape[-1] < len(FIELDS):
        shape = tuple(view.shape) if isinstance(view, Tensor) else type(view).__name__
        raise YOLOv2Error(f"Expected view of shape (B, H, W, A, 5+C), got {shape}.")
    B, H, W, A, per_anchor = view.shape
    raw = view.permute(0, 3, 4, 1, 2)  # (B, A, 5+C, H, W)
    return raw.reshape(B, A * per_anchor, H, W)


def split_fields(view: Tensor) -> HeadFields:
    """Name the fields of a head view.

    Args:
        view: (B, H, W, A, 5+C), for example from :func:`head_view`.

    Returns:
        :class:`HeadFields` of views: ``tx, ty, tw, th, to`` (B, H, W, A) and
        ``class_logits`` (B, H, W, A, C).
    """
    if not isinstance(view, Tensor) or view.dim() != 5 or view.shape[-1] < len(FIELDS):
        shape = tuple(view.shape) if isinstance(view, Tensor) else type(view).__name__
        raise YOLOv2Error(f"Expected view of shape (B, H, W, A, 5+C), got {shape}.")
    return HeadFields(
        tx=view[..., 0],
        ty=view[..., 1],
        tw=view[..., 2],
        th=view[..., 3],
        to=view[..., 4],
        class_logits=view[..., 5:],
    )
