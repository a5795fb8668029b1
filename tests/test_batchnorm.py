"""Tests for yolov2_lib.batchnorm: chapter 2's batch-norm experiments."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from yolov2_lib import batchnorm
from yolov2_lib.model import ConvBlock, Darknet19


def _toy_data(n: int = 120):
    g = torch.Generator().manual_seed(0)
    targets = torch.arange(n) % 2
    images = torch.rand(n, 1, 8, 8, generator=g, dtype=torch.float64) * 0.2
    images[targets == 1, :, :4] += 0.8  # class 1: a bright top half
    order = torch.randperm(n, generator=g)
    return images, targets, order[: n // 2], order[n // 2:]


def test_without_batch_norm_keeps_the_weights_and_leaves_the_original():
    net = Darknet19(width=0.125)
    plain = batchnorm.without_batch_norm(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 18
    assert torch.equal(plain.backbone.stage16[0].conv.weight, net.backbone.stage16[0].conv.weight)


def test_block_stds_one_value_per_block_and_batch_norm_keeps_the_scale():
    torch.manual_seed(0)
    net = Darknet19(width=0.125).train()
    x = torch.rand(2, 3, 64, 64)
    with_bn = batchnorm.block_stds(net, x)
    plain = batchnorm.block_stds(batchnorm.without_batch_norm(net), x)
    assert len(with_bn) == len(plain) == 19
    assert all(0.3 < s < 1.0 for s in with_bn[:18])  # normalised, then leaky ReLU
    assert plain[17] < 1e-3 * plain[0]  # PyTorch's default init shrinks the signal at every conv
    assert not any(h for m in net.modules() for h in m._forward_hooks.values())  # hooks removed


def test_tiny_darknet_shapes_and_seeded_start():
    a, b = batchnorm.tiny_darknet(True), batchnorm.tiny_darknet(True)
    assert torch.equal(a[0].conv.weight, b[0].conv.weight) and a[0].conv.weight.dtype == torch.float64
    assert a(torch.zeros(3, 1, 8, 8, dtype=torch.float64)).shape == (3, 10)
    assert isinstance(batchnorm.tiny_darknet(False, 0.5)[5], nn.Dropout)
    assert sum(isinstance(m, ConvBlock) and m.batch_norm for m in batchnorm.tiny_darknet(False).modules()) == 0


def test_train_classifier_learns_is_repeatable_and_restores_threads():
    images, targets, train_ids, test_ids = _toy_data()
    threads = torch.get_num_threads()
    runs = [batchnorm.train_classifier(batchnorm.tiny_darknet(True, num_classes=2), images, targets,
                                       train_ids, test_ids, lr=0.1, steps=30, batch_size=16) for _ in range(2)]
    assert torch.get_num_threads() == threads
    assert runs[0] == runs[1] and len(runs[0].losses) == 30
    assert runs[0].test_accuracy > 0.9 and sum(runs[0].losses[-5:]) < sum(runs[0].losses[:5])
    diverged = batchnorm.train_classifier(batchnorm.tiny_darknet(False, num_classes=2), images * 1e3, targets,
                                          train_ids, test_ids, lr=50.0, steps=10, batch_size=16)
    assert any(math.isnan(v) or v > 1e3 for v in diverged.losses)
    with pytest.raises(ValueError, match="non-empty"):
        batchnorm.train_classifier(batchnorm.tiny_darknet(True), images, targets, train_ids[:0], test_ids, lr=0.1)
