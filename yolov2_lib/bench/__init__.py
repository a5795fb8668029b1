"""Benchmarks: ``python -m yolov2_lib.bench NAME [options]``.

Each benchmark is a module here with ``main(argv) -> int``; it prints medians
and ratios measured in one run and can write a JSON record (``--json PATH``).
Speed is checked here, never by timed unit tests. The helpers below are
shared by the benchmarks: the JSON record, the interleaved timer, the CPU's
name and the machine's load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..files import write_json
from ..runtime import cpu_name  # one definition, shared with the trainer's provenance


def write_record(path: Path, record: dict) -> None:
    """Write a benchmark's JSON record (creating its folder) and say where."""
    write_json(path, record)
    print(f"wrote {path}")


def interleaved_times(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int, device: torch.device
) -> dict[str, list[float]]:
    """Time each function once per round, round after round.

    Interleaving makes every variant see the same background load, so the
    ratios stay meaningful on a shared machine.

    Args:
        fns: name -> function to time (called without arguments).
        repeats: timed rounds.
        warmup: untimed calls of each function first.
        device: where the work runs (CUDA is synchronised around each call).

    Returns:
        name -> ``repeats`` wall-clock seconds, in round order.
    """

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def run_with_tuned_allocator(module: str, argv: list[str]) -> dict:
    """Run ``python -m yolov2_lib.bench MODULE ARGV --allocator tuned`` and return its JSON record.

    :func:`~yolov2_lib.runtime.tune_allocator` is process-wide and cannot be
    undone, so the tuned measurement of a benchmark runs in a fresh process
    and its rows are compared with the parent's (default allocator).
    """
    child = [sys.executable, "-m", "yolov2_lib.bench", module, *argv, "--allocator", "tuned"]
    with tempfile.TemporaryDirectory() as tmp:
        record_path = Path(tmp) / "tuned.json"
        print(f"\nthe same measurement with runtime.tune_allocator(), in a second process: "
              f"bench {module} {' '.join(argv)} --allocator tuned", flush=True)
        done = subprocess.run([*child, "--json", str(record_path)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the tuned-allocator run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return json.loads(record_path.read_text())


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the OS has none): a shared machine's noise."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


BENCHMARKS = {
    "anchors": "k-means on all VOC boxes against a per-box Python loop",
    "model": "YOLOv2-416 forward: plain, fused batch norm, channels-last; GFLOP/s; post-processing share",
    "loss": "loss forward+backward against a training step; VOC07-sized mAP evaluation",
    "train": "YOLOv2 training step: plain fp32, channels-last, bf16 autocast; bf16's loss curve vs fp32",
    "data": "one augmented training sample: float pipeline vs the dataset's uint8 one; colour distortion",
    "precision": "the shipped BCCD detector in fp32 and, where native, bf16: speed, mAP, boxes found again",
    "multiscale": "BCCD trained at one size against multi-scale, same command and updates: mAP at 288-608",
    "ablation": "Table 2 on BCCD: chapter 9's recipe with one idea taken out at a time, per arm and seed",
    "chapter9": "chapter 9 executed as a reader runs it, alone or beside a busy core: updates, time, test mAP",
    "busy": "chapter 9's training alone and beside a CPU-bound process, by torch threads and data workers",
}
