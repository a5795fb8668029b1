"""Training end to end: the schedule, checkpoints, resuming, mixed precision, DDP, evaluation.

Chapter 9 (training end to end, evaluation, detections on real images)
explains this module.

:class:`Trainer` runs the paper's recipe by default -- SGD, momentum 0.9,
weight decay 5e-4, learning rate 1e-3 with darknet's burn-in
(``lr * (i / burn_in) ** 4`` for the first ``burn_in`` updates) and divided by
10 at 60 and 90 of 160 epochs -- on multi-scale batches from
:class:`~yolov2_lib.data.sampler.MultiScaleBatchSampler`, with the loss of
:mod:`yolov2_lib.loss` and the ``seen`` image counter its warm-up needs.
Every knob is a field of :class:`TrainConfig`.

Choices:

- Weight decay applies to convolution weights only, not to batch-norm scales
  and shifts nor to biases: darknet's ``update_convolutional_layer`` decays
  ``l.weights`` alone.
- ``seen`` counts the images of the *global* batch, before the forward pass,
  as darknet's ``train_network_datum`` does, and the learning rate of update
  ``i`` (1-based) is darknet's ``get_current_rate`` at batch ``i``.
- Checkpoints hold only tensors and plain Python containers, so they load
  with ``torch.load(weights_only=True)``; they are written to a temporary
  file, flushed to disk and renamed over the old one (``os.replace``), so a
  crash never leaves a partial checkpoint. Resuming restores model, EMA,
  optimizer, schedule, gradient scaler, the sampler's place in its epoch, the
  random states and ``seen``: on the CPU a run killed at any point and resumed
  ends with the same weights, bit for bit, as an uninterrupted one.
- A non-finite loss (or, without a gradient scaler, a non-finite gradient
  norm) stops training with :class:`NonFiniteLossError` before the optimizer
  step; nothing is written after it, so the last checkpoint is the last good one.
- Several processes (``torchrun``) train with PyTorch's own
  ``DistributedDataParallel``: each rank takes its slice of the same global
  batch. On CUDA batch norm is synchronised (``nn.SyncBatchNorm``). In torch
  2.13 ``SyncBatchNorm`` refuses CPU tensors ("expected input tensor to be on
  GPU"), so with the gloo backend on CPU each process normalises with the
  statistics of its own slice: the parameters then equal one process that
  accumulates the same slices (``accumulate = world size``), and with
  ``freeze_bn`` they equal one process with the whole batch (tested).
- On the CPU the model runs channels-last by default (oneDNN's convolutions
  are about 3x faster so with bf16 at width 1/4); mixed precision is off
  unless asked (``amp="bf16"``), on CUDA it is on (bf16, else fp16 with a
  gradient scaler).
- An exponential moving average of the weights (:class:`ModelEMA`) is what
  evaluation and ``best.pt`` use: single checkpoints' scores swing from one
  to the next, the average's much less.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .data.sampler import MultiScaleBatchSampler, detection_collate
from .data.transforms import transform
from .decode import postprocess
from .detect import cpu_supports_bf16, cuda_supports_bf16
from .evaluate import VOCEvaluator, VOCResult
from .loss import YOLOv2Loss
from .model import YOLOv2, YOLOv2Config
from .runtime import default_device, hardware, tune_allocator

__all__ = [
    "CHECKPOINT_FORMAT",
    "WEIGHTS_FORMAT",
    "TrainConfig",
    "DarknetSchedule",
    "ModelEMA",
    "NonFiniteLossError",
    "Trainer",
    "Checkpointed",
    "autocast_dtype",
    "init_distributed",
    "evaluate_model",
    "detect_images",
    "load_checkpoint",
    "model_from_checkpoint",
    "save_checkpoint",
    "export_weights",
    "provenance",
]

CHECKPOINT_FORMAT = "yolov2_lib.train/1"
WEIGHTS_FORMAT = "yolov2_lib.weights/1"
_LOSS_TERMS = ("loss", "coord", "obj", "noobj", "prior", "cls")


# --------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """Every knob of a training run; the defaults are the paper's recipe.

    Schedule:
        epochs: passes over the training set (160 in the paper).
        max_iterations: stop after this many updates instead (``None``: ``epochs``
            times the batches of an epoch). The step fractions refer to this total.
        batch_size: the global batch, all processes together (64 in darknet).
        accumulate: micro-batches per update on each process (darknet's
            ``subdivisions``): less memory, the same update.
        lr: base learning rate (1e-3).
        optimizer: ``"sgd"`` (the paper's) or ``"adamw"`` (Adam with decoupled weight
            decay, ``betas = (momentum, 0.999)``; often faster for short runs from scratch).
        momentum: SGD momentum (0.9); Adam's first beta.
        weight_decay: L2 on convolution weights (5e-4); see ``decay_norm_and_bias``. For
            AdamW it is decoupled (``w -= lr * weight_decay * w``), so it wants larger values.
        decay_norm_and_bias: also decay batch-norm parameters and biases (darknet does not).
        burn_in: updates of warm-up, ``lr * (i / burn_in) ** burn_in_power`` (darknet 1000).
        burn_in_power: the exponent of the burn-in (darknet's ``power``, 4).
        steps: where the rate is multiplied by ``step_scale``: a value below 1 is a
            fraction of the total updates, a value of 1 or more an update number.
            Paper: epochs 60 and 90 of 160.
        step_scale: the factor at each step (0.1).
        grad_clip: clip the gradient norm to this (``None``: never clip; the norm is
            still computed, logged and checked).

    Data:
        sizes: input sides for multi-scale training (320..608 by 32 in the paper).
        size_every: batches between two size draws (10).
        drop_last: drop an epoch's last, smaller batch (avoids tiny BN batches).
        num_workers: DataLoader worker processes.
        seed: seed of the batch order and sizes (augmentation has the dataset's own seed).

    Hardware:
        device: ``None`` picks CUDA, then MPS, then the CPU; with ``torchrun`` on CUDA
            each process takes ``cuda:LOCAL_RANK``.
        amp: ``"auto"`` (CUDA: bf16 where native, compute capability 8.0+, else fp16 with a gradient
            scaler; elsewhere off), ``"off"``, ``"bf16"`` (CPU or CUDA) or ``"fp16"`` (CUDA).
        channels_last: channels-last memory format; ``None``: on CUDA and on the CPU, where
            oneDNN's convolutions are faster with it (about 3x per training step with bf16
            at width 1/4 on a 2-core AVX-512 machine), not on MPS.
        tune_allocator: on the CPU, keep freed memory for reuse
            (:func:`~yolov2_lib.runtime.tune_allocator`: about 1.2x per full-width
            fp32 step here, for ~20 % more peak memory); no effect elsewhere.
        distributed: join the process group ``torchrun`` describes (``WORLD_SIZE > 1``).
        sync_bn: synchronise batch norm across processes (CUDA only, see the module doc).
        freeze_bn: keep batch norm in eval mode (fixed statistics; scale and shift
            still learn), for fine-tuning with small per-device batches.

    Loss (ignored when a ``loss_fn`` is passed to the trainer): see :class:`~yolov2_lib.loss.YOLOv2Loss`.

    EMA, evaluation, checkpoints, display:
        ema_decay: keep an exponential moving average of the weights with this
            decay (``None``: no EMA); the decay ramps up as ``(1 + n) / (10 + n)``
            over the first updates. Evaluation and ``best.pt`` selection use it.
        eval_every: evaluate on the validation data every this many epochs (0: only at the end).
        eval_size: input side for evaluation (416).
        eval_batch_size: images per evaluation batch.
        conf_threshold, nms_threshold, top_k: detection settings for evaluation (VOC protocol).
        out_dir: where ``last.pt``, ``best.pt`` and ``history.json`` go (``None``: nowhere).
        checkpoint_every: also write ``last.pt`` every this many updates (0: at the end of
            each epoch only).
        progress: show a tqdm progress bar (works in notebooks).
        verbose: print one line per epoch.
    """

    epochs: int = 160
    max_iterations: int | None = None
    batch_size: int = 64
    accumulate: int = 1
    lr: float = 1e-3
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    decay_norm_and_bias: bool = False
    burn_in: int = 1000
    burn_in_power: float = 4.0
    steps: tuple[float, ...] = (60 / 160, 90 / 160)
    step_scale: float = 0.1
    grad_clip: float | None = None

    sizes: tuple[int, ...] = tuple(range(320, 609, 32))
    size_every: int = 10
    drop_last: bool = True
    num_workers: int = 0
    seed: int = 0

    device: str | None = None
    amp: str = "auto"
    channels_last: bool | None = None
    tune_allocator: bool = True
    distributed: bool = True
    sync_bn: bool = True
    freeze_bn: bool = False

    object_scale: float = 5.0
    noobject_scale: float = 1.0
    class_scale: float = 1.0
    coord_scale: float = 1.0
    thresh: float = 0.6
    rescore: bool = True
    warmup_images: int = 12800

    ema_decay: float | None = 0.9999
    eval_every: int = 1
    eval_size: int = 416
    eval_batch_size: int = 8
    conf_threshold: float = 0.005
    nms_threshold: float = 0.45
    top_k: int = 100
    out_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = True
    verbose: bool = True

    def __post_init__(self) -> None:
        self.steps = tuple(float(s) for s in self.steps)
        self.sizes = tuple(int(s) for s in self.sizes)
        positive = ("epochs", "batch_size", "accumulate", "size_every", "eval_size", "eval_batch_size")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 1, got {value!r}.")
        for name in ("burn_in", "num_workers", "eval_every", "checkpoint_every", "warmup_images", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 0, got {value!r}.")
        if self.max_iterations is not None and self.max_iterations < 1:
            raise ValueError(f"TrainConfig.max_iterations must be None or >= 1, got {self.max_iterations}.")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}.")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError(f"TrainConfig needs 0 <= momentum < 1 and weight_decay >= 0, "
                             f"got {self.momentum} and {self.weight_decay}.")
        if any(s <= 0 for s in self.steps) or not 0 < self.step_scale:
            raise ValueError(f"TrainConfig.steps must be positive and step_scale > 0, "
                             f"got {self.steps} and {self.step_scale}.")
        if not self.sizes or any(s <= 0 or s % 32 for s in self.sizes):
            raise ValueError(f"TrainConfig.sizes must be positive multiples of 32 (the network stride), "
                             f"got {self.sizes}.")
        if self.eval_size % 32:
            raise ValueError(f"TrainConfig.eval_size must be a multiple of 32, got {self.eval_size}.")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be None or > 0, got {self.grad_clip}.")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"TrainConfig.ema_decay must be None or in (0, 1), got {self.ema_decay}.")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"TrainConfig.optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}.")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.amp must be 'auto', 'off', 'bf16' or 'fp16', got {self.amp!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (tuples as lists), for checkpoints and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """The inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}.")
        return cls(**values)


