"""Measuring a detector: IoU, matching, precision-recall and AP (section 9.1, after chapter 9).

Intersection over union from first principles, the VOC matching of one image,
the precision-recall curve of each class and the three rules that turn a
curve into an average precision.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
import torch

from ..colors import CLASS_COLORS, class_color
from ..errors import YOLOv2Error
from ..evaluate import ImageMatch, VOCResult
from .images import _as_float_array, show_image


#: Colours of a detection's verdict in drawings of the VOC matching.
OUTCOME_COLORS: dict[str, str] = {"TP": "#009E73", "FP": "#D55E00", "ignored": "#8C8C8C"}


def _square_limits(ax: plt.Axes, boxes: np.ndarray, margin: float = 0.08) -> None:
    """Equal-aspect limits around (x1, y1, x2, y2) boxes, y down as in an image."""
    x1, y1 = boxes[:, :2].min(0)
    x2, y2 = boxes[:, 2:4].max(0)
    pad = margin * max(x2 - x1, y2 - y1)
    ax.set_xlim(x1 - pad, x2 + pad)
    ax.set_ylim(y2 + pad, y1 - pad)
    ax.set_aspect("equal")


def draw_iou(ax: plt.Axes, box1: Sequence[float], box2: Sequence[float],
             labels: tuple[str, str] = ("A", "B")) -> float:
    """Two boxes, their intersection filled and their union outlined, titled with the IoU.

    The picture of intersection over union from first principles: the overlap
    (dark) divided by the area the two boxes cover together (light and dark).
    Boxes are continuous (a box from x1 to x2 is ``x2 - x1`` wide). Explained in
    the section "Measuring a detector" (after chapter 9).

    Args:
        ax: the axes.
        box1, box2: ``(x1, y1, x2, y2)`` corners.
        labels: the names written in the boxes' corners.

    Returns:
        The IoU, as :func:`yolov2_lib.boxes.box_iou` computes it.
    """
    from ..boxes import box_area, box_iou

    pair = torch.tensor([list(box1), list(box2)], dtype=torch.float64)
    if pair.shape != (2, 4) or bool((pair[:, 2:] < pair[:, :2]).any()):
        raise YOLOv2Error(f"Expected two (x1, y1, x2, y2) boxes with x2 >= x1 and y2 >= y1, got {pair.tolist()}.")
    iou = float(box_iou(pair[:1], pair[1:])[0, 0])
    lo = torch.maximum(pair[0, :2], pair[1, :2])
    hi = torch.minimum(pair[0, 2:], pair[1, 2:])
    inter_wh = (hi - lo).clamp(min=0)
    inter = float(inter_wh.prod())
    union = float(box_area(pair).sum()) - inter
    for k, ((x1, y1, x2, y2), color, label) in enumerate(zip(pair.tolist(), CLASS_COLORS[:2], labels)):
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, facecolor=color, alpha=0.3, edgecolor=color, lw=2))
        # the first name in its top-left corner, the second in its bottom-right: never both in the overlap
        ax.text(*((x1, y1) if k == 0 else (x2, y2)), label, color=color, fontsize=10, fontweight="bold",
                va="top" if k == 0 else "bottom", ha="left" if k == 0 else "right", zorder=5,
                bbox={"facecolor": "white", "alpha": 0.85, "pad": 1.5, "edgecolor": "none"})
    if inter > 0:
        ax.add_patch(patches.Rectangle(tuple(lo.tolist()), *inter_wh.tolist(), facecolor="#555555", alpha=0.45,
                                       edgecolor="black", hatch="//", lw=0.8))
    _square_limits(ax, pair.numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"IoU = {inter:g} / {union:g} = {iou:.2f}", fontsize=10)
    return iou


def draw_matching(
    ax: plt.Axes,
    detections: np.ndarray | torch.Tensor,
    ground_truth: np.ndarray | torch.Tensor,
    match: ImageMatch,
    image: np.ndarray | None = None,
) -> None:
    """The VOC matching of one image: every detection coloured by its verdict.

    Objects are dashed (grey and hatched when difficult); detections are solid,
    green for a true positive, red for a false positive (too little overlap, or
    a duplicate of an object already taken), grey when ignored on a difficult
    object, each labelled with its rank by score. Explained in the section
    "Measuring a detector" (after chapter 9).

    Args:
        ax: the axes.
        detections: (N, 6) rows ``(x1, y1, x2, y2, score, class)``.
        ground_truth: (M, 6) rows ``(x1, y1, x2, y2, class, difficult)``.
        match: the :class:`yolov2_lib.evaluate.ImageMatch` of these rows
            (from :func:`~yolov2_lib.evaluate.match_detections`).
        image: optional (H, W, 3) picture under the boxes; without it the boxes
            are drawn on a blank canvas.
    """
    det = _as_float_array(detections).reshape(-1, 6)
    gt = _as_float_array(ground_truth).reshape(-1, 6)
    if len(match.tp) != len(det) or len(match.missed) != len(gt):
        raise YOLOv2Error(f"The match is for {len(match.tp)} detections and {len(match.missed)} objects, "
                         f"got {len(det)} and {len(gt)}.")
    if image is not None:
        show_image(image, ax)
    for k, (x1, y1, x2, y2, _, difficult) in enumerate(gt):
        color = OUTCOME_COLORS["ignored"] if difficult else "black"
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, lw=1.5,
                                       linestyle="--", hatch="///" if difficult else None))
        ax.text(x2, y2, "difficult" if difficult else f"object {k}", color=color, fontsize=8, ha="right",
                va="bottom", zorder=5, bbox={"facecolor": "white", "alpha": 0.85, "pad": 1, "edgecolor": "none"})
    rank = np.empty(len(det), dtype=np.int64)
    rank[np.argsort(-det[:, 4], kind="stable")] = np.arange(1, len(det) + 1)
    for i, (x1, y1, x2, y2, score, _) in enumerate(det):
        kind = "TP" if match.tp[i] else "FP" if match.fp[i] else "ignored"
        color = OUTCOME_COLORS[kind]
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, lw=2))
        ax.text(x1, y1, f"{rank[i]}", color="white", fontsize=8, va="center", ha="center",
                bbox={"facecolor": color, "edgecolor": "none", "boxstyle": "circle,pad=0.25"})
    if image is None:
        everything = np.concatenate([det[:, :4], gt[:, :4]]) if len(det) + len(gt) else np.array([[0, 0, 1, 1.0]])
        _square_limits(ax, everything)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [patches.Patch(color=OUTCOME_COLORS[k], label=k) for k in ("TP", "FP", "ignored")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _envelope_steps(recall: np.ndarray, precision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The envelope as a step line from recall 0 to 1 (0 past the largest recall)."""
    from ..evaluate import precision_envelope

    rec = np.asarray(recall, dtype=np.float64)
    env = precision_envelope(precision)
    if rec.size == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 0.0])
    # on (rec[i-1], rec[i]] the envelope is env[i]; "pre" steps draw exactly that
    x = np.concatenate(([0.0], rec, [rec[-1], 1.0]))
    y = np.concatenate(([env[0]], env, [0.0, 0.0]))
    return x, y


