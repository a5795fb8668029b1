"""A training run's settings in one place: :class:`TrainConfig`, its defaults, and resuming as a merge.

Chapter 9 (training end to end) explains the recipe these defaults describe.

Every default is written once, here: the command line, the benches and the
notebooks start from ``TrainConfig()`` and change only what they are given.
Resuming a run is a merge (:func:`merge`): the run's saved settings, with the
settings given now on top.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .errors import YOLOv2Error
from .precision import normalize
from .runtime import MAX_SEED, quick_mode

__all__ = ["TrainConfig", "SettingError", "first_look", "changed_settings", "merge", "shown", "parse_sizes",
           "NOT_SETTINGS"]


class SettingError(YOLOv2Error):
    """A :class:`TrainConfig` setting that cannot be; the message names each setting by its field,
    or as a caller calls it (:meth:`named`: the command line names its options)."""

    def __init__(self, template: str, *settings: str) -> None:
        self.template, self.settings = template, settings
        super().__init__(template.format(*settings))

    def named(self, name_of) -> str:
        """The message with each setting called ``name_of(field)``."""
        return self.template.format(*map(name_of, self.settings))


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
        amp: the precision (:mod:`yolov2_lib.precision`): ``"auto"`` (bf16 where the hardware
            computes it natively: a CPU with AVX512-BF16 or AMX, a GPU of compute capability
            8.0+; fp16 with a gradient scaler on older GPUs; float32 elsewhere), ``"fp32"``
            (``"off"`` is read as ``"fp32"``), ``"bf16"`` (CPU or CUDA) or ``"fp16"`` (CUDA).
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
                raise YOLOv2Error(f"TrainConfig.{name} must be an integer >= 1, got {value!r}.")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise YOLOv2Error(f"TrainConfig.threads must be None or an integer >= 1, got {self.threads!r}.")
        for name in ("burn_in", "num_workers", "eval_every", "checkpoint_every", "warmup_images", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise YOLOv2Error(f"TrainConfig.{name} must be an integer >= 0, got {value!r}.")
        if self.batch_size % self.accumulate:
            raise SettingError(f"{{}} {self.accumulate} must divide {{}} {self.batch_size}: each update is a batch "
                               "divisible into that many equal micro-batches.", "accumulate", "batch_size")
        if self.max_iterations is not None and self.max_iterations < 1:
            raise YOLOv2Error(f"TrainConfig.max_iterations must be None or >= 1, got {self.max_iterations}.")
        if self.max_seconds is not None and not (isinstance(self.max_seconds, (int, float))
                                                 and not isinstance(self.max_seconds, bool)
                                                 and math.isfinite(self.max_seconds) and self.max_seconds > 0):
            raise YOLOv2Error(f"TrainConfig.max_seconds must be None or a number of seconds > 0, "
                             f"got {self.max_seconds!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise SettingError(f"{{}} must be an integer from 0 to {MAX_SEED} (2**32 - 1), got {self.seed!r}.",
                               "seed")
        if not self.lr > 0:
            raise YOLOv2Error(f"TrainConfig.lr must be > 0, got {self.lr}.")
        if not math.isfinite(self.lr):
            raise SettingError(f"{{}} must be finite, got {self.lr}.", "lr")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise YOLOv2Error(f"TrainConfig needs 0 <= momentum < 1 and weight_decay >= 0, "
                             f"got {self.momentum} and {self.weight_decay}.")
        if not math.isfinite(self.weight_decay):
            raise SettingError(f"{{}} must be a finite number >= 0, got {self.weight_decay}.", "weight_decay")
        if not all(math.isfinite(s) for s in self.steps):
            raise SettingError(f"{{}} must be finite: fractions of the run (below 1) or update numbers, "
                               f"got {shown(self.steps)}.", "steps")
        if any(s <= 0 for s in self.steps) or not 0 < self.step_scale:
            raise YOLOv2Error(f"TrainConfig.steps must be positive and step_scale > 0, "
                             f"got {self.steps} and {self.step_scale}.")
        if not self.sizes or any(s <= 0 or s % 32 for s in self.sizes):
            raise YOLOv2Error(f"TrainConfig.sizes must be positive multiples of 32 (the network stride), "
                             f"got {self.sizes}.")
        if self.eval_size % 32:
            raise YOLOv2Error(f"TrainConfig.eval_size must be a multiple of 32, got {self.eval_size}.")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise YOLOv2Error(f"TrainConfig.grad_clip must be None or > 0, got {self.grad_clip}.")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise YOLOv2Error(f"TrainConfig.ema_decay must be None or in (0, 1), got {self.ema_decay}.")
        if self.optimizer not in ("sgd", "adamw"):
            raise YOLOv2Error(f"TrainConfig.optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}.")
        self.amp = normalize(self.amp, "TrainConfig.amp")

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (tuples as lists), for checkpoints and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """The inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise YOLOv2Error(f"unknown TrainConfig field(s) {unknown}.")
        return cls(**values)



