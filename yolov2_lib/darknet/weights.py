"""Darknet's ``.weights`` file format: reading and writing the numbers of a network (chapter 9).

A ``.weights`` file is: int32 major, minor, revision; ``seen`` (images
trained on) as int64 when ``major*10 + minor >= 2``, else int32; then, for
each convolutional layer in order, float32 biases, and for batch-norm layers
scales, running mean and running variance, then the weights in
(out, in, kh, kw) order. :func:`load_darknet_weights` and
:func:`save_darknet_weights` read and write it for a ``DarknetNet`` and for
``model.YOLOv2`` and ``model.Darknet19``, converting the variance so that
PyTorch's ``sqrt(var + eps)`` and darknet's ``sqrt(var) + 1e-6`` agree.
:func:`load_darknet` builds the network of a ``.cfg`` and fills it from its
``.weights``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import YOLOv2Error
from ..files import atomic_open
from ..model import ConvBlock
from .cfg import DarknetFormatError, parse_cfg
from .layers import DARKNET_BN_EPS, DarknetBatchNorm2d
from .network import DarknetNet

__all__ = [
    "DarknetHeader",
    "darknet_weight_count",
    "load_darknet",
    "load_darknet_weights",
    "read_darknet_weights",
    "save_darknet_weights",
]


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
        raise YOLOv2Error(f"{type(module).__name__} has no convolutional layers (ConvBlock) to read or write.")
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
            raise YOLOv2Error(f"{_layer_name(module, block, i)} is fused; load darknet weights before fuse_bn.")
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
        raise YOLOv2Error(f"version must be 0.0.x, 0.1.x or 0.2.x, got {version}.")
    wide = _seen_is_64bit(major, minor)
    if not 0 <= seen < (2**63 if wide else 2**31):
        raise YOLOv2Error(f"seen={seen} does not fit the {'64' if wide else '32'}-bit field of version {major}.{minor}.")
    blocks = _conv_blocks(module)
    chunks: list[np.ndarray] = []

    def put(t: Tensor) -> None:
        chunks.append(t.detach().to("cpu", torch.float32).reshape(-1).numpy())

    for i, block in enumerate(blocks):
        if block.fused:
            raise YOLOv2Error(f"{_layer_name(module, block, i)} is fused; save darknet weights from the unfused model.")
        conv, bn = block.conv, block.bn
        if block.batch_norm:
            var = bn.running_var if isinstance(bn, DarknetBatchNorm2d) else _to_darknet_variance(bn.running_var, bn.eps)
            for t in (bn.bias, bn.weight, bn.running_mean, var):
                put(t)
        else:
            put(conv.bias)
        put(conv.weight)
    with atomic_open(path, "wb") as f:
        f.write(np.array([major, minor, revision], "<i4").tobytes())
        f.write(np.array([seen], "<i8" if wide else "<i4").tobytes())
        for chunk in chunks:
            f.write(chunk.astype("<f4", copy=False).tobytes())


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
