"""The training loop: :class:`Trainer` (chapter 9); the package docstring lists its choices."""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..checkpoint import (CHECKPOINT_FORMAT, _complete_model_config, _model_config_dict, _remove_stale_temporaries,
                          _rng_state, _set_rng_state, load_checkpoint, save_checkpoint)
from ..config import TrainConfig, changed_settings, shown
from ..data.sampler import MultiScaleBatchSampler, detection_collate
from ..errors import YOLOv2Error
from ..evaluate import VOCResult
from ..files import FolderLock, write_json
from ..inference import evaluate_model
from ..loss import YOLOv2Loss
from ..precision import autocast, autocast_dtype
from ..runtime import default_device, provenance, tune_allocator
from .distributed import init_distributed
from .schedule import DarknetSchedule, ModelEMA
from .step import _LOSS_TERMS, NonFiniteLossError, _logged_terms, _split_list, sgd_update

__all__ = ["Trainer", "TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped :meth:`Trainer.fit` between two updates; ``checkpoint`` is the
    ``last.pt`` it saved there (``None`` without an output folder)."""

    def __init__(self, message: str, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


class _StopOnInterrupt:
    """While training: a first Ctrl-C asks to stop after the current update, a second stops at once."""

    requested = False
    _previous = None

    def __enter__(self) -> "_StopOnInterrupt":
        self.requested = False
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C keeps its usual meaning
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


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
            when asked). Its ``anchors``, ``num_classes`` and ``config.location`` build the default loss.
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
            raise YOLOv2Error(
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
            raise YOLOv2Error(f"{len(self.class_names)} class names for a model of {model.num_classes} classes.")

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
            warmup_images=cfg.warmup_images, location=getattr(getattr(model, "config", None), "location", "direct"),
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
        # out_dir's last.pt and best.pt are this run's when it continues there; a run resumed into
        # another folder removes the best.pt it finds there at its first save (another run's)
        self._saved = (resume is not None and self.out_dir is not None
                       and Path(resume).resolve().parent == self.out_dir.resolve())
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
        self.resumed_changes = changed_settings(state.get("config") or {}, self.config.to_dict())
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
                problems.append(f"{key} {shown(mine)} (the run's: {shown(theirs)}{how})")
        theirs_net, mine_net = state.get("model_config"), _model_config_dict(self.model)
        if theirs_net is not None:  # a run saved before a switch existed used its default
            theirs_net = _complete_model_config(theirs_net)
        if theirs_net is not None and mine_net is not None and theirs_net != mine_net:
            keys = [k for k in mine_net if theirs_net.get(k) != mine_net[k]]
            problems.append("the network: " + ", ".join(
                f"{k} {shown(mine_net[k])} (the run's: {shown(theirs_net.get(k))})" for k in keys))
        if self.ema is not None and state.get("ema") is None:
            problems.append("an EMA of the weights, which the run did not keep (ema_decay=None; --no-ema)")
        if not problems:
            try:
                copy.copy(self.sampler).load_state_dict(state["sampler"])  # same images and batch plan?
            except ValueError as exc:
                problems.append(f"the batch plan ({exc})")
        if problems:
            raise YOLOv2Error(
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
        write_json(self.out_dir / "history.json", self.history, indent=None)
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
                with autocast(self.device, self.amp_dtype):
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
            raise YOLOv2Error("no data to evaluate on: pass val_data to the Trainer or data here.")
        cfg = self.config
        return evaluate_model(
            self.eval_model, data, input_size=input_size or cfg.eval_size, batch_size=cfg.eval_batch_size,
            num_workers=cfg.num_workers, conf_threshold=cfg.conf_threshold, nms_threshold=cfg.nms_threshold,
            top_k=cfg.top_k, amp="bf16" if self.amp_dtype == torch.bfloat16 else "fp32",
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

        Ctrl-C (SIGINT) stops training after the current update: ``last.pt`` is written there
        and :class:`TrainingInterrupted` is raised (resuming from it continues the run as if
        nothing happened); a second Ctrl-C stops at once.

        While it runs, ``out_dir`` holds a ``.lock`` naming this process: another process
        training into the same folder is refused (a lock left by a killed process is taken over).

        Raises:
            NonFiniteLossError: the loss became NaN or infinite (the last checkpoint stays).
            TrainingInterrupted: Ctrl-C, once the run was saved.
            YOLOv2Error: another running process trains into ``out_dir``.
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
        interrupt = _StopOnInterrupt()
        lock = FolderLock(self.out_dir) if self.out_dir is not None and self.rank == 0 else None
        try:
            if lock is not None:
                lock.acquire()  # one process at a time writes a run folder
            interrupt.__enter__()
            while self.iteration < total and not self._out_of_time():
                self._set_train_mode()
                self.sampler.set_epoch(self.epoch)  # keeps a resumed position inside this epoch
                epoch_start = time.perf_counter()
                for images, targets, _ in self._batches(interrupt):
                    record = self.train_step(images, targets)
                    self._stop_if_asked(interrupt)
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
            interrupt.__exit__()
            if lock is not None:
                lock.release()
            bar.close()
            torch.set_num_threads(threads_before)
            self.train_seconds, self._fit_started = self.elapsed_seconds, None
            self.loader = self._make_loader()  # the old one's workers exit; the next fit() starts new ones
        return self.history

    def _batches(self, interrupt: _StopOnInterrupt):
        """The loader's batches; a worker that Ctrl-C stopped ends them like the interrupt it is."""
        batches = iter(self.loader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except RuntimeError:
                if interrupt.requested:
                    self._stop_if_asked(interrupt)
                raise
            yield batch

    def _stop_if_asked(self, interrupt: _StopOnInterrupt) -> None:
        """After an update: on Ctrl-C, save where the run is and raise :class:`TrainingInterrupted`."""
        asked = interrupt.requested
        if self.world_size > 1:  # every process stops after the same update
            flag = torch.tensor([float(asked)], device=self.device)
            dist.all_reduce(flag)
            asked = bool(flag.item())
        if not asked:
            return
        path = self.save()
        where = (f"saved {path}; continue with --resume" if path is not None
                 else "nothing was saved (set out_dir to keep a checkpoint)")
        raise TrainingInterrupted(f"interrupted after update {self.iteration}: {where}.", path)

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
