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
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import ConvBlock, Darknet19, GlobalAvgPool, YOLOv2, fuse_bn
from .passthrough import Reorg

__all__ = [
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

DARKNET_BN_EPS = 1e-6  # added to the standard deviation, not to the variance


class DarknetFormatError(ValueError):
    """A darknet ``.cfg`` or ``.weights`` file that cannot be used, with file, line and reason."""


# --------------------------------------------------------------------------- cfg parsing


@dataclass
class CfgSection:
    """One ``[section]`` of a ``.cfg`` file.

    Attributes:
        type: the canonical section name (``"convolutional"`` for ``[conv]``, ...).
        line: 1-based line of the ``[section]`` header.
        options: key -> value as written (whitespace removed, as darknet does).
        lines: key -> 1-based line where it is set.
        source: the file the section comes from.
    """

    type: str
    line: int
    options: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    source: str = "<string>"

    def where(self, key: str | None = None) -> str:
        """``"file:line"`` of the section, or of ``key`` when given."""
        return f"{self.source}:{self.lines.get(key, self.line) if key else self.line}"


_ALIASES = {
    "net": "net", "network": "net",
    "convolutional": "convolutional", "conv": "convolutional",
    "maxpool": "maxpool", "max": "maxpool",
    "avgpool": "avgpool", "avg": "avgpool",
    "softmax": "softmax", "soft": "softmax",
    "route": "route", "reorg": "reorg", "region": "region", "dropout": "dropout", "cost": "cost",
}
# darknet layers that exist but are outside the YOLO v2 family
_UNSUPPORTED = {
    "shortcut", "crop", "detection", "yolo", "local", "deconv", "deconvolutional", "activation",
    "logistic", "l2norm", "crnn", "gru", "lstm", "rnn", "conn", "connected", "lrn", "normalization",
    "batchnorm", "upsample", "reorg3d", "scale_channels", "sam", "gaussian_yolo", "local_avgpool",
    "local_avg", "conv_lstm", "empty",
}
# keys darknet reads for every layer (parse_network_cfg); the last four change the weights file
_GENERIC = {"truth", "onlyforward", "stopbackward", "learning_rate", "smooth",
            "dontsave", "dontload", "numload", "dontloadscales"}
_KEYS = {
    "net": {
        "batch", "learning_rate", "momentum", "decay", "subdivisions", "time_steps", "notruth", "random",
        "adam", "B1", "B2", "eps", "height", "width", "channels", "inputs", "max_crop", "min_crop",
        "max_ratio", "min_ratio", "center", "clip", "angle", "aspect", "saturation", "exposure", "hue",
        "policy", "burn_in", "power", "step", "scale", "steps", "scales", "gamma", "max_batches",
        "flip", "blur", "mixup", "cutmix", "mosaic", "letter_box", "jitter", "track", "augment_speed",
        "sequential_subdivisions", "try_fix_nan", "optimized_memory", "workspace_size_limit_MB",
        "gaussian_noise", "label_smooth_eps", "learning_rate_min", "sgdr_cycle", "sgdr_mult", "seq_scales",
        "num_steps",
    },
    "convolutional": {"filters", "size", "stride", "pad", "padding", "groups", "activation",
                      "batch_normalize", "binary", "xnor", "flipped", "dot"},
    "maxpool": {"size", "stride", "padding"},
    "avgpool": set(),
    "softmax": {"groups", "temperature", "noloss", "tree", "spatial"},
    "route": {"layers"},
    "reorg": {"stride", "reverse", "flatten", "extra"},
    "region": {"anchors", "bias_match", "classes", "coords", "num", "softmax", "jitter", "rescore",
               "object_scale", "noobject_scale", "class_scale", "coord_scale", "absolute", "thresh",
               "random", "log", "sqrt", "background", "max", "classfix", "mask_scale", "tree", "map"},
    "dropout": {"probability"},
    "cost": {"type", "scale", "ratio", "noobject_scale", "thresh"},
}


def parse_cfg_string(text: str, source: str = "<string>") -> list[CfgSection]:
    """Split darknet ``.cfg`` text into sections, checking names and keys.

    As in darknet's ``read_cfg``, all whitespace is removed from a line and
    lines starting with ``#`` or ``;`` are comments.

    Args:
        text: the file's content.
        source: the name used in error messages.

    Returns:
        The sections in file order.

    Raises:
        DarknetFormatError: unknown or unsupported section or key, a line
            that is neither a section nor ``key=value``, options before the
            first section, a repeated key.
    """
    sections: list[CfgSection] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = "".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]"):
                raise DarknetFormatError(f"{source}:{number}: malformed section header {raw.strip()!r}.")
            name = line[1:-1]
            if name in _UNSUPPORTED:
                raise DarknetFormatError(
                    f"{source}:{number}: section [{name}] is a darknet layer outside the YOLO v2 family, "
                    f"which this loader does not support (supported: {_supported()})."
                )
            if name not in _ALIASES:
                raise DarknetFormatError(f"{source}:{number}: unknown section [{name}] (supported: {_supported()}).")
            sections.append(CfgSection(_ALIASES[name], number, source=source))
            continue
        if "=" not in line:
            raise DarknetFormatError(f"{source}:{number}: expected '[section]' or 'key=value', got {raw.strip()!r}.")
        if not sections:
            raise DarknetFormatError(f"{source}:{number}: option {raw.strip()!r} before the first [section].")
        key, value = line.split("=", 1)
        section = sections[-1]
        allowed = _KEYS[section.type] | (_GENERIC if section.type != "net" else set())
        if key not in allowed:
            raise DarknetFormatError(
                f"{source}:{number}: unknown key {key!r} in [{section.type}] (known: {', '.join(sorted(allowed))})."
            )
        if key in section.options:
            raise DarknetFormatError(
                f"{source}:{number}: key {key!r} repeats in [{section.type}] (first set on line {section.lines[key]})."
            )
        section.options[key] = value
        section.lines[key] = number
    if not sections:
        raise DarknetFormatError(f"{source}: no sections found; is this a darknet .cfg file?")
    return sections


