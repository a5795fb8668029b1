"""`yolov2 train`: options in, :class:`~yolov2_lib.train.Trainer` run (chapter 9)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import YOLOv2Error
from .options import (_about, _add_data_options, _anchor_values, _class_names, _count, _device, _float_list,
                      _HelpFormatter, _jitter, _load, _minutes, _positive, _precision, _run_files, _side, _sizes,
                      _split, _width, _writable)


# not written, so that a resumed run keeps its own value (config.merge).
_SETTINGS = ("epochs", "max_iterations", "batch_size", "accumulate", "lr", "optimizer", "momentum",
             "weight_decay", "burn_in", "steps", "grad_clip", "ema_decay", "freeze_bn", "sizes", "size_every",
             "eval_size", "eval_every", "checkpoint_every", "seed", "amp")


def _train_config(args: argparse.Namespace, out: Path, saved: dict | None):
    """The run's :class:`~yolov2_lib.config.TrainConfig`: the options written, over the resumed
    run's settings, over the defaults."""
    from ..config import SettingError, merge

    given = {name: getattr(args, name) for name in _SETTINGS
             if getattr(args, name) is not None and getattr(args, name) is not False}
    if args.max_minutes is not None:
        given["max_seconds"] = 60 * args.max_minutes
    if args.bf16:
        given["amp"] = "bf16"
    if args.no_ema:
        given["ema_decay"] = None
    if args.no_channels_last:
        given["channels_last"] = False
    given.update(num_workers=args.workers, threads=args.threads, device=args.device, out_dir=str(out),
                 progress=not args.no_progress)
    try:
        return merge(saved, given)
    except SettingError as exc:
        raise YOLOv2Error(exc.named(lambda field: "--" + field.replace("_", "-"))) from None