# --------------------------------------------------------------------------- schedule, EMA


@dataclass
class DarknetSchedule:
    """Darknet's ``steps`` learning-rate policy with burn-in, as a ``LambdaLR`` factor.

    Update ``i`` (1-based, darknet's ``get_current_batch``) uses
    ``(i / burn_in) ** power`` while ``i < burn_in``, then ``scale ** k`` where
    ``k`` is the number of ``steps`` at or below ``i``.

    Attributes:
        burn_in: updates of warm-up.
        power: exponent of the warm-up.
        steps: update numbers where the rate is multiplied by ``scale``.
        scale: the factor at each step.
    """

    burn_in: int = 1000
    power: float = 4.0
    steps: tuple[int, ...] = ()
    scale: float = 0.1

    def factor(self, iteration: int) -> float:
        """Learning-rate multiplier of update ``iteration`` (1-based)."""
        if iteration < self.burn_in:
            return (iteration / self.burn_in) ** self.power
        return self.scale ** sum(1 for s in self.steps if iteration >= s)

    def __call__(self, last_epoch: int) -> float:
        # LambdaLR asks after ``last_epoch`` scheduler steps, i.e. for update last_epoch + 1.
        return self.factor(last_epoch + 1)


class ModelEMA:
    """Exponential moving average of a model's weights and buffers.

    After each update ``ema = d * ema + (1 - d) * model`` with
    ``d = min(decay, (1 + n) / (10 + n))`` at update ``n``, so the average
    forgets the random initialisation quickly. Integer buffers are copied.
    Test scores of single checkpoints swing from one to the next; the average
    is steadier, and is what the trainer evaluates.

    Args:
        model: the model to follow (not modified).
        decay: the long-run decay.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = float(decay)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        for name, avg in self.module.state_dict().items():
            new = current[name].detach()
            if avg.is_floating_point():
                avg.lerp_(new, 1.0 - d)
            else:
                avg.copy_(new)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])


class NonFiniteLossError(FloatingPointError):
    """The loss (or the gradient) became NaN or infinite; training stopped before the update."""


# --------------------------------------------------------------------------- hardware helpers


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype an ``amp`` setting means on ``device`` (``None``: full precision).

    Args:
        amp: ``"auto"``, ``"off"``, ``"bf16"`` or ``"fp16"`` (see :class:`TrainConfig`).
        device: where the model runs.

    Returns:
        ``torch.bfloat16``, ``torch.float16`` or ``None``.

    Raises:
        ValueError: an unknown setting, or fp16 asked off CUDA.
    """
    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if cuda_supports_bf16(device) else torch.float16
    if amp == "bf16":
        if device.type == "cpu" and not cpu_supports_bf16():
            warnings.warn("This CPU has no native bfloat16 support: bf16 autocast runs, but slowly.", stacklevel=2)
        if device.type == "cuda" and not cuda_supports_bf16(device):
            warnings.warn("This GPU has no native bfloat16 support (compute capability below 8.0): bf16 "
                          "autocast is emulated, slowly; amp='auto' picks fp16 with loss scaling.", stacklevel=2)
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"amp='fp16' needs a CUDA device (got {device}); use amp='bf16' on this device.")
        return torch.float16
    raise ValueError(f"amp must be 'auto', 'off', 'bf16' or 'fp16', got {amp!r}.")


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def init_distributed(backend: str | None = None) -> tuple[int, int, int]:
    """Join the process group that ``torchrun`` describes in the environment.

    Does nothing when the group already exists or ``WORLD_SIZE`` is 1 or unset.

    Args:
        backend: ``None`` picks NCCL with CUDA, else gloo.

    Returns:
        ``(rank, world_size, local_rank)``.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), local_rank
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed.")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), local_rank


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a temporary file, fsync, then ``os.replace``.

    A crash at any moment leaves either the old file or the new one, never a
    partial file; the temporary file is removed if writing fails.

    Args:
        state: tensors and plain containers only (so it loads with ``weights_only=True``).
        path: the destination.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_json_atomic(data: Any, path: Path, indent: int | None = None) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=indent) + ("\n" if indent else ""))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a trainer checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: the file is not a checkpoint of this trainer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a yolov2_lib training checkpoint (format {CHECKPOINT_FORMAT!r}).")
    return state


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    mps = getattr(torch, "mps", None)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        state["mps"] = mps.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


def _model_config_dict(model: nn.Module) -> dict[str, Any] | None:
    config = getattr(model, "config", None)
    if not isinstance(config, YOLOv2Config):
        return None
    values = asdict(config)
    values["anchors"] = [[float(v) for v in a] for a in config.anchors]
    return values


def _git_commit(where: Path) -> str | None:
    """``HEAD`` of the git work tree holding ``where`` (``+dirty`` with uncommitted changes), or None."""
    try:
        run = dict(cwd=where, capture_output=True, text=True, timeout=10, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


def provenance(device: torch.device | str | None = None) -> dict[str, Any]:
    """Where a run comes from: the command line, the library's git commit, the time and the hardware."""
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else None,
        "commit": _git_commit(Path(__file__).resolve().parent),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware(device),
    }


