"""The paper's Table 2 measured here: what each YOLO v2 idea adds, beside what the paper reports (chapter 9)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt

from ..colors import CLASS_COLORS
from ..errors import YOLOv2Error


def plot_ablation(ax: plt.Axes, rows: Mapping[str, Mapping[str, Any]], *, metric: str = "VOC 2007 mAP") -> list[str]:
    """One line per idea: the mAP it adds here, with its 95 % interval, and the paper's gain beside it.

    Args:
        ax: the axes.
        rows: ``{name: row}`` as ``bench.ablation.summarise`` gives them: a row
            with a ``"gain"`` (``{"mean", "low", "high", "n"}``, in mAP points)
            is drawn; ``"paper_gain"`` (points, or None) is drawn as a diamond
            and ``"what"`` labels the line. Rows without a gain (the full
            YOLO v2) are skipped.
        metric: the rule named on the x axis.

    Returns:
        The names drawn, top to bottom.

    Raises:
        YOLOv2Error: when no row has a gain to draw, or a gain's interval does not hold its mean.
    """
    drawn = [name for name, row in rows.items() if row.get("gain")]
    if not drawn:
        raise YOLOv2Error("no row has a measured gain to draw: the record needs YOLO v2 and at least one arm.")
    for k, name in enumerate(drawn):
        gain = rows[name]["gain"]
        low, mean, high = gain["low"], gain["mean"], gain["high"]
        if not low <= mean <= high and gain["n"] > 1:
            raise YOLOv2Error(f"row {name!r}: the interval [{low}, {high}] does not hold the mean {mean}.")
        y = -k
        if gain["n"] > 1:
            ax.plot([low, high], [y, y], color=CLASS_COLORS[4], lw=2.5, solid_capstyle="butt")
        ax.plot([mean], [y], "o", color=CLASS_COLORS[4], label="measured here (95 % interval)" if k == 0 else None)
        paper = rows[name].get("paper_gain")
        if paper is not None:
            ax.plot([paper], [y], "D", color=CLASS_COLORS[5], mfc="white",
                    label="the paper's Table 2 (VOC)" if k == 0 else None)
    ax.axvline(0, color="gray", lw=0.8)
    ax.set_yticks([-k for k in range(len(drawn))])
    ax.set_yticklabels([f"{name}\n({rows[name]['gain']['n']} seeds)" for name in drawn], fontsize=8)
    ax.set_xlabel(f"mAP points the idea adds ({metric})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return drawn
