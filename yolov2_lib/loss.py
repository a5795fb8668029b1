"""The YOLO v2 loss: darknet's region layer, term by term.

Chapter 6 (the loss) explains this module.

The paper never writes its loss down; the definition is darknet's
``forward_region_layer`` (``src/region_layer.c``), which does not compute a
loss at all but a ``delta`` (minus the gradient) for every output number.
:class:`YOLOv2Loss` is the loss whose gradient *is* that delta. For an image
with ``H x W`` cells and ``A`` anchors per cell:

- **No object.** Every anchor's objectness ``sigmoid(t_o)`` is pushed to 0 with
  weight ``noobject_scale``, unless its predicted box overlaps some ground
  truth of the image with IoU above ``thresh`` (0.6): such an anchor found an
  object, it just is not the responsible one, so it is left alone.
- **Prior warm-up.** While fewer than ``warmup_images`` (12,800) images have
  been seen, every anchor is also pulled to its prior with weight 0.01: centre
  to the middle of its cell (``sigmoid(t_x) = sigmoid(t_y) = 0.5``) and size to
  the anchor (``t_w = t_h = 0``).
- **Responsible anchor.** A ground truth ``(g_x, g_y, g_w, g_h)`` (normalised
  ``cxcywh``) belongs to the cell ``(i, j) = (floor(g_x W), floor(g_y H))`` that
  holds its centre, and to the anchor of that cell whose shape best matches its
  own (highest shape-only IoU, ``bias_match=1``; the first on ties). That
  anchor learns:

  * coordinates, weight ``coord_scale * (2 - g_w g_h)`` (small boxes count
    more): ``sigmoid(t_x) -> g_x W - i``, ``sigmoid(t_y) -> g_y H - j``,
    ``t_w -> log(g_w W / p_w)``, ``t_h -> log(g_h H / p_h)``;
  * objectness, weight ``object_scale``: ``sigmoid(t_o) -> IoU`` of its
    predicted box with the truth (``rescore``; a constant target), or 1;
  * classes, weight ``class_scale``: softmax cross-entropy.

  These replace (do not add to) the no-object and warm-up terms of that
  anchor. When two truths of one image pick the same anchor of the same cell,
  the later one in the list wins, as darknet overwrites the delta.

**Value and gradient.** Darknet's ``delta`` for a squared-error term on a
quantity ``q`` (after the sigmoid for x, y and objectness) is
``scale * (target - q)``, times ``sigmoid'`` where a sigmoid was applied; for the
classes it is ``scale * (onehot - softmax)``, passed to the logits unchanged.
So each term here is ``0.5 * scale * (target - q)^2`` and the class term is
``class_scale * cross_entropy``: their gradients with respect to the raw head
output are exactly ``-delta``. The total is summed over the batch and divided
by the batch size B, so ``d total / d output = -delta / B`` (tested in float64
against a loop transcription of darknet). The *value* therefore differs from
the "cost" darknet prints (the sum of squared deltas); only the gradient, which
is what trains the network, is darknet's.

Two small departures, both documented where they matter: a centre exactly at
``1.0`` falls in the last cell (darknet would index past the grid), and a
truth with ``g_x = 0`` is a box like any other (darknet reads it as the end of
the list).

**The RPN-style ablation.** With ``location="offset"`` (see :mod:`yolov2_lib.decode`)
the centre is read without a sigmoid, ``b_x = (c_x + 0.5 + t_x p_w) / W``, and the
terms that involve it change accordingly: the responsible anchor regresses the raw
``t_x -> (g_x W - i - 0.5) / p_w`` (likewise ``t_y``) with the same weight and the
same ``0.5 * scale * (target - t_x)^2`` form, the warm-up pulls ``t_x, t_y`` to 0
(the anchor's centre), and the IoUs that decide the ignored anchors and the
rescore target use boxes decoded the same way. Everything else is as above.

Note on ``seen``: darknet increments its image counter *before* the forward
pass, so to match it exactly pass the number of images including the current
batch.
"""

from __future__ import annotations

from itertools import accumulate
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .boxes import aligned_box_iou, box_iou, cxcywh_to_xyxy, wh_iou
from .decode import check_location, decode_boxes
from .errors import YOLOv2Error
from .layout import FIELDS, HeadFields, head_view

__all__ = ["RegionStats", "LossOutput", "Assignment", "YOLOv2Loss", "responsible_anchors", "central_differences",
           "loss_with_size_on_exp"]


