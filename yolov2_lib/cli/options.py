"""What the `yolov2` command shares between its commands: option values, data sources, checkpoints.

Each function reads options and hands them to the library; the rules live there.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from pathlib import Path

from ..errors import YOLOv2Error

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_RUN_FILES = ("last.pt", "best.pt", "history.json")


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


@contextlib.contextmanager
def _about(option: str):
    """Name the option a library error is about: ``--device cuda: no CUDA GPU ...``."""
    try:
        yield
    except YOLOv2Error as exc:
        raise YOLOv2Error(f"{option} {exc}") from None


# ---------------------------------------------------------------- option values


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


def _sizes(text: str) -> tuple[int, ...]:
    """'320-608' (every multiple of 32) or '320,416'."""
    from ..config import parse_sizes

    try:
        return tuple(parse_sizes(text, "--sizes"))
    except YOLOv2Error as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seed(text: str) -> int:
    """A seed every random generator takes."""
    from ..runtime import MAX_SEED

    return _number(text, int, "an integer", lambda v: 0 <= v <= MAX_SEED, f"must be from 0 to {MAX_SEED} (2**32 - 1)")


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
    if not pairs or any(len(p) != 2 or not all(0 < v < math.inf for v in p) for p in pairs):
        raise argparse.ArgumentTypeError(
            f"--anchors must be kmeans, voc, coco or pairs 'w,h w,h ...' in grid cells, got {text!r}")
    return pairs


def _precision(text: str) -> str:
    from ..precision import normalize

    try:
        return normalize(text)
    except YOLOv2Error:
        return text  # argparse's choices then say "invalid choice"


# ---------------------------------------------------------------- data


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
        raise YOLOv2Error(f"--classes must name distinct classes, got {args.classes!r}.")
    return names


def _source(args: argparse.Namespace, images_required: bool = True):
    """The data source the options name."""
    from ..data.catalog import DataSource

    chosen = [o for o in ("dataset", "data_dir", "boxes_csv") if getattr(args, o, None)]
    if len(chosen) != 1:
        raise YOLOv2Error("give exactly one data source: --dataset NAME, --data-dir DIR or --boxes-csv CSV "
                          f"(got {len(chosen)}).")
    if args.dataset:
        with _about("--dataset"):
            return DataSource.named(args.dataset)
    if args.data_dir:
        with _about("--data-dir"):
            return DataSource.voc(args.data_dir, image_ext=args.image_ext)
    if args.images is None and images_required and Path(args.boxes_csv).is_file():
        raise YOLOv2Error("--boxes-csv needs --images DIR, the folder of its images.")
    return DataSource.boxes_csv(args.boxes_csv, args.images, image_ext=args.image_ext,
                                images_required=images_required)


def _split(args: argparse.Namespace, name: str, class_names, images_required: bool = True):
    return _source(args, images_required).split(name, class_names=class_names)


# ---------------------------------------------------------------- checkpoints and outputs


def _writable(path: Path, option: str, *, folder: bool) -> None:
    from ..files import check_writable

    with _about(option):
        check_writable(path, folder=folder)


def _device(name: str | None) -> None:
    from ..runtime import check_device

    with _about("--device"):
        check_device(name)


def _precision_on_device(args: argparse.Namespace) -> None:
    """Stop before any work when ``--amp`` (or ``--bf16``) cannot run on ``--device``."""
    import torch

    from ..precision import autocast_dtype

    args.amp = "bf16" if args.bf16 else args.amp
    with _about(f"--amp {args.amp}:"):
        autocast_dtype(args.amp, torch.device(args.device or "cpu"))


def _load(name: str, *, use_ema: bool = True, device: str | None = None, what: str = ""):
    """A checkpoint or shipped detector: ``(loaded, the file read)``; ``what`` starts its errors."""
    from ..checkpoint import load, resolve

    try:
        path = resolve(name)
    except FileNotFoundError as exc:
        raise YOLOv2Error(f"{what}{exc}") from None
    with _about(f"{what}{path}:"):
        return load(path, use_ema=use_ema, device=device or "cpu"), path


def _run_files(out: Path) -> list[str]:
    """The files of a training run that ``out`` holds."""
    return [name for name in _RUN_FILES if (out / name).exists()]

