"""Measuring a detector: PASCAL VOC mean average precision (mAP).

Chapter 9 (training end to end, evaluation) uses this module; the section
"Measuring a detector" after it explains it: IoU, matching, the
precision-recall curve and the three rules that turn it into one number.

This is the PASCAL VOC detection metric as the official code computes it: the
MATLAB devkit's ``VOCevaldet.m`` / ``VOCap.m`` and its Python transcription
``voc_eval.py`` (py-faster-rcnn, copied into darknet's ``scripts/`` and used by
``reval_voc.py`` for the YOLO v2 paper's VOC 2007 numbers). For each class:

1. Sort that class's detections over all images by decreasing score. Ties keep
   the input order (image by image, row by row): a stable sort, as MATLAB's
   ``sort``; ``voc_eval.py``'s ``np.argsort`` leaves the order of ties
   unspecified.
2. Each detection takes the ground truth of its image and class with the
   highest IoU (``ovmax``, the first one on ties), whether or not that ground
   truth is difficult or already taken. If ``ovmax`` passes the threshold:
   a difficult ground truth makes the detection *ignored* (neither true nor
   false positive); a ground truth not yet taken makes it a true positive and
   takes it; a taken one makes it a false positive (a duplicate). Otherwise it
   is a false positive.
3. Precision and recall after each detection, over the number of
   non-difficult ground truths; AP is the mean of the 11 interpolated
   precisions at recall 0, 0.1, ..., 1 (VOC 2007) or the area under the
   monotone precision envelope (VOC 2010 and later). The 101-point rule of
   COCO (``pycocotools``' ``recThrs``) reads the same envelope at recall 0,
   0.01, ..., 1 (:func:`average_precision`, :attr:`VOCResult.ap_101point`).

Choices, each the official behaviour unless stated:

- IoU uses VOC's inclusive pixel convention by default: a box from x1 to x2
  covers ``x2 - x1 + 1`` pixels (``inclusive=True``). Pass ``inclusive=False``
  for continuous boxes (width ``x2 - x1``), e.g. 0-based float boxes.
- The threshold test is ``IoU > 0.5`` as in ``voc_eval.py`` (``strict=True``);
  ``strict=False`` gives the MATLAB devkit's ``IoU >= 0.5``. The two differ only
  when an IoU equals the threshold exactly, which happens with integer boxes.
- The 11 recall levels are ``np.arange(0., 1.1, 0.1)`` exactly as in
  ``voc_eval.py`` (so the level 0.6 is ``0.6000000000000001``, which a recall of
  exactly 3/5 does not reach).
- Precision is ``tp / max(tp + fp, eps)``: when the first detections of a class
  match only difficult objects, ``voc_eval.py`` divides 0 by 0 and its 11-point
  AP becomes NaN while MATLAB's ``max`` skips the NaN; the ``eps`` guard (as in
  Detectron's copy of ``voc_eval.py``) gives MATLAB's answer.
- A class without any non-difficult ground truth has no recall, so its AP is
  NaN; the mAP is the mean over the classes that have at least one.

Evaluation is a host computation: torch tensors are copied to the CPU and
everything runs in float64. Matching is vectorised over all detections: IoUs
are computed for every (detection, ground truth of the same image and class)
pair at once, and because the ground truth a detection picks (its ``ovmax``)
does not depend on which ground truths are already taken, "the first detection
in score order that picks a ground truth takes it" is one ``np.unique`` over
the sorted picks, with no loop over detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np
import torch

from .boxes import aligned_box_iou
from .errors import YOLOv2Error

__all__ = [
    "VOCResult", "VOCEvaluator", "ImageMatch", "evaluate_voc", "match_detections", "voc_ap",
    "AP_RULES", "average_precision", "precision_envelope", "recall_levels", "sampled_precision",
]  # fmt: skip

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[Sequence[float]]]

# The 11 recall levels of the VOC 2007 metric, bit for bit as voc_eval.py makes them.
_RECALL_LEVELS_11 = np.arange(0.0, 1.1, 0.1)
# The 101 recall levels of COCO's AP, as pycocotools' Params.recThrs makes them.
_RECALL_LEVELS_101 = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)

#: The ways to turn one class's precision-recall curve into its AP: VOC 2007's
#: 11-point rule, the area under the envelope (VOC 2010+), COCO's 101-point rule.
AP_RULES = ("11point", "area", "101point")


# ------------------------------------------------------------------ AP from a PR curve


def _curve(recall: np.ndarray, precision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A PR curve as two float64 vectors, checked: equal lengths, recall non-decreasing."""
    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    if rec.shape != prec.shape:
        raise YOLOv2Error(f"Expected recall and precision of equal length, got {rec.shape} and {prec.shape}.")
    if rec.size > 1 and bool(np.any(np.diff(rec) < 0)):
        raise YOLOv2Error("Expected non-decreasing recall (detections in score order).")
    return rec, prec