def _same_value(a: str | None, b: str | None) -> bool:
    if a == b:
        return True
    if a is None or b is None:
        return False
    try:  # numbers as darknet reads them: "1.3221" and "1.32210" are one anchor
        return np.array_equal(np.array(a.split(","), np.float32), np.array(b.split(","), np.float32))
    except ValueError:
        return False


def cfg_differences(
    a: Sequence[CfgSection], b: Sequence[CfgSection], keys: Sequence[str] | None = None
) -> list[dict[str, tuple[str | None, str | None]]]:
    """Section by section, where two parsed ``.cfg`` files differ.

    Chapter 2 uses it to show that ``darknet19_448.cfg`` changes only the
    ``[net]`` section of ``darknet19.cfg``, and that ``to_darknet_cfg(YOLOv2())``
    is ``yolov2-voc.cfg`` layer for layer. Numbers are compared as darknet
    reads them (float32, lists item by item), other values as text.

    Args:
        a, b: the sections of each file (:func:`parse_cfg`); ``[net]`` is section 0.
        keys: compare only these options (and the section type); by default every
            option either section sets.

    Returns:
        One dict per section position (as many as the longer file has):
        ``{key: (value in a, value in b)}`` for each option that differs, with
        ``None`` where a section does not set it; a differing section type is
        reported under ``"type"``. An empty dict means the sections agree.
    """
    out = []
    for k in range(max(len(a), len(b))):
        sa, sb = (a[k] if k < len(a) else None), (b[k] if k < len(b) else None)
        diff: dict[str, tuple[str | None, str | None]] = {}
        ta, tb = (sa.type if sa else None), (sb.type if sb else None)
        if ta != tb:
            diff["type"] = (ta, tb)
        oa, ob = (sa.options if sa else {}), (sb.options if sb else {})
        names = list(dict.fromkeys([*oa, *ob])) if keys is None else list(keys)
        for name in names:
            if not _same_value(oa.get(name), ob.get(name)):
                diff[name] = (oa.get(name), ob.get(name))
        out.append(diff)
    return out


