"""A network in numbers and in stages: its layer table, FLOPs, parameters and the picture's stages.

Chapter 2 (Darknet-19's layer table and cost) and chapter 7 (the whole
network in one picture) use it; the counts match darknet's own printout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .model import ConvBlock, GlobalAvgPool, YOLOv2
from .passthrough import Reorg

__all__ = ["LayerRow", "Stage", "layer_table", "count_flops", "count_parameters", "format_layer_table",
           "network_stages"]

# --------------------------------------------------------------------------- counting


class LayerRow(NamedTuple):
    """One row of :func:`layer_table`, in darknet's summary style.

    ``input_shape`` and ``output_shape`` are (C, H, W) for one image (a
    route lists the shapes it concatenates); ``flops`` counts a
    multiply-add as 2, convolutions only, like darknet's ``l.bflops``.
    """

    index: int
    type: str
    filters: int | None
    size: int | None
    stride: int | None
    input_shape: tuple
    output_shape: tuple
    params: int
    flops: int


def _layer_kind(module: nn.Module) -> str | None:
    if isinstance(module, ConvBlock):
        return "conv"
    if isinstance(module, Reorg):
        return "reorg"
    if isinstance(module, GlobalAvgPool):
        return "avg"
    if isinstance(module, nn.MaxPool2d):
        return "max"
    return getattr(module, "layer_type", None)  # the darknet package's layers name themselves


def _shape(t: Any) -> tuple:
    if isinstance(t, Tensor):
        return tuple(t.shape[1:])
    return tuple(_shape(u) for u in t)


@torch.no_grad()
def layer_table(model: nn.Module, input_size: int | tuple[int, int] = 416) -> list[LayerRow]:
    """List the layers a forward pass goes through, with shapes, parameters and FLOPs.

    Runs one forward pass on a zero image of batch 1 (in eval mode; the
    model's mode is restored afterwards).

    Args:
        model: ``YOLOv2``, ``Darknet19``, a ``DarknetNet`` or any module built from
            :class:`ConvBlock`, ``nn.MaxPool2d``, :class:`~yolov2_lib.passthrough.Reorg`
            and :class:`GlobalAvgPool`.
        input_size: image side, or (height, width).

    Returns:
        One :class:`LayerRow` per layer, in execution order.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    rows: list[LayerRow] = []

    def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
        kind = _layer_kind(module)
        filters = size = stride = None
        flops = 0
        if kind == "conv":
            conv = module.conv
            filters, size, stride = conv.out_channels, conv.kernel_size[0], conv.stride[0]
            out_h, out_w = output.shape[-2:]
            kh, kw = conv.kernel_size
            flops = 2 * filters * kh * kw * conv.in_channels // conv.groups * out_h * out_w  # darknet's l.bflops
        elif kind == "max":
            size, stride = _int(module.kernel_size), _int(module.stride)
        elif kind == "reorg":
            stride = module.stride
        in_shape = _shape(inputs[0])
        params = sum(p.numel() for p in module.parameters())
        rows.append(LayerRow(len(rows), kind, filters, size, stride, in_shape, _shape(output), params, flops))

    handles = [m.register_forward_hook(hook) for m in model.modules() if _layer_kind(m) is not None]
    was_training = model.training
    try:
        model.eval()
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
        in_channels = getattr(getattr(model, "config", None), "in_channels", None) or getattr(model, "channels", 3)
        model(torch.zeros(1, in_channels, h, w, device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return rows


def _int(v: Any) -> int:
    return v[0] if isinstance(v, (tuple, list)) else int(v)


def count_flops(model: nn.Module, input_size: int | tuple[int, int] = 416) -> int:
    """Floating-point operations of one forward pass (multiply-add = 2, convolutions only).

    Args:
        model: see :func:`layer_table`.
        input_size: image side, or (height, width).

    Returns:
        FLOPs for one image; Darknet-19 at 224 gives 5.58e9, YOLOv2 at 416 29.36e9.
    """
    return sum(row.flops for row in layer_table(model, input_size))


def count_parameters(model: nn.Module) -> int:
    """Number of learnable parameters (BN running statistics are buffers, not counted).

    Args:
        model: any module.

    Returns:
        The count; 50,655,389 for ``YOLOv2()`` (50.66 M).
    """
    return sum(p.numel() for p in model.parameters())


def format_layer_table(rows: Sequence[LayerRow]) -> str:
    """Render :func:`layer_table` rows as text, like darknet's network summary.

    Args:
        rows: the rows.

    Returns:
        A multi-line string with a total line at the end.
    """

    def shape(s: tuple) -> str:
        if s and isinstance(s[0], tuple):
            return " + ".join(shape(t) for t in s)
        return " x ".join(str(v) for v in s)

    lines = [
        f"{'layer':>5} {'type':<7} {'filters':>7} {'size/str':>8} {'input':>18} {'output':>18} "
        f"{'params':>11} {'GFLOPs':>7}"
    ]
    for r in rows:
        size = f"{r.size}x{r.size}/{r.stride}" if r.size else (f"/{r.stride}" if r.stride else "")
        lines.append(
            f"{r.index:>5} {r.type:<7} {r.filters or '':>7} {size:>8} {shape(r.input_shape):>18} "
            f"{shape(r.output_shape):>18} {r.params:>11,} {r.flops / 1e9:>7.3f}"
        )
    total_p = sum(r.params for r in rows)
    total_f = sum(r.flops for r in rows)
    lines.append(f"{'total':>5} {'':<7} {'':>7} {'':>8} {'':>18} {'':>18} {total_p:>11,} {total_f / 1e9:>7.3f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the network in one picture


class Stage(NamedTuple):
    """One box of the YOLO v2 block diagram (see :func:`network_stages`).

    Attributes:
        name: what the stage is, e.g. ``"conv"``, ``"5 convs"``, ``"max-pool"``, ``"reorg /2"``.
        detail: its layers in a few words, e.g. ``"3x3 512, 1x1 256, ..."``.
        branch: ``"input"``, ``"main"`` (Darknet-19 and the layers on the
            13 x 13 map), ``"passthrough"`` or ``"head"``.
        output_shape: (C, H, W) of its output for one image.
        darknet_layers: the layers of ``yolov2-voc.cfg`` it stands for
            (darknet counts its two ``[route]`` sections as layers too).
        params: learnable parameters in the stage.
        flops: its operations (multiply-add = 2).
    """

    name: str
    detail: str
    branch: str
    output_shape: tuple
    darknet_layers: tuple[int, ...]
    params: int
    flops: int


def _count_layers(module: nn.Module) -> int:
    return sum(_layer_kind(m) is not None for m in module.modules())


def _conv_stage(rows: Sequence[LayerRow], branch: str, darknet_layers: tuple[int, ...]) -> Stage:
    convs = [r for r in rows if r.type == "conv"]
    name = "conv" if len(convs) == 1 else f"{len(convs)} convs"
    detail = ", ".join(f"{r.size}x{r.size} {r.filters}" for r in convs)
    return Stage(name, detail, branch, rows[-1].output_shape, darknet_layers,
                 sum(r.params for r in rows), sum(r.flops for r in rows))


def network_stages(model: YOLOv2, input_size: int | tuple[int, int] = 416) -> list[Stage]:
    """The YOLO v2 detector as a few stages with their shapes: the boxes of its block diagram.

    Built from :func:`layer_table` of ``model`` itself, so a narrower model,
    another number of classes or the 2016 variant give their own channels.
    Darknet-19's convolutions are grouped between its max-pools; then come
    the two 3 x 3 convolutions on the 13 x 13 map, the passthrough branch
    from darknet layer 16 (1 x 1 conv, reorg), the concatenation, the last
    3 x 3 convolution and the 1 x 1 head. Chapters 2 and 7 draw it with
    ``viz.draw_network``. A model without the passthrough has neither its
    stages nor the concatenation (and darknet's layer numbers after it move up).

    Args:
        model: a :class:`YOLOv2`.
        input_size: image side, or (height, width).

    Returns:
        The stages in execution order; the passthrough stages come right
        before the ``"concat"`` stage that joins them to the main path.
    """
    if not isinstance(model, YOLOv2):
        raise TypeError(f"network_stages expects a YOLOv2, got {type(model).__name__}.")
    rows = layer_table(model, input_size)
    n_backbone = _count_layers(model.backbone)
    n_neck = _count_layers(model.neck)
    n_pass = _count_layers(model.passthrough) if model.passthrough is not None else 0
    backbone = rows[:n_backbone]
    neck = rows[n_backbone:n_backbone + n_neck]
    passthrough = rows[n_backbone + n_neck:n_backbone + n_neck + n_pass]
    merge, head = rows[n_backbone + n_neck + n_pass:]
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)

    stages = [Stage("input image", "RGB", "input", (model.config.in_channels, h, w), (), 0, 0)]
    run: list[LayerRow] = []
    for r in backbone:  # convolutions grouped between the max-pools
        if r.type == "max":
            if run:
                stages.append(_conv_stage(run, "main", tuple(x.index for x in run)))
                run = []
            stages.append(Stage("max-pool", f"{r.size}x{r.size} /{r.stride}", "main", r.output_shape,
                                (r.index,), 0, 0))
        else:
            run.append(r)
    stages.append(_conv_stage(run, "main", tuple(x.index for x in run)))
    # darknet numbers its two [route] sections as layers: 25 before the passthrough, 28 at the concat
    first = neck[0].index
    stages.append(_conv_stage(neck, "main", tuple(range(first, first + len(neck)))))
    after = first + len(neck)  # darknet's layer 25, the route back to layer 16
    if not passthrough:  # no route, reorg and concat: the last 3x3 conv is darknet's layer 25
        stages.append(_conv_stage([merge], "main", (after,)))
        return stages + [_head_stage(model, head, after + 1)]
    for k, r in enumerate(passthrough):
        layer = (after + 1 + k,)
        if r.type == "reorg":
            stages.append(Stage(f"reorg /{r.stride}", "2x2 blocks into channels", "passthrough",
                                r.output_shape, layer, 0, 0))
        else:
            stages.append(_conv_stage([r], "passthrough", layer))
    concat = after + 1 + len(passthrough)
    parts = f"{passthrough[-1].output_shape[0]} + {neck[-1].output_shape[0]} channels"
    stages.append(Stage("concat", parts, "main", merge.input_shape, (concat,), 0, 0))
    stages.append(_conv_stage([merge], "main", (concat + 1,)))
    return stages + [_head_stage(model, head, concat + 2)]


def _head_stage(model: YOLOv2, head: LayerRow, layer: int) -> Stage:
    a, c = model.num_anchors, model.num_classes
    return Stage("conv 1x1, linear", f"{a} anchors x (5 + {c})", "head", head.output_shape, (layer,),
                 head.params, head.flops)
