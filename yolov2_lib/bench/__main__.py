"""Dispatcher: ``python -m yolov2_lib.bench NAME [options]`` (also ``yolov2 bench``)."""

from __future__ import annotations

import importlib
import sys

from . import BENCHMARKS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m yolov2_lib.bench NAME [options]\n\nbenchmarks:")
        for name, what in BENCHMARKS.items():
            print(f"  {name:<8} {what}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"error: unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__package__}.{name}")
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