def _supported() -> str:
    return ", ".join(f"[{n}]" for n in sorted(set(_ALIASES.values())))


def parse_cfg(path: str | os.PathLike) -> list[CfgSection]:
    """Read and split a darknet ``.cfg`` file (see :func:`parse_cfg_string`).

    Args:
        path: the ``.cfg`` file.

    Returns:
        The sections in file order.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DarknetFormatError(f"{path}: cannot read the cfg file ({err.strerror or err}).") from err
    except UnicodeDecodeError as err:
        raise DarknetFormatError(f"{path}: not a text file ({err}); is this a .weights file?") from err
    return parse_cfg_string(text, str(path))


class _Options:
    """Typed access to a section's options, errors pointing at the line."""

    def __init__(self, section: CfgSection) -> None:
        self.s = section

    def _bad(self, key: str, expected: str) -> DarknetFormatError:
        return DarknetFormatError(
            f"{self.s.where(key)}: bad value for {key!r} in [{self.s.type}]: expected {expected}, "
            f"got {self.s.options[key]!r}."
        )

    def int(self, key: str, default: int | None = None, minimum: int | None = None) -> int:
        if key not in self.s.options:
            if default is None:
                raise DarknetFormatError(f"{self.s.where()}: [{self.s.type}] needs the key {key!r}.")
            return default
        try:
            value = int(self.s.options[key])
        except ValueError:
            raise self._bad(key, "an integer") from None
        if minimum is not None and value < minimum:
            raise self._bad(key, f"an integer >= {minimum}")
        return value

    def float(self, key: str, default: float) -> float:
        if key not in self.s.options:
            return default
        try:
            return float(self.s.options[key])
        except ValueError:
            raise self._bad(key, "a number") from None

    def str(self, key: str, default: str) -> str:
        return self.s.options.get(key, default)

    def floats(self, key: str) -> list[float]:
        try:
            return [float(v) for v in self.s.options[key].split(",") if v != ""]
        except ValueError:
            raise self._bad(key, "comma-separated numbers") from None

    def ints(self, key: str) -> list[int]:
        if key not in self.s.options:
            raise DarknetFormatError(f"{self.s.where()}: [{self.s.type}] needs the key {key!r}.")
        try:
            return [int(v) for v in self.s.options[key].split(",") if v != ""]
        except ValueError:
            raise self._bad(key, "comma-separated integers") from None


# --------------------------------------------------------------------------- darknet layers


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
            raise ValueError(f"[maxpool] size={self.kernel_size} gets a {h}x{w} map, too small.")
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
            raise ValueError(f"[route] joins maps of different sizes ({shapes}).")
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
            raise ValueError(f"[region] expects {expected} channels, got {x.shape[1]}.")
        return x

    def extra_repr(self) -> str:
        return f"num={self.anchors.shape[0]}, classes={self.num_classes}, coords={self.coords}"


class _Dropout(nn.Dropout):
    layer_type = "dropout"


class _Cost(nn.Identity):
    layer_type = "cost"


class _AvgPool(GlobalAvgPool):
    layer_type = "avg"


# --------------------------------------------------------------------------- the network


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
            raise ValueError(f"{self.source}: expected input of shape (B, {self.channels}, H, W), got {shape}.")
        outputs: list[Tensor | None] = []
        for index, (layer, section) in enumerate(zip(self.layers, self.sections)):
            try:
                if isinstance(layer, Route):
                    x = layer([outputs[i] for i in layer.indices])  # type: ignore[misc]
                else:
                    x = layer(x)
            except ValueError as err:
                raise ValueError(f"{section.where()}: layer {index} [{section.type}]: {err}") from err
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


# --------------------------------------------------------------------------- weights files


class DarknetHeader(NamedTuple):
    """The header of a ``.weights`` file."""

    major: int
    minor: int
    revision: int
    seen: int


