"""The paper's comparison of detectors: speed against accuracy (chapter 1)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from ..colors import CLASS_COLORS
from ..errors import YOLOv2Error
from .multiscale import plot_speed_accuracy


def plot_detector_comparison(ax: plt.Axes, results: Sequence, *, realtime_fps: float = 30.0) -> None:
    """Speed against accuracy for the detectors of a comparison table (the paper's Table 3).

    The YOLOv2 rows (one network at several input sizes) are joined into one
    curve; every other detector is a labelled point. The speed axis is
    logarithmic, so 0.5 and 91 frames per second fit on one plot. Chapter 1
    draws it.

    Args:
        ax: the axes.
        results: rows with ``detector``, ``map`` and ``fps`` (``paper.TABLE3_DETECTORS``).
        realtime_fps: where a dashed line marks real time (``None`` for none).
    """
    rows = [r for r in results if r.fps]
    if not rows:
        raise YOLOv2Error("results must hold at least one row with a speed (fps).")
    yolo = [r for r in rows if r.detector.startswith("YOLOv2")]
    others = [r for r in rows if not r.detector.startswith("YOLOv2")]
    if yolo:
        sizes = [r.detector.split()[-1].split("x")[0] for r in yolo]
        plot_speed_accuracy(ax, sizes, [r.fps for r in yolo], [r.map for r in yolo], label="YOLOv2 (one network)",
                            color=CLASS_COLORS[5])
    for r in others:
        ax.plot(r.fps, r.map, marker="s", linestyle="none", color=CLASS_COLORS[4])
        ax.annotate(r.detector, (r.fps, r.map), textcoords="offset points", xytext=(5, -10), fontsize=8)
    if realtime_fps:
        ax.axvline(realtime_fps, color="#777777", linestyle="--", lw=1)
        ax.text(realtime_fps * 0.95, max(r.map for r in rows), "real time", fontsize=8, color="#555555",
                ha="right", va="top")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("frames per second (log scale)")
    ax.set_ylabel("VOC 2007 mAP (%)")
    ax.grid(alpha=0.3, which="both")
    if yolo:
        ax.legend(loc="lower left", fontsize=8)