def _cmd_train(args: argparse.Namespace) -> int:
    import os

    import torch

    from ..anchors import kmeans_anchors
    from ..checkpoint import load_checkpoint
    from ..config import shown
    from ..data.boxstats import record_sizes
    from ..data.catalog import split_names
    from ..data.transforms import Augment
    from ..files import FolderLock
    from ..model import YOLOv2, YOLOv2Config
    from ..runtime import seed_everything
    from ..train import NonFiniteLossError, Trainer, TrainingInterrupted

    out = Path(args.out)
    if args.resume and args.init:
        raise YOLOv2Error("--init starts a new run from some weights, --resume continues a run: use one of them.")
    _device(args.device)
    _writable(out, "--out", folder=True)
    with _about("--out"):
        FolderLock(out).check()  # before any work; training takes the lock
    resume, run = None, {}
    if args.resume:
        resume = out / "last.pt" if args.resume == "last" else Path(args.resume)
        if not resume.is_file():
            raise YOLOv2Error(f"--resume: checkpoint {resume} does not exist.")
        with _about("--resume:"):
            run = load_checkpoint(resume)
        _check_resume(args, out, resume, run)
    elif not args.force and _run_files(out):
        raise YOLOv2Error(f"--out {out} holds a run ({', '.join(_run_files(out))}): pass --resume to continue it, "
                          "--force to train a new run over it, or choose another --out.")
    config = _train_config(args, out, run.get("config") if resume else None)
    seed_everything(config.seed)
    augment = None if args.no_augment else Augment(jitter=args.jitter)
    train = _split(args, args.train_split, _class_names(args))
    letterbox = bool(run.get("letterbox")) if resume else bool(args.letterbox)  # a run keeps its own
    train_set = train.dataset(augment=augment, letterbox=letterbox, seed=config.seed)
    class_names = train.class_names
    val_set = None
    if args.val_split.lower() != "none":
        shared = set(split_names(args.val_split)) & set(split_names(args.train_split))
        if shared:
            raise YOLOv2Error(f"--val-split {args.val_split} shares {', '.join(sorted(shared))} with --train-split "
                              f"{args.train_split}: validation on training images selects nothing; "
                              "give another split or --val-split none.")
        val_set = _split(args, args.val_split, class_names).dataset(letterbox=letterbox)

    if resume is not None:
        if run.get("model_config") is None:
            raise YOLOv2Error(f"--resume: {resume} holds no YOLOv2 configuration.")
        if list(run.get("class_names") or []) != class_names:
            raise YOLOv2Error(f"--resume: {resume} detects {', '.join(run.get('class_names') or [])} but the "
                              f"training data has {', '.join(class_names)}: a run continues on the same classes in "
                              "the same order (pass --classes).")
        model = YOLOv2(YOLOv2Config(**run["model_config"]))
        print(f"resuming from {resume}")
    elif args.init:
        model, init_record = _initial_model(args.init, class_names, args)
    else:
        grid = config.eval_size // 32
        if args.anchors in (None, "kmeans"):
            found = kmeans_anchors(record_sizes(train.records).double(), args.num_anchors or 5, grid, config.seed)
            anchors = found.anchors.tolist()
            if os.environ.get("RANK", "0") == "0":  # every torchrun process finds the same anchors
                print(f"anchors by k-means on {found.num_boxes} training boxes (grid {grid}x{grid}), mean IoU "
                      f"{found.mean_iou:.4f}: " + " ".join(f"{w:.3f},{h:.3f}" for w, h in anchors))
        else:
            anchors = _anchor_list(args.anchors)
        model = YOLOv2(num_classes=len(class_names), anchors=anchors, width=args.width or 1.0,
                       **_ablation_config(args))
    trainer = Trainer(model, train_set, config, val_data=val_set, class_names=class_names, resume=resume)
    if trainer.resumed_changes and trainer.rank == 0:
        print(f"from update {trainer.iteration + 1} on: " + ", ".join(
            f"{k} {shown(a)} -> {shown(b)}" for k, (a, b) in trainer.resumed_changes.items()))
    if args.init and resume is None:
        trainer.provenance["init"] = init_record  # where the starting weights came from, and how they were made
    if trainer.rank == 0:
        print(f"training on {trainer.device} ({trainer.world_size} process(es)), {len(train_set)} images, "
              f"{trainer.total_iterations} updates of {config.batch_size}; writing to {out}")
    try:
        trainer.fit()
    except NonFiniteLossError as exc:
        print(f"yolov2 train: error: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        print(f"yolov2 train: {exc}", file=sys.stderr)
        return 130  # the shell's code for a command stopped by Ctrl-C
    except OSError as exc:  # a full disk, a folder removed midway: each checkpoint is written whole or not at all
        raise YOLOv2Error(f"writing to {out} failed ({exc.strerror or exc}); the checkpoints written before are "
                          "intact: free space or fix the folder, then --resume.") from None
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if trainer.rank == 0:
        kept = trainer.best_checkpoint is not None and trainer.best_checkpoint.is_file()
        best = ("" if trainer.best_map is None or not kept
                else f"; best val mAP@0.5 {100 * trainer.best_map:.2f}% -> {trainer.best_checkpoint}")
        print(f"done: {trainer.iteration} updates, last checkpoint {trainer.last_checkpoint}{best}")
    return 0


def _anchor_list(value) -> list[list[float]]:
    """``--anchors`` as (w, h) pairs in grid cells: darknet's VOC or COCO priors, or the pairs given."""
    from ..anchors import COCO_ANCHORS, VOC_ANCHORS

    return {"voc": VOC_ANCHORS, "coco": COCO_ANCHORS}[value].tolist() if isinstance(value, str) else value


def _ablation_config(args: argparse.Namespace) -> dict:
    """The :class:`~yolov2_lib.model.YOLOv2Config` fields of ``--no-batch-norm``, ``--no-passthrough``
    and ``--location``, each at the paper's choice unless its option says otherwise."""
    return {"batch_norm": not args.no_batch_norm, "passthrough": not args.no_passthrough,
            "location": args.location or "direct"}


def _ablation_changes(args: argparse.Namespace, net: dict) -> list[str]:
    """The ablation options given that contradict a saved network's configuration ``net``
    (a configuration saved before these switches existed has the paper's choices)."""
    from ..checkpoint import _complete_model_config

    net = _complete_model_config(net)
    changed = {
        "--no-batch-norm": bool(args.no_batch_norm) and net["batch_norm"],
        "--no-passthrough": bool(args.no_passthrough) and net["passthrough"],
        "--location": args.location is not None and args.location != net["location"],
    }
    return [option for option, differs in changed.items() if differs]


def _same_anchors(a, b) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-6 for p, q in zip(a, b) for x, y in zip(p, q))


