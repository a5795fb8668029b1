"""Darknet-19 and the YOLO v2 detector (chapters 2 and 7).

Darknet-19 is 19 convolutions and 5 max-pools, batch norm after every
convolution (so the convolutions carry no bias) and leaky ReLU 0.1; at 224
pixels it costs 5.58 billion operations. YOLO v2 keeps its first 18
convolutions as the backbone and, as in darknet's ``yolov2-voc.cfg``,
adds:

    backbone -> 13x13x1024 -> two 3x3x1024 convs ----------------------+
    backbone 26x26x512 -> 1x1 conv to 64 -> reorg /2 -> 13x13x256 -----+-> concat 1280
    -> 3x3 conv 1024 -> linear 1x1 conv to A*(5+C)

The paper's text describes the earlier version (reorg straight from the
26x26x512 map to 13x13x2048, concat 3072): ``passthrough_channels=None``.
Three switches of :class:`YOLOv2Config` take one of the paper's ideas out, to
measure what it brings: ``batch_norm=False`` (plain convolutions with a bias),
``passthrough=False`` (no passthrough branch: the last 3x3 conv reads the
1024 channels alone) and ``location="offset"`` (the RPN-style box centre of
:mod:`yolov2_lib.decode`, read by the loss and the decoder, not by the network).
The network is fully convolutional: any input whose sides are multiples
of 32 gives a (B, A*(5+C), H/32, W/32) map. The model returns that raw
tensor; it does not know how it is trained (see ``loss.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn

from .decode import check_location
from .errors import YOLOv2Error
from .passthrough import REORG_ORDERS, Reorg

__all__ = [
    "ConvBlock",
    "Darknet19",
    "Darknet19Backbone",
    "Darknet19Config",
    "GlobalAvgPool",
    "Passthrough",
    "YOLOv2",
    "YOLOv2Config",
    "fuse_bn",
    "prime_batch_norm",
    "scaled_channels",
]

STRIDE = 32  # five 2x2 max-pools

# darknet's VOC priors (yolov2-voc.cfg), the same values as anchors.VOC_ANCHORS; kept
# here as numbers so that importing the network does not import scikit-learn
_VOC_PRIORS = ((1.3221, 1.73145), (3.19275, 4.00944), (5.05587, 8.09892), (9.47112, 4.84053), (11.2364, 10.0071))


def scaled_channels(channels: int, width: float) -> int:
    """Channels after a width multiplier: rounded to a multiple of 4, at least 4.

    Multiples of 4 keep darknet's reorg possible (it needs C divisible by 4).

    Args:
        channels: the channel count at width 1.
        width: the multiplier (> 0).

    Returns:
        ``max(4, 4 * round(channels * width / 4))``; ``channels`` at width 1.
    """
    if not width > 0:
        raise YOLOv2Error(f"width must be > 0, got {width!r}.")
    return max(4, 4 * int(channels * width / 4 + 0.5))


def _check_image_batch(x: Tensor, in_channels: int, name: str) -> None:
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != in_channels:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise YOLOv2Error(f"{name} expects a tensor of shape (B, {in_channels}, H, W), got {shape}.")
    h, w = x.shape[-2:]
    if h % STRIDE or w % STRIDE or h == 0 or w == 0:
        raise YOLOv2Error(
            f"{name} needs height and width that are positive multiples of {STRIDE} "
            f"(e.g. 320, 416, 608), got {h}x{w}."
        )


# --------------------------------------------------------------------------- blocks


class ConvBlock(nn.Module):
    """Convolution, then batch norm (optional), then an activation (optional).

    With batch norm the convolution has no bias: the BN shift plays that
    role, exactly as in darknet, which stores it as the layer's "biases".

    Args:
        in_channels, out_channels, kernel_size: the convolution.
        stride: convolution stride.
        padding: zero padding; ``None`` means ``kernel_size // 2`` (darknet's ``pad=1``).
        groups: convolution groups.
        batch_norm: add batch norm (and drop the conv bias).
        activation: ``"leaky"``, ``"relu"``, ``"logistic"``, ``"tanh"`` or
            ``"linear"``/``None``.
        leaky_slope: negative slope of the leaky ReLU (0.1 in darknet).
        bn_eps, bn_momentum: ``nn.BatchNorm2d`` settings.
        norm_layer: the BN class to use, called as
            ``norm_layer(out_channels, eps=bn_eps, momentum=bn_momentum)``
            (the darknet loader passes its own formula here).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        batch_norm: bool = True,
        activation: str | None = "leaky",
        leaky_slope: float = 0.1,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        norm_layer: type[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=not batch_norm
        )
        norm_layer = norm_layer or nn.BatchNorm2d
        self.bn = norm_layer(out_channels, eps=bn_eps, momentum=bn_momentum) if batch_norm else nn.Identity()
        self.act = _activation(activation, leaky_slope)
        self.batch_norm = batch_norm
        self.fused = False  # set by fuse_bn: the BN now lives in conv's weight and bias

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