class RegionStats(NamedTuple):
    """The diagnostics darknet prints after each region layer forward (no gradient).

    Attributes:
        avg_iou: mean IoU of each truth with its responsible anchor's box.
        avg_class: mean probability given to the true class by that anchor.
        avg_obj: mean objectness of responsible anchors.
        avg_noobj: mean objectness of all anchors.
        recall: fraction of truths whose responsible box has IoU > 0.5.
        count: number of truths in the batch (the averages are NaN when 0).
    """

    avg_iou: Tensor
    avg_class: Tensor
    avg_obj: Tensor
    avg_noobj: Tensor
    recall: Tensor
    count: int

    def __str__(self) -> str:
        return (
            f"Region Avg IOU: {float(self.avg_iou):f}, Class: {float(self.avg_class):f}, "
            f"Obj: {float(self.avg_obj):f}, No Obj: {float(self.avg_noobj):f}, "
            f"Avg Recall: {float(self.recall):f},  count: {self.count}"
        )


class LossOutput(NamedTuple):
    """The loss and its breakdown; every term is already divided by the batch size.

    Attributes:
        total: scalar to call ``backward()`` on; the sum of the five terms.
        coord: coordinates of responsible anchors.
        obj: objectness of responsible anchors.
        noobj: objectness of the other anchors that overlap no truth above ``thresh``.
        prior: pull of the other anchors to their priors (0 after the warm-up).
        cls: class cross-entropy of responsible anchors.
        stats: darknet's diagnostics, :class:`RegionStats`.
    """

    total: Tensor
    coord: Tensor
    obj: Tensor
    noobj: Tensor
    prior: Tensor
    cls: Tensor
    stats: RegionStats


class Assignment(NamedTuple):
    """How the loss labels the anchors of a batch (:meth:`YOLOv2Loss.assign`; chapter 6).

    Attributes:
        at: ``(image, row, column, anchor)``, four (T,) index tensors: each truth's
            responsible anchor.
        wins: (T,) 1 for a truth that keeps its anchor, 0 for one that a later truth
            of the same anchor overwrote.
        responsible: (B, H, W, A) bool, anchors that some truth claimed.
        ignored: (B, H, W, A) bool, the other anchors whose box overlaps a truth
            above ``thresh``: no objectness penalty.
        negative: (B, H, W, A) bool, all the rest: objectness pushed to 0.
        iou: (T,) IoU of each responsible anchor's box with its truth (the rescore target).
    """

    at: tuple[Tensor, Tensor, Tensor, Tensor]
    wins: Tensor
    responsible: Tensor
    ignored: Tensor
    negative: Tensor
    iou: Tensor


def responsible_anchors(boxes: Tensor, anchors: Tensor, H: int, W: int) -> tuple[Tensor, Tensor, Tensor]:
    """Where each object is predicted: the cell holding its centre and, there, the anchor whose
    shape fits it best (shape-only IoU; the first on ties). Darknet's rule, chapters 4 and 6.

    A centre on the image's far edge (``cx == 1``) belongs to the last cell.

    Args:
        boxes: (T, 4) normalised ``(cx, cy, w, h)``.
        anchors: (A, 2) anchor ``(w, h)`` in grid cells.
        H, W: the grid.

    Returns:
        ``(row, column, anchor)``, three (T,) index tensors.
    """
    gx, gy, gw, gh = boxes.unbind(-1)  # (T,)
    gi = (gx * W).long().clamp(max=W - 1)
    gj = (gy * H).long().clamp(max=H - 1)
    best_a = wh_iou(torch.stack((gw * W, gh * H), -1), anchors.to(boxes.dtype)).argmax(-1)
    return gj, gi, best_a