def plot_pr_curves(result: VOCResult, *, mark_score: float | None = None, class_names: Sequence[str] | None = None) -> plt.Figure:
    """The precision-recall curve of each class, with its monotone envelope.

    Walking down a class's detections by decreasing score, each one moves the
    curve: a true positive right (recall) and up, a false positive down. The
    thin line is that walk; the thick step line is the envelope every AP rule
    reads. Explained in the section "Measuring a detector" (after chapter 9).

    Args:
        result: a :class:`yolov2_lib.evaluate.VOCResult`.
        mark_score: optional score threshold; a dot marks the point of the curve
            where the detections scoring at least this much end.
        class_names: titles (default: the result's class names).

    Returns:
        The figure, one panel per class with ground truth.
    """
    names = list(class_names) if class_names is not None else list(result.class_names)
    shown = [c for c in range(len(names)) if result.num_positives[c] > 0]
    if not shown:
        raise YOLOv2Error("No class has ground truth: there is no precision-recall curve to draw.")
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6), squeeze=False)
    for ax, c in zip(axes[0], shown):
        rec, prec = result.recall[c], result.precision[c]
        color = class_color(c)
        ax.plot(rec, prec, color=color, lw=0.8, alpha=0.6, label="after each detection")
        x, y = _envelope_steps(rec, prec)
        ax.step(x, y, where="pre", color="black", lw=1.6, label="envelope")
        if mark_score is not None and rec.size:
            last = int(np.searchsorted(-result.scores[c], -mark_score, side="right")) - 1
            if last >= 0:
                ax.plot([rec[last]], [prec[last]], "o", color=color, mec="black", ms=7,
                        label=f"score >= {mark_score:g}")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.grid(alpha=0.3)
        ax.set_title(f"{names[c]}: {result.num_positives[c]} objects, {result.num_detections[c]} detections",
                     fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def draw_ap_rules(recall: np.ndarray, precision: np.ndarray, title: str | None = None) -> plt.Figure:
    """One precision-recall curve scored by the three AP rules, one panel each.

    Left, the area under the envelope (VOC 2010+); middle, the 11 heights VOC
    2007 averages (recall 0, 0.1, ..., 1); right, the 101 heights of COCO's
    rule (recall 0, 0.01, ..., 1). A height is 0 past the largest recall the
    detector reaches. Explained in the section "Measuring a detector" (after
    chapter 9).

    Args:
        recall: (D,) recall after each detection in score order.
        precision: (D,) precision after each detection.
        title: the figure's title (e.g. the class).

    Returns:
        The figure; each panel's title gives its AP.
    """
    from ..evaluate import average_precision, recall_levels, sampled_precision

    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    x, y = _envelope_steps(rec, prec)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    names = {"area": "area (VOC 2010+)", "11point": "11 points (VOC 2007)", "101point": "101 points (COCO)"}
    for ax, rule in zip(axes, ("area", "11point", "101point")):
        ax.plot(rec, prec, color="#8C8C8C", lw=0.8, alpha=0.7)
        ax.step(x, y, where="pre", color="black", lw=1.4)
        if rule == "area":
            ax.fill_between(x, y, step="pre", color=CLASS_COLORS[1], alpha=0.45)
        else:
            levels = recall_levels(rule)
            heights = sampled_precision(rec, prec, levels)
            big = rule == "11point"
            ax.vlines(levels, 0, heights, color=CLASS_COLORS[0], lw=2.5 if big else 1.0)
            ax.plot(levels, heights, "o", color=CLASS_COLORS[0], ms=6 if big else 2.5,
                    mec="black" if big else CLASS_COLORS[0], mew=0.6)
        ax.set_title(f"{names[rule]}: AP = {average_precision(rec, prec, rule):.3f}", fontsize=10)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("recall")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("precision")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
