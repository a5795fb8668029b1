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
  ends with the same weights, bit for bit, as an uninterrupted one. ``best.pt``
  is written before ``last.pt``: a kill between the two leaves the older
  ``last.pt``, and the resumed run evaluates again and rewrites ``best.pt``.
  Only weights-only files are read: a file holding other Python objects is
  refused, since unpickling them could run code.
- Resuming with another learning rate, momentum, weight decay or EMA decay
  applies the new value from the next update, and the provenance records every
  changed setting with that update. Settings a run cannot change midway (the
  optimizer, the network, the batch plan: batch size, sizes, seed, images) are
  refused with an error naming them.
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
  are faster so). Mixed precision (``amp="auto"``) is used only where the
  hardware computes it natively: bf16 on CPUs with AVX512-BF16 or AMX and on
  GPUs of compute capability 8.0+, fp16 with a gradient scaler on older GPUs,
  float32 everywhere else (emulated bf16 is slower than float32).
- A run can have a wall-time budget (``max_seconds``): it then stops when the
  budget is spent, evaluations included, keeping time for the final
  evaluation; the rate's steps given as fractions happen at those fractions
  of the budget (or of ``max_iterations``, whichever comes first), so a
  slower machine runs the same schedule over fewer updates.
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
import pickle
import random
import re
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .data.sampler import MultiScaleBatchSampler, detection_collate, fixed_size_loader
from .data.transforms import transform
from .decode import postprocess
from .detect import cpu_supports_bf16, cuda_supports_bf16
from .evaluate import VOCEvaluator, VOCResult
from .loss import LossOutput, YOLOv2Loss
from .model import YOLOv2, YOLOv2Config
from .runtime import default_device, hardware, quick_mode, tune_allocator

__all__ = [
    "CHECKPOINT_FORMAT",
    "WEIGHTS_FORMAT",
    "TrainConfig",
    "DarknetSchedule",
    "ModelEMA",
    "NonFiniteLossError",
    "Trainer",
    "sgd_update",
    "Checkpointed",
    "autocast_dtype",
    "precision_name",
    "first_look",
    "init_distributed",
    "evaluate_model",
    "detect_images",
    "OverfitRun",
    "overfit_batch",
    "load_checkpoint",
    "model_from_checkpoint",
    "save_checkpoint",
    "export_weights",
    "provenance",
]

CHECKPOINT_FORMAT = "yolov2_lib.train/1"
WEIGHTS_FORMAT = "yolov2_lib.weights/1"
_LOSS_TERMS = ("loss", "coord", "obj", "noobj", "prior", "cls")


def _logged_terms(out: LossOutput) -> Tensor:
    """(6,) the loss and its five terms, detached, in the order of ``_LOSS_TERMS``."""
    return torch.stack(out[: len(_LOSS_TERMS)]).detach()