class YOLOv2Loss(nn.Module):
    """Darknet's region-layer loss for YOLO v2 (see the module docstring).

    Args:
        anchors: (A, 2) anchor widths and heights in grid-cell units.
        num_classes: C.
        object_scale: weight of the responsible anchors' objectness (5).
        noobject_scale: weight of the other anchors' objectness (1).
        class_scale: weight of the class cross-entropy (1).
        coord_scale: weight of the coordinates, times ``2 - g_w g_h`` (1).
        thresh: an anchor whose box overlaps a truth with IoU above this gets no
            no-object penalty (0.6).
        rescore: objectness target of a responsible anchor is its IoU with the
            truth (True) or 1 (False).
        warmup_images: pull anchors to their priors while ``seen`` is below this (12,800).
        prior_scale: weight of that pull (0.01).
        location: how ``t_x, t_y`` place the centre: ``"direct"`` (YOLO v2's
            ``sigmoid(t_x) + c_x``, darknet's loss) or ``"offset"`` (RPN-style, see
            the module docstring); the model's ``config.location``.

    Call it as ``loss(output, targets, seen)`` with the raw head output
    (B, A*(5+C), H, W), a list of B tensors (N_i, 5) of rows
    ``(class, cx, cy, w, h)`` normalised to [0, 1], and the number of images
    trained on so far. Any grid size works (multi-scale training). The loss is
    computed in float32 (float64 for float64 input), outside autocast.
    """

    anchors: Tensor

    def __init__(
        self,
        anchors: Tensor | Sequence[Sequence[float]],
        num_classes: int,
        object_scale: float = 5.0,
        noobject_scale: float = 1.0,
        class_scale: float = 1.0,
        coord_scale: float = 1.0,
        thresh: float = 0.6,
        rescore: bool = True,
        warmup_images: int = 12800,
        prior_scale: float = 0.01,
        location: str = "direct",
    ) -> None:
        super().__init__()
        self.location = check_location(location)
        anchors = torch.as_tensor(anchors, dtype=torch.float64).detach().clone()
        if anchors.dim() != 2 or anchors.shape[1] != 2 or anchors.shape[0] == 0:
            raise YOLOv2Error(f"Expected anchors of shape (A, 2) with A >= 1, got {tuple(anchors.shape)}.")
        if not bool((anchors > 0).all()) or not bool(torch.isfinite(anchors).all()):
            raise YOLOv2Error(f"Expected positive finite anchor sizes, got {anchors.tolist()}.")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise YOLOv2Error(f"Expected num_classes to be an integer >= 1, got {num_classes!r}.")
        self.register_buffer("anchors", anchors)  # (A, 2), moves with .to(device)
        self.num_classes = num_classes
        self.object_scale = float(object_scale)
        self.noobject_scale = float(noobject_scale)
        self.class_scale = float(class_scale)
        self.coord_scale = float(coord_scale)
        self.thresh = float(thresh)
        self.rescore = bool(rescore)
        self.warmup_images = int(warmup_images)
        self.prior_scale = float(prior_scale)

    @property
    def num_anchors(self) -> int:
        return self.anchors.shape[0]

    def extra_repr(self) -> str:
        return (
            f"num_anchors={self.num_anchors}, num_classes={self.num_classes}, "
            f"object_scale={self.object_scale}, noobject_scale={self.noobject_scale}, "
            f"class_scale={self.class_scale}, coord_scale={self.coord_scale}, thresh={self.thresh}, "
            f"rescore={self.rescore}, warmup_images={self.warmup_images}, location={self.location!r}"
        )

    def forward(self, output: Tensor, targets: Sequence[Tensor], seen: int) -> LossOutput:
        """The loss of one batch.

        Args:
            output: (B, A*(5+C), H, W) raw head output.
            targets: B tensors (N_i, 5), rows ``(class, cx, cy, w, h)`` in [0, 1]
                image units, on ``output``'s device; (0, 5) for an image without objects.
            seen: images trained on so far (the warm-up runs while ``seen < warmup_images``).

        Returns:
            :class:`LossOutput`: ``total`` and its terms, each summed over the batch and
            divided by B, plus :class:`RegionStats`.
        """
        A, C = self.num_anchors, self.num_classes
        if not isinstance(output, Tensor) or output.dim() != 4 or output.shape[1] != A * (5 + C):
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise YOLOv2Error(f"Expected output of shape (B, {A * (5 + C)}, H, W) = (B, A*(5+C), H, W), got {shape}.")
        if output.shape[0] == 0:
            raise YOLOv2Error("Expected a batch of at least one image, got B = 0.")
        if not output.is_floating_point():
            raise YOLOv2Error(f"Expected a floating-point output, got {output.dtype}.")
        if self.anchors.device != output.device:
            raise YOLOv2Error(
                f"The loss's anchors are on {self.anchors.device} but output is on {output.device}; "
                f"move the loss with loss.to(device)."
            )
        if isinstance(seen, bool) or not isinstance(seen, int) or seen < 0:
            raise YOLOv2Error(f"Expected seen to be a non-negative integer, got {seen!r}.")
        dtype = torch.float64 if output.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=output.device.type, enabled=False):
            return self._loss(output.to(dtype), targets, seen)

    # ------------------------------------------------------------------ pieces

    def _targets(self, targets: Sequence[Tensor], B: int, like: Tensor) -> tuple[Tensor, Tensor, list[int]]:
        """Check and concatenate the targets: (T, 5) rows, (T,) image index, per-image counts."""
        if isinstance(targets, Tensor) or len(targets) != B:
            got = f"a tensor of shape {tuple(targets.shape)}" if isinstance(targets, Tensor) else f"{len(targets)}"
            raise YOLOv2Error(f"Expected targets as a list of {B} tensors (one per image), got {got}.")
        rows = []
        for b, t in enumerate(targets):
            if not isinstance(t, Tensor):
                raise YOLOv2Error(f"Expected targets[{b}] to be a tensor, got {type(t).__name__}.")
            if t.device != like.device:
                raise YOLOv2Error(f"Expected targets[{b}] on {like.device} (the output's device), got {t.device}.")
            if t.numel() == 0:
                t = t.reshape(0, 5)
            if t.dim() != 2 or t.shape[1] != 5:
                raise YOLOv2Error(f"Expected targets[{b}] of shape (N, 5) = (class, cx, cy, w, h), got {tuple(t.shape)}.")
            rows.append(t.to(like.dtype))
        counts = [r.shape[0] for r in rows]
        truth = torch.cat(rows) if rows else like.new_zeros(0, 5)  # (T, 5)
        image = torch.repeat_interleave(
            torch.arange(B, device=like.device), torch.tensor(counts, device=like.device), output_size=sum(counts)
        )  # (T,)
        cls, cx, cy, w, h = truth.unbind(-1)
        checks = (
            (~torch.isfinite(truth).all(-1), "values must be finite"),
            ((cls != cls.floor()) | (cls < 0) | (cls >= self.num_classes),
             f"class must be an integer in [0, {self.num_classes})"),
            ((w <= 0) | (h <= 0), "width and height must be positive"),
            ((cx < 0) | (cx > 1) | (cy < 0) | (cy > 1), "centre must lie in [0, 1]"),
        )
        bad = torch.stack([c for c, _ in checks])  # (4, T)
        if bool(bad.any()):
            first = int(bad.any(0).nonzero()[0])
            reason = next(r for c, r in checks if bool(c[first]))
            b = int(image[first])
            row = first - sum(counts[:b])
            raise YOLOv2Error(f"targets[{b}] row {row}: {reason} (got {truth[first].tolist()}).")
        return truth, image, counts

    def _loss(self, output: Tensor, targets: Sequence[Tensor], seen: int) -> LossOutput:
        B, _, H, W = output.shape
        A, C = self.num_anchors, self.num_classes
        truth, image, counts = self._targets(targets, B, output)
        T = truth.shape[0]

        view = head_view(output, A)  # (B, H, W, A, 5+C)
        # One split and one unbind rather than layout.split_fields' six selections:
        # their backward is a single concatenation instead of six zero-filled copies
        # of the whole output (the fields are layout.FIELDS, in that order).
        box, class_logits = view.split((len(FIELDS), C), dim=-1)  # (B, H, W, A, 5), (B, H, W, A, C)
        fields = HeadFields(*box.unbind(-1), class_logits)  # tx, ty, tw, th, to: (B, H, W, A) each

        with torch.no_grad():
            pred = cxcywh_to_xyxy(decode_boxes(box[..., :4], self.anchors.to(output.dtype), self.location))
            # pred: (B, H, W, A, 4)
        assigned = self.assign(pred, truth, image, counts)
        terms = [t / B for t in self.terms(fields, truth, assigned, seen)]

        with torch.no_grad():  # darknet's averages over all truths (NaN when there are none)
            logits = class_logits[assigned.at]  # (T, C)
            stats = RegionStats(
                avg_iou=assigned.iou.mean(),
                avg_class=logits.softmax(-1).gather(1, truth[:, 0].long()[:, None]).mean(),
                avg_obj=fields.to[assigned.at].sigmoid().mean(),
                avg_noobj=fields.to.sigmoid().mean(),
                recall=(assigned.iou > 0.5).to(output.dtype).mean(),
                count=T,
            )
        return LossOutput(sum(terms), *terms, stats=stats)

    @torch.no_grad()
    def responsible_anchors(self, truth: Tensor, image: Tensor, H: int, W: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Each truth's responsible anchor: the cell holding its centre, the anchor of best
        shape-only IoU there (the first on ties).

        Args:
            truth: (T, 5) rows ``(class, cx, cy, w, h)`` of the whole batch.
            image: (T,) the image of each row.
            H, W: the grid.

        Returns:
            ``(image, row, column, anchor)``, four (T,) index tensors.
        """
        return (image, *responsible_anchors(truth[:, 1:], self.anchors, H, W))

    @torch.no_grad()
    def assign(self, pred: Tensor, truth: Tensor, image: Tensor, counts: Sequence[int]) -> Assignment:
        """Label every anchor: responsible for a truth, ignored, or pushed to "no object".

        Chapter 6 compares this rule with the RPN's and SSD's. A truth's responsible
        anchor is in the cell holding its centre, the anchor of best shape-only IoU
        (the first on ties; of two truths on one anchor, the later wins). Of the
        other anchors, those whose predicted box overlaps a truth of their image
        with IoU above ``thresh`` are ignored; the rest are negatives.

        Args:
            pred: (B, H, W, A, 4) predicted boxes, normalised ``xyxy``.
            truth: (T, 5) rows ``(class, cx, cy, w, h)`` of the whole batch.
            image: (T,) the image of each row.
            counts: rows per image.

        Returns:
            :class:`Assignment`.
        """
        B, H, W, A, _ = pred.shape
        T = truth.shape[0]
        g_xyxy = cxcywh_to_xyxy(truth[:, 1:])  # (T, 4)
        # Best IoU of each anchor's box with any truth of its image.
        n_max = max(counts, default=0)
        best_iou = pred.new_zeros(B, H, W, A)
        if n_max > 0:
            starts = torch.tensor(list(accumulate(counts, initial=0))[:-1], device=pred.device)
            slot = torch.arange(T, device=pred.device) - starts[image]  # (T,) row in its image
            padded = pred.new_zeros(B, n_max, 4)  # empty slots overlap nothing
            padded[image, slot] = g_xyxy
            iou = box_iou(pred.reshape(B, H * W * A, 4), padded)  # (B, H*W*A, n_max)
            best_iou = iou.amax(-1).reshape(B, H, W, A)

        at = self.responsible_anchors(truth, image, H, W)
        _, gj, gi, best_a = at
        key = ((image * H + gj) * W + gi) * A + best_a  # (T,) flat index into (B, H, W, A)
        order = torch.arange(T, device=pred.device)
        last = torch.full((B * H * W * A,), -1, dtype=torch.long, device=pred.device)
        last = last.scatter_reduce(0, key, order, reduce="amax")  # the later truth wins
        responsible = (last >= 0).reshape(B, H, W, A)
        over = best_iou > self.thresh
        return Assignment(
            at=at,
            wins=(last[key] == order).to(pred.dtype),
            responsible=responsible,
            ignored=~responsible & over,
            negative=~responsible & ~over,
            iou=aligned_box_iou(pred[at], g_xyxy),
        )

    def terms(self, f: HeadFields, truth: Tensor, a: Assignment, seen: int) -> tuple[Tensor, ...]:
        """The five terms of the loss, summed over the batch: ``(coord, obj, noobj, prior, cls)``.

        The core of darknet's region layer, shown in chapter 6. Each squared error is
        ``0.5 * scale * (target - q)^2``, so its gradient is darknet's delta.

        Args:
            f: the raw head fields (see :func:`yolov2_lib.layout.split_fields`).
            truth: (T, 5) rows ``(class, cx, cy, w, h)`` of the whole batch.
            a: the labels of the anchors, from :meth:`assign`.
            seen: images trained on so far.

        Returns:
            The five terms, each a scalar not yet divided by the batch size.
        """
        direct = self.location == "direct"
        o = f.to.sigmoid()  # (B, H, W, A)
        # The centre as the loss sees it: sigmoid(t_x) (direct) or t_x itself (offset).
        x, y = (f.tx.sigmoid(), f.ty.sigmoid()) if direct else (f.tx, f.ty)  # (B, H, W, A)
        w, h = f.tw, f.th  # sizes stay raw: t_w is compared with log(g_w W / p_w)
        H, W = x.shape[1:3]
        # Negatives: objectness to 0. Ignored anchors (a box already on a truth) escape.
        noobj = 0.5 * self.noobject_scale * (a.negative * o.square()).sum()
        # Warm-up: every anchor that is not responsible drifts back to its prior.
        free = ~a.responsible
        prior = x.new_zeros(())
        if seen < self.warmup_images:
            centre = 0.5 if direct else 0.0  # the middle of the cell: sigmoid(t_x) = 0.5, or t_x = 0
            to_prior = (x - centre).square() + (y - centre).square() + w.square() + h.square()
            prior = 0.5 * self.prior_scale * (free * to_prior).sum()
        # The responsible anchor of each truth: coordinates, objectness, classes.
        _, gj, gi, best_a = a.at
        gx, gy, gw, gh = truth[:, 1:].unbind(-1)  # (T,) normalised centre and size
        p_w, p_h = self.anchors.to(x.dtype)[best_a].unbind(-1)  # (T,) grid cells
        t_x, t_y = gx * W - gi, gy * H - gj  # targets of sigmoid(t_x), sigmoid(t_y)
        if not direct:  # targets of the raw t_x, t_y: from the cell's centre, in anchor sizes
            t_x, t_y = (t_x - 0.5) / p_w, (t_y - 0.5) / p_h
        t_w, t_h = torch.log(gw * W / p_w), torch.log(gh * H / p_h)  # targets of t_w, t_h
        coord_err = (t_x - x[a.at]).square() + (t_y - y[a.at]).square() \
            + (t_w - w[a.at]).square() + (t_h - h[a.at]).square()
        coord = 0.5 * (a.wins * self.coord_scale * (2 - gw * gh) * coord_err).sum()
        obj_target = a.iou if self.rescore else torch.ones_like(a.iou)  # rescore: the IoU, a constant
        obj = 0.5 * self.object_scale * (a.wins * (obj_target - o[a.at]).square()).sum()
        ce = F.cross_entropy(f.class_logits[a.at], truth[:, 0].long(), reduction="none")
        cls = self.class_scale * (a.wins * ce).sum()
        return coord, obj, noobj, prior, cls


# --------------------------------------------------------------------------- checking and comparing the loss


def central_differences(f, x: Tensor, eps: float = 1e-5) -> Tensor:
    """The gradient of a scalar function by central differences, one entry of ``x`` at a time.

    ``(f(x + eps e_k) - f(x - eps e_k)) / (2 eps)`` for every entry ``k``: slow
    (two calls of ``f`` per number) but independent of autograd, which makes it
    the reference that an analytic gradient is checked against. Use float64.
    """
    grad = torch.zeros_like(x)
    step = torch.zeros_like(x)
    for k in range(x.numel()):
        step.view(-1)[k] = eps
        grad.view(-1)[k] = (f(x + step) - f(x - step)) / (2 * eps)
        step.view(-1)[k] = 0
    return grad


def loss_with_size_on_exp(loss: YOLOv2Loss, output: Tensor, targets: Sequence[Tensor], seen: int) -> LossOutput:
    """A common mistake, kept for comparison: the size term on decoded sizes instead of on ``t_w, t_h``.

    Some re-implementations decode the box first and compare sizes in image
    units, ``(p_w e^{t_w} / W - g_w)^2``, instead of darknet's
    ``(t_w - log(g_w W / p_w))^2``. This is ``loss`` with the responsible
    anchors' ``t_w, t_h`` hidden from its size term (detached) and that
    exp-space term added, with the same weight ``coord_scale * (2 - g_w g_h)``.
    Its gradient on ``t_w`` near the optimum is about ``b_w^2`` times darknet's:
    flat for small boxes, steep for large ones. Not for training.

    Args:
        loss: the right loss, whose other terms are kept.
        output: raw head output ``(B, A*(5+C), H, W)``.
        targets: per image, ``(N, 5)`` rows ``(class, cx, cy, w, h)`` in image units.
        seen: images trained on, as for :class:`YOLOv2Loss`.
    """
    output = output.clone()
    view = head_view(output, loss.num_anchors)  # (B, H, W, A, 5+C), a view of the clone
    B, H, W = view.shape[:3]
    truth, image, _ = loss._targets(targets, B, output)  # (T, 5) rows of the whole batch, checked
    at = loss.responsible_anchors(truth, image, H, W)
    g_wh = truth[:, 3:]  # (T, 2) image units
    b_wh = loss.anchors.to(output.dtype)[at[3]] * view[at][:, 2:4].exp() / output.new_tensor([W, H])  # decoded
    weight = loss.coord_scale * (2 - g_wh[:, :1] * g_wh[:, 1:])
    size_term = (0.5 * weight * (b_wh - g_wh).square()).sum()
    view[at + (slice(2, 4),)] = view[at][:, 2:4].detach()  # the right size term gets no gradient
    out = loss(output, targets, seen)
    return out._replace(total=out.total + size_term / B)