def _check_resume(args: argparse.Namespace, out: Path, resume: Path, run: dict) -> None:
    """Refuse, before any work, a resume that would change the run's network, its letterbox or
    classes, or write over another run."""
    net = run.get("model_config") or {}
    anchors = net.get("anchors") or []
    changed = {
        "--width": args.width is not None and args.width != net.get("width"),
        "--num-anchors": args.num_anchors is not None and args.num_anchors != len(anchors),
        "--anchors": args.anchors not in (None, "kmeans") and not _same_anchors(_anchor_list(args.anchors), anchors),
        "--letterbox": bool(args.letterbox) and not run.get("letterbox"),
        **{option: True for option in _ablation_changes(args, net)},
    }
    for option, differs in changed.items():
        if differs:
            raise YOLOv2Error(f"{option} cannot change when resuming {resume}: the run keeps its network and "
                              "its images; start a new run from these weights with --init instead.")
    names = _class_names(args)
    if names is not None and names != list(run.get("class_names") or []):
        raise YOLOv2Error(f"--resume: {resume} detects {', '.join(run.get('class_names') or [])} but the "
                          f"training data has {', '.join(names)}: a run continues on the same classes in "
                          "the same order (pass --classes).")
    files = _run_files(out)
    if files and resume.resolve().parent != out.resolve() and not args.force:
        raise YOLOv2Error(f"--out {out} holds another run ({', '.join(files)}): resuming {resume} there would "
                          "replace it; choose another --out, or pass --force to replace it.")


def _initial_model(name: str, class_names: list[str], args: argparse.Namespace):
    """The model of ``--init``: a checkpoint's (or shipped detector's) network and weights."""
    from dataclasses import asdict

    loaded, path = _load(name, what="--init: ")
    net = asdict(loaded.model.config)
    changed = _ablation_changes(args, net)
    if changed:
        raise YOLOv2Error(f"--init: {path} has batch_norm={net['batch_norm']}, passthrough={net['passthrough']}, "
                          f"location={net['location']!r}, which {', '.join(changed)} would change: --init keeps "
                          "the checkpoint's network; leave the option out, or train a new run without --init.")
    if list(loaded.class_names) != list(class_names):
        raise YOLOv2Error(f"--init: {path} detects {', '.join(loaded.class_names)} but the training data has "
                          f"{', '.join(class_names)}: the same classes in the same order are needed (pass --classes).")
    print(f"starting from the weights of {path} (width {loaded.model.config.width}, "
          f"{len(loaded.model.anchors)} anchors)")
    state = loaded.state  # a run's checkpoint counts "iteration", exported weights "training.iterations"
    iteration = state["iteration"] if "iteration" in state else state.get("training", {}).get("iterations")
    record = {"weights": str(path), "iteration": iteration, "provenance": state.get("provenance")}
    return loaded.model.train(), record



