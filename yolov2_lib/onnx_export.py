"""The detector as an ONNX file, for runtimes without PyTorch (chapter 10).

Chapter 10 (the detector in your browser) runs the shipped BCCD detector in
the reader's browser with ONNX Runtime Web; :func:`export_onnx` writes the
file it loads. What is exported is the network alone, image in and raw head
out, exactly :meth:`~yolov2_lib.model.YOLOv2.forward`: decoding, scores and
NMS stay with the caller (``decode.postprocess`` in Python, a few lines of
JavaScript in the page).

Three things make such a file trustworthy, and each is checked here:

- **Any batch size and any input side that is a multiple of 32.** The
  network is fully convolutional (chapter 8). The graph is captured by
  ``torch.export`` with symbolic sizes (``batch``, ``32 * rows``,
  ``32 * cols``), so the reshapes of the passthrough compute their sizes in
  the graph instead of baking in the numbers of one example input, which is
  what tracing code that reads ``x.shape`` into Python integers does.
- **Darknet's reorg order** (chapter 7). The passthrough is exported as the
  reshape-transpose-reshape of :func:`~yolov2_lib.passthrough.darknet_reorg`,
  never as ONNX's ``SpaceToDepth`` (whose channel order is neither darknet's
  nor ``pixel_unshuffle``'s): weights trained with one order give wrong
  boxes with another, silently. :func:`compare_onnx` runs the file with
  ONNX Runtime against the PyTorch network and measures the difference.
- **Small files without a lost digit.** Detectors exported by
  ``yolov2 export`` (the shipped ones included) store their weights in
  float16. The ONNX file keeps every weight tensor whose values are exact in
  float16 as float16, with a ``Cast`` to float32 in front of its use, and
  leaves batch norm as a separate per-channel scale and shift: folding it
  into the convolution first would give float32 weights that float16 can
  no longer hold exactly. The arithmetic stays float32 and the head equals
  PyTorch's to float rounding (about 1e-5), at half the size.

Needs the ``onnx`` and ``onnxscript`` packages (and ``onnxruntime`` for
:func:`compare_onnx`): ``pip install "yolov2-lib[onnx]"``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import YOLOv2Error
from .files import atomic_path, write_json
from .model import STRIDE, ConvBlock, _bn_inv_std

__all__ = [
    "BROWSER_FORMAT",
    "METADATA_KEY",
    "OnnxExport",
    "WEIGHT_MODES",
    "browser_bundle",
    "compare_onnx",
    "export_onnx",
    "onnx_metadata",
    "run_onnx",
]

WEIGHT_MODES = ("auto", "fp16", "fp32")
METADATA_KEY = "yolov2_lib"  # the model's metadata_props entry holding the JSON description
BROWSER_FORMAT = "yolov2_lib.browser/1"


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ONNX file.
        num_bytes: its size.
        fp16_tensors: weight tensors stored as float16.
        fp32_tensors: weight tensors stored as float32.
        max_abs_diff: largest absolute difference between the ONNX head and
            the PyTorch head over the checked inputs, by ``(side, batch)``
            (empty when not checked).
        metadata: the description stored in the file (see :func:`onnx_metadata`).
    """

    path: Path
    num_bytes: int
    fp16_tensors: int
    fp32_tensors: int
    max_abs_diff: dict[tuple[int, int], float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def _require(name: str):
    try:
        return __import__(name)
    except ImportError:
        raise ImportError(
            f"ONNX export needs the {name!r} package: pip install \"yolov2-lib[onnx]\" "
            f"(onnx, onnxscript and onnxruntime)."
        ) from None


# ---------------------------------------------------------------- the network made exportable


class _ChannelAffine(nn.Module):
    """Batch norm in eval mode as ``x * scale + shift`` per channel (float32 buffers)."""

    def __init__(self, scale: Tensor, shift: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().float().reshape(1, -1, 1, 1))
        self.register_buffer("shift", shift.detach().float().reshape(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift  # (B, C, H, W)


@torch.no_grad()
def _exportable(model: nn.Module) -> nn.Module:
    """A float32 copy in eval mode whose batch norms are explicit per-channel affines.

    The convolution weights are left untouched (exact in float16 when they were),
    unlike :func:`~yolov2_lib.model.fuse_bn` and the ONNX exporter's own folding,
    which would multiply them by the batch-norm scale.
    """
    net = copy.deepcopy(model).float().eval()
    for block in net.modules():
        if isinstance(block, ConvBlock) and block.batch_norm and not block.fused:
            bn = block.bn
            scale = bn.weight * _bn_inv_std(bn)  # (C,)
            block.bn = _ChannelAffine(scale, bn.bias - bn.running_mean * scale)
    return net


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module) or not hasattr(model, "anchors") or not hasattr(model, "num_classes"):
        raise YOLOv2Error(
            f"export_onnx expects a YOLOv2-like nn.Module with anchors and num_classes, got {type(model).__name__}."
        )
    if next(model.parameters(), None) is None:
        raise YOLOv2Error("export_onnx expects a model with parameters, got one with none.")


# ---------------------------------------------------------------- float16 storage


def _exact_in_fp16(values: np.ndarray) -> bool:
    with np.errstate(over="ignore"):
        return bool(np.array_equal(values.astype(np.float16).astype(np.float32), values))


def _store_weights(proto, mode: str) -> tuple[int, int]:
    """Store float32 initializers as float16 (with a Cast to float32) where ``mode`` says so.

    Returns:
        (number stored as float16, number left in float32), counting tensors of
        more than one value.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    casts, kept, half, full = [], [], 0, 0
    taken = {i.name for i in graph.initializer} | {n for node in graph.node for n in node.output}
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) <= 1:
            kept.append(init)
            continue
        values = numpy_helper.to_array(init)
        if mode == "fp32" or (mode == "auto" and not _exact_in_fp16(values)):
            kept.append(init)
            full += 1
            continue
        name = f"{init.name}__fp16"
        while name in taken:
            name += "_"
        taken.add(name)
        kept.append(numpy_helper.from_array(values.astype(np.float16), name))
        casts.append(helper.make_node("Cast", [name], [init.name], to=TensorProto.FLOAT, name=f"{name}__cast"))
        half += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)  # the casts first: the graph stays topologically sorted
    return half, full


# ---------------------------------------------------------------- export


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    weights: str = "auto",
    class_names: Sequence[str] | None = None,
    letterbox: bool = False,
    input_size: int = 416,
    check: Iterable[tuple[int, int]] | None = ((416, 1),),
    tolerance: float = 1e-4,
    opset: int | None = None,
) -> OnnxExport:
    """Write a YOLOv2's raw head as an ONNX file with dynamic batch and input size.

    The file's input ``images`` is (batch, 3, 32 * rows, 32 * cols) float32 RGB in
    [0, 1], resized as the library resizes (``data.transforms``); its output
    ``raw`` is the head tensor (batch, A*(5+C), rows, cols) in darknet's channel
    order (chapter 4), which :func:`~yolov2_lib.decode.postprocess` decodes. A
    JSON description (class names, anchors, letterbox, input size, stride,
    output layout) is stored in the file's metadata under :data:`METADATA_KEY`.
    Chapter 10 explains the file and runs it in the browser.

    Args:
        model: a :class:`~yolov2_lib.model.YOLOv2` (not modified; a float32 copy in
            eval mode is exported).
        path: the ``.onnx`` file to write.
        weights: ``"auto"`` stores each weight tensor whose values are exact in
            float16 as float16 (every tensor of a detector written by
            ``yolov2 export``), the others as float32: the head is unchanged.
            ``"fp16"`` rounds every tensor to float16 (smallest; the head moves by
            about 1e-2 for float32-trained weights), ``"fp32"`` stores float32 only.
        class_names: the C class names to record (default ``class0, class1, ...``).
        letterbox: whether images are letterboxed for this detector (recorded).
        input_size: the input side to recommend to the file's users (recorded).
        check: ``(side, batch)`` inputs on which to compare the file with the
            PyTorch network using ONNX Runtime (:func:`compare_onnx`); ``None`` or
            empty skips the check.
        tolerance: with ``weights`` ``"auto"`` or ``"fp32"``, a checked difference
            above this raises.
        opset: ONNX opset (default: the exporter's).

    Returns:
        :class:`OnnxExport` with the file's size, how many tensors are float16 and
        the measured differences.

    Raises:
        ValueError: a bad argument, or a model with ``location="offset"`` (its readers
            decode the head with direct location prediction).
        RuntimeError: the exported head differs from PyTorch's by more than ``tolerance``.
        ImportError: ``onnx``/``onnxscript`` (or ``onnxruntime`` for the check) missing.
    """
    _check_model(model)
    location = getattr(getattr(model, "config", None), "location", "direct")
    if location != "direct":
        raise YOLOv2Error(f"export_onnx writes detectors with direct location prediction, the decoding its "
                          f"readers (the browser page, onnx_metadata's users) implement; this model uses "
                          f"location={location!r}.")
    if weights not in WEIGHT_MODES:
        raise YOLOv2Error(f"weights must be one of {WEIGHT_MODES}, got {weights!r}.")
    if input_size <= 0 or input_size % STRIDE:
        raise YOLOv2Error(f"input_size must be a positive multiple of {STRIDE}, got {input_size}.")
    num_classes = int(model.num_classes)
    names = [str(n) for n in class_names] if class_names is not None else [f"class{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise YOLOv2Error(f"class_names has {len(names)} names but the model detects {num_classes} classes.")
    checks = [(int(s), int(b)) for s, b in (check or ())]
    for side, batch in checks:
        if side <= 0 or side % STRIDE or batch < 1:
            raise YOLOv2Error(f"check: expected (side, batch) with side a multiple of {STRIDE}, got {(side, batch)}.")
    onnx = _require("onnx")
    _require("onnxscript")
    path = Path(path)

    net = _exportable(model).cpu()
    in_channels = getattr(getattr(model, "config", None), "in_channels", 3)
    example = torch.rand(2, in_channels, 2 * STRIDE, 3 * STRIDE)  # batch 2, unequal sides: nothing specialises
    dim = torch.export.Dim
    shapes = {"x": {0: dim("batch", min=1), 2: STRIDE * dim("rows", min=1), 3: STRIDE * dim("cols", min=1)}}
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "torchvision is not installed" notes: no torchvision op is used
    try:
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), warnings.catch_warnings():
            # torch.export's own use of a pytree class it deprecates (torch 2.13), nothing of ours
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            program = torch.onnx.export(
                net, (example,), None, dynamo=True, dynamic_shapes=shapes, input_names=["images"],
                output_names=["raw"], opset_version=opset, verbose=False, report=False,
            )
    finally:
        quiet.setLevel(level)
    proto = program.model_proto
    half, full = _store_weights(proto, weights)

    anchors = model.anchors.detach().float().cpu().tolist()
    metadata = {
        "format": "yolov2_lib.onnx/1",
        "input": "images: (batch, 3, 32*rows, 32*cols) float32 RGB in [0, 1]",
        "output": "raw: (batch, A*(5+C), rows, cols); channel a*(5+C)+e is field e (x, y, w, h, objectness, "
                  "classes) of anchor a",
        "class_names": names,
        "num_classes": num_classes,
        "anchors": anchors,
        "stride": STRIDE,
        "letterbox": bool(letterbox),
        "input_size": int(input_size),
        "reorg": getattr(getattr(model, "config", None), "reorg", "darknet"),
    }
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    proto.producer_name = "yolov2_lib"
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))

    result = OnnxExport(path, path.stat().st_size, half, full, {}, metadata)
    if checks:
        result.max_abs_diff = compare_onnx(model, path, checks)
        worst = max(result.max_abs_diff.values())
        if weights != "fp16" and not worst <= tolerance:
            raise RuntimeError(
                f"the ONNX head differs from PyTorch's by {worst:.3g} (> {tolerance:g}) on "
                f"{result.max_abs_diff}; {path} is not faithful."
            )
    return result


# ---------------------------------------------------------------- reading and checking


def onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The description :func:`export_onnx` stored in an ONNX file.

    Args:
        path: an ONNX file written by :func:`export_onnx`.

    Returns:
        The dictionary (class names, anchors in grid cells, letterbox, input size ...).
    """
    onnx = _require("onnx")
    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise YOLOv2Error(f"{path} holds no {METADATA_KEY!r} metadata: it was not written by export_onnx.")


def _session(path: str | Path, threads: int | None = None):
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path: str | Path, images: Tensor | np.ndarray, *, session: Any = None) -> np.ndarray:
    """Run an exported file with ONNX Runtime on the CPU.

    Args:
        path: the ONNX file (ignored when ``session`` is given).
        images: (B, 3, H, W) float32 images in [0, 1], H and W multiples of 32.
        session: an ``onnxruntime.InferenceSession`` to reuse.

    Returns:
        The raw head (B, A*(5+C), H/32, W/32) as a NumPy array.
    """
    session = session or _session(path)
    x = images.detach().cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    return session.run(["raw"], {"images": np.ascontiguousarray(x, dtype=np.float32)})[0]


@torch.no_grad()
def compare_onnx(
    model: nn.Module, path: str | Path, cases: Iterable[tuple[int, int]], *, seed: int = 0
) -> dict[tuple[int, int], float]:
    """Largest absolute difference between an ONNX file's head and the PyTorch network's.

    Both run in float32 on the CPU on the same random images (uniform in [0, 1]).

    Args:
        model: the PyTorch network the file should compute (run as a float32 copy in eval mode).
        path: the ONNX file.
        cases: ``(side, batch)`` pairs, side a multiple of 32.
        seed: seed of the random images.

    Returns:
        ``{(side, batch): max |onnx - torch|}``.
    """
    net = copy.deepcopy(model).float().cpu().eval()
    session = _session(path)
    g = torch.Generator().manual_seed(seed)
    in_channels = getattr(getattr(model, "config", None), "in_channels", 3)
    out: dict[tuple[int, int], float] = {}
    for side, batch in cases:
        x = torch.rand(batch, in_channels, side, side, generator=g)
        reference = net(x).numpy()  # (B, A*(5+C), S/32, S/32)
        got = run_onnx(path, x, session=session)
        if got.shape != reference.shape:
            raise RuntimeError(f"{path}: output shape {got.shape} at input {tuple(x.shape)}, "
                               f"expected {reference.shape}.")
        out[(side, batch)] = float(np.abs(got - reference).max())
    return out


# ---------------------------------------------------------------- the files of the browser page


def _sha256(*parts: bytes) -> str:
    import hashlib

    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def browser_bundle(
    out_dir: str | Path,
    *,
    detector: str = "bccd",
    split: str = "test",
    num_images: int = 5,
    input_size: int = 416,
    conf_threshold: float = 0.25,
    nms_threshold: float = 0.45,
    top_k: int = 100,
) -> dict[str, Any]:
    """Write what chapter 10's page loads: a shipped detector as ONNX, some test images, a manifest.

    The page (``book/_static/live/live.js``) reads ``detector.json``, runs
    ``<detector>.onnx`` with ONNX Runtime Web and decodes the head in JavaScript
    exactly as :func:`~yolov2_lib.decode.postprocess` does, with the settings
    recorded here. The images are the first ``num_images`` of the split (sorted by
    name), copied byte for byte so that the page and the library decode the same
    file. Nothing is rewritten when the manifest's stamp (weights, this module,
    settings, image names) is unchanged.

    Args:
        out_dir: the folder to fill (created).
        detector: a shipped detector (:func:`yolov2_lib.pretrained.available`) whose
            dataset is registered under the same name (``bccd``).
        split: the split the images come from.
        num_images: how many images to ship.
        input_size: the network input side the page uses.
        conf_threshold, nms_threshold, top_k: the page's starting settings
            (those of ``yolov2 detect``).

    Returns:
        The manifest written to ``out_dir/detector.json``.
    """
    import shutil

    from . import pretrained
    from .data import fetch, read_boxes_csv

    out_dir = Path(out_dir)
    loaded = pretrained.load(detector)
    root = fetch(detector)
    records = read_boxes_csv(root / f"{detector}_boxes.csv", root / "JPEGImages", splits=split,
                             class_names=loaded.class_names)
    records = sorted(records, key=lambda r: r.image_id)[:num_images]
    if not records:
        raise YOLOv2Error(f"{detector}: no images in split {split!r}.")
    settings = dict(input_size=input_size, conf_threshold=conf_threshold, nms_threshold=nms_threshold, top_k=top_k)
    stamp = _sha256(pretrained.path(detector).read_bytes(), Path(__file__).read_bytes(),
                    json.dumps([settings, [r.image_id for r in records]]).encode())
    manifest_path = out_dir / "detector.json"
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if old.get("stamp") == stamp and all((out_dir / f).is_file() for f in
                                              [old["model"], *(i["file"] for i in old["images"])]):
            return old

    out_dir.mkdir(parents=True, exist_ok=True)
    model_file = f"{detector}.onnx"
    done = export_onnx(loaded.model, out_dir / model_file, class_names=loaded.class_names,
                       letterbox=loaded.letterbox, input_size=input_size)
    images = []
    for record in records:
        shutil.copyfile(record.path, out_dir / record.path.name)
        counts = torch.bincount(record.labels, minlength=len(loaded.class_names)).tolist()
        images.append({"file": record.path.name, "width": record.width, "height": record.height,
                       "annotated": dict(zip(loaded.class_names, counts))})
    manifest = {
        "format": BROWSER_FORMAT,
        "detector": detector,
        "model": model_file,
        "model_bytes": done.num_bytes,
        "max_abs_diff": max(done.max_abs_diff.values()),
        **{k: done.metadata[k] for k in ("class_names", "num_classes", "anchors", "stride", "letterbox")},
        **settings,
        "images": images,
        "stamp": stamp,
    }
    write_json(manifest_path, manifest, indent=1)
    return manifest