class Checkpointed(NamedTuple):
    """A model rebuilt from a checkpoint, with what it was trained on.

    ``letterbox`` says whether the training images were letterboxed (keep it for
    evaluation and detection).
    """

    model: YOLOv2
    class_names: list[str]
    config: TrainConfig
    letterbox: bool
    state: dict[str, Any]


def _load_any(path: str | Path) -> dict[str, Any]:
    """A trainer checkpoint or an exported weights file, checked for either format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") not in (CHECKPOINT_FORMAT, WEIGHTS_FORMAT):
        raise ValueError(f"{path} is neither a yolov2_lib training checkpoint ({CHECKPOINT_FORMAT!r}) "
                         f"nor exported weights ({WEIGHTS_FORMAT!r}).")
    return state


def model_from_checkpoint(path: str | Path, *, use_ema: bool = True,
                          device: str | torch.device = "cpu") -> Checkpointed:
    """Rebuild the trained :class:`~yolov2_lib.model.YOLOv2` of a checkpoint or exported weights.

    Args:
        path: ``last.pt`` or ``best.pt`` of a run, or a file of :func:`export_weights`.
        use_ema: take the averaged weights when the run kept an EMA (exported
            weights hold one set only).
        device: where to put the model.

    Returns:
        :class:`Checkpointed` ``(model in eval mode, class_names, config, letterbox, state)``.
    """
    state = _load_any(path)
    if state.get("model_config") is None:
        raise ValueError(f"{path} holds no YOLOv2 configuration; build the model yourself and load state['model'].")
    model = YOLOv2(YOLOv2Config(**state["model_config"]))
    if state["format"] == WEIGHTS_FORMAT:
        weights = {k: v.float() if v.is_floating_point() else v for k, v in state["weights"].items()}
    else:
        weights = state["ema"]["module"] if use_ema and state.get("ema") else state["model"]
    model.load_state_dict(weights)
    return Checkpointed(model.to(device).eval(), list(state["class_names"]),
                        TrainConfig.from_dict(state["config"]), bool(state.get("letterbox", False)), state)


def export_weights(checkpoint: str | Path, out: str | Path, *, half: bool = True, use_ema: bool = True,
                   results: dict[str, Any] | None = None) -> Path:
    """Write the inference part of a training checkpoint: a small file to ship or share.

    The file keeps the model configuration, the weights (the EMA's by default;
    stored in float16 when ``half``, which halves the size and loads back to
    float32), the class names, the training configuration and the run's
    provenance; it loads with :func:`model_from_checkpoint` (and ``torch.load``
    with ``weights_only=True``). A JSON file beside it (same name, ``.json``)
    repeats everything but the weights, for people to read.

    Args:
        checkpoint: ``best.pt`` or ``last.pt`` of ``yolov2 train``.
        out: the ``.pt`` file to write (never the checkpoint itself).
        half: store floating point weights as float16.
        use_ema: export the averaged weights when the run kept them.
        results: measured numbers to record with it (e.g. the test mAP).

    Returns:
        ``out`` as a :class:`~pathlib.Path`.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if out.resolve() == checkpoint.resolve():
        raise ValueError(f"export_weights would overwrite its input {checkpoint}; choose another output file.")
    state = load_checkpoint(checkpoint)
    if state.get("model_config") is None:
        raise ValueError(f"{checkpoint} holds no YOLOv2 configuration to export.")
    weights = state["ema"]["module"] if use_ema and state.get("ema") else state["model"]
    if half:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    train = state["history"]["train"]
    info: dict[str, Any] = {
        "format": WEIGHTS_FORMAT,
        "model_config": state["model_config"],
        "class_names": list(state["class_names"]),
        "letterbox": bool(state.get("letterbox", False)),
        "config": state["config"],
        "provenance": state.get("provenance"),
        "training": {
            "iterations": int(state["iteration"]), "epochs": int(state["epoch"]), "seen": int(state["seen"]),
            "train_seconds": float(state.get("train_seconds", sum(train["step_time"]))),
            "best_val_map": state.get("best_map"), "ema": bool(use_ema and state.get("ema")),
        },
        "results": dict(results or {}),
        "dtype": "float16" if half else "float32",
        "source_checkpoint": checkpoint.name,
    }
    save_checkpoint({**info, "weights": weights}, out)
    _write_json_atomic(info, out.with_suffix(".json"), indent=2)
    return out


