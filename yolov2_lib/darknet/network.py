"""The network a darknet ``.cfg`` describes: :class:`DarknetNet` (chapter 7).

Each section after ``[net]`` becomes one layer, at darknet's layer index, so
``[route] layers=-9`` means what it means in darknet. Shapes are worked out
at the ``[net]`` size while the network is built, so a cfg whose layers do
not fit together raises :class:`~yolov2_lib.darknet.cfg.DarknetFormatError`
at the line that is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import YOLOv2Error
from ..model import ConvBlock, fuse_bn
from ..passthrough import Reorg
from .cfg import CfgSection, DarknetFormatError, _Options
from .layers import (
    DARKNET_BN_EPS,
    DarknetBatchNorm2d,
    DarknetMaxPool2d,
    DarknetSoftmax,
    Region,
    Route,
    _AvgPool,
    _Cost,
    _Dropout,
)

__all__ = ["DarknetNet"]


class DarknetNet(nn.Module):
    """A network built from a darknet ``.cfg``; see :func:`load_darknet`.

    Args:
        sections: the parsed cfg (:func:`parse_cfg`).

    Attributes:
        layers: one module per cfg section after ``[net]``, darknet's layer indices.
        sections: the parsed cfg sections of the layers.
        height, width, channels: the input size the cfg declares.
        anchors: (A, 2) priors in grid cells from ``[region]``, or ``None``.
        num_classes: classes of ``[region]``, or the outputs of a classifier.
        region: the :class:`Region` layer, or ``None``.
        source: the cfg file name.
    """

    def __init__(self, sections: Sequence[CfgSection]) -> None:
        super().__init__()
        if not sections or sections[0].type != "net":
            where = sections[0].where() if sections else "<empty>"
            raise DarknetFormatError(f"{where}: the first section must be [net] (or [network]).")
        net = _Options(sections[0])
        self.source = sections[0].source
        self.seen = 0  # images trained on, from a loaded weights file
        self.height = net.int("height", 0, minimum=0)
        self.width = net.int("width", 0, minimum=0)
        self.channels = net.int("channels", 0, minimum=0)
        if self.channels < 1:
            raise DarknetFormatError(f"{sections[0].where()}: [net] needs 'channels' >= 1.")
        self.sections = list(sections[1:])
        self.layers = nn.ModuleList()
        self.region: Region | None = None
        self.num_classes: int | None = None
        shapes: list[tuple[int, int, int] | int] = []  # (C, H, W) per layer, or a flat size
        shape: tuple[int, int, int] | int = (self.channels, self.height, self.width)
        for index, section in enumerate(self.sections):
            layer, shape = _build_layer(section, index, shape, shapes)
            self.layers.append(layer)
            shapes.append(shape)
            if isinstance(layer, Region):
                self.region = layer
        if not self.layers:
            raise DarknetFormatError(f"{sections[0].where()}: the cfg has no layers after [net].")
        self.anchors: Tensor | None
        if self.region is not None:
            self.register_buffer("anchors", self.region.anchors.clone())
            self.num_classes = self.region.num_classes
        else:
            self.anchors = None
            last = shapes[-1]
            self.num_classes = last if isinstance(last, int) else last[0]
        needed = {i for layer in self.layers if isinstance(layer, Route) for i in layer.indices}
        self._keep = frozenset(needed)
        self.output_shape = shapes[-1]  # at the declared size

    @property
    def num_anchors(self) -> int | None:
        return None if self.anchors is None else self.anchors.shape[0]

    def fuse(self) -> "DarknetNet":
        """Fold batch norms into convolutions in place (see ``model.fuse_bn``)."""
        return fuse_bn(self, inplace=True)  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x: (B, channels, H, W) RGB images in [0, 1].

        Returns:
            The last layer's output: the raw head tensor (B, A*(5+C), H/32,
            W/32) for detection cfgs, the scores (B, classes) for classifiers.
        """
        return self._run(x, keep_all=False)[-1]

    def layer_outputs(self, x: Tensor) -> list[Tensor]:
        """Every layer's output for ``x`` (index i = darknet layer i).

        Args:
            x: (B, channels, H, W) images.

        Returns:
            One tensor per layer.
        """
        return self._run(x, keep_all=True)

    def _run(self, x: Tensor, keep_all: bool) -> list[Tensor]:
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != self.channels:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise YOLOv2Error(f"{self.source}: expected input of shape (B, {self.channels}, H, W), got {shape}.")
        outputs: list[Tensor | None] = []
        for index, (layer, section) in enumerate(zip(self.layers, self.sections)):
            try:
                if isinstance(layer, Route):
                    x = layer([outputs[i] for i in layer.indices])  # type: ignore[misc]
                else:
                    x = layer(x)
            except ValueError as err:
                raise YOLOv2Error(f"{section.where()}: layer {index} [{section.type}]: {err}") from err
            outputs.append(x if keep_all or index in self._keep else None)
        outputs[-1] = x
        return outputs  # type: ignore[return-value]


