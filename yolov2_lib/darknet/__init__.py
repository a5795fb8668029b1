"""Darknet interoperability: ``.cfg`` files and ``.weights`` files (chapters 2, 7 and 9).

``load_darknet("yolov2-voc.cfg", "yolov2-voc.weights")`` builds the
network a darknet ``.cfg`` describes and fills it with a darknet weights
file. The sections of the YOLO v2 family are supported: ``[net]``,
``[convolutional]``, ``[maxpool]`` (including darknet's padded stride-1
pool of yolov2-tiny), ``[route]``, ``[reorg]``, ``[avgpool]``,
``[softmax]``, ``[region]``, ``[dropout]`` and ``[cost]``. The forward pass
takes (B, 3, H, W) RGB images in [0, 1] and returns the raw head tensor
(B, A*(5+C), H/32, W/32) (for a classifier, the softmax scores (B, classes)).

The arithmetic follows darknet's C code: batch norm divides by
``sqrt(var) + 1e-6`` (``normalize_cpu`` in ``src/blas.c``), max-pool pads
right and bottom (``maxpool_layer.c``), reorg uses darknet's order
(``passthrough.darknet_reorg``).

A ``.weights`` file is: int32 major, minor, revision; ``seen`` (images
trained on) as int64 when ``major*10 + minor >= 2``, else int32; then, for
each convolutional layer in order, float32 biases, and for batch-norm
layers scales, running mean and running variance, then the weights in
(out, in, kh, kw) order. :func:`save_darknet_weights` and
:func:`load_darknet_weights` read and write that format for a
:class:`DarknetNet` and also for ``model.YOLOv2`` and ``model.Darknet19``,
whose layers are registered in darknet's order; there the variance is
converted so that PyTorch's ``sqrt(var + eps)`` and darknet's
``sqrt(var) + 1e-6`` give the same outputs.

Every problem raises :class:`DarknetFormatError` naming the file, the line
and what is wrong.

The package has one module per idea: ``cfg`` (the ``.cfg`` text format),
``layers`` (darknet's layers in PyTorch), ``network`` (:class:`DarknetNet`,
the network a cfg describes) and ``weights`` (the ``.weights`` file format).
"""

from __future__ import annotations

from .cfg import CfgSection, DarknetFormatError, cfg_differences, parse_cfg, parse_cfg_string, to_darknet_cfg
from .layers import DARKNET_BN_EPS, DarknetBatchNorm2d, DarknetMaxPool2d, DarknetSoftmax, Region, Route
from .network import DarknetNet
from .weights import (
    DarknetHeader,
    darknet_weight_count,
    load_darknet,
    load_darknet_weights,
    read_darknet_weights,
    save_darknet_weights,
)

__all__ = [
    "DARKNET_BN_EPS",
    "CfgSection",
    "DarknetBatchNorm2d",
    "DarknetFormatError",
    "DarknetHeader",
    "DarknetMaxPool2d",
    "DarknetNet",
    "DarknetSoftmax",
    "Region",
    "Route",
    "cfg_differences",
    "darknet_weight_count",
    "load_darknet",
    "load_darknet_weights",
    "parse_cfg",
    "parse_cfg_string",
    "read_darknet_weights",
    "save_darknet_weights",
    "to_darknet_cfg",
]