def _add_train_parser(sub) -> None:
    from ..config import TrainConfig

    D = TrainConfig()  # the defaults, written once there
    t = sub.add_parser(
        "train", help="train YOLO v2 on a dataset (the paper's recipe by default)",
        description="Train YOLO v2 with yolov2_lib.train.Trainer. Several processes: "
                    "torchrun --nproc_per_node N -m yolov2_lib.cli train ... (DistributedDataParallel). "
                    "With --resume, the options not written keep the run's values.",
        formatter_class=_HelpFormatter)
    _add_data_options(t)
    t.add_argument("--train-split", default="train",
                   help="split (CSV) or image set (VOC) to train on; several joined by commas (train,val)")
    t.add_argument("--val-split", default="val", help="split to select the best checkpoint on, or 'none'")
    m = t.add_argument_group("model")
    m.add_argument("--width", type=_width, help="channel multiplier (default: 1, darknet's network)")
    m.add_argument("--anchors", type=_anchor_values,
                   help="kmeans (IoU k-means on the training boxes; the default), voc, coco, or 'w,h w,h ...' in "
                        "grid cells")
    m.add_argument("--num-anchors", type=_positive, help="k for --anchors kmeans (default: 5)")
    m.add_argument("--init", metavar="CHECKPOINT",
                   help="start from these weights (a run's best.pt/last.pt, exported weights, or a shipped name "
                        "such as bccd; the EMA's when kept) with a fresh optimizer and schedule: fine-tuning. "
                        "The network (width, anchors, classes) is the checkpoint's; --width and --anchors are "
                        "not used, and --no-batch-norm, --no-passthrough or --location must agree with it")
    m.add_argument("--no-batch-norm", action="store_true",
                   help="ablation: no batch norm; every convolution but the head's gets a bias instead")
    m.add_argument("--no-passthrough", action="store_true",
                   help="ablation: no passthrough branch; the last 3x3 conv reads the 13x13 map alone")
    m.add_argument("--location", choices=("direct", "offset"),
                   help="how t_x, t_y place a box's centre: direct (YOLO v2's sigmoid offset in the cell) or "
                        "offset (ablation: the RPN-style c_x + 0.5 + t_x p_w, unconstrained) (default: direct)")
    s = t.add_argument_group("schedule")
    s.add_argument("--epochs", type=_positive, help=f"passes over the training split (default: {D.epochs})")
    s.add_argument("--max-iterations", type=int, help="stop after this many updates instead")
    s.add_argument("--max-minutes", type=_minutes, default=None,
                   help="a wall-time budget, validations included: stop when it is spent (the rate's "
                        "fractional --steps then happen at those fractions of the budget)")
    s.add_argument("--batch-size", type=_positive, help=f"global batch, all processes (default: {D.batch_size})")
    s.add_argument("--accumulate", type=_positive,
                   help=f"micro-batches per update, darknet's subdivisions (default: {D.accumulate})")
    s.add_argument("--lr", type=float, help=f"base learning rate (default: {D.lr:g})")
    s.add_argument("--optimizer", choices=("sgd", "adamw"),
                   help=f"sgd (the paper's) or adamw (decoupled weight decay; try --weight-decay 0.05) "
                        f"(default: {D.optimizer})")
    s.add_argument("--momentum", type=float, help=f"SGD momentum, Adam's first beta (default: {D.momentum})")
    s.add_argument("--weight-decay", type=float, help=f"weight decay of conv weights (default: {D.weight_decay:g})")
    s.add_argument("--burn-in", type=int, help=f"updates of warm-up, lr*(i/burn_in)^4 (default: {D.burn_in})")
    s.add_argument("--steps", type=_float_list,
                   help="divide the lr by 10 at these fractions of the run (<1) or update numbers (>=1) "
                        f"(default: {','.join(f'{v:g}' for v in D.steps)})")
    s.add_argument("--grad-clip", type=float, help="clip the gradient norm to this")
    s.add_argument("--ema-decay", type=float, help=f"decay of the weight average (default: {D.ema_decay})")
    s.add_argument("--no-ema", action="store_true", help="keep no weight average")
    s.add_argument("--freeze-bn", action="store_true", help="fixed batch-norm statistics (fine-tuning)")
    d = t.add_argument_group("input")
    d.add_argument("--sizes", type=_sizes,
                   help=f"multi-scale input sides: 320-608 (every multiple of 32) or 320,416 "
                        f"(default: {min(D.sizes)}-{max(D.sizes)})")
    d.add_argument("--size-every", type=_positive, help=f"batches between two size draws (default: {D.size_every})")
    d.add_argument("--eval-size", type=_side,
                   help=f"input side for validation and the k-means grid (default: {D.eval_size})")
    d.add_argument("--letterbox", action="store_true", default=None, help="keep the aspect ratio (grey borders)")
    d.add_argument("--no-augment", action="store_true", help="no jitter, flip or colour augmentation")
    d.add_argument("--jitter", type=_jitter, default=0.2, help="crop jitter, in [0, 0.5) (darknet 0.2)")
    h = t.add_argument_group("run")
    h.add_argument("--out", default="runs/yolov2", help="folder for last.pt, best.pt and history.json")
    h.add_argument("--resume", nargs="?", const="last", default=None, metavar="CHECKPOINT",
                   help="continue from CHECKPOINT (default OUT/last.pt); options not given again keep the run's "
                        "values, and a changed --lr, --momentum, --weight-decay or --ema-decay applies from the "
                        "next update (recorded in the checkpoint's provenance)")
    h.add_argument("--force", action="store_true", help="train a new run in an --out that holds one (replacing it)")
    h.add_argument("--eval-every", type=int, help=f"validate every N epochs, 0: at the end (default: {D.eval_every})")
    h.add_argument("--checkpoint-every", type=int, help="also write last.pt every N updates")
    h.add_argument("--workers", type=_count, default=2, help="DataLoader worker processes")
    h.add_argument("--threads", type=_positive, default=None,
                   help="torch CPU threads while training (default: torch's, one per core); on a busy "
                        "two-core machine 1 is faster")
    h.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    h.add_argument("--amp", type=_precision, choices=("auto", "fp32", "bf16", "fp16"),
                   help="precision: auto (the default) is bf16 where the hardware computes it natively (CPUs "
                        "with AVX512-BF16 or AMX, GPUs of compute capability 8.0+), fp16 on older GPUs, "
                        "float32 elsewhere; fp32 (or off) is float32 everywhere")
    h.add_argument("--bf16", action="store_true", help="same as --amp bf16 (slow where it is not native)")
    h.add_argument("--no-channels-last", action="store_true",
                   help="keep the default memory format (channels-last is used on CUDA and CPU)")
    h.add_argument("--seed", type=int, help=f"seed of weights, batches and augmentation (default: {D.seed})")
    h.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