# --------------------------------------------------------------------------- evaluation and detection


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    input_size: int = 416,
    batch_size: int = 8,
    num_workers: int = 0,
    conf_threshold: float = 0.005,
    nms_threshold: float = 0.45,
    top_k: int | None = 100,
    amp: str = "off",
    class_names: Sequence[str] | None = None,
    inclusive: bool = True,
    progress: bool = False,
) -> VOCResult:
    """VOC AP per class and mAP of a detector on a dataset split.

    Each image is resized (or letterboxed, as the dataset does for training) to
    ``input_size``; the detections are mapped back to the image's original
    pixels and compared with every ground truth of the image (difficult ones
    are neither counted nor penalised) by :mod:`yolov2_lib.evaluate`.

    Args:
        model: a YOLO v2 detector (raw head output); it stays on its device and
            is put back in its previous train/eval mode.
        data: a :class:`~yolov2_lib.data.voc.DetectionDataset` (its augmentation is
            ignored), or a DataLoader of ``(images, targets, metas)`` batches whose
            metas carry ``width``, ``height``, ``letterbox`` and ``gt``.
        input_size: network input side for a dataset (a DataLoader brings its own).
        batch_size, num_workers: the loader built for a dataset.
        conf_threshold, nms_threshold, top_k: see :func:`~yolov2_lib.decode.postprocess`
            (VOC protocol: keep low-scoring detections).
        amp: autocast setting for the forward pass (see :func:`autocast_dtype`).
        class_names: names for the result (default: the dataset's).
        inclusive: VOC's +1 pixel convention in the IoU (the official protocol).
        progress: show a progress bar.

    Returns:
        :class:`~yolov2_lib.evaluate.VOCResult` (``map_11point`` is VOC 2007's mAP).
    """
    from tqdm.auto import tqdm

    anchors = getattr(model, "anchors", None)
    num_classes = getattr(model, "num_classes", None)
    if anchors is None or num_classes is None:
        raise ValueError("evaluate_model needs a model with `anchors` and `num_classes` (a YOLOv2).")
    param = next(model.parameters())
    device = param.device
    if isinstance(data, DataLoader):
        loader = data
        class_names = class_names or getattr(data.dataset, "class_names", None)
    else:
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}.")
        dataset = data
        if getattr(dataset, "augment", None) is not None:
            dataset = copy.copy(dataset)
            dataset.augment = None
        batches = [[(i, input_size) for i in range(s, min(s + batch_size, len(dataset)))]
                   for s in range(0, len(dataset), batch_size)]
        loader = DataLoader(dataset, batch_sampler=batches, collate_fn=detection_collate, num_workers=num_workers)
        class_names = class_names or getattr(dataset, "class_names", None)
    dtype = autocast_dtype(amp, device)
    channels_last = param.dim() == 4 and param.is_contiguous(memory_format=torch.channels_last)
    evaluator = VOCEvaluator(num_classes, class_names, inclusive=inclusive)
    was_training = model.training
    model.eval()
    try:
        for images, _, metas in tqdm(loader, desc="eval", disable=not progress, leave=False):
            images = images.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with _autocast(device, dtype):
                raw = model(images)  # (B, A*(5+C), S/32, S/32)
            side = images.shape[-1]
            dets = postprocess(
                raw.float(), anchors, num_classes, conf_threshold=conf_threshold, nms_threshold=nms_threshold,
                top_k=top_k, input_size=(side, images.shape[-2]),
                image_sizes=[(m["width"], m["height"]) for m in metas],
                letterbox=bool(metas[0].get("letterbox", False)),
            )  # B x (N, 6) in original pixels
            evaluator.update(dets, [m["gt"] for m in metas])
    finally:
        model.train(was_training)
    return evaluator.compute()


