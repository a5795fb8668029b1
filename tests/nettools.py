"""Test helpers for networks: batch norms with statistics worth testing."""

from __future__ import annotations

import torch
from torch import nn


def randomize_bn(model: nn.Module, seed: int = 0, min_var: float = 0.25) -> nn.Module:
    """Give every batch norm non-trivial statistics and affine terms (variances >= min_var)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + min_var)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
    return model


def spread_head(width: float, side: int, num_classes: int = 3, seed: int = 0):
    """A YOLOv2 (eval mode) whose head is rescaled so its output means something.

    At random init the head output is ~1e-5, every score the same; here each channel
    gets std 3 for objectness and classes (spread scores) and 0.5 for the box fields
    (boxes of sensible sizes), measured on two random ``side`` x ``side`` images.
    """
    from yolov2_lib.model import YOLOv2

    torch.manual_seed(seed)
    net = YOLOv2(num_classes=num_classes, width=width).eval()
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        net.head.conv.bias.zero_()
        std = net(x).std(dim=(0, 2, 3))  # (A*(5+C),)
        target = torch.tensor([0.5] * 4 + [3.0] * (1 + num_classes)).repeat(net.num_anchors)  # x y w h | obj classes
        net.head.conv.weight.mul_((target / std).view(-1, 1, 1, 1))
    return net
