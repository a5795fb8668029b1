"""The `yolov2` command: the library's command line, on the same code as the book.

    yolov2 bench NAME [options]     benchmarks (python -m yolov2_lib.bench)
    yolov2 data [NAME]              the dataset registry: where each dataset resolves
    yolov2 train [options]          train YOLO v2 (torchrun for several processes)
    yolov2 eval CHECKPOINT          VOC AP per class and mAP on a split
    yolov2 detect CHECKPOINT IMAGE  draw detections on your images
    yolov2 anchors [options]        anchors by IoU k-means on a dataset's boxes

Each subcommand documents its options with --help.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help once: not when the help already names its
    default, and not for a default of None or an on/off flag's False (they say nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default is None or default is argparse.SUPPRESS or default == []:
            return text
        if isinstance(default, bool) and action.nargs == 0:
            return text
        return super()._get_help_string(action)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench.__main__ import main as bench_main

    return bench_main([args.name, *args.rest])


def _cmd_data(args: argparse.Namespace) -> int:
    from .data.registry import DatasetError, default_registry

    registry = default_registry()
    names = args.names or registry.names()
    status = 0
    for name in names:
        try:
            ds = registry.dataset(name)
            path = registry.fetch(name) if args.fetch else None
            where = None if args.fetch else registry.status(name).describe()  # local, or what fetch would do
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: {len(ds.files)} file(s); {ds.licence}; source: {ds.source}")
        if path is not None:
            print(f"  -> {path}")
        else:
            print("  " + str(where).replace("\n", "\n  "))
    return status


# ---------------------------------------------------------------- train, eval, detect, anchors
#
# These four commands run on yolov2_lib.train (chapter 9) and yolov2_lib.anchors (chapter 3).

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class _CLIError(Exception):
    """A problem with the user's options or files: printed as one line, exit status 2."""


def _friendly(command):
    """Run a command, turning data and option problems into one clear error line."""

    def run(args: argparse.Namespace) -> int:
        from .data.registry import DatasetError

        try:
            return command(args)
        except (_CLIError, FileNotFoundError, DatasetError) as exc:
            print(f"yolov2 {args.command}: error: {exc}", file=sys.stderr)
            return 2

    return run


def _add_data_options(p: argparse.ArgumentParser, images_required: bool = True) -> None:
    g = p.add_argument_group("data (choose one source)")
    g.add_argument("--dataset", metavar="NAME",
                   help="a registered dataset with a boxes CSV and images (bccd); see `yolov2 data`")
    g.add_argument("--data-dir", metavar="DIR",
                   help="a VOC year folder: Annotations/*.xml, JPEGImages/, ImageSets/Main/<split>.txt")
    g.add_argument("--boxes-csv", metavar="CSV",
                   help="a boxes CSV (split,image_id,width,height,class,xmin,ymin,xmax,ymax[,difficult], "
                        "1-based pixels)" + (" with --images" if images_required else ""))
    g.add_argument("--images", metavar="DIR", help="the image folder of --boxes-csv")
    g.add_argument("--image-ext", default=".jpg", help="image file extension (default: .jpg)")
    g.add_argument("--classes", metavar="NAMES",
                   help="class names, comma-separated or a file with one per line (default: the "
                        "dataset's: VOC's 20 for --data-dir, the sorted names of a CSV)")