# --------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """Every knob of a training run; the defaults are the paper's recipe.

    Schedule:
        epochs: passes over the training set (160 in the paper).
        max_iterations: stop after this many updates instead (``None``: ``epochs``
            times the batches of an epoch). The step fractions refer to this total.
        max_seconds: a wall-time budget for :meth:`Trainer.fit` (``None``: none), evaluations
            included: training stops early enough that the final evaluation ends within it
            (estimated from the previous one), and step fractions refer to the budget as
            well (whichever of updates or time reaches a fraction first).
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
        threads: torch's CPU threads while :meth:`Trainer.fit` runs (``None``: leave torch's
            setting). On a CPU with few cores, leaving one core to the data worker and to
            whatever else runs keeps a busy machine from stalling the whole thread team.
            The count changes the rounding of some sums, so it is part of what makes a
            run repeat bit for bit.
        seed: seed of the batch order and sizes (augmentation has the dataset's own seed).

    Hardware:
        device: ``None`` picks CUDA, then MPS, then the CPU; with ``torchrun`` on CUDA
            each process takes ``cuda:LOCAL_RANK``.
        amp: ``"auto"`` (bf16 where the hardware computes it natively: a CPU with AVX512-BF16 or
            AMX, a GPU of compute capability 8.0+; fp16 with a gradient scaler on older GPUs;
            float32 elsewhere), ``"off"``, ``"bf16"`` (CPU or CUDA) or ``"fp16"`` (CUDA).
        channels_last: channels-last memory format; ``None``: on CUDA and on the CPU, where
            oneDNN's convolutions are faster with it, not on MPS.
        tune_allocator: on the CPU, keep freed memory for reuse
            (:func:`~yolov2_lib.runtime.tune_allocator`: faster steps for somewhat more
            peak memory); no effect elsewhere.
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
    max_seconds: float | None = None
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
    threads: int | None = None
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
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"TrainConfig.threads must be None or an integer >= 1, got {self.threads!r}.")
        for name in ("burn_in", "num_workers", "eval_every", "checkpoint_every", "warmup_images", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 0, got {value!r}.")
        if self.max_iterations is not None and self.max_iterations < 1:
            raise ValueError(f"TrainConfig.max_iterations must be None or >= 1, got {self.max_iterations}.")
        if self.max_seconds is not None and not (isinstance(self.max_seconds, (int, float))
                                                 and not isinstance(self.max_seconds, bool)
                                                 and math.isfinite(self.max_seconds) and self.max_seconds > 0):
            raise ValueError(f"TrainConfig.max_seconds must be None or a number of seconds > 0, "
                             f"got {self.max_seconds!r}.")
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
    """The loss (or the gradient) became NaN or infinite; training stopped before the update.

    ``what`` names the number ("loss" or "gradient norm") and ``value`` is what it was.
    """

    def __init__(self, message: str, what: str = "loss", value: float = math.nan) -> None:
        super().__init__(message)
        self.what, self.value = what, value


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
        if device.type == "cuda":
            return torch.bfloat16 if cuda_supports_bf16(device) else torch.float16
        if device.type == "cpu" and cpu_supports_bf16():
            return torch.bfloat16
        return None
    if amp == "bf16":
        if device.type == "cpu" and not cpu_supports_bf16():
            warnings.warn("This CPU has no native bfloat16 support: bf16 autocast runs, but slowly.", stacklevel=2)
        if device.type == "cuda" and not cuda_supports_bf16(device):
            warnings.warn("This GPU has no native bfloat16 support (compute capability below 8.0): bf16 "
                          "autocast is emulated, slowly; amp='auto' picks fp16 with loss scaling.", stacklevel=2)
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"amp='fp16' needs a CUDA device (got {device}); use amp='auto', which picks "
                             f"what this device computes natively.")
        return torch.float16
    raise ValueError(f"amp must be 'auto', 'off', 'bf16' or 'fp16', got {amp!r}.")


def first_look(config: TrainConfig) -> TrainConfig:
    """``config`` shortened to a run of seconds when ``YOLOV2_QUICK`` is set, else ``config`` itself.

    A first look at a chapter: 20 s of wall time, its smallest input size only,
    one validation at the end.
    """
    if not quick_mode():
        return config
    return replace(config, max_seconds=20, sizes=(min(config.sizes),), eval_every=0)


