"""One update of the weights on one batch: forward, loss, backward, clipping, step (chapter 9)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..loss import LossOutput
from ..precision import autocast

__all__ = ["NonFiniteLossError", "sgd_update"]

_LOSS_TERMS = ("loss", "coord", "obj", "noobj", "prior", "cls")


def _logged_terms(out: LossOutput) -> Tensor:
    """(6,) the loss and its five terms, detached, in the order of ``_LOSS_TERMS``."""
    return torch.stack(out[: len(_LOSS_TERMS)]).detach()



class NonFiniteLossError(FloatingPointError):
    """The loss (or the gradient) became NaN or infinite; training stopped before the update.

    ``what`` names the number ("loss" or "gradient norm") and ``value`` is what it was.
    """

    def __init__(self, message: str, what: str = "loss", value: float = math.nan) -> None:
        super().__init__(message)
        self.what, self.value = what, value



def sgd_update(net: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor,
               targets: list[Tensor], seen: int, *, amp_dtype: torch.dtype | None = None,
               grad_clip: float | None = None) -> tuple[LossOutput, float]:
    """One update of the weights on one batch: the core of :meth:`Trainer.train_step`.

    Forward (in ``amp_dtype`` when given), the loss, backward, clipping of the
    gradient's norm, the optimizer's step. The weights are left untouched when
    the loss or the gradient is not finite.

    Returns:
        (the loss's output with all its terms, the gradient norm before clipping).

    Raises:
        NonFiniteLossError: the loss or the gradient norm is NaN or infinite.
    """
    with autocast(images.device, amp_dtype):  # bf16 or fp16 where the hardware computes it natively
        raw = net(images)  # (B, A*(5+C), S/32, S/32)
    out = loss_fn(raw, targets, seen)  # chapter 6's loss; `seen` decides the anchor warm-up
    out.total.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip or math.inf))
    for what, value in (("loss", out.total.item()), ("gradient norm", grad_norm)):
        if not math.isfinite(value):
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(f"non-finite {what} ({value}): the update was not applied", what, value)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return out, grad_norm



def _split_list(items: list, parts: int) -> list[list]:
    """Split a list like ``Tensor.tensor_split`` splits a batch."""
    q, r = divmod(len(items), parts)  # tensor_split gives the first r chunks one more element
    bounds = [k * q + min(k, r) for k in range(parts + 1)]
    return [items[bounds[k]:bounds[k + 1]] for k in range(parts)]