def _class_names(args: argparse.Namespace) -> list[str] | None:
    if not args.classes:
        return None
    path = Path(args.classes)
    if path.is_file():
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        names = [n.strip() for n in args.classes.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise _CLIError(f"--classes must name distinct classes, got {args.classes!r}.")
    return names


def _source(args: argparse.Namespace, images_required: bool = True) -> tuple[str, Path, Path | None]:
    """Which data source the options name: ("csv", csv, images) or ("voc", folder, None)."""
    chosen = [o for o in ("dataset", "data_dir", "boxes_csv") if getattr(args, o, None)]
    if len(chosen) != 1:
        raise _CLIError("give exactly one data source: --dataset NAME, --data-dir DIR or --boxes-csv CSV "
                        f"(got {len(chosen)}).")
    if args.dataset:
        from .data.registry import fetch

        if args.dataset != "bccd":
            raise _CLIError(f"--dataset {args.dataset!r}: only 'bccd' has boxes and images in the registry; "
                            "use --data-dir or --boxes-csv for your own data.")
        folder = fetch("bccd")
        return "csv", folder / "bccd_boxes.csv", folder / "JPEGImages"
    if args.data_dir:
        folder = Path(args.data_dir)
        if not (folder / "Annotations").is_dir():
            raise _CLIError(f"--data-dir {folder}: no Annotations folder there (expected a VOC year folder "
                            "such as VOCdevkit/VOC2007).")
        return "voc", folder, None
    csv_path = Path(args.boxes_csv)
    if not csv_path.is_file():
        raise _CLIError(f"--boxes-csv {csv_path} does not exist.")
    if args.images is None and images_required:
        raise _CLIError("--boxes-csv needs --images DIR, the folder of its images.")
    images = Path(args.images) if args.images else csv_path.parent
    if images_required and not images.is_dir():
        raise _CLIError(f"--images {images} is not a folder.")
    return "csv", csv_path, images


def _records(args: argparse.Namespace, split: str, class_names, images_required: bool = True):
    from .data.voc import BCCD_CLASSES, VOC_CLASSES, csv_class_names, read_boxes_csv, read_voc

    kind, path, images = _source(args, images_required)
    splits = _split_names(split)
    if not all(splits):
        raise _CLIError(f"split {split!r}: an empty name in the comma-separated list.")
    try:
        if kind == "voc":
            names = class_names or list(VOC_CLASSES)
            records = [r for s in splits for r in read_voc(path, s, class_names=names, image_ext=args.image_ext)]
            return _all_splits_found(records, splits, path), names
        if class_names is None and args.dataset == "bccd":
            class_names = list(BCCD_CLASSES)
        if class_names is None:
            class_names = csv_class_names(path)
        recs = read_boxes_csv(path, images, splits=splits, class_names=class_names, image_ext=args.image_ext)
        return _all_splits_found(recs, splits, path), list(class_names)
    except ValueError as exc:
        raise _CLIError(str(exc)) from None


def _split_names(text: str) -> list[str]:
    """The names of a split option: "train,val" is several splits (or image sets) read as one."""
    return [name.strip() for name in text.split(",")]


def _all_splits_found(records, splits: list[str], path: Path):
    """``records``, after checking that each named split gave at least one image (a typo in
    ``train,vall`` must not quietly train on one split)."""
    found = {r.split for r in records}
    empty = [s for s in splits if s not in found]
    if len(splits) > 1 and empty:
        raise _CLIError(f"{path}: split(s) {', '.join(map(repr, empty))} of {','.join(splits)!r} have no images.")
    return records


def _dataset(args: argparse.Namespace, split: str, class_names, *, augment=None, letterbox=False, seed=0):
    from .data.voc import DetectionDataset

    records, names = _records(args, split, class_names)
    try:
        return DetectionDataset(records, names, augment=augment, letterbox=letterbox, seed=seed)
    except ValueError as exc:
        raise _CLIError(f"split {split!r}: {exc}") from None


def _int_list(text: str, what: str) -> tuple[int, ...]:
    """'320-608' (every multiple of 32) or '320,416'."""
    try:
        if "-" in text:
            lo, hi = (int(v) for v in text.split("-"))
            if lo > hi:
                raise argparse.ArgumentTypeError(f"{what} {text}: the range is reversed; write {hi}-{lo}")
            values = tuple(range(lo, hi + 1, 32))
        else:
            values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must look like 320-608 or 320,416, got {text!r}") from None
    if not values or any(v <= 0 or v % 32 for v in values):
        raise argparse.ArgumentTypeError(f"{what} must be positive multiples of 32, got {text!r}")
    return values


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _anchor_values(text: str) -> list[list[float]] | str:
    if text in ("kmeans", "voc", "coco"):
        return text
    try:
        pairs = [[float(v) for v in pair.split(",")] for pair in text.replace(";", " ").split()]
    except ValueError:
        pairs = []
    if not pairs or any(len(p) != 2 or p[0] <= 0 or p[1] <= 0 for p in pairs):
        raise argparse.ArgumentTypeError(
            f"--anchors must be kmeans, voc, coco or pairs 'w,h w,h ...' in grid cells, got {text!r}")
    return pairs


def _kmeans_anchors(records, k: int, grid: int, seed: int):
    """Anchors in grid cells by IoU k-means on the boxes' (w, h) relative to their image."""
    import torch

    from .anchors import AnchorKMeans, mean_iou, to_grid_units

    sizes = [(r.boxes[:, 2:] - r.boxes[:, :2]) / torch.tensor([r.width, r.height]) for r in records]  # (N_i, 2)
    wh = torch.cat(sizes).double().numpy() if sizes else torch.zeros(0, 2).numpy()
    wh = wh[(wh > 0).all(axis=1)]
    if len(wh) < k:
        raise _CLIError(f"k-means needs at least {k} boxes, the split has {len(wh)}.")
    km = AnchorKMeans(n_clusters=k, random_state=seed).fit(wh)
    return to_grid_units(km.cluster_centers_, grid), mean_iou(wh, km.cluster_centers_), len(wh)


@_friendly
def _cmd_train(args: argparse.Namespace) -> int:
    import os

    import torch

    from .anchors import COCO_ANCHORS, VOC_ANCHORS
    from .data.transforms import Augment
    from .model import YOLOv2, YOLOv2Config
    from .runtime import seed_everything
    from .train import NonFiniteLossError, Trainer, TrainConfig

    out = Path(args.out)
    resume = None
    if args.resume and args.init:
        raise _CLIError("--init starts a new run from some weights, --resume continues a run: use one of them.")
    _check_device(args.device)
    _check_writable(out, "--out", folder=True)
    if args.resume:
        resume = out / "last.pt" if args.resume == "last" else Path(args.resume)
        if not resume.is_file():
            raise _CLIError(f"--resume: checkpoint {resume} does not exist.")
        run = _read_run(resume)
        _keep_run_settings(args, run["config"] or {}, _given_options(args, "train"))
    elif not args.force and _run_files(out):
        raise _CLIError(f"--out {out} holds a run ({', '.join(_run_files(out))}): pass --resume to continue it, "
                        "--force to train a new run over it, or choose another --out.")
    if args.batch_size % args.accumulate:
        raise _CLIError(f"--accumulate {args.accumulate} must divide --batch-size {args.batch_size}: each update "
                        "is split into that many equal micro-batches.")
    seed_everything(args.seed)
    class_names = _class_names(args)
    augment = None if args.no_augment else Augment(jitter=args.jitter)
    train_set = _dataset(args, args.train_split, class_names, augment=augment, letterbox=args.letterbox,
                         seed=args.seed)
    class_names = list(train_set.class_names)
    val_set = None
    if args.val_split.lower() != "none":
        shared = set(_split_names(args.val_split)) & set(_split_names(args.train_split))
        if shared:
            raise _CLIError(f"--val-split {args.val_split} shares {', '.join(sorted(shared))} with --train-split "
                            f"{args.train_split}: validation on training images selects nothing; "
                            "give another split or --val-split none.")
        val_set = _dataset(args, args.val_split, class_names, letterbox=args.letterbox)
    try:
        config = TrainConfig(
            epochs=args.epochs, max_iterations=args.max_iterations, batch_size=args.batch_size,
            max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
            accumulate=args.accumulate, lr=args.lr, optimizer=args.optimizer, momentum=args.momentum,
            weight_decay=args.weight_decay,
            burn_in=args.burn_in, steps=args.steps, grad_clip=args.grad_clip, sizes=args.sizes,
            size_every=args.size_every, num_workers=args.workers, threads=args.threads, seed=args.seed, device=args.device,
            amp="bf16" if args.bf16 else args.amp, channels_last=False if args.no_channels_last else None,
            freeze_bn=args.freeze_bn, ema_decay=None if args.no_ema else args.ema_decay,
            eval_every=args.eval_every, eval_size=args.eval_size, out_dir=str(out),
            checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
        )
    except ValueError as exc:
        raise _CLIError(str(exc)) from None

    if resume is not None:
        if run["model_config"] is None:
            raise _CLIError(f"--resume: {resume} holds no YOLOv2 configuration.")
        if list(run["class_names"] or []) != class_names:
            raise _CLIError(f"--resume: {resume} detects {', '.join(run['class_names'] or [])} but the training "
                            f"data has {', '.join(class_names)}: a run continues on the same classes in the same "
                            "order (pass --classes).")
        model = YOLOv2(YOLOv2Config(**run["model_config"]))
        print(f"resuming from {resume}")
    elif args.init:
        model, init_record = _initial_model(args.init, class_names)
    else:
        grid = args.eval_size // 32
        if args.anchors == "kmeans":
            anchors, iou, n = _kmeans_anchors(train_set.records, args.num_anchors, grid, args.seed)
            anchors = anchors.tolist()
            if os.environ.get("RANK", "0") == "0":  # every torchrun process finds the same anchors
                print(f"anchors by k-means on {n} training boxes (grid {grid}x{grid}), mean IoU {iou:.4f}: "
                      + " ".join(f"{w:.3f},{h:.3f}" for w, h in anchors))
        else:
            anchors = {"voc": VOC_ANCHORS.tolist(), "coco": COCO_ANCHORS.tolist()}.get(args.anchors, args.anchors)
        model = YOLOv2(num_classes=len(class_names), anchors=anchors, width=args.width)
    try:
        trainer = Trainer(model, train_set, config, val_data=val_set, class_names=class_names, resume=resume)
    except ValueError as exc:
        raise _CLIError(str(exc)) from None
    if trainer.resumed_changes and trainer.rank == 0:
        print(f"from update {trainer.iteration + 1} on: " + ", ".join(
            f"{k} {_shown(a)} -> {_shown(b)}" for k, (a, b) in trainer.resumed_changes.items()))
    if args.init and resume is None:
        trainer.provenance["init"] = init_record  # where the starting weights came from, and how they were made
    if trainer.rank == 0:
        print(f"training on {trainer.device} ({trainer.world_size} process(es)), {len(train_set)} images, "
              f"{trainer.total_iterations} updates of {args.batch_size}; writing to {out}")
    try:
        trainer.fit()
    except NonFiniteLossError as exc:
        print(f"yolov2 train: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a folder removed midway: each checkpoint is written whole or not at all
        raise _CLIError(f"writing to {out} failed ({exc.strerror or exc}); the checkpoints written before are "
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


_RUN_FILES = ("last.pt", "best.pt", "history.json")


def _run_files(out: Path) -> list[str]:
    """The files of a training run that ``out`` holds."""
    return [name for name in _RUN_FILES if (out / name).exists()]


def _read_run(path: Path) -> dict:
    """The settings, network and classes of the run a checkpoint continues."""
    from .train import load_checkpoint

    try:
        state = load_checkpoint(path)
    except ValueError as exc:
        raise _CLIError(f"--resume: {exc}") from None
    return {key: state.get(key) for key in ("config", "model_config", "class_names")}


# Options of `train` that keep the run's value on --resume unless they are given again
# (the option's dest is the TrainConfig field).
_RUN_SETTINGS = ("epochs", "max_iterations", "batch_size", "accumulate", "lr", "optimizer", "momentum",
                 "weight_decay", "burn_in", "steps", "grad_clip", "sizes", "size_every", "seed", "freeze_bn",
                 "eval_every", "eval_size", "checkpoint_every")


def _given_options(args: argparse.Namespace, command: str) -> set[str]:
    """The destinations of the options written on the command line (not left at their defaults)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in sub._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(getattr(args, "argv", None) or [command]))) - {"command", "func"}


def _keep_run_settings(args: argparse.Namespace, saved: dict, given: set[str]) -> None:
    """On --resume, every setting not given again is the run's own (a default must not change it)."""
    for name in _RUN_SETTINGS:
        if name not in given and name in saved:
            value = saved[name]
            setattr(args, name, tuple(value) if isinstance(value, list) else value)
    if not {"ema_decay", "no_ema"} & given and "ema_decay" in saved:
        args.no_ema = saved["ema_decay"] is None
        args.ema_decay = saved["ema_decay"] if saved["ema_decay"] is not None else args.ema_decay
    if not {"amp", "bf16"} & given and "amp" in saved:
        args.amp, args.bf16 = saved["amp"], False
    if "no_channels_last" not in given and "channels_last" in saved:
        args.no_channels_last = saved["channels_last"] is False
    if hasattr(args, "max_minutes") and "max_minutes" not in given and saved.get("max_seconds") is not None:
        args.max_minutes = saved["max_seconds"] / 60


def _shown(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def _check_writable(path: Path, option: str, *, folder: bool) -> None:
    """Stop before any work when ``path`` (a folder to fill, or a file to write) cannot be written."""
    import tempfile

    if folder and path.exists() and not path.is_dir():
        raise _CLIError(f"{option} {path} is a file, not a folder: give a folder for the outputs.")
    if not folder and path.is_dir():
        raise _CLIError(f"{option} {path} is a folder: give a file name.")
    existing = path if folder and path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise _CLIError(f"{option} {path}: {existing} is a file, so no folder can be made there.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise _CLIError(f"{option} {path}: cannot write in {existing} ({exc.strerror or exc}); "
                        "choose a writable place.") from None


def _check_device(name: str | None) -> None:
    """Stop before any work on a --device this PyTorch cannot use."""
    if name is None:
        return
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise _CLIError(f"--device {name!r} is not a device name: use cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise _CLIError(f"--device {name}: no CUDA GPU is usable here (this PyTorch is built without CUDA, or "
                            "no GPU is visible); use --device cpu, or install a CUDA build of PyTorch.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise _CLIError(f"--device {name}: there are {torch.cuda.device_count()} GPU(s), numbered from 0.")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise _CLIError(f"--device {name}: Apple's MPS is not available here; use --device cpu.")
    elif device.type != "cpu":
        raise _CLIError(f"--device {name}: only cpu, cuda and mps are supported.")


def _initial_model(name: str, class_names: list[str]):
    """The model of ``--init``: a checkpoint's (or shipped detector's) network and weights."""
    loaded, path = _load_checkpoint(name, what="--init: ")
    if list(loaded.class_names) != list(class_names):
        raise _CLIError(f"--init: {path} detects {', '.join(loaded.class_names)} but the training data has "
                        f"{', '.join(class_names)}: the same classes in the same order are needed (pass --classes).")
    print(f"starting from the weights of {path} (width {loaded.model.config.width}, "
          f"{len(loaded.model.anchors)} anchors)")
    state = loaded.state  # a run's checkpoint counts "iteration", exported weights "training.iterations"
    iteration = state["iteration"] if "iteration" in state else state.get("training", {}).get("iterations")
    record = {"weights": str(path), "iteration": iteration, "provenance": state.get("provenance")}
    return loaded.model.train(), record


def _load_checkpoint(name: str, *, what: str = "", use_ema: bool = True, device: str = "cpu"):
    """:func:`~yolov2_lib.train.model_from_checkpoint` of a file or a shipped detector's name, with
    clear errors; returns ``(loaded, path it was read from)``."""
    from . import pretrained
    from .train import model_from_checkpoint

    path = Path(name)
    if not path.is_file() and name in pretrained.available():
        path = pretrained.path(name)
    if not path.is_file():
        shipped = ", ".join(pretrained.available()) or "none"
        raise _CLIError(f"{what}checkpoint {path} does not exist: it is neither a file nor a shipped detector "
                        f"(shipped: {shipped}).")
    try:
        loaded = model_from_checkpoint(path, use_ema=use_ema, device=device)
    except (ValueError, RuntimeError) as exc:
        raise _CLIError(f"{what}{path}: {exc}") from None
    return loaded, path


def _load(args: argparse.Namespace):
    """The checkpoint's model on ``--device``, once ``--amp`` is known to work there."""
    import torch

    from .train import autocast_dtype

    args.amp = "bf16" if args.bf16 else args.amp
    try:
        autocast_dtype(args.amp, torch.device(args.device or "cpu"))
    except (ValueError, RuntimeError) as exc:
        raise _CLIError(f"--amp {args.amp}: {exc}") from None
    return _load_checkpoint(args.checkpoint, use_ema=not args.no_ema, device=args.device or "cpu")[0]


@_friendly
def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from .train import evaluate_model

    _check_device(args.device)
    if args.json and args.json != "-":
        _check_writable(Path(args.json), "--json", folder=False)
    loaded = _load(args)
    letterbox = loaded.letterbox if args.letterbox is None else args.letterbox
    data = _dataset(args, args.split, _class_names(args) or loaded.class_names, letterbox=letterbox)
    if list(data.class_names) != loaded.class_names:
        raise _CLIError(f"the data's classes {list(data.class_names)} differ from the checkpoint's "
                        f"{loaded.class_names}.")
    result = evaluate_model(
        loaded.model, data, input_size=args.size, batch_size=args.batch_size, num_workers=args.workers,
        conf_threshold=args.conf, nms_threshold=args.nms, amp=args.amp,
        class_names=loaded.class_names, progress=not args.no_progress,
    )
    record = {"checkpoint": str(args.checkpoint), "split": args.split, "images": len(data),
              "input_size": args.size, "letterbox": letterbox, "ema": not args.no_ema, **result.to_dict()}
    if args.json == "-":
        print(json.dumps(record, indent=2))
    else:
        print(f"{args.checkpoint} on {args.split} ({len(data)} images, input {args.size}):")
        print(result.table())
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(record, indent=2))
            print(f"wrote {args.json}")
    return 0


def _image_paths(inputs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in _IMAGE_SUFFIXES and q.is_file())
            if not found:
                raise _CLIError(f"{p}: no image files ({', '.join(_IMAGE_SUFFIXES)}) in this folder.")
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            raise _CLIError(f"{p} does not exist.")
    unique = {p.resolve(): p for p in reversed(paths)}  # an image named twice is drawn once
    return [p for p in paths if unique.get(p.resolve()) is p]


def _palette(index: int) -> tuple[int, int, int]:
    colours = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
               (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))
    return colours[index % len(colours)]


def _picture(image):
    """An 8-bit RGB PIL image of a (3, H, W) tensor in [0, 1] as :func:`~yolov2_lib.data.voc.load_image`
    decodes it: what the detector saw, so a 16-bit or palette image is drawn as it is seen."""
    from PIL import Image

    pixels = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).contiguous().numpy()  # (H, W, 3)
    return Image.fromarray(pixels, "RGB")


def _draw(image, detections, class_names: list[str]):
    """A copy of a PIL image with each detection drawn as a box and a 'class score' label."""
    from PIL import ImageDraw

    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    line = max(1, round(min(out.size) / 250))
    for x1, y1, x2, y2, score, cls in detections.tolist():
        colour = _palette(int(cls))
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=line)
        label = f"{class_names[int(cls)]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), label)
        lift = bottom - top + 2
        y = y1 - lift if y1 - lift >= 0 else y1  # above the box, or inside it at the top edge
        draw.rectangle([x1, y, x1 + right - left + 4, y + lift], fill=colour)
        draw.text((x1 + 2, y), label, fill=(255, 255, 255))
    return out


@_friendly
def _cmd_detect(args: argparse.Namespace) -> int:
    import json

    from .data.voc import ImageLoadError, load_image
    from .train import detect_images

    _check_device(args.device)
    out = Path(args.out)
    _check_writable(out, "--out", folder=True)
    paths = _image_paths(args.images)
    inputs = {p.resolve() for p in paths}
    targets: dict[Path, Path] = {}
    for p in paths:
        target = out / f"{p.stem}_det.jpg"
        k = 2
        while target in targets.values():  # two inputs with one name
            target, k = out / f"{p.stem}_det_{k}.jpg", k + 1
        if target.resolve() in inputs:
            raise _CLIError(f"writing {target} would overwrite an input image; choose another --out.")
        targets[p] = target
    there = [t.name for t in (*targets.values(), out / "detections.json") if t.exists()]
    if there and not args.force:
        shown = ", ".join(there[:3]) + (f" and {len(there) - 3} more" if len(there) > 3 else "")
        raise _CLIError(f"--out {out} already holds {shown}: pass --force to replace them, or choose another --out.")
    loaded = _load(args)
    letterbox = loaded.letterbox if args.letterbox is None else args.letterbox
    out.mkdir(parents=True, exist_ok=True)
    status, report = 0, []
    for p in paths:
        try:
            image = load_image(p)
        except ImageLoadError as exc:
            print(f"yolov2 detect: skipping {p}: {exc}", file=sys.stderr)
            status = 1
            continue
        dets = detect_images(loaded.model, [image], input_size=args.size, letterbox=letterbox,
                             conf_threshold=args.score, nms_threshold=args.nms,
                             amp=args.amp)[0].cpu()
        _draw(_picture(image), dets, loaded.class_names).save(targets[p], quality=95)
        report.append({"image": str(p), "output": str(targets[p]), "detections": [
            {"box": [round(v, 2) for v in row[:4]], "score": round(row[4], 4),
             "class": loaded.class_names[int(row[5])]} for row in dets.tolist()]})
        print(f"{p}: {len(dets)} detection(s) -> {targets[p]}")
    (out / "detections.json").write_text(json.dumps(report, indent=2))
    return status


@_friendly
def _cmd_anchors(args: argparse.Namespace) -> int:
    records, _ = _records(args, args.split, _class_names(args), images_required=False)
    anchors, iou, n = _kmeans_anchors(records, args.num_anchors, args.grid, args.seed)
    print(f"{args.num_anchors} anchors by IoU k-means on {n} boxes of split {args.split!r}, "
          f"in cells of a {args.grid}x{args.grid} grid (w, h):")
    for w, h in anchors.tolist():
        print(f"  {w:.4f}, {h:.4f}")
    print(f"mean IoU: {iou:.4f}")
    print("darknet cfg: anchors = " + ", ".join(f"{w:.4f},{h:.4f}" for w, h in anchors.tolist()))
    return 0


def _add_train_parser(sub) -> None:
    t = sub.add_parser(
        "train", help="train YOLO v2 on a dataset (the paper's recipe by default)",
        description="Train YOLO v2 with yolov2_lib.train.Trainer. Several processes: "
                    "torchrun --nproc_per_node N -m yolov2_lib.cli train ... (DistributedDataParallel).",
        formatter_class=_HelpFormatter)
    _add_data_options(t)
    t.add_argument("--train-split", default="train",
                   help="split (CSV) or image set (VOC) to train on; several joined by commas (train,val)")
    t.add_argument("--val-split", default="val", help="split to select the best checkpoint on, or 'none'")
    m = t.add_argument_group("model")
    m.add_argument("--width", type=_width, default=1.0, help="channel multiplier (1 is darknet's network)")
    m.add_argument("--anchors", type=_anchor_values, default="kmeans",
                   help="kmeans (IoU k-means on the training boxes), voc, coco, or 'w,h w,h ...' in grid cells")
    m.add_argument("--num-anchors", type=_positive, default=5, help="k for --anchors kmeans")
    m.add_argument("--init", metavar="CHECKPOINT",
                   help="start from these weights (a run's best.pt/last.pt, exported weights, or a shipped name "
                        "such as bccd; the EMA's when kept) with a fresh optimizer and schedule: fine-tuning. "
                        "The network (width, anchors, classes) is the checkpoint's; --width and --anchors are "
                        "not used")
    s = t.add_argument_group("schedule")
    s.add_argument("--epochs", type=_positive, default=160, help="passes over the training split")
    s.add_argument("--max-iterations", type=int, default=None, help="stop after this many updates instead")
    s.add_argument("--max-minutes", type=_minutes, default=None,
                   help="a wall-time budget, validations included: stop when it is spent (the rate's "
                        "fractional --steps then happen at those fractions of the budget)")
    s.add_argument("--batch-size", type=_positive, default=64, help="global batch (all processes)")
    s.add_argument("--accumulate", type=_positive, default=1, help="micro-batches per update (darknet subdivisions)")
    s.add_argument("--lr", type=float, default=1e-3, help="base learning rate")
    s.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="sgd (the paper's) or adamw (decoupled weight decay; try --weight-decay 0.05)")
    s.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (Adam's first beta)")
    s.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay of conv weights")
    s.add_argument("--burn-in", type=int, default=1000, help="updates of warm-up, lr*(i/burn_in)^4")
    s.add_argument("--steps", type=_float_list, default=(0.375, 0.5625),
                   help="divide the lr by 10 at these fractions of the run (<1) or update numbers (>=1)")
    s.add_argument("--grad-clip", type=float, default=None, help="clip the gradient norm to this")
    s.add_argument("--ema-decay", type=float, default=0.9999, help="decay of the weight average")
    s.add_argument("--no-ema", action="store_true", help="keep no weight average")
    s.add_argument("--freeze-bn", action="store_true", help="fixed batch-norm statistics (fine-tuning)")
    d = t.add_argument_group("input")
    d.add_argument("--sizes", type=lambda v: _int_list(v, "--sizes"), default=tuple(range(320, 609, 32)),
                   help="multi-scale input sides: 320-608 (every multiple of 32) or 320,416")
    d.add_argument("--size-every", type=_positive, default=10, help="batches between two size draws")
    d.add_argument("--eval-size", type=_side, default=416, help="input side for validation (and k-means grid)")
    d.add_argument("--letterbox", action="store_true", help="keep the aspect ratio (grey borders)")
    d.add_argument("--no-augment", action="store_true", help="no jitter, flip or colour augmentation")
    d.add_argument("--jitter", type=_jitter, default=0.2, help="crop jitter, in [0, 0.5) (darknet 0.2)")
    h = t.add_argument_group("run")
    h.add_argument("--out", default="runs/yolov2", help="folder for last.pt, best.pt and history.json")
    h.add_argument("--resume", nargs="?", const="last", default=None, metavar="CHECKPOINT",
                   help="continue from CHECKPOINT (default OUT/last.pt); options not given again keep the run's "
                        "values, and a changed --lr, --momentum, --weight-decay or --ema-decay applies from the "
                        "next update (recorded in the checkpoint's provenance)")
    h.add_argument("--force", action="store_true", help="train a new run in an --out that holds one (replacing it)")
    h.add_argument("--eval-every", type=int, default=1, help="validate every N epochs (0: at the end)")
    h.add_argument("--checkpoint-every", type=int, default=0, help="also write last.pt every N updates")
    h.add_argument("--workers", type=_count, default=2, help="DataLoader worker processes")
    h.add_argument("--threads", type=_positive, default=None,
                   help="torch CPU threads while training (default: torch's, one per core); on a busy "
                        "two-core machine 1 is faster")
    h.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    h.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), default="auto",
                   help="mixed precision: auto is bf16 where the hardware computes it natively (CPUs with "
                        "AVX512-BF16 or AMX, GPUs of compute capability 8.0+), fp16 on older GPUs, "
                        "float32 elsewhere")
    h.add_argument("--bf16", action="store_true", help="same as --amp bf16 (slow where it is not native)")
    h.add_argument("--no-channels-last", action="store_true",
                   help="keep the default memory format (channels-last is used on CUDA and CPU)")
    h.add_argument("--seed", type=int, default=0, help="seed of weights, batches and augmentation")
    h.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)