def precision_name(dtype: torch.dtype | None) -> str:
    """How a run's precision is written: ``"float32"`` (no autocast), ``"bf16"`` or ``"fp16"``."""
    return {None: "float32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def sgd_update(net: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor,
               targets: list[Tensor], seen: int, *, amp_dtype: torch.dtype | None = None,
               grad_clip: float | None = None) -> tuple[LossOutput, float]:
    """One update of the weights on one batch: the core of :meth:`Trainer.train_step`.

    Forward (in ``amp_dtype`` when given), the loss, backward, clipping of the
    gradient's norm, the optimizer's step. The weights are left untouched when
    the loss or the gradient is not finite.

    Returns:
        (the loss's output with all its terms, the gradient norm before clipping).

    Raises:
        NonFiniteLossError: the loss or the gradient norm is NaN or infinite.
    """
    with _autocast(images.device, amp_dtype):  # bf16 or fp16 where the hardware computes it natively
        raw = net(images)  # (B, A*(5+C), S/32, S/32)
    out = loss_fn(raw, targets, seen)  # chapter 6's loss; `seen` decides the anchor warm-up
    out.total.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip or math.inf))
    for what, value in (("loss", out.total.item()), ("gradient norm", grad_norm)):
        if not math.isfinite(value):
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(f"non-finite {what} ({value}): the update was not applied", what, value)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return out, grad_norm


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
        ValueError: the file is not a checkpoint of this trainer, is damaged, or is not a
            weights-only file (see :func:`_read_torch_file`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    state = _read_torch_file(path, map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a yolov2_lib training checkpoint (format {CHECKPOINT_FORMAT!r}).")
    return state


def _read_torch_file(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one clear error per way it can fail.

    Raises:
        ValueError: the file holds Python objects other than tensors and plain containers
            (refused: unpickling them could run code), or it is damaged or not a PyTorch file.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise ValueError(f"{path} cannot be read: it is damaged or not a PyTorch file "
                             f"({type(exc).__name__}).") from None
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise ValueError(
            f"{path} is refused: it is not a weights-only file -- it holds a Python object{what}, and "
            "loading it could run code. Only files of tensors and plain containers, as yolov2_lib "
            "writes them, are read."
        ) from None
    except (RuntimeError, EOFError, KeyError, IndexError, ValueError, TypeError, AttributeError,
            UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"{path} cannot be read: it is damaged (truncated or overwritten) or not a "
                         f"PyTorch file ({type(exc).__name__}).") from None


_TEMPORARY = re.compile(r"^\.(last\.pt|best\.pt|history\.json)\.(\d+)\.tmp$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, ValueError):
        return False  # not a possible process id
    return True


def _remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the hidden ``.last.pt.<pid>.tmp`` files (and those of ``best.pt`` and
    ``history.json``) that processes killed while writing left in ``folder``; the files of
    processes still running stay. Returns the paths removed."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        found = _TEMPORARY.match(p.name)
        if found is None or not p.is_file():
            continue
        pid = int(found.group(2))
        if pid != os.getpid() and not _process_alive(pid):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


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


def provenance(device: torch.device | str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Where a run comes from: the command line, the library's git commit, the time and the hardware
    (``threads``: the torch threads the run uses, default torch's current count)."""
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else None,
        "commit": _git_commit(Path(__file__).resolve().parent),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware(device, threads),
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
    state = _read_torch_file(path)
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
        "config": {**state["config"], "out_dir": _folder_name(state["config"].get("out_dir"))},
        "provenance": _shareable(state.get("provenance")),
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


def _folder_name(path: str | None) -> str | None:
    """The last part of a run folder's path: where it lay on the trainer's disk means nothing elsewhere."""
    return None if path is None else Path(path).name


def _shareable(provenance: dict[str, Any] | None) -> dict[str, Any] | None:
    """Provenance to ship: every command's ``--out`` folder reduced to its name."""
    if not provenance:
        return provenance

    def command(text: str | None) -> str | None:
        return None if text is None else re.sub(r"(--out[ =])(\S+)", lambda m: m[1] + Path(m[2]).name, text)

    shared = {**provenance, "command": command(provenance.get("command"))}
    if "resumed" in provenance:
        shared["resumed"] = [{**r, "command": command(r.get("command"))} for r in provenance["resumed"]]
    return shared


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
        dataset = data
        if getattr(dataset, "augment", None) is not None:
            dataset = copy.copy(dataset)
            dataset.augment = None
        loader = fixed_size_loader(dataset, input_size, batch_size, num_workers)
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


class OverfitRun(NamedTuple):
    """What :func:`overfit_batch` records.

    Attributes:
        history: (steps, 4) per step: darknet's average IoU of the responsible anchors,
            their average objectness, the coordinate term of the loss, and the mean
            ``|t_w|, |t_h|`` of all anchors (how far the sizes drifted from the priors).
        stats: darknet's statistics after the last step.
    """

    history: np.ndarray
    stats: Any


#: The columns of :attr:`OverfitRun.history`.
OVERFIT_COLUMNS = ("avg_iou", "avg_obj", "coord", "drift")


def overfit_batch(
    model: nn.Module,
    images: Tensor,
    targets: Sequence[Tensor],
    loss_fn,
    *,
    steps: int = 50,
    lr: float = 1e-3,
    initial_state: dict[str, Tensor] | None = None,
    seed: int = 0,
) -> OverfitRun:
    """Train on one batch for a few Adam steps and record how the loss's quantities move.

    The small experiment of chapter 6 (the loss): the same model, initial weights,
    data and optimizer for every variant of the loss, so that only the loss differs.

    Args:
        model: a YOLO v2 detector (trained in place).
        images: (B, 3, S, S) the batch.
        targets: B tensors (N_i, 5) rows ``(class, cx, cy, w, h)``.
        loss_fn: called as ``loss_fn(raw, targets, seen=...)``, returning a
            :class:`~yolov2_lib.loss.LossOutput` (a :class:`~yolov2_lib.loss.YOLOv2Loss` or a variant).
        steps: optimizer steps.
        lr: Adam's learning rate.
        initial_state: a state dict loaded before training (``None``: the model as it is).
        seed: seeds torch before the run.

    Returns:
        :class:`OverfitRun`.
    """
    from .layout import head_view

    if steps < 1:
        raise ValueError(f"Expected steps >= 1, got {steps}.")
    torch.manual_seed(seed)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for step in range(steps):
        raw = model(images)
        out = loss_fn(raw, targets, seen=(step + 1) * len(images))
        optimizer.zero_grad()
        out.total.backward()
        optimizer.step()
        drift = head_view(raw.detach(), len(model.anchors))[..., 2:4].abs().mean()
        history.append([out.stats.avg_iou.item(), out.stats.avg_obj.item(), out.coord.item(), drift.item()])
    return OverfitRun(np.array(history), out.stats)


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
        resume: a checkpoint to continue from (see :meth:`load_checkpoint`); ``config``'s
            learning rate, momentum, weight decay and EMA decay apply from the next update.

    Attributes:
        resumed_changes: the settings this config changed on resuming,
            ``{name: [the checkpoint's value, this run's]}`` (also in the provenance).
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

        self.provenance = provenance(self.device, cfg.threads)
        self.stopped_by: str | None = None  # "updates" or "time budget", once fit() has ended
        self.clock = time.perf_counter  # the wall clock of the budget (a test may replace it)
        self._eval_seconds: float | None = None  # how long the last validation took
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
        self.resumed_changes: dict[str, list] = {}  # setting -> [the checkpoint's value, this run's]
        self._saved = resume is not None  # out_dir's last.pt and best.pt are this run's
        if self.out_dir is not None and self.rank == 0:
            _remove_stale_temporaries(self.out_dir)
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
        running = self.clock() - self._fit_started if self._fit_started is not None else 0.0
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
            "schedule_steps": list(self.schedule.steps),
            "stopped_by": self.stopped_by,
        }

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue from a checkpoint of :meth:`save`: every state is restored.

        This run's config decides the learning rate, momentum, weight decay and EMA
        decay from the next update on; :attr:`resumed_changes` and the provenance's
        ``resumed`` entry record each setting that differs from the checkpoint's.

        Raises:
            FileNotFoundError, ValueError: a missing, damaged or unsafe file, one of another
                trainer, or a run that cannot continue with this config: another optimizer,
                network, batch plan (batch size, sizes, seed) or training set. Nothing is
                changed then.
        """
        state = load_checkpoint(path, map_location=self.device)
        self._check_resumable(state, Path(path))
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
            self.ema.decay = float(self.config.ema_decay)  # this run's decay from now on
        self.optimizer.load_state_dict(state["optimizer"])
        # LambdaLR's state also holds the saved DarknetSchedule (burn-in, steps), and loading
        # writes it into our schedule object: this run's config decides the schedule (e.g. a
        # new max_iterations moves the steps), the checkpoint only where in it we are.
        planned = copy.copy(self.schedule)
        self.scheduler.load_state_dict(state["scheduler"])
        self._apply_hyperparameters()
        self.schedule = planned
        self.scheduler.lr_lambdas = [planned] * len(self.optimizer.param_groups)
        saved_steps = state.get("schedule_steps")
        if self.config.max_seconds is not None and saved_steps and len(saved_steps) == len(planned.steps):
            # steps the time budget already brought forward stay where they happened
            done = int(state["iteration"])
            planned.steps = tuple(min(p, int(s)) if s <= done else p for p, s in zip(planned.steps, saved_steps))
        self._apply_rate()
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
        self.resumed_changes = _changed_settings(state.get("config") or {}, self.config.to_dict())
        resumed = {k: self.provenance[k] for k in ("command", "commit", "started")}
        resumed["at_iteration"] = int(state["iteration"])
        if self.resumed_changes:  # what this command changed, and the first update it applies to
            resumed["changed"] = {k: {"from": a, "to": b} for k, (a, b) in self.resumed_changes.items()}
            resumed["from_update"] = int(state["iteration"]) + 1
        began = state.get("provenance")
        if began:  # where the run began, and every command that continued it
            self.provenance = {**began, "resumed": [*began.get("resumed", []), resumed]}
        else:
            self.provenance["resumed"] = [resumed]
        self.train_seconds = float(state.get("train_seconds", 0.0))

    # Settings a run cannot change midway, with the `yolov2 train` option that sets each.
    _FIXED_ON_RESUME = {"optimizer": "--optimizer", "batch_size": "--batch-size", "sizes": "--sizes",
                        "size_every": "--size-every", "seed": "--seed", "drop_last": None,
                        "decay_norm_and_bias": None}

    def _check_resumable(self, state: dict[str, Any], path: Path) -> None:
        """Raise ``ValueError`` naming every setting that cannot continue the run of ``state``."""
        saved, cfg = state.get("config") or {}, self.config
        problems = []
        for key, option in self._FIXED_ON_RESUME.items():
            if key not in saved:
                continue
            theirs, mine = saved[key], getattr(cfg, key)
            if isinstance(mine, tuple):  # sizes: a list in the checkpoint
                theirs, mine = list(theirs), list(mine)
            if theirs != mine:
                how = f"; {option}" if option else ""
                problems.append(f"{key} {_shown(mine)} (the run's: {_shown(theirs)}{how})")
        theirs_net, mine_net = state.get("model_config"), _model_config_dict(self.model)
        if theirs_net is not None and mine_net is not None and theirs_net != mine_net:
            keys = [k for k in mine_net if theirs_net.get(k) != mine_net[k]]
            problems.append("the network: " + ", ".join(
                f"{k} {_shown(mine_net[k])} (the run's: {_shown(theirs_net.get(k))})" for k in keys))
        if self.ema is not None and state.get("ema") is None:
            problems.append("an EMA of the weights, which the run did not keep (ema_decay=None; --no-ema)")
        if not problems:
            try:
                copy.copy(self.sampler).load_state_dict(state["sampler"])  # same images and batch plan?
            except ValueError as exc:
                problems.append(f"the batch plan ({exc})")
        if problems:
            raise ValueError(
                f"cannot resume {path}: this run asks for {'; '.join(problems)}. These settings cannot change in "
                "the middle of a run: resume with the run's own values, or start a new run from these weights "
                "(yolov2 train --init)."
            )

    def _apply_hyperparameters(self) -> None:
        """Put this config's rate, momentum and weight decay into the loaded optimizer state."""
        cfg = self.config
        decays = [cfg.weight_decay, cfg.weight_decay if cfg.decay_norm_and_bias else 0.0]
        for group, decay in zip(self.optimizer.param_groups, decays):
            group["initial_lr"] = cfg.lr
            group["weight_decay"] = decay
            if "betas" in group:
                group["betas"] = (cfg.momentum, group["betas"][1])
            else:
                group["momentum"] = cfg.momentum
        self.scheduler.base_lrs = [cfg.lr] * len(self.optimizer.param_groups)

    def save(self, best: bool = False) -> Path | None:
        """Write ``best.pt`` (when ``best``), then ``last.pt``, then ``history.json``, each atomically;
        rank 0 only. The first save of a new run removes a ``best.pt`` it finds (another run's)."""
        if self.out_dir is None or self.rank != 0:
            return None
        state = self.state_dict()
        if best:  # first: a kill before last.pt is written leaves the older last.pt, which evaluates again
            save_checkpoint(state, self.out_dir / "best.pt")
        elif not self._saved:  # a best.pt beside this run's first last.pt is another run's
            (self.out_dir / "best.pt").unlink(missing_ok=True)
        path = save_checkpoint(state, self.out_dir / "last.pt")
        self._saved = True
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
        if last is None:
            where = "no checkpoint was written (set out_dir to keep one)"
        elif self._saved and last.is_file():
            where = f"the last good checkpoint is {last}"
        else:
            every = self.config.checkpoint_every
            where = (f"no checkpoint was written to {self.out_dir} yet (the first comes at the end of the first "
                     f"epoch{f' or after update {every}' if every else ''})")
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
        lr = self.optimizer.param_groups[0]["lr"]
        if cfg.accumulate == 1 and self.world_size == 1 and self.scaler is None:
            try:  # the plain case: one batch, one process, no loss scaling
                out, grad_norm = sgd_update(self.net, self.loss_fn, self.optimizer, images, targets, seen_now,
                                            amp_dtype=self.amp_dtype, grad_clip=cfg.grad_clip)
            except NonFiniteLossError as err:
                self._stop(err.what, err.value)
            values = _logged_terms(out).tolist()
        else:
            values, grad_norm = self._accumulated_step(images, targets, seen_now)
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

    def _accumulated_step(self, images: Tensor, targets: list[Tensor], seen_now: int) -> tuple[list[float], float]:
        """:func:`sgd_update` over micro-batches, several processes and fp16 loss scaling."""
        cfg, n_local = self.config, images.shape[0]
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
            terms += _logged_terms(out) * weight
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
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return values, grad_norm

    # ------------------------------------------------------------ the time budget

    def _apply_rate(self) -> None:
        """Set each group's rate for the next update from the schedule (LambdaLR's own formula)."""
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self.schedule(self.scheduler.last_epoch)
        self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def _steps_by_time(self) -> None:
        """Bring a fractional rate step forward to the next update once that fraction of
        ``max_seconds`` is spent (the rate then falls at the same fraction of the time)."""
        cfg = self.config
        if cfg.max_seconds is None:
            return
        spent = self.elapsed_seconds / cfg.max_seconds
        steps = list(self.schedule.steps)
        for k, fraction in enumerate(cfg.steps):
            if fraction < 1 and spent >= fraction and steps[k] > self.iteration + 1:
                steps[k] = self.iteration + 1
        if tuple(steps) != self.schedule.steps:
            self.schedule.steps = tuple(steps)
            self._apply_rate()

    def _final_eval_estimate(self) -> float:
        """Seconds the closing validation will take: the last one's, else a guess from the steps."""
        if self.val_data is None:
            return 0.0
        if self._eval_seconds is not None:
            return self._eval_seconds
        train = self.history["train"]
        times, sizes = train["step_time"][-20:], train["size"][-20:]
        if not times:
            return 0.0
        local_batch = self.config.batch_size // self.world_size
        per_pixel = sum(times) / sum(local_batch * side * side for side in sizes)
        # a forward pass costs about a third of a training step
        return len(self.val_data) * self.config.eval_size ** 2 * per_pixel / 3

    def _out_of_time(self) -> bool:
        """True when the budget leaves no time for another update and the final validation."""
        cfg = self.config
        if cfg.max_seconds is None:
            return False
        times = self.history["train"]["step_time"]
        next_step = times[-1] if times else 0.0
        return self.elapsed_seconds + next_step + self._final_eval_estimate() >= cfg.max_seconds

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
            class_names=self.class_names, progress=False,  # a short pass; the training bar stays the one bar
        )

    def _validate(self) -> bool:
        """Evaluate on the validation data (rank 0); True when the mAP is the best so far."""
        best = False
        if self.val_data is not None and self.rank == 0:
            began = self.clock()
            result = self.evaluate()
            self._eval_seconds = self.clock() - began
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
        """Train until ``total_iterations`` updates are done, or the ``max_seconds`` budget is
        spent; returns :attr:`history` (:attr:`stopped_by` says which ended the run).

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
        self._fit_started = self.clock()
        self.stopped_by = None
        threads_before = torch.get_num_threads()
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        try:
            while self.iteration < total and not self._out_of_time():
                self._set_train_mode()
                self.sampler.set_epoch(self.epoch)  # keeps a resumed position inside this epoch
                epoch_start = time.perf_counter()
                for images, targets, _ in self.loader:
                    record = self.train_step(images, targets)
                    self.batch_in_epoch += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}", size=record["size"])
                    self._steps_by_time()
                    if self.iteration >= total or self._out_of_time():
                        break
                    if (cfg.checkpoint_every and self.iteration % cfg.checkpoint_every == 0
                            and self.batch_in_epoch < per_epoch):
                        self.save()
                if self.batch_in_epoch < per_epoch:
                    break  # the total was reached inside the epoch
                self.epoch += 1
                self.batch_in_epoch = 0
                if self.iteration >= total or self._out_of_time():
                    break
                best = cfg.eval_every > 0 and self.epoch % cfg.eval_every == 0 and self._validate()
                self._epoch_line(epoch_start)
                self.save(best=best)
            self.stopped_by = "updates" if self.iteration >= total else "time budget"
            if not self.history["val"]["iteration"] or self.history["val"]["iteration"][-1] != self.iteration:
                best = self._validate()
            else:
                best = False
            self._epoch_line(None)
            self.save(best=best)
        finally:
            bar.close()
            torch.set_num_threads(threads_before)
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


_NOT_SETTINGS = ("out_dir", "progress", "verbose", "num_workers", "threads")  # where and how it shows, not what it trains


def _changed_settings(saved: dict[str, Any], now: dict[str, Any]) -> dict[str, list]:
    """``{name: [saved, now]}`` for each config value that differs (both known, display options aside)."""
    return {k: [saved[k], v] for k, v in now.items() if k in saved and k not in _NOT_SETTINGS and saved[k] != v}


def _shown(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else repr(value)


def _split_list(items: list, parts: int) -> list[list]:
    """Split a list like ``Tensor.tensor_split`` splits a batch."""
    q, r = divmod(len(items), parts)  # tensor_split gives the first r chunks one more element
    bounds = [k * q + min(k, r) for k in range(parts + 1)]
    return [items[bounds[k]:bounds[k + 1]] for k in range(parts)]
