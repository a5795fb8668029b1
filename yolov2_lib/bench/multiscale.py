"""Experiment: does multi-scale training pay off? (chapter 8)

``python -m yolov2_lib.bench multiscale [--updates 800] [--seeds 0,1] [--width 0.125]
[--arms single=416 multi=320-608] [--test-sizes 288-608] [--work DIR] [--json PATH]``

Trains the same detector on BCCD several times with one ``yolov2 train``
command (chapter 9's recipe: SGD, lr 1e-2, burn-in 30, steps at 80 % and 95 %,
EMA 0.999, batches of 16), changing only ``--sizes``:

- ``single``: every batch at 416 x 416;
- ``multi``: darknet's multi-scale training, a new size from 320 to 608
  every 10 batches.

Every run gets the same number of updates, so the same number of images, and
no validation: the weights kept are the average (EMA) at the last update,
whatever it scores. Each run is then scored on the test split at every input
size from 288 to 608 (VOC 2007 mAP at IoU 0.5), and the record keeps every
run's curve, its seed and its wall time. Accuracy does not depend on the
machine's speed; the wall times do.

The record of a full run ships with the library (:func:`reference`);
chapter 8 draws it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import torch

from ..config import parse_sizes
from ..runtime import default_device, hardware
from . import load_average, write_record

RECIPE = ("--dataset", "bccd", "--batch-size", "16", "--lr", "0.01", "--burn-in", "30",
          "--steps", "0.8,0.95", "--grad-clip", "10", "--ema-decay", "0.999", "--size-every", "10",
          "--val-split", "none", "--workers", "1", "--no-progress")
"""Chapter 9's recipe as ``yolov2 train`` options; the experiment adds width, sizes, updates and seed."""


REFERENCE = Path(__file__).with_name("records") / "multiscale_bccd.json"


def reference() -> dict:
    """The shipped record of ``python -m yolov2_lib.bench multiscale`` (its defaults, three seeds)."""
    return json.loads(REFERENCE.read_text())


def train_command(sizes: Sequence[int | str], *, updates: int, seed: int | str, width: float,
                  out: Path | str) -> list[str]:
    """The ``yolov2 train`` arguments of one run: the recipe, then what the experiment sets."""
    return ["train", *RECIPE, "--width", str(width), "--sizes", ",".join(map(str, sizes)),
            "--max-iterations", str(updates), "--seed", str(seed), "--out", str(out)]


def score_at_sizes(checkpoint: Path, dataset, sizes: Sequence[int]) -> dict[int, float]:
    """VOC 2007 mAP of a run's averaged weights on ``dataset`` at every input size."""
    from ..checkpoint import model_from_checkpoint
    from ..inference import evaluate_model

    model = model_from_checkpoint(checkpoint).model
    return {s: float(evaluate_model(model, dataset, input_size=s).map_11point) for s in sizes}


def summarise(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Mean mAP over seeds, per arm and test size: ``{arm: {size: mean}}`` (sizes as strings)."""
    arms: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for size, value in run["map"].items():
            arms.setdefault(run["arm"], {}).setdefault(size, []).append(value)
    return {arm: {s: round(statistics.fmean(v), 4) for s, v in per.items()} for arm, per in arms.items()}


def main(argv: list[str] | None = None) -> int:
    from .. import cli
    from ..data.catalog import split
    from ..precision import autocast_dtype, precision_name

    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench multiscale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=800, help="updates per run (16 images each)")
    parser.add_argument("--seeds", default="0,1", help="seeds, comma-separated: one run per arm and seed")
    parser.add_argument("--width", type=float, default=0.125, help="channel multiplier of the network")
    parser.add_argument("--arms", nargs="+", default=["single=416", "multi=320-608"],
                        help="NAME=SIZES, the training sizes of each arm")
    parser.add_argument("--test-sizes", default="288-608", help="input sides to score at")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        arms = {name: parse_sizes(sizes, f"--arms {name}") for name, sizes in (a.split("=", 1) for a in args.arms)}
        test_sizes = parse_sizes(args.test_sizes, "--test-sizes")
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError as err:
        parser.error(str(err))
    if args.updates < 1:
        parser.error("--updates must be at least 1")

    test = split("bccd", "test").dataset()
    work = args.work or Path(tempfile.mkdtemp(prefix="yolov2-multiscale-"))
    device = default_device()  # what `yolov2 train` picks
    print(f"{hardware(device)}; runs in {work}")
    runs = []
    for seed in seeds:
        for arm, sizes in arms.items():
            out = work / f"{arm}-seed{seed}"
            command = train_command(sizes, updates=args.updates, seed=seed, width=args.width, out=out)
            start = time.perf_counter()
            if cli.main(command) != 0:
                print(f"error: the run {arm} (seed {seed}) failed: yolov2 {' '.join(command)}")
                return 1
            seconds = time.perf_counter() - start
            scores = score_at_sizes(out / "last.pt", test, test_sizes)
            runs.append({"arm": arm, "sizes": sizes, "seed": seed, "train_seconds": round(seconds, 1),
                         "map": {str(s): round(m, 4) for s, m in scores.items()}})
            print(f"{arm:>8} seed {seed}: {seconds / 60:5.1f} min;  "
                  + "  ".join(f"{s}: {m:.3f}" for s, m in scores.items()), flush=True)
    means = summarise(runs)
    for arm, per in means.items():
        print(f"{arm:>8} mean: " + "  ".join(f"{s}: {m:.3f}" for s, m in per.items()))
    record = {
        "benchmark": "multiscale", "date": date.today().isoformat(),
        "hardware": hardware(device), "precision": precision_name(autocast_dtype("auto", device)),
        "load_average": load_average(),
        "command": "yolov2 " + " ".join(train_command(["SIZES"], updates=args.updates, seed="SEED",
                                                      width=args.width, out="RUN")),
        "updates": args.updates, "width": args.width, "seeds": seeds, "test_sizes": test_sizes,
        "arms": arms, "runs": runs, "mean_map": means,
    }
    if args.json:
        write_record(args.json, record)
    return 0
