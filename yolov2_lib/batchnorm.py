"""What batch norm does, measured (chapter 2).

YOLO v2 puts batch norm after every convolution and drops dropout. This
module holds the two small experiments that chapter 2 and its Going deeper
page run to show why: the size of the signal through an untrained
Darknet-19 with and without its batch norms, and a tiny Darknet-style
classifier trained on real 8 x 8 digits with and without batch norm or
dropout.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import YOLOv2Error
from .model import ConvBlock, GlobalAvgPool

__all__ = ["DigitsRun", "block_stds", "tiny_darknet", "train_classifier", "without_batch_norm"]


def without_batch_norm(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose :class:`~yolov2_lib.model.ConvBlock`s lose their batch norm.

    The convolution weights are the same; only the normalisation is gone
    (a block with BN has no conv bias, so none is added either).

    Args:
        net: any module built from ``ConvBlock``s.

    Returns:
        The copy; ``net`` is untouched.
    """
    plain = copy.deepcopy(net)
    for block in plain.modules():
        if isinstance(block, ConvBlock):
            block.bn = nn.Identity()
    return plain


@torch.no_grad()
def block_stds(net: nn.Module, x: Tensor) -> list[float]:
    """Standard deviation of every ``ConvBlock``'s output in one forward pass.

    Args:
        net: a module built from ``ConvBlock``s (used in its current mode:
            train mode makes batch norm use the batch's own statistics).
        x: its input.

    Returns:
        One value per block, in execution order.
    """
    stds: list[float] = []
    hooks = [b.register_forward_hook(lambda m, i, o: stds.append(o.std().item()))
             for b in net.modules() if isinstance(b, ConvBlock)]
    try:
        net(x)
    finally:
        for h in hooks:
            h.remove()
    return stds


def tiny_darknet(
    batch_norm: bool, dropout: float = 0.0, num_classes: int = 10, seed: int = 0, dtype: torch.dtype = torch.float64
) -> nn.Sequential:
    """A Darknet-style classifier for 8 x 8 images, small enough to train in seconds.

    Three 3 x 3 ``ConvBlock``s (16, 32, 64 channels) with two max-pools,
    optional dropout before the classifier (as YOLO v1 had), a linear 1 x 1
    convolution to the classes and global average pooling, as in Darknet-19.

    Args:
        batch_norm: batch norm after each 3 x 3 convolution.
        dropout: dropout rate before the classifier (0 for none).
        num_classes: outputs.
        seed: seeds the initial weights, so variants start alike.
        dtype: parameter dtype (float64 makes the runs identical on every machine).

    Returns:
        The network, mapping (B, 1, 8, 8) to (B, num_classes) logits.
    """
    torch.manual_seed(seed)
    return nn.Sequential(
        ConvBlock(1, 16, 3, batch_norm=batch_norm), nn.MaxPool2d(2),
        ConvBlock(16, 32, 3, batch_norm=batch_norm), nn.MaxPool2d(2),
        ConvBlock(32, 64, 3, batch_norm=batch_norm), nn.Dropout(dropout),
        ConvBlock(64, num_classes, 1, batch_norm=False, activation=None),
        GlobalAvgPool(), nn.Flatten(),
    ).to(dtype)


class DigitsRun(NamedTuple):
    """What :func:`train_classifier` returns: the loss of every step and the final accuracies."""

    losses: list[float]
    train_accuracy: float
    test_accuracy: float


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_classifier(
    net: nn.Module,
    images: Tensor,
    targets: Tensor,
    train_ids: Tensor,
    test_ids: Tensor,
    *,
    lr: float,
    steps: int = 100,
    batch_size: int = 32,
    momentum: float = 0.9,
    seed: int = 1,
    threads: int | None = 1,
) -> DigitsRun:
    """Train a classifier with SGD and momentum on random batches, then measure its accuracy.

    The batches come from a generator seeded with ``seed``, so every variant
    sees the same images in the same order. Chapter 2's Going deeper page
    trains :func:`tiny_darknet` on scikit-learn's digits with it.

    Args:
        net: the classifier (trained in place).
        images: (N, C, H, W) all images, in the network's dtype.
        targets: (N,) their classes.
        train_ids, test_ids: indices of the training and test images.
        lr: learning rate.
        steps: SGD steps.
        batch_size: images per step, drawn with replacement from ``train_ids``.
        momentum: SGD momentum.
        seed: seeds the batch draws.
        threads: torch threads during the run (tiny tensors run fastest on
            one); ``None`` leaves the setting alone.

    Returns:
        A :class:`DigitsRun`; the loss is NaN from the step where training diverges.
    """
    if len(train_ids) == 0 or len(test_ids) == 0:
        raise YOLOv2Error("train_ids and test_ids must both be non-empty.")
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    batches = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    with _threads(threads):
        net.train()
        for _ in range(steps):
            ids = train_ids[torch.randint(len(train_ids), (batch_size,), generator=batches)]
            loss = F.cross_entropy(net(images[ids]), targets[ids])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        net.eval()
        with torch.no_grad():
            hits = [(net(images[i]).argmax(1) == targets[i]).double().mean().item() for i in (train_ids, test_ids)]
    return DigitsRun(losses, *hits)
