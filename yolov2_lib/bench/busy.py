"""How a busy CPU slows chapter 9's training, by thread count and data workers.

``python -m yolov2_lib.bench busy [--updates 36] [--skip 12] [--rounds 1] [--json PATH]``

Runs the first updates of chapter 9's recipe (``yolov2 train``, width 1/8,
sizes 320-416, batches of 16, float32) with each combination of torch threads
(1, 2) and DataLoader workers (0, 1), once alone and once beside one CPU-bound
process at normal priority (what a browser tab or a second notebook does to a
laptop). Settings take turns within a round, so all see the same background.
It prints the seconds per 12 updates (the updates after the first ``--skip``)
and each one's ratio to the fastest setting alone.

On a CPU with few cores a team of OpenMP threads waits for its slowest member:
as soon as something else wants a core, fewer threads win.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from ..runtime import cpu_name
from . import load_average, write_record
from .multiscale import RECIPE

SETTINGS = [(2, 1), (1, 1), (2, 0), (1, 0)]  # (torch threads, DataLoader workers)


def _spin() -> None:  # the competing process: one core's worth of pure Python arithmetic
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2**31


def seconds_per_12(threads: int, workers: int, updates: int, skip: int, out: Path) -> float:
    """Seconds per 12 updates of the recipe after the first ``skip``, in a fresh ``yolov2 train`` process."""
    # RECIPE's own --workers comes first; argparse keeps the last one given
    command = [sys.executable, "-m", "yolov2_lib.cli", "train", *RECIPE, "--width", "0.125",
               "--sizes", "320,352,384,416", "--amp", "fp32", "--max-iterations", str(updates),
               "--workers", str(workers), "--threads", str(threads), "--out", str(out), "--force"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"yolov2 train failed ({done.returncode}):\n{done.stderr[-2000:]}")
    times = json.loads((out / "history.json").read_text())["train"]["step_time"][skip:]
    return 12 * statistics.mean(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench busy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=36, help="updates per run")
    parser.add_argument("--skip", type=int, default=12, help="first updates left out (start-up, allocator)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over all settings (median kept)")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if args.updates <= args.skip or args.skip < 0 or args.rounds < 1:
        parser.error("--updates must exceed --skip >= 0, and --rounds >= 1")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for busy in (False, True):
                spinner = multiprocessing.Process(target=_spin, daemon=True) if busy else None
                if spinner:
                    spinner.start()
                try:
                    for threads, workers in SETTINGS:
                        key = f"{threads} thread(s), {workers} worker(s), {'busy' if busy else 'alone'}"
                        value = seconds_per_12(threads, workers, args.updates, args.skip, Path(tmp) / "run")
                        results.setdefault(key, []).append(value)
                        print(f"{key:<40} {value:6.2f} s per 12 updates", flush=True)
                finally:
                    if spinner:
                        spinner.terminate()
                        spinner.join()
    medians = {k: statistics.median(v) for k, v in results.items()}
    fastest = min(v for k, v in medians.items() if k.endswith("alone"))
    print(f"\n{'setting':<40} {'s / 12 updates':>15} {'x fastest alone':>16}")
    for key, value in medians.items():
        print(f"{key:<40} {value:15.2f} {value / fastest:16.2f}")
    if args.json:
        write_record(args.json, {
            "benchmark": "busy", "date": date.today().isoformat(), "cpu": cpu_name(), "cores": os.cpu_count(),
            "updates": args.updates, "skip": args.skip, "rounds": args.rounds, "load_average": load_average(),
            "seconds_per_12_updates": {k: [round(x, 3) for x in v] for k, v in results.items()},
        })
    return 0
