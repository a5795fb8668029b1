"""Multi-scale training: one network at many input sizes, speed against accuracy (chapter 8)."""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..errors import YOLOv2Error


def plot_speed_accuracy(
    ax: plt.Axes,
    sizes: Sequence[int],
    speed: Sequence[float],
    accuracy: Sequence[float],
    *,
    label: str | None = None,
    color: str | None = None,
    marker: str = "o",
):
    """One point per input size, speed across and accuracy up, each labelled with its size.

    The picture of the paper's Table 3: a multi-scale network is one curve of
    operating points, from fast and coarse to slow and sharp.

    Args:
        ax: the axes.
        sizes: the input side of each point.
        speed: images per second at each size.
        accuracy: mAP at each size.
        label: legend label of the curve.
        color: its colour (default: the next of the axes' cycle).
        marker: the point marker.

    Returns:
        The matplotlib line.
    """
    if not len(sizes) == len(speed) == len(accuracy) or len(sizes) == 0:
        raise YOLOv2Error(
            f"Expected as many speeds and accuracies as sizes (at least one), got {len(sizes)} sizes, "
            f"{len(speed)} speeds and {len(accuracy)} accuracies."
        )
    (line,) = ax.plot(speed, accuracy, marker=marker, color=color, label=label)
    for size, x, y in zip(sizes, speed, accuracy):
        ax.annotate(str(size), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8, color=line.get_color())
    ax.set_xlabel("images per second")
    ax.set_ylabel("mAP")
    ax.grid(alpha=0.3)
    return line


def plot_scale_experiment(ax: plt.Axes, record: dict, colors: Sequence[str] | None = None) -> dict[str, Any]:
    """mAP against the test input size, one curve per way of training: single-size against multi-scale.

    Each arm of the experiment is drawn as the mean over its seeds (a line),
    every seed's own run (small dots), and the band of sizes it was trained at
    (shaded), so one sees where a network is tested outside what it learned.

    Args:
        ax: the axes.
        record: a record of ``python -m yolov2_lib.bench multiscale``: ``arms``
            (name -> training sizes), ``test_sizes`` and ``runs`` (each with
            ``arm`` and ``map``, test size -> mAP).
        colors: one colour per arm (default: the axes' cycle).

    Returns:
        name -> the arm's mean line.
    """
    for key in ("arms", "test_sizes", "runs"):
        if key not in record:
            raise YOLOv2Error(f"Expected a multi-scale experiment record with {key!r}; it has {sorted(record)}.")
    sizes = [int(s) for s in record["test_sizes"]]
    lines = {}
    for k, (arm, trained) in enumerate(record["arms"].items()):
        runs = [r for r in record["runs"] if r["arm"] == arm]
        if not runs:
            raise YOLOv2Error(f"The record has no run of the arm {arm!r}.")
        try:
            scores = np.array([[r["map"][str(s)] for s in sizes] for r in runs], dtype=float)
        except KeyError as err:
            raise YOLOv2Error(f"A run of {arm!r} has no mAP at test size {err.args[0]}.") from None
        color = colors[k] if colors is not None else f"C{k}"
        span = f"{min(trained)}" if len(trained) == 1 else f"{min(trained)}-{max(trained)}"
        (line,) = ax.plot(sizes, scores.mean(0), marker="o", color=color,
                          label=f"{arm}: trained at {span} (mean of {len(runs)})")
        for row in scores:
            ax.plot(sizes, row, ls="none", marker=".", ms=4, alpha=0.45, color=color)
        ax.axvspan(min(trained) - 8, max(trained) + 8, color=color, alpha=0.08, lw=0)
        lines[arm] = line
    ax.set(xlabel="test input size", ylabel="mAP@0.5", xticks=sizes)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return lines