def _build_layer(
    section: CfgSection, index: int, shape: tuple[int, int, int] | int, shapes: list
) -> tuple[nn.Module, tuple[int, int, int] | int]:
    """One cfg section -> (module, output shape). Shapes use the [net] size (0 = unknown)."""
    o = _Options(section)
    kind = section.type
    for key in ("dontsave", "dontload", "numload", "dontloadscales"):
        if o.int(key, 0) != 0:
            raise DarknetFormatError(f"{section.where(key)}: {key} changes the weights layout and is not supported.")

    def image(what: str) -> tuple[int, int, int]:
        if isinstance(shape, int):
            raise DarknetFormatError(
                f"{section.where()}: [{what}] (layer {index}) needs an image from the layer before it, "
                f"which outputs a flat vector."
            )
        return shape

    if kind == "net":
        raise DarknetFormatError(f"{section.where()}: [net] may only be the first section.")

    if kind == "convolutional":
        c, h, w = image(kind)
        filters = o.int("filters", 1, minimum=1)
        size = o.int("size", 1, minimum=1)
        stride = o.int("stride", 1, minimum=1)
        groups = o.int("groups", 1, minimum=1)
        padding = size // 2 if o.int("pad", 0) else o.int("padding", 0, minimum=0)
        for key in ("binary", "xnor", "flipped"):
            if o.int(key, 0):
                raise DarknetFormatError(f"{section.where(key)}: {key}=1 convolutions are not supported.")
        if c % groups or filters % groups:
            raise DarknetFormatError(
                f"{section.where('groups')}: groups={groups} must divide the {c} input channels and {filters} filters."
            )
        activation = o.str("activation", "logistic")
        if activation not in ("leaky", "linear", "relu", "logistic", "tanh"):
            raise DarknetFormatError(
                f"{section.where('activation')}: unsupported activation {activation!r} "
                f"(supported: leaky, linear, relu, logistic, tanh)."
            )
        layer = ConvBlock(
            c, filters, size, stride=stride, padding=padding, groups=groups,
            batch_norm=bool(o.int("batch_normalize", 0)), activation=activation, leaky_slope=0.1,
            bn_eps=DARKNET_BN_EPS, bn_momentum=0.01, norm_layer=DarknetBatchNorm2d,
        )
        out_h = (h + 2 * padding - size) // stride + 1 if h else 0
        out_w = (w + 2 * padding - size) // stride + 1 if w else 0
        return layer, (filters, out_h, out_w)

    if kind == "maxpool":
        c, h, w = image(kind)
        stride = o.int("stride", 1, minimum=1)
        size = o.int("size", stride, minimum=1)
        padding = o.int("padding", size - 1, minimum=0)
        out_h = (h + padding - size) // stride + 1 if h else 0
        out_w = (w + padding - size) // stride + 1 if w else 0
        return DarknetMaxPool2d(size, stride, padding), (c, out_h, out_w)

    if kind == "avgpool":
        c, _, _ = image(kind)
        return _AvgPool(), (c, 1, 1)

    if kind == "softmax":
        for key in ("tree", "spatial"):
            if key in section.options:
                raise DarknetFormatError(f"{section.where(key)}: [softmax] {key} is not supported.")
        groups = o.int("groups", 1, minimum=1)
        size = shape if isinstance(shape, int) else math.prod(shape)
        if size and size % groups:
            raise DarknetFormatError(f"{section.where('groups')}: groups={groups} does not divide {size} inputs.")
        return DarknetSoftmax(groups, o.float("temperature", 1.0)), size

    if kind == "route":
        indices = []
        for value in o.ints("layers"):
            i = index + value if value < 0 else value
            if not 0 <= i < index:
                raise DarknetFormatError(
                    f"{section.where('layers')}: [route] to a missing layer: {value} resolves to layer {i}, "
                    f"but layer {index} can only use layers 0..{index - 1}."
                )
            indices.append(i)
        if not indices:
            raise DarknetFormatError(f"{section.where('layers')}: [route] lists no layers.")
        parts = [shapes[i] for i in indices]
        if any(isinstance(p, int) for p in parts):
            raise DarknetFormatError(f"{section.where('layers')}: [route] inputs must be images.")
        sizes = {p[1:] for p in parts}
        if len(sizes) > 1 and all(all(s) for s in sizes):
            listing = ", ".join(f"layer {i}: {p}" for i, p in zip(indices, parts))
            raise DarknetFormatError(f"{section.where('layers')}: [route] joins maps of different sizes ({listing}).")
        return Route(indices), (sum(p[0] for p in parts), parts[0][1], parts[0][2])

    if kind == "reorg":
        c, h, w = image(kind)
        stride = o.int("stride", 1, minimum=1)
        for key in ("reverse", "flatten", "extra"):
            if o.int(key, 0):
                raise DarknetFormatError(f"{section.where(key)}: [reorg] {key} is not supported.")
        if c % (stride * stride):
            raise DarknetFormatError(
                f"{section.where()}: [reorg] stride={stride} needs input channels divisible by "
                f"{stride * stride}, got {c}."
            )
        if (h and h % stride) or (w and w % stride):
            raise DarknetFormatError(
                f"{section.where()}: [reorg] stride={stride} needs a map divisible by {stride}, gets {h}x{w} "
                f"at the [net] size."
            )
        return Reorg(stride, "darknet"), (c * stride * stride, h // stride, w // stride)

    if kind == "region":
        c, h, w = image(kind)
        num = o.int("num", 1, minimum=1)
        classes = o.int("classes", 20, minimum=0)
        coords = o.int("coords", 4, minimum=1)
        if "anchors" in section.options:
            values = o.floats("anchors")
            if len(values) != 2 * num:
                raise DarknetFormatError(
                    f"{section.where('anchors')}: [region] num={num} needs {2 * num} anchor values, got {len(values)}."
                )
        else:
            values = [0.5] * (2 * num)  # darknet's make_region_layer default
        if c != num * (coords + 1 + classes):
            raise DarknetFormatError(
                f"{section.where()}: [region] num={num}, classes={classes}, coords={coords} needs "
                f"{num * (coords + 1 + classes)} input channels, the layer before gives {c}."
            )
        skip = ("anchors", "num", "classes", "coords", "tree", "map")
        options = {k: o.float(k, 0.0) for k in section.options if k not in skip}
        anchors = torch.tensor(values, dtype=torch.float32).view(num, 2)
        return Region(anchors, classes, coords, options), shape

    if kind == "dropout":
        p = o.float("probability", 0.5)
        if not 0 <= p < 1:
            raise DarknetFormatError(f"{section.where('probability')}: probability must be in [0, 1), got {p}.")
        return _Dropout(p), shape

    if kind == "cost":
        return _Cost(), shape

    raise DarknetFormatError(f"{section.where()}: unknown section [{kind}].")  # pragma: no cover