def _activation(name: str | None, leaky_slope: float) -> nn.Module:
    if name in (None, "linear"):
        return nn.Identity()
    if name == "leaky":
        return nn.LeakyReLU(leaky_slope, inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "logistic":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    raise YOLOv2Error(f"unsupported activation {name!r}; use leaky, relu, logistic, tanh or linear.")


class GlobalAvgPool(nn.Module):
    """Average over all cells: (B, C, H, W) -> (B, C, 1, 1), like darknet's ``[avgpool]``."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


# --------------------------------------------------------------------------- Darknet-19


@dataclass
class Darknet19Config:
    """Darknet-19 classifier settings.

    Attributes:
        num_classes: classifier outputs (1000 for ImageNet).
        width: channel multiplier (1.0 is the paper's network).
        in_channels: image channels.
        leaky_slope, bn_eps, bn_momentum: see :class:`ConvBlock`
            (darknet's own running average is momentum 0.01).
    """

    num_classes: int = 1000
    width: float = 1.0
    in_channels: int = 3
    leaky_slope: float = 0.1
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1


class Darknet19Backbone(nn.Module):
    """The first 18 convolutions and 5 max-pools of Darknet-19.

    The forward pass returns the 26x26x512 map the passthrough reads (after
    darknet layer 16) and the final 13x13x1024 map (layer 22), for a 416
    input. Modules are registered in darknet's layer order, so darknet
    weights load straight in (``darknet19_448.conv.23`` holds exactly these
    18 convolutions).

    Args:
        width: channel multiplier.
        in_channels: image channels.
        leaky_slope, bn_eps, bn_momentum: see :class:`ConvBlock`.
        batch_norm: batch norm after every convolution (``False``: convolutions with a bias).
    """

    def __init__(
        self,
        width: float = 1.0,
        in_channels: int = 3,
        leaky_slope: float = 0.1,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        ch = lambda c: scaled_channels(c, width)  # noqa: E731
        kw = dict(leaky_slope=leaky_slope, bn_eps=bn_eps, bn_momentum=bn_momentum, batch_norm=batch_norm)
        c32, c64, c128, c256, c512, c1024 = (ch(c) for c in (32, 64, 128, 256, 512, 1024))
        self.in_channels = in_channels
        self.out_channels = (c512, c1024)
        self.stage16 = nn.Sequential(  # darknet layers 0-16: stride 16
            ConvBlock(in_channels, c32, 3, **kw), nn.MaxPool2d(2, 2),
            ConvBlock(c32, c64, 3, **kw), nn.MaxPool2d(2, 2),
            ConvBlock(c64, c128, 3, **kw), ConvBlock(c128, c64, 1, **kw), ConvBlock(c64, c128, 3, **kw),
            nn.MaxPool2d(2, 2),
            ConvBlock(c128, c256, 3, **kw), ConvBlock(c256, c128, 1, **kw), ConvBlock(c128, c256, 3, **kw),
            nn.MaxPool2d(2, 2),
            ConvBlock(c256, c512, 3, **kw), ConvBlock(c512, c256, 1, **kw), ConvBlock(c256, c512, 3, **kw),
            ConvBlock(c512, c256, 1, **kw), ConvBlock(c256, c512, 3, **kw),
        )
        self.stage32 = nn.Sequential(  # darknet layers 17-22: stride 32
            nn.MaxPool2d(2, 2),
            ConvBlock(c512, c1024, 3, **kw), ConvBlock(c1024, c512, 1, **kw), ConvBlock(c512, c1024, 3, **kw),
            ConvBlock(c1024, c512, 1, **kw), ConvBlock(c512, c1024, 3, **kw),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        fine = self.stage16(x)  # (B, 512, H/16, W/16)
        coarse = self.stage32(fine)  # (B, 1024, H/32, W/32)
        return fine, coarse


class _Fusable:
    def fuse(self) -> nn.Module:
        """Fold every batch norm into its convolution, in place, for inference.

        Returns:
            ``self``, fused (see :func:`fuse_bn`).
        """
        return fuse_bn(self, inplace=True)  # type: ignore[arg-type]


class Darknet19(_Fusable, nn.Module):
    """The Darknet-19 classifier of ``darknet19.cfg``.

    The backbone, a linear 1x1 convolution to ``num_classes`` (with bias, no
    BN), then global average pooling. Returns logits: darknet's final
    ``[softmax]`` belongs to the loss, not to the model.

    Args:
        config: a :class:`Darknet19Config`; keyword arguments override its fields.
    """

    def __init__(self, config: Darknet19Config | None = None, **overrides: Any) -> None:
        super().__init__()
        config = _with_overrides(config or Darknet19Config(), overrides)
        if config.num_classes < 1:
            raise YOLOv2Error(f"num_classes must be >= 1, got {config.num_classes}.")
        self.config = config
        self.backbone = Darknet19Backbone(
            config.width, config.in_channels, config.leaky_slope, config.bn_eps, config.bn_momentum
        )
        self.classifier = ConvBlock(
            self.backbone.out_channels[1], config.num_classes, 1, batch_norm=False, activation=None
        )
        self.pool = GlobalAvgPool()

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def forward(self, x: Tensor) -> Tensor:
        _check_image_batch(x, self.config.in_channels, "Darknet19")
        _, x = self.backbone(x)  # (B, 1024, H/32, W/32)
        x = self.classifier(x)  # (B, classes, H/32, W/32)
        return self.pool(x).flatten(1)  # (B, classes)


# --------------------------------------------------------------------------- YOLO v2


@dataclass
class YOLOv2Config:
    """YOLO v2 detector settings.

    Attributes:
        num_classes: C (20 for VOC, 80 for COCO).
        anchors: the A priors as (width, height) in grid cells; default the
            VOC priors of ``yolov2-voc.cfg``.
        width: channel multiplier for small configurations (1.0 is darknet's).
        passthrough_channels: channels of the 1x1 conv before the reorg (64
            in ``yolov2-voc.cfg``); ``None`` is the 2016 paper's version,
            reorganising the 512-channel map itself (concat 3072).
        reorg: ``"darknet"`` (darknet's order, needed for its weights) or
            ``"space_to_depth"``.
        in_channels: image channels.
        leaky_slope, bn_eps, bn_momentum: see :class:`ConvBlock`.
        batch_norm: batch norm after every convolution but the head's; ``False``
            makes each a plain convolution with a bias (the head is the same either way).
        passthrough: the passthrough branch from the 26x26 map; ``False`` drops it and
            the last 3x3 conv reads only the 1024 channels of the 13x13 map.
        location: how the loss and the decoder read ``t_x, t_y``: ``"direct"``
            (YOLO v2's sigmoid offset in the cell) or ``"offset"`` (RPN-style, see
            :mod:`yolov2_lib.decode`). The network itself is the same.
    """

    num_classes: int = 20
    anchors: Sequence[Sequence[float]] = _VOC_PRIORS
    width: float = 1.0
    passthrough_channels: int | None = 64
    reorg: str = "darknet"
    in_channels: int = 3
    leaky_slope: float = 0.1
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    batch_norm: bool = True
    passthrough: bool = True
    location: str = "direct"


class Passthrough(nn.Module):
    """Bring the fine 26x26 features to 13x13: optional 1x1 conv, then reorg.

    Args:
        in_channels: channels of the fine map (512 at width 1).
        mid_channels: channels of the 1x1 conv (64), or ``None`` for no conv.
        order: reorg order, ``"darknet"`` or ``"space_to_depth"``.
        **conv_kw: passed to :class:`ConvBlock`.
    """

    def __init__(self, in_channels: int, mid_channels: int | None, order: str = "darknet", **conv_kw: Any):
        super().__init__()
        self.conv = ConvBlock(in_channels, mid_channels, 1, **conv_kw) if mid_channels else nn.Identity()
        self.reorg = Reorg(2, order)  # type: ignore[arg-type]
        self.out_channels = 4 * (mid_channels or in_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)  # (B, 64, H/16, W/16)
        return self.reorg(x)  # (B, 256, H/32, W/32)


class YOLOv2(_Fusable, nn.Module):
    """The YOLO v2 detector of ``yolov2-voc.cfg``.

    ``YOLOv2()`` is darknet's VOC network (50.66 M parameters, 29.36 GFLOP
    at 416). Modules are registered in darknet's layer order, so
    ``save_darknet_weights``/``load_darknet_weights`` in :mod:`yolov2_lib.darknet`
    read and write darknet files for it.

    Args:
        config: a :class:`YOLOv2Config`; keyword arguments override its
            fields, e.g. ``YOLOv2(num_classes=3, width=0.25)``.

    Attributes:
        anchors: (A, 2) buffer of priors in grid cells.
        backbone: the :class:`Darknet19Backbone`, returning the 26x26 and 13x13 maps.
        passthrough: the :class:`Passthrough` branch, ``None`` when the config turns it off.
    """

    stride = STRIDE

    def __init__(self, config: YOLOv2Config | None = None, **overrides: Any) -> None:
        super().__init__()
        config = _with_overrides(config or YOLOv2Config(), overrides)
        anchors = torch.as_tensor(config.anchors, dtype=torch.float32, device="cpu")  # validated on the CPU
        if anchors.ndim != 2 or anchors.shape[1] != 2 or len(anchors) == 0 or not (anchors > 0).all():
            raise YOLOv2Error(f"anchors must be a non-empty (A, 2) array of positive sizes, got {anchors.tolist()}.")
        if config.num_classes < 1:
            raise YOLOv2Error(f"num_classes must be >= 1, got {config.num_classes}.")
        if config.reorg not in REORG_ORDERS:
            raise YOLOv2Error(f"reorg must be one of {REORG_ORDERS}, got {config.reorg!r}.")
        if config.passthrough_channels is not None and config.passthrough_channels < 1:
            raise YOLOv2Error(f"passthrough_channels must be None or >= 1, got {config.passthrough_channels}.")
        for name in ("batch_norm", "passthrough"):
            if not isinstance(getattr(config, name), bool):
                raise YOLOv2Error(f"{name} must be True or False, got {getattr(config, name)!r}.")
        check_location(config.location)
        self.config = config
        kw = dict(leaky_slope=config.leaky_slope, bn_eps=config.bn_eps, bn_momentum=config.bn_momentum,
                  batch_norm=config.batch_norm)
        c1024 = scaled_channels(1024, config.width)
        mid = config.passthrough_channels and scaled_channels(config.passthrough_channels, config.width)
        num_outputs = len(anchors) * (5 + config.num_classes)

        self.register_buffer("anchors", anchors)  # (A, 2) grid cells
        self.backbone = Darknet19Backbone(config.width, config.in_channels, **kw)  # layers 0-22
        c512 = self.backbone.out_channels[0]
        self.neck = nn.Sequential(ConvBlock(c1024, c1024, 3, **kw), ConvBlock(c1024, c1024, 3, **kw))  # 23-24
        self.passthrough = Passthrough(c512, mid, config.reorg, **kw) if config.passthrough else None  # 25-27
        fine_channels = self.passthrough.out_channels if self.passthrough is not None else 0
        self.merge = ConvBlock(fine_channels + c1024, c1024, 3, **kw)  # 28-29
        self.head = ConvBlock(c1024, num_outputs, 1, batch_norm=False, activation=None)  # 30

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def num_anchors(self) -> int:
        return self.anchors.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x: (B, 3, H, W) images, H and W multiples of 32.

        Returns:
            The raw head tensor (B, A*(5+C), H/32, W/32); channel
            ``a*(5+C) + e`` is field e (x, y, w, h, objectness, classes) of anchor a.
        """
        _check_image_batch(x, self.config.in_channels, "YOLOv2")
        fine, coarse = self.backbone(x)  # (B, 512, H/16, W/16), (B, 1024, H/32, W/32)
        coarse = self.neck(coarse)  # (B, 1024, H/32, W/32)
        if self.passthrough is None:
            x = self.merge(coarse)  # (B, 1024, H/32, W/32): no fine features
            return self.head(x)  # (B, A*(5+C), H/32, W/32)
        fine = self.passthrough(fine)  # (B, 256, H/32, W/32)
        x = torch.cat([fine, coarse], dim=1)  # (B, 1280, H/32, W/32): darknet's [route] -1,-4
        x = self.merge(x)  # (B, 1024, H/32, W/32)
        return self.head(x)  # (B, A*(5+C), H/32, W/32)


def _with_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    names = {f.name for f in fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise YOLOv2Error(f"unknown {type(config).__name__} field(s) {unknown}; known: {sorted(names)}.")
    return replace(config, **overrides)


# --------------------------------------------------------------------------- batch-norm folding


def _bn_inv_std(bn: nn.Module) -> Tensor:
    if hasattr(bn, "inv_std"):  # darknet's formula, see darknet.DarknetBatchNorm2d
        return bn.inv_std()
    return torch.rsqrt(bn.running_var + bn.eps)


@torch.no_grad()
def fuse_bn(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Fold each :class:`ConvBlock`'s batch norm into its convolution.

    With ``s = gamma / sqrt(var + eps)`` the block computes
    ``conv(x) * s + (beta - mean * s)``, so the convolution takes weight
    ``w * s`` and bias ``beta - mean * s``; the output is unchanged in
    eval mode (to float rounding) and one pass over memory is saved.
    Batch norm then no longer learns: use the result for inference only.

    Args:
        model: any module containing :class:`ConvBlock`s (``YOLOv2``,
            ``Darknet19``, a ``darknet.DarknetNet``).
        inplace: fuse ``model`` itself; by default a deep copy is fused and
            ``model`` is left untouched.

    Returns:
        The fused module (``model`` itself when ``inplace``), in eval mode.
    """
    fused = model if inplace else copy.deepcopy(model)
    for block in fused.modules():
        if not isinstance(block, ConvBlock) or not block.batch_norm or block.fused:
            continue
        conv, bn = block.conv, block.bn
        scale = bn.weight * _bn_inv_std(bn)  # (out,)
        new = nn.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
            conv.dilation, conv.groups, bias=True, device=conv.weight.device, dtype=conv.weight.dtype,
        )
        new.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        new.bias.copy_(bn.bias + (bias - bn.running_mean) * scale)
        block.conv, block.bn, block.fused = new, nn.Identity(), True
    return fused.eval()


@torch.no_grad()
def prime_batch_norm(model: nn.Module, images: Tensor) -> nn.Module:
    """Give an untrained network's batch norms the statistics of ``images``, as training would.

    A fresh batch norm holds mean 0 and variance 1, so in eval mode it does
    not normalise and the signal fades layer after layer (chapter 2). One
    forward pass in training mode with ``momentum=None`` (a plain average of
    the batches seen) makes each running mean and variance those of this
    batch; the momenta are restored afterwards. Chapter 7 and chapter 2's Going
    deeper page use it on a photo before looking at an untrained network's
    activations.

    Args:
        model: any module containing ``nn.BatchNorm2d`` layers.
        images: (B, 3, H, W) images the model accepts.

    Returns:
        ``model`` itself, primed and in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # running statistics: the plain average of the batches
    try:
        model.train()(images)
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
    return model.eval()


_SUMMARY = ("LayerRow", "Stage", "count_flops", "count_parameters", "format_layer_table", "layer_table",
            "network_stages")


def __getattr__(name: str) -> Any:
    """The counts and stages of a network live in :mod:`yolov2_lib.summary`; they can be imported
    from here too (``from yolov2_lib.model import count_parameters``)."""
    if name in _SUMMARY:
        from . import summary

        return getattr(summary, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