def first_look(config: TrainConfig) -> TrainConfig:
    """``config`` shortened to a run of seconds when ``YOLOV2_QUICK`` is set, else ``config`` itself.

    A first look at a chapter: 20 s of wall time, its smallest input size only,
    one validation at the end.
    """
    if not quick_mode():
        return config
    return replace(config, max_seconds=20, sizes=(min(config.sizes),), eval_every=0)



#: Where and how a run shows, not what it trains: free to change when resuming, never reported as changes.
NOT_SETTINGS = ("out_dir", "progress", "verbose", "num_workers", "threads")


def changed_settings(saved: dict[str, Any], now: dict[str, Any]) -> dict[str, list]:
    """``{name: [saved, now]}`` for each config value that differs (both known, display options aside)."""
    if "amp" in saved:  # an older run may spell fp32 "off"
        saved = {**saved, "amp": normalize(saved["amp"])}
    return {k: [saved[k], v] for k, v in now.items() if k in saved and k not in NOT_SETTINGS and saved[k] != v}



def merge(saved: dict[str, Any] | None, given: dict[str, Any]) -> TrainConfig:
    """The config of a run: the ``given`` settings on top of a resumed run's ``saved`` ones
    (:meth:`TrainConfig.to_dict`; ``None`` for a new run), on top of the defaults.

    Where and how a run shows and runs (:data:`NOT_SETTINGS` and ``device``) is never taken
    from ``saved``: a run resumed on another machine starts from that machine's defaults.

    Raises:
        YOLOv2Error: an unknown name or a value :class:`TrainConfig` refuses.
    """
    kept = {k: v for k, v in (saved or {}).items() if k not in NOT_SETTINGS and k != "device"}
    return TrainConfig.from_dict({**kept, **given})


def shown(value: Any) -> str:
    """A setting's value as messages write it: lists joined by commas (``320,416``), else ``repr``."""
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else repr(value)


def parse_sizes(text: str, what: str = "sizes") -> list[int]:
    """Input sides written as ``"416"``, ``"320,416"`` or a range of multiples of 32, ``"320-608"``.

    Raises:
        YOLOv2Error: not such a list, a reversed range, or a side that is not a positive
            multiple of 32 (``what`` names the setting in the message).
    """
    try:
        if "-" in text:
            lo, hi = (int(v) for v in text.split("-"))
            if lo > hi:
                raise YOLOv2Error(f"{what} {text}: the range is reversed; write {hi}-{lo}")
            values = tuple(range(lo, hi + 1, 32))
        else:
            values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        if isinstance(exc, YOLOv2Error):
            raise
        raise YOLOv2Error(f"{what} must look like 320-608 or 320,416, got {text!r}") from None
    if not values or any(v <= 0 or v % 32 for v in values):
        raise YOLOv2Error(f"{what} must be positive multiples of 32, got {text!r}")
    return list(values)