def _seen_is_64bit(major: int, minor: int) -> bool:
    return major * 10 + minor >= 2 and major < 1000 and minor < 1000


def read_darknet_weights(path: str | os.PathLike) -> tuple[DarknetHeader, np.ndarray]:
    """Read a ``.weights`` file's header and its float32 payload.

    Args:
        path: the file.

    Returns:
        ``(header, floats)``: floats is a 1-D float32 array of everything after the header.

    Raises:
        DarknetFormatError: unreadable file, truncated header, unknown
            version, or a payload that is not whole float32 values.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DarknetFormatError(f"{path}: cannot read the weights file ({err.strerror or err}).") from err
    if len(data) < 12:
        raise DarknetFormatError(f"{path}: too short for a darknet header ({len(data)} bytes, need at least 16).")
    major, minor, revision = (int(v) for v in np.frombuffer(data, "<i4", 3))
    if major != 0 or minor > 2 or minor < 0 or revision < 0:
        hint = (" (major or minor above 1000 marks darknet's transposed format for connected layers, "
                "which YOLO v2 files do not use)" if major > 1000 or minor > 1000 else "")
        raise DarknetFormatError(
            f"{path}: unknown darknet weights header version {major}.{minor}.{revision}; "
            f"known: 0.0 and 0.1 (32-bit 'seen'), 0.2 (64-bit 'seen'){hint}."
        )
    seen_bytes = 8 if _seen_is_64bit(major, minor) else 4
    start = 12 + seen_bytes
    if len(data) < start:
        raise DarknetFormatError(
            f"{path}: header version {major}.{minor} needs {start} bytes, the file has {len(data)}."
        )
    seen = int(np.frombuffer(data, "<i8" if seen_bytes == 8 else "<i4", 1, 12)[0])
    if seen < 0:
        raise DarknetFormatError(
            f"{path}: the header's 'seen' (images trained on) is negative ({seen}): the file is damaged or not "
            "a darknet weights file."
        )
    payload = len(data) - start
    if payload % 4:
        raise DarknetFormatError(
            f"{path}: {payload} bytes after the header is not a whole number of float32 values "
            f"({payload % 4} stray bytes)."
        )
    return DarknetHeader(major, minor, revision, seen), np.frombuffer(data, "<f4", offset=start).copy()


def _conv_blocks(module: nn.Module) -> list[ConvBlock]:
    blocks = [m for m in module.modules() if isinstance(m, ConvBlock)]
    if not blocks:
        raise ValueError(f"{type(module).__name__} has no convolutional layers (ConvBlock) to read or write.")
    return blocks


def _block_count(block: ConvBlock) -> int:
    conv = block.conv
    n = conv.out_channels
    return n * (4 if block.batch_norm else 1) + conv.weight.numel()


def darknet_weight_count(module: nn.Module) -> int:
    """Number of float32 values a ``.weights`` file holds for ``module`` after the header.

    Args:
        module: a ``DarknetNet``, ``YOLOv2``, ``Darknet19`` or any module of :class:`ConvBlock`s.

    Returns:
        The count: 50,676,061 for ``YOLOv2()`` (50,655,389 parameters and 20,672 BN running statistics).
    """
    return sum(_block_count(b) for b in _conv_blocks(module))


def _describe(module: nn.Module) -> str:
    return getattr(module, "source", None) or type(module).__name__


def _layer_name(module: nn.Module, block: ConvBlock, ordinal: int) -> str:
    if isinstance(module, DarknetNet):
        for index, layer in enumerate(module.layers):
            if layer is block:
                return f"conv layer {ordinal} (darknet layer {index}, {module.sections[index].where()})"
    names = {m: n for n, m in module.named_modules()}
    return f"conv layer {ordinal} ({names.get(block, '?')})"


@torch.no_grad()
def load_darknet_weights(module: nn.Module, path: str | os.PathLike, *, strict: bool = True) -> DarknetHeader:
    """Fill ``module``'s convolutions from a darknet ``.weights`` file.

    The values are consumed in the order of ``module``'s :class:`ConvBlock`s
    (darknet's layer order for ``DarknetNet``, ``YOLOv2`` and ``Darknet19``).
    For a PyTorch ``nn.BatchNorm2d`` the variance is converted so the
    outputs equal darknet's ``sqrt(var) + 1e-6`` formula.

    Args:
        module: the network (e.g. ``YOLOv2()``, ``model.backbone`` for a
            ``darknet19_448.conv.23`` file, or a ``DarknetNet``).
        path: the ``.weights`` file.
        strict: a file with values left over is an error; ``False`` ignores
            the tail (darknet's own behaviour, used to load a backbone).

    Returns:
        The file's header (``seen`` = images the network was trained on).

    Raises:
        DarknetFormatError: bad header, a file too short (or, when ``strict``,
            too long) for the network, with the float count, or NaN or
            infinite values, naming the first layer that holds them (the
            module is then left unchanged).
    """
    header, data = read_darknet_weights(path)
    blocks = _conv_blocks(module)
    need = sum(_block_count(b) for b in blocks)
    if len(data) < need:
        offset, first_short = 0, blocks[-1]
        for i, b in enumerate(blocks):
            if offset + _block_count(b) > len(data):
                first_short = b
                break
            offset += _block_count(b)
        raise DarknetFormatError(
            f"{path}: weights file too short for {_describe(module)}: it holds {len(data):,} floats after the "
            f"header, the network needs {need:,} ({need - len(data):,} floats missing; the data runs out in "
            f"{_layer_name(module, first_short, blocks.index(first_short))})."
        )
    if strict and len(data) > need:
        raise DarknetFormatError(
            f"{path}: weights file too long for {_describe(module)}: it holds {len(data):,} floats after the "
            f"header, the network needs {need:,} ({len(data) - need:,} floats more); wrong cfg? "
            f"(strict=False ignores the tail)."
        )
    _check_finite(module, blocks, data[:need], path)
    offset = 0

    def take(like: Tensor, count: int | None = None) -> Tensor:
        nonlocal offset
        n = like.numel() if count is None else count
        chunk = torch.from_numpy(data[offset:offset + n])
        offset += n
        return chunk

    for i, block in enumerate(blocks):
        if block.fused:
            raise ValueError(f"{_layer_name(module, block, i)} is fused; load darknet weights before fuse_bn.")
        conv, bn = block.conv, block.bn
        n = conv.out_channels
        biases = take(conv.weight, n)
        if block.batch_norm:
            scales, mean, var = take(conv.weight, n), take(conv.weight, n), take(conv.weight, n)
            if not isinstance(bn, DarknetBatchNorm2d):
                var = _from_darknet_variance(var, bn.eps, _layer_name(module, block, i))
            for target, value in ((bn.bias, biases), (bn.weight, scales), (bn.running_mean, mean),
                                  (bn.running_var, var)):
                target.copy_(value.view_as(target))
        else:
            conv.bias.copy_(biases.view_as(conv.bias))
        conv.weight.copy_(take(conv.weight).view_as(conv.weight))
    return header


def _check_finite(module: nn.Module, blocks: list[ConvBlock], data: np.ndarray, path: str | os.PathLike) -> None:
    """Raise :class:`DarknetFormatError` naming the first layer whose values are NaN or infinite."""
    finite = np.isfinite(data)
    if finite.all():
        return
    offset = 0
    for i, block in enumerate(blocks):
        count = _block_count(block)
        bad = int(count - finite[offset:offset + count].sum())
        if bad:
            raise DarknetFormatError(
                f"{path}: {bad:,} NaN or infinite value(s) in {_layer_name(module, block, i)}; the file is "
                "damaged, or was saved from a run that diverged. Nothing was loaded."
            )
        offset += count


def _from_darknet_variance(var: Tensor, eps: float, name: str) -> Tensor:
    # sqrt(v + eps) = sqrt(v_dk) + 1e-6  <=>  v = (sqrt(v_dk) + 1e-6)^2 - eps
    v = (var.double().clamp(min=0).sqrt() + DARKNET_BN_EPS) ** 2 - eps
    negative = int((v < 0).sum())
    if negative:
        warnings.warn(
            f"{name}: {negative} channel(s) have a darknet variance below what bn_eps={eps} can represent; "
            f"they are clamped to 0 (build the model with a smaller bn_eps, e.g. 1e-12, for exact outputs).",
            stacklevel=3,
        )
    return v.clamp(min=0).float()


def _to_darknet_variance(var: Tensor, eps: float) -> Tensor:
    return ((var.double() + eps).sqrt() - DARKNET_BN_EPS).clamp(min=0).pow(2).float()


@torch.no_grad()
def save_darknet_weights(
    module: nn.Module,
    path: str | os.PathLike,
    *,
    seen: int = 0,
    version: tuple[int, int, int] = (0, 2, 0),
) -> None:
    """Write ``module``'s convolutions as a darknet ``.weights`` file.

    Works for a ``DarknetNet`` and for ``YOLOv2``/``Darknet19`` (their
    layers are in darknet's order); darknet reads the result with the
    matching cfg (see :func:`to_darknet_cfg`).

    Args:
        module: the network; not fused.
        path: the output file.
        seen: images trained on, stored in the header.
        version: (major, minor, revision); 0.2 stores ``seen`` as int64,
            0.1 as int32 (darknet's older files).
    """
    major, minor, revision = version
    if major != 0 or not 0 <= minor <= 2 or revision < 0:
        raise ValueError(f"version must be 0.0.x, 0.1.x or 0.2.x, got {version}.")
    wide = _seen_is_64bit(major, minor)
    if not 0 <= seen < (2**63 if wide else 2**31):
        raise ValueError(f"seen={seen} does not fit the {'64' if wide else '32'}-bit field of version {major}.{minor}.")
    blocks = _conv_blocks(module)
    chunks: list[np.ndarray] = []

    def put(t: Tensor) -> None:
        chunks.append(t.detach().to("cpu", torch.float32).reshape(-1).numpy())

    for i, block in enumerate(blocks):
        if block.fused:
            raise ValueError(f"{_layer_name(module, block, i)} is fused; save darknet weights from the unfused model.")
        conv, bn = block.conv, block.bn
        if block.batch_norm:
            var = bn.running_var if isinstance(bn, DarknetBatchNorm2d) else _to_darknet_variance(bn.running_var, bn.eps)
            for t in (bn.bias, bn.weight, bn.running_mean, var):
                put(t)
        else:
            put(conv.bias)
        put(conv.weight)
    path = Path(path)
    with open(path, "wb") as f:
        f.write(np.array([major, minor, revision], "<i4").tobytes())
        f.write(np.array([seen], "<i8" if wide else "<i4").tobytes())
        for chunk in chunks:
            f.write(chunk.astype("<f4", copy=False).tobytes())


# --------------------------------------------------------------------------- public entry points


def load_darknet(cfg_path: str | os.PathLike, weights_path: str | os.PathLike | None = None) -> DarknetNet:
    """Build the network of a darknet ``.cfg``, optionally with its ``.weights``.

    Args:
        cfg_path: the ``.cfg`` file (e.g. ``yolov2-voc.cfg``).
        weights_path: a ``.weights`` file for it; ``None`` keeps PyTorch's
            random initialisation.

    Returns:
        A :class:`DarknetNet` in eval mode. Its forward takes (B, 3, H, W)
        RGB in [0, 1] and returns the raw head tensor (B, A*(5+C), H/32,
        W/32); ``anchors`` (A, 2) and ``num_classes`` come from ``[region]``.

    Raises:
        DarknetFormatError: the cfg or weights file cannot be used (the
            message names the file, the line and the problem).
    """
    net = DarknetNet(parse_cfg(cfg_path))
    if weights_path is not None:
        header = load_darknet_weights(net, weights_path)
        net.seen = header.seen
    return net.eval()


def to_darknet_cfg(model: nn.Module, height: int = 416, width: int | None = None) -> str:
    """Write the darknet ``.cfg`` text of a ``YOLOv2`` or ``Darknet19``.

    With :func:`save_darknet_weights` this exports a model to darknet; the
    cfg of ``YOLOv2()`` is layer for layer ``yolov2-voc.cfg``.

    Args:
        model: a ``YOLOv2`` (darknet reorg order, leaky slope 0.1) or ``Darknet19``.
        height, width: the input size written in ``[net]`` (width defaults to height).

    Returns:
        The cfg text.
    """
    width = height if width is None else width
    if not isinstance(model, (YOLOv2, Darknet19)):
        raise ValueError(f"to_darknet_cfg writes YOLOv2 or Darknet19 models, got {type(model).__name__}.")
    config = model.config
    if config.leaky_slope != 0.1:
        raise ValueError(f"darknet's leaky ReLU has slope 0.1; this model uses {config.leaky_slope}.")
    if config.in_channels != 3:
        raise ValueError(f"darknet reads 3-channel images; this model takes {config.in_channels}.")
    if isinstance(model, YOLOv2) and config.reorg != "darknet":
        raise ValueError("darknet's [reorg] computes the darknet order; this model uses reorg='space_to_depth'.")
    out = [
        "[net]", "batch=1", "subdivisions=1", f"height={height}", f"width={width}", "channels=3",
        "momentum=0.9", "decay=0.0005", "angle=0", "saturation=1.5", "exposure=1.5", "hue=.1",
        "learning_rate=0.001", "burn_in=1000", "max_batches=80200", "policy=steps", "steps=40000,60000",
        "scales=.1,.1", "",
    ]
    count = 0

    def emit(m: nn.Module) -> None:
        nonlocal count
        if isinstance(m, ConvBlock):
            conv = m.conv
            act = "leaky" if isinstance(m.act, nn.LeakyReLU) else "linear"
            out.extend(["[convolutional]"] + (["batch_normalize=1"] if m.batch_norm else []) + [
                f"filters={conv.out_channels}", f"size={conv.kernel_size[0]}", f"stride={conv.stride[0]}",
                "pad=1", f"activation={act}", ""])
        elif isinstance(m, nn.MaxPool2d):
            out.extend(["[maxpool]", "size=2", "stride=2", ""])
        else:  # pragma: no cover - the models are made of the two kinds above
            raise ValueError(f"cannot express {type(m).__name__} in a darknet cfg.")
        count += 1

    for m in list(model.backbone.stage16) + list(model.backbone.stage32):
        emit(m)
    if isinstance(model, Darknet19):
        emit(model.classifier)
        out.extend(["[avgpool]", "", "[softmax]", "groups=1", ""])
        return "\n".join(out)
    fine_index = len(model.backbone.stage16) - 1
    for m in model.neck:
        emit(m)
    deep_index = count - 1
    out.extend(["[route]", f"layers={fine_index - count}", ""])
    count += 1
    if isinstance(model.passthrough.conv, ConvBlock):
        emit(model.passthrough.conv)
    out.extend(["[reorg]", "stride=2", ""])
    count += 1
    out.extend(["[route]", f"layers=-1,{deep_index - count}", ""])
    count += 1
    emit(model.merge)
    emit(model.head)
    anchors = ", ".join(f"{np.format_float_positional(np.float32(w))},{np.format_float_positional(np.float32(h))}"
                        for w, h in model.anchors.tolist())  # shortest float32 repr, as the cfg writes it
    out.extend([
        "[region]", f"anchors={anchors}", "bias_match=1", f"classes={model.num_classes}", "coords=4",
        f"num={model.num_anchors}", "softmax=1", "jitter=.3", "rescore=1", "object_scale=5",
        "noobject_scale=1", "class_scale=1", "coord_scale=1", "absolute=1", "thresh=.6", "random=1", "",
    ])
    return "\n".join(out)