@torch.no_grad()
def detect_images(
    model: nn.Module,
    images: Sequence[Tensor],
    *,
    input_size: int = 416,
    letterbox: bool = False,
    conf_threshold: float = 0.25,
    nms_threshold: float = 0.45,
    top_k: int | None = 100,
    amp: str = "off",
) -> list[Tensor]:
    """Detections on images of any size, in their own pixels.

    Args:
        model: a YOLO v2 detector; it stays on its device.
        images: (3, H, W) float RGB tensors in [0, 1] (e.g. from
            :func:`~yolov2_lib.data.voc.load_image`); they are resized on the CPU, as the
            dataset does, and the batch is sent to the model's device.
        input_size: network input side (a multiple of 32).
        letterbox: keep the aspect ratio (as the model was trained), else stretch.
        conf_threshold, nms_threshold, top_k: see :func:`~yolov2_lib.decode.postprocess`.
        amp: autocast setting (see :func:`autocast_dtype`).

    Returns:
        One (N_i, 6) tensor per image, rows ``(x1, y1, x2, y2, score, class)`` in
        the image's pixels, on the model's device.
    """
    if input_size % 32:
        raise ValueError(f"input_size must be a multiple of 32, got {input_size}.")
    device = next(model.parameters()).device
    dtype = autocast_dtype(amp, device)
    results: list[Tensor] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), 8):
            chunk = images[start:start + 8]
            inputs = []
            for k, image in enumerate(chunk):
                if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
                    shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
                    raise ValueError(f"images[{start + k}] must be a (3, H, W) tensor, got {shape}.")
                x, _, _ = transform(image.float().cpu(), torch.zeros(0, 4), input_size, letterbox=letterbox)
                inputs.append(x)
            batch = torch.stack(inputs).to(device)  # (b, 3, S, S)
            with _autocast(device, dtype):
                raw = model(batch)
            results += postprocess(
                raw.float(), model.anchors, model.num_classes, conf_threshold=conf_threshold,
                nms_threshold=nms_threshold, top_k=top_k, input_size=(input_size, input_size),
                image_sizes=[(im.shape[2], im.shape[1]) for im in chunk], letterbox=letterbox,
            )
    finally:
        model.train(was_training)
    return results


# --------------------------------------------------------------------------- the trainer


