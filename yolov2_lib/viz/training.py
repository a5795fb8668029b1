"""Training and its results: the loss curves of a run and its detections (chapter 9)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter
import torch

from ..colors import CLASS_COLORS, class_color
from ..errors import YOLOv2Error
from .images import _as_float_array, draw_boxes, show_image


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (shorter at the start), NaN-free input assumed."""
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) == 0:
        return v
    c = np.cumsum(np.r_[0.0, v])
    lo = np.maximum(np.arange(1, len(v) + 1) - window, 0)
    return (c[1:] - c[lo]) / (np.arange(1, len(v) + 1) - lo)


def plot_history(history: dict, terms: Sequence[str] = ("loss", "coord", "obj", "noobj", "cls"),
                 smooth: int = 10) -> plt.Figure:
    """The loss terms per update (log scale, trailing mean) and the validation mAP of a run.

    Args:
        history: :attr:`yolov2_lib.train.Trainer.history` (or ``history.json`` of a run).
        terms: which loss terms to draw.
        smooth: updates in the trailing mean.

    Returns:
        The figure: losses on the left, input size and learning rate under them, val mAP on the right.
    """
    train, val = history["train"], history["val"]
    if not train["iteration"]:
        raise YOLOv2Error("the history has no training updates to plot.")
    fig = plt.figure(figsize=(11, 4.2))
    grid = fig.add_gridspec(2, 2, height_ratios=(3, 1), width_ratios=(2, 1), hspace=0.08)
    ax, ax_size, ax_map = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[:, 1])
    it = np.asarray(train["iteration"])
    for k, term in enumerate(terms):
        ax.plot(it, _smooth(train[term], smooth), label=term, color="black" if term == "loss" else
                class_color(k), lw=2 if term == "loss" else 1.2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.1, 1, 10: no mathtext
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel(f"loss (mean of {smooth} updates)")
    ax.legend(ncol=len(terms), fontsize=8, loc="upper right")
    ax.tick_params(labelbottom=False)
    ax_size.step(it, train["size"], where="post", color="grey", lw=1)
    ax_size.set_ylabel("input", fontsize=8)
    ax_size.set_xlabel("update")
    lr_ax = ax_size.twinx()
    lr_ax.plot(it, train["lr"], color=CLASS_COLORS[4], lw=1)
    lr_ax.set_ylabel("lr", fontsize=8, color=CLASS_COLORS[4])
    points = [(i, m) for i, m in zip(val["iteration"], val["map"]) if m is not None]
    if points:
        ax_map.plot(*zip(*points), "o-", color=CLASS_COLORS[2])
        best = max(points, key=lambda p: p[1])
        ax_map.annotate(f"best {best[1]:.3f}", best, textcoords="offset points", xytext=(-40, -18))
    ax_map.set_ylim(0, 1)
    ax_map.set_xlabel("update")
    ax_map.set_title("validation mAP@0.5 (EMA weights)", fontsize=10)
    ax_map.grid(alpha=0.3)
    return fig


def draw_detections(
    ax: plt.Axes,
    image: np.ndarray,
    detections: np.ndarray | torch.Tensor,
    truths: np.ndarray | torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    iou_threshold: float = 0.5,
    title: str | None = None,
) -> None:
    """Detections over an image, judged against its ground truth.

    Without ``truths`` every detection is drawn in its class colour. With them,
    detections are matched by the VOC rule (:func:`yolov2_lib.evaluate.match_detections`):
    true positives solid in their class colour, false positives solid red,
    and the objects no detection found dashed white.

    Args:
        ax: where to draw.
        image: (H, W, 3) picture.
        detections: (N, 6) rows ``(x1, y1, x2, y2, score, class)`` in the image's pixels.
        truths: (M, 6) rows ``(x1, y1, x2, y2, class, difficult)``, or ``None``.
        class_names: names for the labels (default: the class numbers).
        iou_threshold: the overlap that makes a true positive.
        title: axis title; with ``truths`` the counts are appended.
    """
    from ..evaluate import match_detections

    det = _as_float_array(detections).reshape(-1, 6)
    names = list(class_names) if class_names is not None else None
    label = lambda c, s=None: (names[int(c)] if names else str(int(c))) + ("" if s is None else f" {s:.2f}")
    show_image(image, ax)
    if truths is None:
        colors = [class_color(c) for c in det[:, 5]]
        draw_boxes(ax, det[:, :4], [label(c, s) for s, c in det[:, 4:6]], colors, lw=1.5)
        if title:
            ax.set_title(title, fontsize=9)
        return
    gt = _as_float_array(truths).reshape(-1, 6)
    m = match_detections(det, gt, iou_threshold=iou_threshold)
    draw_boxes(ax, gt[m.missed, :4], None, "white", lw=1.5, linestyle="--")
    colors = ["#D00000" if fp else class_color(c) for fp, c in zip(m.fp, det[:, 5])]
    shown = m.tp | m.fp
    draw_boxes(ax, det[shown, :4], None, [c for c, keep in zip(colors, shown) if keep], lw=1.5)
    counts = f"{int(m.tp.sum())} right, {int(m.fp.sum())} wrong, {int(m.missed.sum())} missed"
    ax.set_title(f"{title}: {counts}" if title else counts, fontsize=9)
