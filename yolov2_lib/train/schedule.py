"""The learning rate over a run and the averaged weights: darknet's schedule and an EMA (chapter 9)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["DarknetSchedule", "ModelEMA"]


@dataclass
class DarknetSchedule:
    """Darknet's ``steps`` learning-rate policy with burn-in, as a ``LambdaLR`` factor.

    Update ``i`` (1-based, darknet's ``get_current_batch``) uses
    ``(i / burn_in) ** power`` while ``i < burn_in``, then ``scale ** k`` where
    ``k`` is the number of ``steps`` at or below ``i``.

    Attributes:
        burn_in: updates of warm-up.
        power: exponent of the warm-up.
        steps: update numbers where the rate is multiplied by ``scale``.
        scale: the factor at each step.
    """

    burn_in: int = 1000
    power: float = 4.0
    steps: tuple[int, ...] = ()
    scale: float = 0.1

    def factor(self, iteration: int) -> float:
        """Learning-rate multiplier of update ``iteration`` (1-based)."""
        if iteration < self.burn_in:
            return (iteration / self.burn_in) ** self.power
        return self.scale ** sum(1 for s in self.steps if iteration >= s)

    def __call__(self, last_epoch: int) -> float:
        # LambdaLR asks after ``last_epoch`` scheduler steps, i.e. for update last_epoch + 1.
        return self.factor(last_epoch + 1)


class ModelEMA:
    """Exponential moving average of a model's weights and buffers.

    After each update ``ema = d * ema + (1 - d) * model`` with
    ``d = min(decay, (1 + n) / (10 + n))`` at update ``n``, so the average
    forgets the random initialisation quickly. Integer buffers are copied.
    Test scores of single checkpoints swing from one to the next; the average
    is steadier, and is what the trainer evaluates.

    Args:
        model: the model to follow (not modified).
        decay: the long-run decay.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = float(decay)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        for name, avg in self.module.state_dict().items():
            new = current[name].detach()
            if avg.is_floating_point():
                avg.lerp_(new, 1.0 - d)
            else:
                avg.copy_(new)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])

