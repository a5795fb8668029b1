"""The `yolov2` command: the library's command line, on the same code as the book.

    yolov2 bench NAME [options]     benchmarks (python -m yolov2_lib.bench)
    yolov2 data [NAME]              the dataset registry: where each dataset resolves

Each subcommand documents its options with --help.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__


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
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: {len(ds.files)} file(s); {ds.licence}; source: {ds.source}")
        if path is not None:
            print(f"  -> {path}")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yolov2", description="YOLO v2 in PyTorch: the book's library on the command line.")
    parser.add_argument("--version", action="version", version=f"yolov2_lib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bench = sub.add_parser("bench", help="run a benchmark (anchors, model, loss)",
                           description="Run a benchmark; options after NAME go to it (yolov2 bench NAME --help).")
    bench.add_argument("name", help="which benchmark")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="the benchmark's own options")
    bench.set_defaults(func=_cmd_bench)

    data = sub.add_parser("data", help="list registered datasets, and resolve them with --fetch",
                          description="List the registered datasets; with --fetch, resolve each one "
                                      "(local mirror $YOLOV2_DATA, cache, or download) and print its path.")
    data.add_argument("names", nargs="*", help="datasets to show (default: all)")
    data.add_argument("--fetch", action="store_true", help="resolve the datasets and print where they are")
    data.set_defaults(func=_cmd_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
