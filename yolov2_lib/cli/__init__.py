"""The `yolov2` command: the library's command line, on the same code as the book.

    yolov2 bench NAME [options]     benchmarks (python -m yolov2_lib.bench)
    yolov2 data [NAME]              the dataset registry: where each dataset resolves
    yolov2 train [options]          train YOLO v2 (torchrun for several processes)
    yolov2 eval CHECKPOINT          VOC AP per class and mAP on a split
    yolov2 detect CHECKPOINT IMAGE  draw detections on your images
    yolov2 anchors [options]        anchors by IoU k-means on a dataset's boxes

Each subcommand documents its options with --help. This module only reads
options and prints: the data come from :mod:`yolov2_lib.data.catalog`, the
settings from :mod:`yolov2_lib.config`, the detectors from
:mod:`yolov2_lib.checkpoint`. Every user error the library raises is a
:class:`~yolov2_lib.errors.YOLOv2Error`, printed here as one line.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import YOLOv2Error
from .inference import _add_inference_parsers
from .train import _add_train_parser

__all__ = ["main", "build_parser"]


def _cmd_bench(args: argparse.Namespace) -> int:
    from ..bench.__main__ import main as bench_main

    return bench_main([args.name, *args.rest])


def _cmd_data(args: argparse.Namespace) -> int:
    from ..data.registry import DatasetError, default_registry

    registry = default_registry()
    status = 0
    for name in args.names or registry.names():
        try:
            ds = registry.dataset(name)
            path = registry.fetch(name) if args.fetch else None
            where = None if args.fetch else registry.status(name).describe()  # local, or what fetch would do
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: {len(ds.files)} file(s); {ds.licence}; source: {ds.source}")
        print(f"  -> {path}" if path is not None else "  " + str(where).replace("\n", "\n  "))
    return status




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
    from ..runtime import tune_allocator

    tune_allocator()  # every command's large CPU tensors reuse freed memory (see runtime.tune_allocator)
    try:
        return args.func(args)
    except (YOLOv2Error, OSError) as exc:  # the one place a user's mistake (or a full disk) becomes a line
        print(f"yolov2 {args.command}: error: {exc}", file=sys.stderr)
        return 2

