"""Training on a single batch for a few steps: how a loss's quantities move (chapter 6)."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import YOLOv2Error

__all__ = ["OverfitRun", "OVERFIT_COLUMNS", "overfit_batch"]


class OverfitRun(NamedTuple):
    """What :func:`overfit_batch` records.

    Attributes:
        history: (steps, 4) per step: darknet's average IoU of the responsible anchors,
            their average objectness, the coordinate term of the loss, and the mean
            ``|t_w|, |t_h|`` of all anchors (how far the sizes drifted from the priors).
        stats: darknet's statistics after the last step.
    """

    history: np.ndarray
    stats: Any


#: The columns of :attr:`OverfitRun.history`.
OVERFIT_COLUMNS = ("avg_iou", "avg_obj", "coord", "drift")


def overfit_batch(
    model: nn.Module,
    images: Tensor,
    targets: Sequence[Tensor],
    loss_fn,
    *,
    steps: int = 50,
    lr: float = 1e-3,
    initial_state: dict[str, Tensor] | None = None,
    seed: int = 0,
) -> OverfitRun:
    """Train on one batch for a few Adam steps and record how the loss's quantities move.

    The small experiment of chapter 6 (the loss): the same model, initial weights,
    data and optimizer for every variant of the loss, so that only the loss differs.

    Args:
        model: a YOLO v2 detector (trained in place).
        images: (B, 3, S, S) the batch.
        targets: B tensors (N_i, 5) rows ``(class, cx, cy, w, h)``.
        loss_fn: called as ``loss_fn(raw, targets, seen=...)``, returning a
            :class:`~yolov2_lib.loss.LossOutput` (a :class:`~yolov2_lib.loss.YOLOv2Loss` or a variant).
        steps: optimizer steps.
        lr: Adam's learning rate.
        initial_state: a state dict loaded before training (``None``: the model as it is).
        seed: seeds torch before the run.

    Returns:
        :class:`OverfitRun`.
    """
    from ..layout import head_view

    if steps < 1:
        raise YOLOv2Error(f"Expected steps >= 1, got {steps}.")
    torch.manual_seed(seed)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for step in range(steps):
        raw = model(images)
        out = loss_fn(raw, targets, seen=(step + 1) * len(images))
        optimizer.zero_grad()
        out.total.backward()
        optimizer.step()
        drift = head_view(raw.detach(), len(model.anchors))[..., 2:4].abs().mean()
        history.append([out.stats.avg_iou.item(), out.stats.avg_obj.item(), out.coord.item(), drift.item()])
    return OverfitRun(np.array(history), out.stats)

