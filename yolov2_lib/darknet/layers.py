"""The layers darknet has and PyTorch lacks, computed as darknet computes them (chapters 2 and 7).

:class:`DarknetBatchNorm2d` divides by ``sqrt(var) + 1e-6`` (``normalize_cpu``
in ``src/blas.c``); :class:`DarknetMaxPool2d` pads right and bottom
(``maxpool_layer.c``), as the stride-1 pool of yolov2-tiny needs;
:class:`Route` joins earlier layers' outputs (the passthrough of chapter 7);
:class:`DarknetSoftmax` and :class:`Region` end classifiers and detectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import YOLOv2Error
from ..model import GlobalAvgPool

__all__ = ["DARKNET_BN_EPS", "DarknetBatchNorm2d", "DarknetMaxPool2d", "DarknetSoftmax", "Region", "Route"]

DARKNET_BN_EPS = 1e-6  # added to the standard deviation, not to the variance


class DarknetBatchNorm2d(nn.BatchNorm2d):
    """Batch norm with darknet's formula: ``(x - mean) / (sqrt(var) + eps) * gamma + beta``.

    ``eps`` (1e-6) is added to the standard deviation, not the variance
    (``normalize_cpu`` in darknet's ``src/blas.c``). In training mode it
    normalises with the batch mean and the unbiased batch variance and
    updates the running statistics with ``momentum`` (darknet: 0.01).

    Args:
        num_features: channels.
        eps: added to the standard deviation.
        momentum: weight of the new batch in the running averages.
    """

    def __init__(self, num_features: int, eps: float = DARKNET_BN_EPS, momentum: float = 0.01) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)

    def inv_std(self) -> Tensor:
        """``1 / (sqrt(running_var) + eps)``, used when folding into a convolution."""
        return 1.0 / (self.running_var.sqrt() + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            mean = x.mean(dim=(0, 2, 3))  # (C,)
            var = x.var(dim=(0, 2, 3), unbiased=True)  # darknet's variance_cpu divides by n - 1
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(var.detach().to(self.running_var.dtype), self.momentum)
                self.num_batches_tracked.add_(1)
            inv = 1.0 / (var.sqrt() + self.eps)
        else:
            mean, inv = self.running_mean, self.inv_std()
        scale = self.weight * inv  # (C,)
        shift = self.bias - mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


class DarknetMaxPool2d(nn.Module):
    """Darknet's ``[maxpool]``: output side ``(H + padding - size) / stride + 1``.

    Darknet starts windows at ``-(padding // 2)`` and treats cells outside
    the image as ``-FLT_MAX``; with the default ``padding = size - 1`` a
    2x2 stride-1 pool keeps a 13x13 map at 13x13 (yolov2-tiny).

    Args:
        size: window side.
        stride: step.
        padding: darknet's total padding (default ``size - 1``).
    """

    layer_type = "max"

    def __init__(self, size: int, stride: int, padding: int | None = None) -> None:
        super().__init__()
        self.kernel_size, self.stride = size, stride
        self.padding = size - 1 if padding is None else padding

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        out_h = (h + self.padding - self.kernel_size) // self.stride + 1
        out_w = (w + self.padding - self.kernel_size) // self.stride + 1
        if out_h < 1 or out_w < 1:
            raise YOLOv2Error(f"[maxpool] size={self.kernel_size} gets a {h}x{w} map, too small.")
        left = self.padding // 2
        bottom = (out_h - 1) * self.stride + self.kernel_size - left - h
        right = (out_w - 1) * self.stride + self.kernel_size - left - w
        if left or right or bottom:
            x = F.pad(x, (left, right, left, bottom), value=-torch.finfo(x.dtype).max)
        return F.max_pool2d(x, self.kernel_size, self.stride)  # (B, C, out_h, out_w)

    def extra_repr(self) -> str:
        return f"size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Route(nn.Module):
    """Darknet's ``[route]``: concatenate earlier layers' outputs along channels.

    Args:
        indices: absolute indices of the layers to concatenate.
    """

    layer_type = "route"

    def __init__(self, indices: Sequence[int]) -> None:
        super().__init__()
        self.indices = list(indices)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        sizes = {tuple(t.shape[-2:]) for t in inputs}
        if len(sizes) > 1:
            shapes = ", ".join(f"layer {i}: {tuple(t.shape[1:])}" for i, t in zip(self.indices, inputs))
            raise YOLOv2Error(f"[route] joins maps of different sizes ({shapes}).")
        return inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=1)

    def extra_repr(self) -> str:
        return f"layers={self.indices}"


class DarknetSoftmax(nn.Module):
    """Darknet's ``[softmax]``: flatten each image, softmax within ``groups`` equal groups.

    Args:
        groups: number of groups.
        temperature: divides the inputs first.
    """

    layer_type = "softmax"

    def __init__(self, groups: int = 1, temperature: float = 1.0) -> None:
        super().__init__()
        self.groups, self.temperature = groups, temperature

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        x = x.reshape(b, self.groups, -1) / self.temperature  # (B, groups, N/groups)
        return x.softmax(dim=-1).reshape(b, -1)  # (B, N)


class Region(nn.Module):
    """Darknet's ``[region]`` at inference: hands the raw head tensor through unchanged.

    Its options (anchors, classes, loss scales) are kept for the loss and
    the decoder; the sigmoid/softmax darknet applies belong to ``decode``.

    Attributes:
        anchors: (A, 2) priors in grid cells.
        num_classes, coords: as in the cfg.
        options: every other ``[region]`` key, parsed as numbers.
    """

    layer_type = "region"

    def __init__(self, anchors: Tensor, num_classes: int, coords: int = 4, options: dict[str, float] | None = None):
        super().__init__()
        self.register_buffer("anchors", anchors)
        self.num_classes, self.coords = num_classes, coords
        self.options = dict(options or {})

    def forward(self, x: Tensor) -> Tensor:
        expected = self.anchors.shape[0] * (self.coords + 1 + self.num_classes)
        if x.shape[1] != expected:
            raise YOLOv2Error(f"[region] expects {expected} channels, got {x.shape[1]}.")
        return x

    def extra_repr(self) -> str:
        return f"num={self.anchors.shape[0]}, classes={self.num_classes}, coords={self.coords}"


class _Dropout(nn.Dropout):
    layer_type = "dropout"


class _Cost(nn.Identity):
    layer_type = "cost"


class _AvgPool(GlobalAvgPool):
    layer_type = "avg"