def precision_envelope(precision: np.ndarray) -> np.ndarray:
    """The monotone envelope of a precision curve: the best precision from here on.

    Lowering the score threshold can only add detections, so "the precision I
    can have at this recall or more" never rises with recall; every AP rule
    reads this envelope, not the zigzag of the raw curve.

    Args:
        precision: (D,) precision after each detection, in score order.

    Returns:
        (D,) ``envelope[i] = max(precision[i:])``.
    """
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    return np.maximum.accumulate(prec[::-1])[::-1] if prec.size else prec


def recall_levels(rule: str) -> np.ndarray:
    """The recall levels a sampling rule reads the envelope at.

    Args:
        rule: ``"11point"`` (VOC 2007: ``np.arange(0, 1.1, 0.1)``, as ``voc_eval.py``)
            or ``"101point"`` (COCO: ``np.linspace(0, 1, 101)``, as ``pycocotools``).

    Returns:
        (11,) or (101,) increasing levels from 0 to 1.
    """
    if rule == "11point":
        return _RECALL_LEVELS_11.copy()
    if rule == "101point":
        return _RECALL_LEVELS_101.copy()
    raise YOLOv2Error(f"Expected rule '11point' or '101point' (the area rule samples nothing), got {rule!r}.")


def sampled_precision(recall: np.ndarray, precision: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The precision envelope read at given recall levels.

    At level ``t``: the best precision of any detection whose recall is at
    least ``t``, and 0 when the recall never reaches ``t`` (the detector has
    no threshold that finds that many objects).

    Args:
        recall: (D,) recall after each detection in score order (non-decreasing).
        precision: (D,) precision after each detection.
        levels: (L,) recall levels.

    Returns:
        (L,) precisions, the heights the 11- and 101-point rules average.
    """
    rec, prec = _curve(recall, precision)
    levels = np.asarray(levels, dtype=np.float64).reshape(-1)
    if rec.size == 0:
        return np.zeros(levels.shape)
    best_after = precision_envelope(prec)  # best precision at index >= i
    first = np.searchsorted(rec, levels, side="left")  # first recall >= t
    return np.where(first < rec.size, best_after[np.minimum(first, rec.size - 1)], 0.0)


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """Average precision of one class from its precision-recall curve.

    Args:
        recall: (D,) recall after each detection in score order (non-decreasing).
        precision: (D,) precision after each detection.
        use_07_metric: True for VOC 2007's 11-point rule (mean over
            ``t = 0, 0.1, ..., 1`` of the best precision at recall ``>= t``, 0 when
            recall never reaches ``t``); False for the area under the precision
            envelope (VOC 2010+).

    Returns:
        AP in [0, 1].
    """
    rec, prec = _curve(recall, precision)
    if use_07_metric:
        if rec.size == 0:
            return 0.0
        ap = 0.0
        for value in sampled_precision(rec, prec, _RECALL_LEVELS_11):  # summed one by one, as voc_eval.py
            ap = ap + value / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the monotone precision envelope
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])  # where recall moves
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def average_precision(recall: np.ndarray, precision: np.ndarray, rule: str = "area") -> float:
    """AP of one class by any of the three rules in use.

    All three read the same envelope (:func:`precision_envelope`), which drops
    to 0 past the largest recall the detector reaches:

    - ``"11point"``: VOC 2007 (the YOLO v2 paper's VOC 2007 numbers), the mean of
      the envelope at recall 0, 0.1, ..., 1 (:func:`voc_ap` with ``use_07_metric``);
    - ``"area"``: VOC 2010 and later, the exact area under the envelope;
    - ``"101point"``: COCO's rule (``pycocotools``), the mean of the envelope at
      recall 0, 0.01, ..., 1; COCO's "AP50" is this rule at IoU 0.5. (Ultralytics
      samples the same 101 recalls, but interpolates the envelope linearly
      between the curve's points and integrates with the trapezoid rule.)

    Explained in the section "Measuring a detector" (after chapter 9).

    Args:
        recall: (D,) recall after each detection in score order (non-decreasing).
        precision: (D,) precision after each detection.
        rule: one of :data:`AP_RULES`.

    Returns:
        AP in [0, 1]; 0 for an empty curve.
    """
    if rule == "11point":
        return voc_ap(recall, precision, use_07_metric=True)
    if rule == "area":
        return voc_ap(recall, precision, use_07_metric=False)
    if rule == "101point":
        return float(np.mean(sampled_precision(recall, precision, _RECALL_LEVELS_101)))
    raise YOLOv2Error(f"Expected rule to be one of {AP_RULES}, got {rule!r}.")


# ------------------------------------------------------------------ result


@dataclass(frozen=True)
class VOCResult:
    """VOC detection metrics of one evaluation.

    Attributes:
        class_names: (C,) names; ``"0"``, ``"1"``, ... unless given.
        ap_11point: (C,) AP by the VOC 2007 11-point rule; NaN for classes
            without non-difficult ground truth.
        ap_area: (C,) AP by the area rule (VOC 2010+); NaN likewise.
        map_11point: mean of ``ap_11point`` over classes with ground truth (NaN if none).
        map_area: mean of ``ap_area`` over the same classes.
        ap_101point, map_101point: (properties) the same by COCO's 101-point rule;
            :meth:`ap_by` and :meth:`map_by` take a rule's name.
        num_positives: (C,) non-difficult ground truths per class.
        num_detections: (C,) detections per class (ignored ones included).
        precision: C arrays; ``precision[c]`` is (D_c,), the precision after each
            detection of class ``c`` in score order (empty when the class has no
            positives).
        recall: C arrays, the matching recalls.
        scores: C arrays, the detection scores in the same order.
        tp: C boolean arrays, whether each of those detections is a true positive.
    """

    class_names: tuple[str, ...]
    ap_11point: np.ndarray
    ap_area: np.ndarray
    map_11point: float
    map_area: float
    num_positives: np.ndarray
    num_detections: np.ndarray
    precision: tuple[np.ndarray, ...] = field(repr=False)
    recall: tuple[np.ndarray, ...] = field(repr=False)
    scores: tuple[np.ndarray, ...] = field(repr=False)
    tp: tuple[np.ndarray, ...] = field(repr=False)

    def ap(self, use_07_metric: bool = True) -> np.ndarray:
        """(C,) AP by the 11-point rule (default, VOC 2007) or the area rule."""
        return self.ap_11point if use_07_metric else self.ap_area

    @property
    def ap_101point(self) -> np.ndarray:
        """(C,) AP by COCO's 101-point rule, from the stored curves; NaN likewise."""
        return np.array([
            average_precision(rec, prec, "101point") if n > 0 else np.nan
            for rec, prec, n in zip(self.recall, self.precision, self.num_positives)
        ], dtype=np.float64).reshape(-1)

    @property
    def map_101point(self) -> float:
        """mean of ``ap_101point`` over the classes with ground truth (NaN if none)."""
        return self.map_by("101point")

    def ap_by(self, rule: str) -> np.ndarray:
        """(C,) AP by one of :data:`AP_RULES` (``"11point"``, ``"area"``, ``"101point"``)."""
        if rule == "11point":
            return self.ap_11point
        if rule == "area":
            return self.ap_area
        if rule == "101point":
            return self.ap_101point
        raise YOLOv2Error(f"Expected rule to be one of {AP_RULES}, got {rule!r}.")

    def map_by(self, rule: str) -> float:
        """mAP by one of :data:`AP_RULES`: the mean AP over the classes with ground truth."""
        ap = self.ap_by(rule)
        valid = self.num_positives > 0
        return float(ap[valid].mean()) if bool(valid.any()) else float("nan")

    def map(self, use_07_metric: bool = True) -> float:
        """mAP by the 11-point rule (default, VOC 2007) or the area rule."""
        return self.map_11point if use_07_metric else self.map_area

    def table(self) -> str:
        """A text table of AP per class and the mAP, in percent."""
        width = max([len("class")] + [len(n) for n in self.class_names])
        lines = [f"{'class':<{width}}  {'AP07':>6}  {'AP':>6}  {'GT':>6}  {'dets':>7}"]
        for c, name in enumerate(self.class_names):
            lines.append(
                f"{name:<{width}}  {100 * self.ap_11point[c]:6.2f}  {100 * self.ap_area[c]:6.2f}"
                f"  {self.num_positives[c]:6d}  {self.num_detections[c]:7d}"
            )
        lines.append(f"{'mAP':<{width}}  {100 * self.map_11point:6.2f}  {100 * self.map_area:6.2f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain Python numbers (JSON-ready, NaN as None), without the curves."""

        def number(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            "map_11point": number(self.map_11point),
            "map_area": number(self.map_area),
            "per_class": {
                name: {
                    "ap_11point": number(self.ap_11point[c]),
                    "ap_area": number(self.ap_area[c]),
                    "num_positives": int(self.num_positives[c]),
                    "num_detections": int(self.num_detections[c]),
                }
                for c, name in enumerate(self.class_names)
            },
        }


# ------------------------------------------------------------------ input checks


def _to_numpy(x: ArrayLike, what: str, image: int) -> np.ndarray:
    """One image's rows as a (N, 6) float64 array (tensors are copied to the host)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 6))
    if a.ndim != 2 or a.shape[1] != 6:
        raise YOLOv2Error(f"Expected {what} of image {image} to have shape (N, 6), got {a.shape}.")
    return a


def _stack(per_image: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All images' rows in one (R, 6) array, with each row's image and row-in-image."""
    counts = np.array([len(a) for a in per_image], dtype=np.int64)
    data = np.concatenate(per_image) if per_image else np.zeros((0, 6))
    image = np.repeat(np.arange(len(per_image), dtype=np.int64), counts)  # (R,)
    row = np.arange(len(data), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return data, image, row


def _raise_first(bad: np.ndarray, reason: str, what: str, data: np.ndarray, image: np.ndarray,
                 row: np.ndarray) -> None:
    if bool(bad.any()):
        k = int(np.argmax(bad))
        raise YOLOv2Error(f"{what} of image {int(image[k])}, row {int(row[k])}: {reason} (got {data[k].tolist()}).")


def _check_rows(data: np.ndarray, image: np.ndarray, row: np.ndarray, what: str, class_col: int,
                num_classes: int) -> None:
    _raise_first(~np.isfinite(data).all(axis=1), "values must be finite", what, data, image, row)
    _raise_first((data[:, 2] < data[:, 0]) | (data[:, 3] < data[:, 1]),
                 "expected x2 >= x1 and y2 >= y1", what, data, image, row)
    cls = data[:, class_col]
    _raise_first((cls != np.floor(cls)) | (cls < 0) | (cls >= num_classes),
                 f"class must be an integer in [0, {num_classes})", what, data, image, row)


# ------------------------------------------------------------------ the evaluator


class VOCEvaluator:
    """Collects detections and ground truths image by image, then computes VOC AP and mAP.

    Args:
        num_classes: C; classes are integers ``0 .. C-1``.
        class_names: optional (C,) names for the result.
        iou_threshold: the overlap a true positive needs (0.5 in VOC).
        inclusive: VOC's inclusive pixel convention (+1 in widths and heights).
        strict: ``IoU > threshold`` (``voc_eval.py``) if True, ``>=`` (MATLAB devkit) if False.

    Example::

        evaluator = VOCEvaluator(num_classes=20)
        for images, ground_truths in loader:
            evaluator.update(detect(images), ground_truths)
        print(evaluator.compute().table())
    """

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        iou_threshold: float = 0.5,
        inclusive: bool = True,
        strict: bool = True,
    ) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise YOLOv2Error(f"Expected num_classes to be a positive integer, got {num_classes!r}.")
        if class_names is not None and len(class_names) != num_classes:
            raise YOLOv2Error(f"Expected {num_classes} class names, got {len(class_names)}.")
        if not 0.0 < float(iou_threshold) <= 1.0:
            raise YOLOv2Error(f"Expected iou_threshold in (0, 1], got {iou_threshold}.")
        self.num_classes = num_classes
        self.class_names = (
            tuple(class_names) if class_names is not None else tuple(str(c) for c in range(num_classes))
        )
        self.iou_threshold = float(iou_threshold)
        self.inclusive = inclusive
        self.strict = strict
        self.reset()

    def reset(self) -> None:
        """Forget every image added so far."""
        self._detections: list[np.ndarray] = []
        self._ground_truths: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._ground_truths)

    def update(self, detections: Sequence[ArrayLike], ground_truths: Sequence[ArrayLike]) -> None:
        """Add a batch of images.

        Args:
            detections: one (N_i, 6) array or tensor per image, rows
                ``(x1, y1, x2, y2, score, class)``.
            ground_truths: one (M_i, 6) array or tensor per image, rows
                ``(x1, y1, x2, y2, class, difficult)`` with difficult 0 or 1.
        """
        if len(detections) != len(ground_truths):
            raise YOLOv2Error(
                f"Expected one detection array per image: got {len(detections)} detection arrays "
                f"and {len(ground_truths)} ground-truth arrays."
            )
        first = len(self._ground_truths)
        self._detections.extend(_to_numpy(d, "detections", first + i) for i, d in enumerate(detections))
        self._ground_truths.extend(_to_numpy(g, "ground truths", first + i) for i, g in enumerate(ground_truths))

    def compute(self) -> VOCResult:
        """AP per class and mAP over every image added so far."""
        C = self.num_classes
        det, det_image, det_row = _stack(self._detections)  # (D, 6)
        gt, gt_image, gt_row = _stack(self._ground_truths)  # (G, 6)
        _check_rows(det, det_image, det_row, "detections", 5, C)
        _check_rows(gt, gt_image, gt_row, "ground truths", 4, C)
        _raise_first((gt[:, 5] != 0) & (gt[:, 5] != 1), "difficult must be 0 or 1",
                     "ground truths", gt, gt_image, gt_row)
        det_cls = det[:, 5].astype(np.int64)
        gt_cls = gt[:, 4].astype(np.int64)
        num_positives = np.bincount(gt_cls[gt[:, 5] == 0], minlength=C)  # (C,)

        # Ground truths grouped by (image, class), input order kept inside a group,
        # so the smallest index among tied IoUs is voc_eval's first argmax.
        gt_key = gt_image * C + gt_cls
        gt_order = np.argsort(gt_key, kind="stable")
        gt_key, gt_boxes = gt_key[gt_order], gt[gt_order, :4]
        gt_difficult = gt[gt_order, 5] == 1

        # Every (detection, ground truth of the same image and class) pair.
        det_key = det_image * C + det_cls
        lo = np.searchsorted(gt_key, det_key, side="left")  # (D,)
        count = np.searchsorted(gt_key, det_key, side="right") - lo  # (D,) candidates each
        start = np.cumsum(count) - count  # (D,) first pair of each detection
        pair_det = np.repeat(np.arange(len(det)), count)  # (P,)
        pair_gt = np.arange(int(count.sum())) - np.repeat(start, count) + np.repeat(lo, count)  # (P,)
        iou = self._pair_iou(det[pair_det, :4], gt_boxes[pair_gt])  # (P,)

        # ovmax and its first argmax per detection (no candidate: -inf, no pick).
        has = count > 0
        ovmax = np.full(len(det), -np.inf)
        pick = np.full(len(det), -1, dtype=np.int64)
        if bool(has.any()):
            ovmax[has] = np.maximum.reduceat(iou, start[has])
            tied = np.where(iou == ovmax[pair_det], pair_gt, np.iinfo(np.int64).max)
            pick[has] = np.minimum.reduceat(tied, start[has])
        hit = ovmax > self.iou_threshold if self.strict else ovmax >= self.iou_threshold
        ignored = np.zeros(len(det), dtype=bool)
        ignored[hit] = gt_difficult[pick[hit]]  # a hit on a difficult object does not count

        # Class by class, by decreasing score, stable on ties.
        order = np.lexsort((-det[:, 4], det_cls))
        hit, ignored, pick = hit[order], ignored[order], pick[order]
        claims = np.flatnonzero(hit & ~ignored)  # sorted positions that claim a ground truth
        _, first = np.unique(pick[claims], return_index=True)
        tp = np.zeros(len(det), dtype=bool)
        tp[claims[first]] = True  # the first claimant of a ground truth takes it
        fp = ~tp & ~ignored  # misses and duplicates

        sorted_scores = det[order, 4]
        bounds = np.searchsorted(det_cls[order], np.arange(C + 1))  # class c: bounds[c]:bounds[c+1]
        ap11, ap_area = np.full(C, np.nan), np.full(C, np.nan)
        precisions, recalls = [], []
        for c in range(C):
            s = slice(bounds[c], bounds[c + 1])
            if num_positives[c] == 0:
                precisions.append(np.zeros(0))
                recalls.append(np.zeros(0))
                continue
            tp_cum = np.cumsum(tp[s], dtype=np.float64)
            fp_cum = np.cumsum(fp[s], dtype=np.float64)
            rec = tp_cum / float(num_positives[c])
            prec = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
            ap11[c] = voc_ap(rec, prec, use_07_metric=True)
            ap_area[c] = voc_ap(rec, prec, use_07_metric=False)
            precisions.append(prec)
            recalls.append(rec)

        valid = num_positives > 0
        any_valid = bool(valid.any())
        return VOCResult(
            class_names=self.class_names,
            ap_11point=ap11,
            ap_area=ap_area,
            map_11point=float(ap11[valid].mean()) if any_valid else float("nan"),
            map_area=float(ap_area[valid].mean()) if any_valid else float("nan"),
            num_positives=num_positives,
            num_detections=np.diff(bounds),
            precision=tuple(precisions),
            recall=tuple(recalls),
            scores=tuple(sorted_scores[bounds[c]:bounds[c + 1]] for c in range(C)),
            tp=tuple(tp[bounds[c]:bounds[c + 1]] for c in range(C)),
        )

    def _pair_iou(self, boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
        """Elementwise IoU of two (P, 4) arrays; inclusive pixels grow each box by one."""
        if self.inclusive:
            grow = np.array([0.0, 0.0, 1.0, 1.0])
            boxes1, boxes2 = boxes1 + grow, boxes2 + grow
        return aligned_box_iou(torch.from_numpy(boxes1), torch.from_numpy(boxes2)).numpy()


def evaluate_voc(
    detections: Sequence[ArrayLike],
    ground_truths: Sequence[ArrayLike],
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    iou_threshold: float = 0.5,
    inclusive: bool = True,
    strict: bool = True,
) -> VOCResult:
    """PASCAL VOC AP per class and mAP of a set of detections.

    Args:
        detections: one (N_i, 6) array or tensor per image, rows
            ``(x1, y1, x2, y2, score, class)``.
        ground_truths: one (M_i, 6) array or tensor per image, rows
            ``(x1, y1, x2, y2, class, difficult)``.
        num_classes: C; by default ``len(class_names)``, else one more than the
            largest class seen.
        class_names: optional (C,) names.
        iou_threshold: the overlap a true positive needs (0.5 in VOC).
        inclusive: VOC's inclusive pixel convention (+1 in widths and heights);
            False for continuous boxes.
        strict: ``IoU > threshold`` (``voc_eval.py``) if True, ``>=`` (devkit) if False.

    Returns:
        :class:`VOCResult` with AP by both rules, the mAPs and the PR curves.
    """
    if len(detections) != len(ground_truths):
        raise YOLOv2Error(
            f"Expected one detection array per image: got {len(detections)} detection arrays "
            f"and {len(ground_truths)} ground-truth arrays."
        )
    dets = [_to_numpy(d, "detections", i) for i, d in enumerate(detections)]
    gts = [_to_numpy(g, "ground truths", i) for i, g in enumerate(ground_truths)]
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    elif num_classes is None:
        classes = [d[:, 5] for d in dets] + [g[:, 4] for g in gts]
        largest = max((float(np.max(c[np.isfinite(c)], initial=-1.0)) for c in classes), default=-1.0)
        num_classes = max(int(np.floor(largest)) + 1, 1)
    evaluator = VOCEvaluator(num_classes, class_names, iou_threshold, inclusive, strict)
    evaluator.update(dets, gts)
    return evaluator.compute()


# ------------------------------------------------------------------ one image: which detection is right


@dataclass(frozen=True)
class ImageMatch:
    """How the detections of one image match its ground truth, by the VOC rule.

    Attributes:
        tp: (N,) True for a detection that takes a ground truth.
        fp: (N,) True for a miss or a duplicate (``tp``, ``fp`` and ignored partition the rows).
        gt_index: (N,) the ground truth a true positive took, else -1.
        missed: (M,) True for a non-difficult ground truth that no detection took.
        best_iou: (N,) each detection's IoU with the ground truth of its class it
            overlaps most (0 when its class has none in the image).
        duplicate: (N,) True for a false positive whose best ground truth passed the
            threshold but was already taken by a higher-scoring detection.
    """

    tp: np.ndarray
    fp: np.ndarray
    gt_index: np.ndarray
    missed: np.ndarray
    best_iou: np.ndarray
    duplicate: np.ndarray

    @property
    def ignored(self) -> np.ndarray:
        """(N,) True for a detection on a difficult object: neither right nor wrong."""
        return ~self.tp & ~self.fp

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Each detection's verdict in words: ``"TP"``, ``"FP: duplicate"``,
        ``"FP: low IoU"`` (including no object of its class) or ``"ignored: difficult"``."""
        return tuple(
            "TP" if tp else "FP: duplicate" if dup else "FP: low IoU" if fp else "ignored: difficult"
            for tp, fp, dup in zip(self.tp, self.fp, self.duplicate)
        )

    @property
    def errors(self) -> int:
        """False positives plus missed objects: how wrong the image is."""
        return int(self.fp.sum() + self.missed.sum())

    def false_positive_kinds(self, near: float = 0.1) -> dict[str, int]:
        """The false positives counted by kind (chapter 9's failure cases).

        - ``"duplicate"``: a second box on an object already taken;
        - ``"poor localisation"``: on an object of its class, but with an IoU
          between ``near`` and the threshold;
        - ``"no object near"``: IoU below ``near`` with every object of its class:
          background, another class, or an object nobody annotated.
        """
        poor = self.fp & ~self.duplicate & (self.best_iou >= near)
        far = self.fp & ~self.duplicate & (self.best_iou < near)
        return {"duplicate": int(self.duplicate.sum()), "poor localisation": int(poor.sum()),
                "no object near": int(far.sum())}


def match_detections(
    detections: ArrayLike,
    ground_truth: ArrayLike,
    iou_threshold: float = 0.5,
    inclusive: bool = True,
    strict: bool = True,
) -> ImageMatch:
    """Match one image's detections to its ground truth as VOC scoring does.

    Class by class, by decreasing score (stable on ties), each detection looks
    at the ground truth it overlaps most (:class:`VOCEvaluator`'s rule): above
    the threshold and not yet taken it is a true positive; on a difficult object
    it is ignored; otherwise (too little overlap, or a duplicate) a false
    positive. Summed over images, the true positives are the ones the mAP counts.

    Args:
        detections: (N, 6) rows ``(x1, y1, x2, y2, score, class)``.
        ground_truth: (M, 6) rows ``(x1, y1, x2, y2, class, difficult)``.
        iou_threshold, inclusive, strict: as :class:`VOCEvaluator`.

    Returns:
        :class:`ImageMatch` for the rows in their input order.
    """
    det = _to_numpy(detections, "detections", 0)
    gt = _to_numpy(ground_truth, "ground truths", 0)
    helper = VOCEvaluator(1, iou_threshold=iou_threshold, inclusive=inclusive, strict=strict)
    tp = np.zeros(len(det), dtype=bool)
    fp = np.zeros(len(det), dtype=bool)
    gt_index = np.full(len(det), -1, dtype=np.int64)
    best_iou = np.zeros(len(det))
    duplicate = np.zeros(len(det), dtype=bool)
    taken = np.zeros(len(gt), dtype=bool)
    difficult = gt[:, 5] == 1 if len(gt) else np.zeros(0, dtype=bool)
    for c in np.unique(det[:, 5]) if len(det) else []:
        rows = np.flatnonzero(det[:, 5] == c)
        rows = rows[np.argsort(-det[rows, 4], kind="stable")]
        cand = np.flatnonzero(gt[:, 4] == c) if len(gt) else np.zeros(0, dtype=np.int64)
        for r in rows:
            if len(cand) == 0:
                fp[r] = True
                continue
            iou = helper._pair_iou(np.repeat(det[r : r + 1, :4], len(cand), 0), gt[cand, :4])
            best = int(np.argmax(iou))  # the first on ties, as voc_eval.py
            best_iou[r] = iou[best]
            hit = iou[best] > iou_threshold if strict else iou[best] >= iou_threshold
            g = cand[best]
            if hit and difficult[g]:
                continue  # ignored
            if hit and not taken[g]:
                taken[g], tp[r], gt_index[r] = True, True, g
            else:
                fp[r] = True
                duplicate[r] = hit
    missed = ~taken & ~difficult
    return ImageMatch(tp=tp, fp=fp, gt_index=gt_index, missed=missed, best_iou=best_iou, duplicate=duplicate)