@_friendly
def _cmd_export(args: argparse.Namespace) -> int:
    from .train import export_weights

    source, out = Path(args.checkpoint), Path(args.out)
    if out.suffix == ".onnx":
        return _export_onnx(args, out)
    if not source.is_file():
        raise _CLIError(f"checkpoint {source} does not exist.")
    if out.suffix != ".pt":
        raise _CLIError(f"--out {out}: the file must end in .pt (weights; their provenance goes beside it as "
                        f".json) or .onnx (the network for ONNX runtimes).")
    _check_writable(out, "out", folder=False)
    there = [str(p) for p in (out, out.with_suffix(".json")) if p.exists()]
    if there and not args.force:
        raise _CLIError(f"{' and '.join(there)} exist{'s' if len(there) == 1 else ''}; pass --force to replace "
                        f"{'it' if len(there) == 1 else 'them'}.")
    results = {}
    for item in args.result:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _CLIError(f"--result {item!r}: expected KEY=VALUE.")
        try:
            results[key] = float(value)
        except ValueError:
            results[key] = value
    try:
        export_weights(source, out, half=not args.fp32, use_ema=not args.no_ema, results=results)
    except ValueError as exc:
        raise _CLIError(f"{source}: {exc}") from None
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {out.with_suffix('.json')}")
    return 0


