"""The passthrough layer: moving a fine feature map into channels (chapter 7).

YOLO v2 brings the 26x26 features of Darknet-19 to the 13x13 head by
stacking each 2x2 block of neighbouring cells into the channels, so that a
(C, 26, 26) map becomes (4C, 13, 13) and can be concatenated with the
coarse features. Two orders of that rearrangement exist:

- :func:`space_to_depth`, the clean one (the same as
  ``torch.nn.functional.pixel_unshuffle``): output channel
  ``c * s*s + dy * s + dx`` at cell ``(y, x)`` holds input
  ``(c, y*s + dy, x*s + dx)``.
- :func:`darknet_reorg`, what darknet's ``[reorg]`` layer really computes
  (``reorg_cpu(..., forward=0, ...)`` in ``src/blas.c``, called from
  ``forward_reorg_layer``): it first reinterprets the memory of the
  (C, H, W) input as (C/s^2, H*s, W*s), gathers from that view into a
  (C, H, W) buffer, then reinterprets that buffer as (C*s^2, H/s, W/s).
  The values are the same, the channel order is not. Official darknet
  weights only work with this order.

Both are exact permutations of the input values; their inverses are
:func:`depth_to_space` and :func:`darknet_reorg_inverse`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .errors import YOLOv2Error

__all__ = [
    "REORG_ORDERS",
    "Reorg",
    "darknet_reorg",
    "darknet_reorg_inverse",
    "depth_to_space",
    "reorg",
    "reorg_inverse",
    "reorg_source",
    "space_to_depth",
]

ReorgOrder = Literal["darknet", "space_to_depth"]
REORG_ORDERS: tuple[str, ...] = ("darknet", "space_to_depth")


def _check_stride(stride: int, name: str) -> None:
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise YOLOv2Error(f"{name}: stride must be a positive integer, got {stride!r}.")


def _check(x: Tensor, stride: int, name: str, *, channels_multiple: int = 1) -> None:
    _check_stride(stride, name)
    if not isinstance(x, Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise YOLOv2Error(f"{name}: expected a tensor of shape (B, C, H, W), got {shape}.")
    _, c, h, w = x.shape
    if h % stride or w % stride:
        raise YOLOv2Error(
            f"{name}: height and width must be multiples of stride={stride}, got {h}x{w}."
        )
    if c % channels_multiple:
        raise YOLOv2Error(
            f"{name}: the number of channels must be a multiple of {channels_multiple} "
            f"(stride^2), got {c}."
        )


def space_to_depth(x: Tensor, stride: int = 2) -> Tensor:
    """Stack each ``stride x stride`` block of cells into the channels.

    Output channel ``c * stride**2 + dy * stride + dx`` at cell ``(y, x)``
    holds input channel ``c`` at ``(y * stride + dy, x * stride + dx)``;
    this equals ``torch.nn.functional.pixel_unshuffle(x, stride)``.

    Args:
        x: a (B, C, H, W) tensor with H and W multiples of ``stride``.
        stride: the block size s.

    Returns:
        The (B, C * s^2, H / s, W / s) tensor, on the device of ``x``.
    """
    _check(x, stride, "space_to_depth")
    s = stride
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // s, s, w // s, s)  # (B, C, H/s, dy, W/s, dx)
    x = x.permute(0, 1, 3, 5, 2, 4)  # (B, C, dy, dx, H/s, W/s)
    return x.reshape(b, c * s * s, h // s, w // s)


def depth_to_space(x: Tensor, stride: int = 2) -> Tensor:
    """Invert :func:`space_to_depth` (``torch.nn.functional.pixel_shuffle``).

    Args:
        x: a (B, C * s^2, H, W) tensor.
        stride: the block size s.

    Returns:
        The (B, C, H * s, W * s) tensor such that
        ``space_to_depth(depth_to_space(x, s), s)`` equals ``x``.
    """
    _check_stride(stride, "depth_to_space")
    _check(x, 1, "depth_to_space", channels_multiple=stride * stride)
    s = stride
    b, cs2, h, w = x.shape
    c = cs2 // (s * s)
    x = x.reshape(b, c, s, s, h, w)  # (B, C, dy, dx, H, W)
    x = x.permute(0, 1, 4, 2, 5, 3)  # (B, C, H, dy, W, dx)
    return x.reshape(b, c, h * s, w * s)


def darknet_reorg(x: Tensor, stride: int = 2) -> Tensor:
    """Darknet's ``[reorg]`` layer, in its exact memory order.

    With c' = C / s^2, darknet reads the (C, H, W) input as X of shape
    (c', H*s, W*s) and writes ``out[k, j, i] = X[k % c', j*s + off // s,
    i*s + off % s]`` with ``off = k // c'``, then hands the (C, H, W) buffer
    on as (C*s^2, H/s, W/s). The values are those of
    :func:`space_to_depth`, in another order.

    Args:
        x: a (B, C, H, W) tensor, C a multiple of s^2, H and W multiples of s.
        stride: s, 2 in YOLO v2.

    Returns:
        The (B, C * s^2, H / s, W / s) tensor, on the device of ``x``.
    """
    _check(x, stride, "darknet_reorg", channels_multiple=stride * stride)
    s = stride
    b, c, h, w = x.shape
    x = x.reshape(b, c // (s * s), h, s, w, s)  # X = (B, c', H*s, W*s) split as (B, c', j, dy, i, dx)
    x = x.permute(0, 3, 5, 1, 2, 4)  # (B, dy, dx, c', H, W): channel k = (dy*s + dx)*c' + c2
    return x.reshape(b, c * s * s, h // s, w // s)  # the (C, H, W) buffer read as (C*s^2, H/s, W/s)


def darknet_reorg_inverse(x: Tensor, stride: int = 2) -> Tensor:
    """Invert :func:`darknet_reorg`.

    This is darknet's backward pass of ``[reorg]`` (``reorg_cpu`` with
    ``forward=1`` on the deltas), not its ``reverse=1`` option.

    Args:
        x: a (B, C * s^2, H / s, W / s) tensor (C a multiple of s^2).
        stride: s.

    Returns:
        The (B, C, H, W) tensor such that ``darknet_reorg(result, s)``
        equals ``x``.
    """
    _check_stride(stride, "darknet_reorg_inverse")
    s = stride
    _check(x, 1, "darknet_reorg_inverse", channels_multiple=s**4)
    b, cs2, hs, ws = x.shape
    c, h, w = cs2 // (s * s), hs * s, ws * s
    x = x.reshape(b, s, s, c // (s * s), h, w)  # (B, dy, dx, c', H, W)
    x = x.permute(0, 3, 4, 1, 5, 2)  # (B, c', H, dy, W, dx)
    return x.reshape(b, c, h, w)


def reorg(x: Tensor, stride: int = 2, order: ReorgOrder = "darknet") -> Tensor:
    """Apply :func:`darknet_reorg` or :func:`space_to_depth` by name.

    Args:
        x: a (B, C, H, W) tensor.
        stride: s.
        order: ``"darknet"`` or ``"space_to_depth"``.

    Returns:
        The (B, C * s^2, H / s, W / s) tensor.
    """
    if order == "darknet":
        return darknet_reorg(x, stride)
    if order == "space_to_depth":
        return space_to_depth(x, stride)
    raise YOLOv2Error(f"order must be one of {REORG_ORDERS}, got {order!r}.")


def reorg_inverse(x: Tensor, stride: int = 2, order: ReorgOrder = "darknet") -> Tensor:
    """Invert :func:`reorg` for the same ``stride`` and ``order``.

    Args:
        x: a (B, C * s^2, H / s, W / s) tensor.
        stride: s.
        order: ``"darknet"`` or ``"space_to_depth"``.

    Returns:
        The (B, C, H, W) tensor.
    """
    if order == "darknet":
        return darknet_reorg_inverse(x, stride)
    if order == "space_to_depth":
        return depth_to_space(x, stride)
    raise YOLOv2Error(f"order must be one of {REORG_ORDERS}, got {order!r}.")


def reorg_source(
    channels: int, height: int, width: int, stride: int = 2, order: ReorgOrder = "darknet"
) -> Tensor:
    """Where each output value of a reorg comes from.

    Runs the reorg on a tensor of flat indices, so the answer is exactly
    what :func:`reorg` does.

    Args:
        channels, height, width: the input shape (C, H, W).
        stride: s.
        order: ``"darknet"`` or ``"space_to_depth"``.

    Returns:
        A long tensor of shape (3, C * s^2, H / s, W / s): for each output
        position, the input channel, row and column it holds.
    """
    index = torch.arange(channels * height * width).reshape(1, channels, height, width)
    flat = reorg(index, stride, order)[0]  # (C*s^2, H/s, W/s)
    return torch.stack([flat // (height * width), flat // width % height, flat % width])


class Reorg(nn.Module):
    """The passthrough rearrangement as a module (no parameters).

    Args:
        stride: s, 2 in YOLO v2.
        order: ``"darknet"`` (default, needed for darknet weights) or
            ``"space_to_depth"``.
    """

    def __init__(self, stride: int = 2, order: ReorgOrder = "darknet") -> None:
        super().__init__()
        _check_stride(stride, "Reorg")
        if order not in REORG_ORDERS:
            raise YOLOv2Error(f"Reorg: order must be one of {REORG_ORDERS}, got {order!r}.")
        self.stride = stride
        self.order = order

    def forward(self, x: Tensor) -> Tensor:
        return reorg(x, self.stride, self.order)  # (B, C*s^2, H/s, W/s)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, order={self.order!r}"