class Trainer:
    """Train a YOLO v2 detector: the schedule, multi-scale batches, AMP, EMA, checkpoints, DDP.

    Example::

        model = YOLOv2(num_classes=3, anchors=anchors, width=0.25)
        trainer = Trainer(model, train_set, TrainConfig(epochs=30, batch_size=16, lr=1e-3),
                          val_data=val_set)
        history = trainer.fit()
        trainer.history["train"]["loss"]   # one value per update

    Launch several processes with ``torchrun --nproc_per_node N script.py``; the
    trainer joins the process group (:func:`init_distributed`), wraps the model in
    ``DistributedDataParallel`` and gives each rank its slice of every global batch.

    Args:
        model: the detector (moved to the chosen device, converted to channels-last
            when asked). Its ``anchors`` and ``num_classes`` build the default loss.
        train_data: a dataset taking :class:`~yolov2_lib.data.sampler.MultiScaleItem`
            requests, e.g. :class:`~yolov2_lib.data.voc.DetectionDataset` with augmentation.
        config: :class:`TrainConfig` (default: the paper's recipe).
        val_data: a dataset to evaluate on (``best.pt`` keeps the best mAP on it).
        loss_fn: the loss (default :class:`~yolov2_lib.loss.YOLOv2Loss` with the config's scales).
        class_names: names of the classes (default: ``train_data.class_names``).
        resume: a checkpoint to continue from (see :meth:`load_checkpoint`).

    Attributes:
        history: ``{"train": {...}, "val": {...}}`` lists for plotting: per update the
            iteration, epoch, seen, lr, input size, loss and each term, gradient norm
            and step time; per evaluation the iteration, epoch and mAP.
        seen: images trained on (all processes).
        iteration: updates done.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset,
        config: TrainConfig | None = None,
        *,
        val_data: Dataset | None = None,
        loss_fn: nn.Module | None = None,
        class_names: Sequence[str] | None = None,
        resume: str | Path | None = None,
    ) -> None:
        self.config = cfg = config or TrainConfig()
        self.rank, self.world_size, local_rank = init_distributed() if cfg.distributed else (0, 1, 0)
        self.device = torch.device(cfg.device) if cfg.device is not None else default_device()
        if self.world_size > 1 and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", local_rank)  # one GPU per process
        if cfg.batch_size % (self.world_size * cfg.accumulate):
            raise ValueError(
                f"batch_size {cfg.batch_size} must be divisible by world_size x accumulate = "
                f"{self.world_size} x {cfg.accumulate}."
            )
        if cfg.tune_allocator and self.device.type == "cpu":
            tune_allocator()  # before the loader forks its workers, which inherit it
        self.amp_dtype = autocast_dtype(cfg.amp, self.device)
        self.channels_last = (cfg.channels_last if cfg.channels_last is not None
                              else self.device.type in ("cuda", "cpu"))
        self.class_names = list(class_names or getattr(train_data, "class_names", None)
                                or [str(c) for c in range(model.num_classes)])
        if len(self.class_names) != model.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for a model of {model.num_classes} classes.")

        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model  # the plain module; self.net is what runs the forward pass
        self.net: nn.Module = model
        if self.world_size > 1:
            if cfg.sync_bn and self.device.type == "cuda":
                self.model = model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif cfg.sync_bn and not cfg.freeze_bn and self.rank == 0:
                warnings.warn(
                    f"SyncBatchNorm needs CUDA (torch {torch.__version__} rejects CPU tensors): each of the "
                    f"{self.world_size} processes normalises with its own slice of the batch.", stacklevel=2)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.loss_fn = (loss_fn or YOLOv2Loss(
            model.anchors, model.num_classes, object_scale=cfg.object_scale, noobject_scale=cfg.noobject_scale,
            class_scale=cfg.class_scale, coord_scale=cfg.coord_scale, thresh=cfg.thresh, rescore=cfg.rescore,
            warmup_images=cfg.warmup_images,
        )).to(self.device)

        self.train_data, self.val_data = train_data, val_data
        self.sampler = MultiScaleBatchSampler(
            len(train_data), cfg.batch_size, sizes=cfg.sizes, every=cfg.size_every, drop_last=cfg.drop_last,
            shuffle=True, seed=cfg.seed, num_replicas=self.world_size, rank=self.rank,
        )
        self.loader = self._make_loader()
        self.total_iterations = cfg.max_iterations or cfg.epochs * self.sampler.batches_per_epoch

        decay, no_decay = [], []
        for p in model.parameters():
            if p.requires_grad:
                (decay if p.dim() > 1 or cfg.decay_norm_and_bias else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if cfg.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        else:
            self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))
        steps = tuple(int(round(s * self.total_iterations)) if s < 1 else int(s) for s in cfg.steps)
        self.schedule = DarknetSchedule(cfg.burn_in, cfg.burn_in_power, steps, cfg.step_scale)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.ema = ModelEMA(model, cfg.ema_decay) if cfg.ema_decay is not None else None

        self.provenance = provenance(self.device)
        self.train_seconds = 0.0  # wall time inside fit(), over every resumed part of the run
        self._fit_started: float | None = None
        self.seen = 0
        self.iteration = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_map: float | None = None
        self.history: dict[str, dict[str, list]] = {
            "train": {k: [] for k in ("iteration", "epoch", "seen", "lr", "size", *_LOSS_TERMS,
                                      "grad_norm", "step_time")},
            "val": {k: [] for k in ("iteration", "epoch", "map", "map_area")},
        }
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir else None
        if resume is not None:
            self.load_checkpoint(resume)

    def _make_loader(self) -> DataLoader:
        # Persistent workers: an epoch does not start by forking them again (BCCD's epochs are 12
        # batches); fit() ends by replacing the loader, which stops them.
        return DataLoader(self.train_data, batch_sampler=self.sampler, collate_fn=detection_collate,
                          num_workers=self.config.num_workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=self.config.num_workers > 0)

    # ------------------------------------------------------------ state

    @property
    def last_checkpoint(self) -> Path | None:
        """``out_dir/last.pt`` (``None`` without an output folder)."""
        return self.out_dir / "last.pt" if self.out_dir else None

    @property
    def best_checkpoint(self) -> Path | None:
        """``out_dir/best.pt``: the state of best validation mAP."""
        return self.out_dir / "best.pt" if self.out_dir else None

    @property
    def eval_model(self) -> nn.Module:
        """The weights evaluation uses: the EMA when there is one, else the model."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def elapsed_seconds(self) -> float:
        """Wall time spent in :meth:`fit` so far, all parts of a resumed run together."""
        running = time.perf_counter() - self._fit_started if self._fit_started is not None else 0.0
        return self.train_seconds + running

    def state_dict(self) -> dict[str, Any]:
        """The whole training state, in tensors and plain containers."""
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "model_config": _model_config_dict(self.model),
            "class_names": list(self.class_names),
            "letterbox": bool(getattr(self.train_data, "letterbox", False)),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "sampler": self.sampler.state_dict(batches_done=self.batch_in_epoch),
            "rng": _rng_state(),
            "seen": self.seen,
            "iteration": self.iteration,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best_map": self.best_map,
            "history": self.history,
            "config": self.config.to_dict(),
            "world_size": self.world_size,
            "provenance": self.provenance,
            "train_seconds": self.elapsed_seconds,
        }

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue from a checkpoint of :meth:`save`: every state is restored.

        Raises:
            FileNotFoundError, ValueError: a missing file, or one of another trainer or
                of a run with a different batch plan (sizes, batch size, seed...).
        """
        state = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            if state.get("ema") is None:
                raise ValueError(f"{path} has no EMA but this run keeps one (set ema_decay=None).")
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        # LambdaLR's state also holds the saved DarknetSchedule (burn-in, steps), and loading
        # writes it into our schedule object: this run's config decides the schedule (e.g. a
        # new max_iterations moves the steps), the checkpoint only where in it we are.
        planned = copy.copy(self.schedule)
        self.scheduler.load_state_dict(state["scheduler"])
        self.schedule = planned
        self.scheduler.lr_lambdas = [planned] * len(self.optimizer.param_groups)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self.schedule(self.scheduler.last_epoch)  # LambdaLR's own formula
        self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        _set_rng_state(state["rng"])
        self.seen = int(state["seen"])
        self.iteration = int(state["iteration"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.best_map = state["best_map"]
        self.history = state["history"]
        began = state.get("provenance")
        if began:  # where the run began, and every command that continued it
            resumed = {k: self.provenance[k] for k in ("command", "commit", "started")}
            resumed["at_iteration"] = int(state["iteration"])
            self.provenance = {**began, "resumed": [*began.get("resumed", []), resumed]}
        self.train_seconds = float(state.get("train_seconds", 0.0))

    def save(self, best: bool = False) -> Path | None:
        """Write ``last.pt`` (and ``best.pt``) and ``history.json`` atomically; rank 0 only."""
        if self.out_dir is None or self.rank != 0:
            return None
        state = self.state_dict()
        path = save_checkpoint(state, self.out_dir / "last.pt")
        if best:
            save_checkpoint(state, self.out_dir / "best.pt")
        _write_json_atomic(self.history, self.out_dir / "history.json")
        return path

    # ------------------------------------------------------------ one update

    def _set_train_mode(self) -> None:
        self.net.train()
        if self.config.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _stop(self, what: str, value: float) -> None:
        last = self.last_checkpoint
        where = (f"the last good checkpoint is {last}" if last is not None and last.is_file()
                 else "no checkpoint was written (set out_dir to keep one)")
        raise NonFiniteLossError(
            f"non-finite {what} ({value}) at update {self.iteration + 1} (epoch {self.epoch}, batch "
            f"{self.batch_in_epoch}, seen {self.seen}): training stopped before the update; {where}. "
            f"Lower the learning rate, lengthen burn_in, set grad_clip or check the data, then resume."
        )

    def train_step(self, images: Tensor, targets: list[Tensor]) -> dict[str, float]:
        """One update on one (local) batch; returns the logged numbers."""
        cfg = self.config
        start = time.perf_counter()
        n_local = images.shape[0]
        seen_now = self.seen + n_local * self.world_size  # darknet counts the batch before the forward
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = [t.to(self.device, non_blocking=True) for t in targets]
        chunks = list(zip(images.tensor_split(cfg.accumulate), _split_list(targets, cfg.accumulate)))
        terms = torch.zeros(len(_LOSS_TERMS), device=self.device)
        for k, (x, t) in enumerate(chunks):
            if x.shape[0] == 0:
                continue
            sync = k == len(chunks) - 1 or self.world_size == 1
            context = contextlib.nullcontext() if sync else self.net.no_sync()
            with context:
                with _autocast(self.device, self.amp_dtype):
                    raw = self.net(x)  # (b, A*(5+C), S/32, S/32)
                out = self.loss_fn(raw, t, seen_now)
                weight = x.shape[0] / n_local  # micro-batch losses add up to the batch mean
                loss = out.total * weight
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            terms += torch.stack([out.total, out.coord, out.obj, out.noobj, out.prior, out.cls]).detach() * weight
        if self.world_size > 1:
            dist.all_reduce(terms)  # every rank sees the same numbers, NaN included
            terms /= self.world_size
        values = terms.tolist()
        if not math.isfinite(values[0]):
            self.optimizer.zero_grad(set_to_none=True)
            self._stop("loss", values[0])
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip or math.inf))
        if self.scaler is None and not math.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            self._stop("gradient norm", grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.seen = seen_now
        self.iteration += 1
        record = dict(zip(_LOSS_TERMS, values))
        record.update(iteration=self.iteration, epoch=self.epoch, seen=self.seen, lr=lr,
                      size=int(images.shape[-1]), grad_norm=grad_norm, step_time=time.perf_counter() - start)
        for key, value in record.items():
            self.history["train"][key].append(value)
        return record

    # ------------------------------------------------------------ evaluation

    def evaluate(self, data: Dataset | None = None, input_size: int | None = None) -> VOCResult:
        """VOC mAP of :attr:`eval_model` on ``data`` (default: the validation data)."""
        data = data if data is not None else self.val_data
        if data is None:
            raise ValueError("no data to evaluate on: pass val_data to the Trainer or data here.")
        cfg = self.config
        return evaluate_model(
            self.eval_model, data, input_size=input_size or cfg.eval_size, batch_size=cfg.eval_batch_size,
            num_workers=cfg.num_workers, conf_threshold=cfg.conf_threshold, nms_threshold=cfg.nms_threshold,
            top_k=cfg.top_k, amp="bf16" if self.amp_dtype == torch.bfloat16 else "off",
            class_names=self.class_names, progress=cfg.progress,
        )

    def _validate(self) -> bool:
        """Evaluate on the validation data (rank 0); True when the mAP is the best so far."""
        best = False
        if self.val_data is not None and self.rank == 0:
            result = self.evaluate()
            value = result.map_11point
            val = self.history["val"]
            val["iteration"].append(self.iteration)
            val["epoch"].append(self.epoch)
            val["map"].append(None if math.isnan(value) else value)
            val["map_area"].append(None if math.isnan(result.map_area) else result.map_area)
            if not math.isnan(value) and (self.best_map is None or value > self.best_map):
                self.best_map, best = value, True
        if self.world_size > 1:
            dist.barrier()
        return best

    # ------------------------------------------------------------ the loop

    def fit(self) -> dict[str, dict[str, list]]:
        """Train until ``total_iterations`` updates are done; returns :attr:`history`.

        Writes ``last.pt`` at the end of every epoch (after its evaluation), every
        ``checkpoint_every`` updates and at the end; ``best.pt`` when the validation
        mAP improves.

        Raises:
            NonFiniteLossError: the loss became NaN or infinite (the last checkpoint stays).
        """
        from tqdm.auto import tqdm

        cfg = self.config
        total = self.total_iterations
        per_epoch = self.sampler.batches_per_epoch
        bar = tqdm(total=total, initial=self.iteration, desc="train", unit="it",
                   disable=not cfg.progress or self.rank != 0, dynamic_ncols=True)
        self._fit_started = time.perf_counter()
        try:
            while self.iteration < total:
                self._set_train_mode()
                self.sampler.set_epoch(self.epoch)  # keeps a resumed position inside this epoch
                epoch_start = time.perf_counter()
                for images, targets, _ in self.loader:
                    record = self.train_step(images, targets)
                    self.batch_in_epoch += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}", size=record["size"])
                    if self.iteration >= total:
                        break
                    if (cfg.checkpoint_every and self.iteration % cfg.checkpoint_every == 0
                            and self.batch_in_epoch < per_epoch):
                        self.save()
                if self.batch_in_epoch < per_epoch:
                    break  # the total was reached inside the epoch
                self.epoch += 1
                self.batch_in_epoch = 0
                if self.iteration >= total:
                    break
                best = cfg.eval_every > 0 and self.epoch % cfg.eval_every == 0 and self._validate()
                self._epoch_line(epoch_start)
                self.save(best=best)
            if not self.history["val"]["iteration"] or self.history["val"]["iteration"][-1] != self.iteration:
                best = self._validate()
            else:
                best = False
            self._epoch_line(None)
            self.save(best=best)
        finally:
            bar.close()
            self.train_seconds, self._fit_started = self.elapsed_seconds, None
            self.loader = self._make_loader()  # the old one's workers exit; the next fit() starts new ones
        return self.history

    def _epoch_line(self, epoch_start: float | None) -> None:
        if not self.config.verbose or self.rank != 0 or not self.history["train"]["loss"]:
            return
        from tqdm.auto import tqdm

        train = self.history["train"]
        n = min(len(train["loss"]), self.sampler.batches_per_epoch)
        mean = {k: sum(train[k][-n:]) / n for k in _LOSS_TERMS}
        line = (f"epoch {self.epoch} it {self.iteration}: loss {mean['loss']:.3f} (coord {mean['coord']:.3f} "
                f"obj {mean['obj']:.3f} noobj {mean['noobj']:.3f} cls {mean['cls']:.3f}) lr {train['lr'][-1]:.2e}")
        val = self.history["val"]
        if val["iteration"] and val["iteration"][-1] == self.iteration and val["map"][-1] is not None:
            line += f" | val mAP@0.5 {100 * val['map'][-1]:.2f}%"
        if epoch_start is not None:
            line += f" | {time.perf_counter() - epoch_start:.1f} s"
        tqdm.write(line)


def _split_list(items: list, parts: int) -> list[list]:
    """Split a list like ``Tensor.tensor_split`` splits a batch."""
    q, r = divmod(len(items), parts)  # tensor_split gives the first r chunks one more element
    bounds = [k * q + min(k, r) for k in range(parts + 1)]
    return [items[bounds[k]:bounds[k + 1]] for k in range(parts)]