def _export_onnx(args: argparse.Namespace, out: Path) -> int:
    """`yolov2 export CHECKPOINT model.onnx`: the network as ONNX (see yolov2_lib.onnx_export)."""
    if args.result:
        raise _CLIError("--result is recorded in .pt exports only; an .onnx file keeps the detector's description.")
    try:
        from .onnx_export import export_onnx
    except ImportError as exc:  # pragma: no cover - the module itself imports only torch and numpy
        raise _CLIError(str(exc)) from None
    _check_writable(out, "out", folder=False)
    if out.exists() and not args.force:
        raise _CLIError(f"{out} exists; pass --force to replace it.")
    loaded, path = _load_checkpoint(args.checkpoint, use_ema=not args.no_ema)
    if out.resolve() == path.resolve():
        raise _CLIError(f"writing {out} would overwrite the checkpoint; choose another output file.")
    try:
        done = export_onnx(loaded.model, out, weights="fp32" if args.fp32 else "auto",
                           class_names=loaded.class_names, letterbox=loaded.letterbox, input_size=args.size)
    except ImportError as exc:
        raise _CLIError(str(exc)) from None
    (side, batch), diff = next(iter(done.max_abs_diff.items()))
    print(f"wrote {out} ({done.num_bytes / 1e6:.1f} MB; {done.fp16_tensors} weight tensors in float16, "
          f"{done.fp32_tensors} in float32): batch and input size dynamic (sides multiples of 32); "
          f"ONNX Runtime's head differs from PyTorch's by {diff:.1e} at {side}x{side}")
    return 0


