"""Darknet's ``.cfg`` text format: reading it into sections and writing it (chapter 2).

A ``.cfg`` file describes a network as a list of ``[section]`` blocks of
``key=value`` lines. :func:`parse_cfg` splits one into :class:`CfgSection`
objects, checking every section name and key (chapter 7 reads the
``[route]`` and ``[reorg]`` sections of ``yolov2-voc.cfg`` this way);
:func:`cfg_differences` compares two parsed files; :func:`to_darknet_cfg`
writes the ``.cfg`` text of a ``YOLOv2`` or ``Darknet19``. A problem in a
file raises :class:`DarknetFormatError`, naming the file, the line and what
is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from ..errors import YOLOv2Error
from ..model import ConvBlock, Darknet19, YOLOv2

__all__ = ["CfgSection", "DarknetFormatError", "cfg_differences", "parse_cfg", "parse_cfg_string", "to_darknet_cfg"]


class DarknetFormatError(YOLOv2Error):
    """A darknet ``.cfg`` or ``.weights`` file that cannot be used, with file, line and reason."""


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

    Chapter 2's Going deeper page uses it to show that ``darknet19_448.cfg`` changes only the
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

    def _missing(self, key: str) -> DarknetFormatError:
        return DarknetFormatError(f"{self.s.where()}: [{self.s.type}] needs the key {key!r}.")

    def int(self, key: str, default: int | None = None, minimum: int | None = None) -> int:
        if key not in self.s.options:
            if default is None:
                raise self._missing(key)
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
            raise self._missing(key)
        try:
            return [int(v) for v in self.s.options[key].split(",") if v != ""]
        except ValueError:
            raise self._bad(key, "comma-separated integers") from None


def to_darknet_cfg(model: nn.Module, height: int = 416, width: int | None = None) -> str:
    """Write the darknet ``.cfg`` text of a ``YOLOv2`` or ``Darknet19``.

    With :func:`save_darknet_weights` this exports a model to darknet; the
    cfg of ``YOLOv2()`` is layer for layer ``yolov2-voc.cfg``. A model without batch
    norm writes its convolutions without ``batch_normalize=1`` (darknet then stores a
    bias per filter); one without the passthrough writes no ``[route]``/``[reorg]``
    layers, the last 3x3 convolution following the two on the 13x13 map.

    Args:
        model: a ``YOLOv2`` (darknet reorg order, leaky slope 0.1, direct location
            prediction) or ``Darknet19``.
        height, width: the input size written in ``[net]`` (width defaults to height).

    Returns:
        The cfg text.

    Raises:
        YOLOv2Error: a model darknet cannot run as it is, e.g. one with ``location="offset"``
            (darknet's ``[region]`` layer reads the centre through a sigmoid).
    """
    width = height if width is None else width
    if not isinstance(model, (YOLOv2, Darknet19)):
        raise YOLOv2Error(f"to_darknet_cfg writes YOLOv2 or Darknet19 models, got {type(model).__name__}.")
    config = model.config
    if config.leaky_slope != 0.1:
        raise YOLOv2Error(f"darknet's leaky ReLU has slope 0.1; this model uses {config.leaky_slope}.")
    if config.in_channels != 3:
        raise YOLOv2Error(f"darknet reads 3-channel images; this model takes {config.in_channels}.")
    if isinstance(model, YOLOv2) and config.reorg != "darknet":
        raise YOLOv2Error("darknet's [reorg] computes the darknet order; this model uses reorg='space_to_depth'.")
    if isinstance(model, YOLOv2) and config.location != "direct":
        raise YOLOv2Error(f"darknet's [region] layer decodes with direct location prediction (sigmoid offsets); "
                          f"this model uses location={config.location!r}, which darknet cannot express.")
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
            raise YOLOv2Error(f"cannot express {type(m).__name__} in a darknet cfg.")
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
    if model.passthrough is not None:
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