def _add_checkpoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint of `yolov2 train` (last.pt or best.pt), exported "
                                      "weights, or the name of a shipped detector (bccd)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights, not their average")
    p.add_argument("--size", type=_side, default=416, help="network input side (a multiple of 32)")
    p.add_argument("--nms", type=_fraction, default=0.45, help="NMS IoU threshold")
    p.add_argument("--letterbox", action=argparse.BooleanOptionalAction, default=None,
                   help="letterbox the images (default: as in training)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: cpu)")
    p.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), default="auto",
                   help="mixed precision: auto is bf16 where the hardware computes it natively, fp16 on "
                        "older GPUs, float32 elsewhere")
    p.add_argument("--bf16", action="store_true", help="same as --amp bf16")


def _number(text: str, convert: type, what: str, ok, rule: str):
    """``convert(text)`` when ``ok`` holds for it; else argparse's error: what was expected, or the rule."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{rule}, got {text}")
    return value


def _side(text: str) -> int:
    """An input side: a positive multiple of 32."""
    return _number(text, int, "an integer", lambda v: v > 0 and v % 32 == 0,
                   "must be a positive multiple of 32 (the network stride)")


def _minutes(text: str) -> float:
    """A positive, finite number of minutes."""
    return _number(text, float, "a number of minutes", lambda v: 0 < v < float("inf"),
                   "must be a positive number of minutes")


def _positive(text: str) -> int:
    return _number(text, int, "an integer", lambda v: v >= 1, "must be >= 1")


def _count(text: str) -> int:
    """A number of things that may be zero (worker processes)."""
    return _number(text, int, "an integer", lambda v: v >= 0, "must be >= 0")


def _fraction(text: str) -> float:
    """A threshold between 0 and 1 (a score or an IoU)."""
    return _number(text, float, "a number between 0 and 1", lambda v: 0 <= v <= 1, "must be between 0 and 1")


def _width(text: str) -> float:
    """A channel multiplier: a positive number."""
    return _number(text, float, "a number", lambda v: 0 < v < float("inf"),
                   "must be > 0 (1 is darknet's network, 0.25 a quarter of its channels)")


def _jitter(text: str) -> float:
    """Darknet's crop jitter: each side moves by up to this fraction of the image."""
    return _number(text, float, "a number", lambda v: 0 <= v < 0.5,
                   "must be in [0, 0.5) (a fraction of the image per side)")


def _add_inference_parsers(sub) -> None:
    e = sub.add_parser("eval", help="VOC AP per class and mAP of a checkpoint on a split",
                       description="Evaluate a checkpoint with the VOC protocol (IoU > 0.5, difficult "
                                   "objects ignored; 11-point VOC07 AP and area AP).",
                       formatter_class=_HelpFormatter)
    _add_checkpoint_options(e)
    _add_data_options(e)
    e.add_argument("--split", default="test", help="split (CSV) or image set (VOC); several joined by commas")
    e.add_argument("--conf", type=_fraction, default=0.005, help="keep detections scoring above this")
    e.add_argument("--batch-size", type=_positive, default=8, help="images per forward pass")
    e.add_argument("--workers", type=_count, default=0, help="DataLoader worker processes")
    e.add_argument("--json", metavar="PATH", help="also write the result as JSON ('-': print JSON only)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_eval)

    d = sub.add_parser("detect", help="draw a checkpoint's detections on your images",
                       description="Detect objects on image files (or every image of a folder) and write "
                                   "copies with the boxes drawn, plus detections.json, into --out. "
                                   "The input images are never modified.",
                       formatter_class=_HelpFormatter)
    _add_checkpoint_options(d)
    d.add_argument("images", nargs="+", help="image files or folders")
    d.add_argument("--out", default="detections", help="output folder")
    d.add_argument("--score", type=_fraction, default=0.25, help="draw detections scoring above this")
    d.add_argument("--force", action="store_true",
                   help="replace drawings and detections.json that --out already holds")
    d.set_defaults(func=_cmd_detect)

    x = sub.add_parser("export", help="write a checkpoint's weights and provenance as a small file, or as ONNX",
                       description="Keep what inference needs from a training checkpoint -- model "
                                   "configuration, (averaged) weights, class names -- with the run's "
                                   "provenance (command, commit, time, hardware); a JSON copy of everything "
                                   "but the weights goes beside it. The checkpoint is not modified. "
                                   "With an OUT ending in .onnx, write the network instead as an ONNX file "
                                   "(raw head, any batch size and any input side that is a multiple of 32, "
                                   "darknet's reorg order) for ONNX Runtime and the browser (chapter 10); "
                                   "CHECKPOINT may then also be a shipped detector's name (bccd), and the "
                                   "file is checked against PyTorch with ONNX Runtime.",
                       formatter_class=_HelpFormatter)
    x.add_argument("checkpoint", help="best.pt or last.pt of `yolov2 train` (for .onnx also exported weights "
                                      "or a shipped detector's name)")
    x.add_argument("out", help="the .pt file to write, or an .onnx file")
    x.add_argument("--fp32", action="store_true", help="store float32 weights (default: float16, half the size; "
                                                       "for .onnx: float16 where that loses nothing)")
    x.add_argument("--size", type=_side, default=416, help="for .onnx: the input side recorded as the detector's "
                                                           "own (the file accepts any multiple of 32)")
    x.add_argument("--no-ema", action="store_true", help="export the raw weights, not their average")
    x.add_argument("--result", action="append", default=[], metavar="KEY=VALUE",
                   help="a measured result to record, e.g. test_map=0.88 (repeatable)")
    x.add_argument("--force", action="store_true", help="replace an existing output file")
    x.set_defaults(func=_cmd_export)

    a = sub.add_parser("anchors", help="anchors by IoU k-means on a dataset's boxes",
                       description="Cluster the (width, height) of a split's boxes with the 1 - IoU distance "
                                   "and print the anchors in grid cells and their mean IoU (chapter 3).",
                       formatter_class=_HelpFormatter)
    _add_data_options(a, images_required=False)
    a.add_argument("--split", default="train", help="split (CSV) or image set (VOC); several joined by commas")
    a.add_argument("-k", "--num-anchors", type=_positive, default=5, help="number of anchors")
    a.add_argument("--grid", type=_positive, default=13, help="grid cells per side (13 for a 416 input)")
    a.add_argument("--seed", type=int, default=0, help="k-means seed")
    a.set_defaults(func=_cmd_anchors)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yolov2", description="YOLO v2 in PyTorch: the book's library on the command line.")
    parser.add_argument("--version", action="version", version=f"yolov2_lib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bench = sub.add_parser("bench", help="run a benchmark (anchors, model, loss, train)",
                           description="Run a benchmark; options after NAME go to it (yolov2 bench NAME --help).")
    bench.add_argument("name", help="which benchmark")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="the benchmark's own options")
    bench.set_defaults(func=_cmd_bench)

    data = sub.add_parser("data", help="list registered datasets, and resolve them with --fetch",
                          description="List the registered datasets and where each is: local, or what fetch "
                                      "would download and build; with --fetch, resolve each one (local mirror "
                                      "$YOLOV2_DATA, cache, or download and build) and print its path.")
    data.add_argument("names", nargs="*", help="datasets to show (default: all)")
    data.add_argument("--fetch", action="store_true", help="resolve the datasets and print where they are")
    data.set_defaults(func=_cmd_data)

    _add_train_parser(sub)
    _add_inference_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what was written, for the options --resume takes from the run instead
    from .runtime import tune_allocator  # torch loads only once the options are known to be good

    tune_allocator()  # every command's large CPU tensors reuse freed memory (see runtime.tune_allocator)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
