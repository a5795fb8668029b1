"""Experiment: what each YOLO v2 idea buys, measured on BCCD (the paper's Table 2, one idea at a time).

``python -m yolov2_lib.bench ablation --arm ARM --seed SEED``   one part: one arm, one seed
``python -m yolov2_lib.bench ablation --arm all --seeds 0,1,2`` every part the record lacks
``python -m yolov2_lib.bench ablation --summary``               the table, from the record

Chapter 9's recipe (a 1/8-width YOLO v2 trained from random weights on the
BCCD blood cells, 640 updates of 16 images, sizes 320 to 416) is run once as
it is (``yolov2``) and once with each idea taken out, everything else equal
(the same command, seed, updates and data order):

- ``no_batch_norm``: plain convolutions with biases, no batch norm;
- ``hand_picked_priors``: five anchors picked by hand the way Faster R-CNN
  picks them (three sizes of square, two 1:2 boxes) instead of k-means;
- ``offset_location``: unconstrained, RPN-style offsets ``x = x_a + t_x w_a``
  instead of sigmoid offsets bounded to the cell;
- ``no_passthrough``: no passthrough layer;
- ``single_scale``: every batch at 416 instead of sizes from 320 to 416.

The high-resolution detector needs no training of its own: every ``yolov2``
run is also scored at 544. Each run keeps its averaged (EMA) weights at the
last update, with no validation split choosing among them, and is scored on
the test split by the VOC 2007 rule (11-point AP) and the all-point rule.

Each part appends its run to the record (default: the one shipped with the
library), replacing an earlier run of the same arm and seed, so the
experiment can be spread over several sittings; an interrupted part is
simply run again. Accuracy does not depend on the machine's speed: the runs
compute in float32 on one thread.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch

from ..errors import YOLOv2Error
from ..files import FolderLock, write_json
from ..runtime import git_commit, hardware
from . import load_average

RECORD = Path(__file__).with_name("records") / "ablation_bccd.json"

RECIPE = ("--dataset", "bccd", "--width", "0.125", "--sizes", "320,352,384,416", "--batch-size", "16",
          "--lr", "0.01", "--burn-in", "30", "--steps", "0.8,0.95", "--grad-clip", "10", "--ema-decay", "0.999",
          "--val-split", "none", "--amp", "fp32", "--workers", "1", "--threads", "1", "--no-progress")
"""Chapter 9's recipe as ``yolov2 train`` options, in float32 on one thread, without a validation split."""

UPDATES = 640
TEST_SIZES = (416, 544)

# Five anchors chosen without looking at the data, the way Faster R-CNN chooses
# them: squares of 64, 128 and 256 pixels and the two 1:2 boxes of 128 pixels'
# area, at a 416-pixel input (grid cells of 32 pixels).
HAND_PICKED = ((2.0, 2.0), (2.83, 5.66), (4.0, 4.0), (5.66, 2.83), (8.0, 8.0))


@dataclass(frozen=True)
class Arm:
    """One arm of the experiment: what it takes out, its extra ``yolov2 train`` options and its paper row."""

    what: str
    options: tuple[str, ...]
    paper_row: str | None


ARMS: dict[str, Arm] = {
    "yolov2": Arm("YOLO v2 as chapter 9 trains it", (), None),
    "no_batch_norm": Arm("plain convolutions with biases instead of batch norm", ("--no-batch-norm",),
                         "batch norm"),
    "hand_picked_priors": Arm("five hand-picked anchors instead of k-means ones",
                              ("--anchors", " ".join(f"{w},{h}" for w, h in HAND_PICKED)),
                              "dimension priors, location prediction"),
    "offset_location": Arm("unconstrained RPN-style offsets instead of sigmoid offsets in the cell",
                           ("--location", "offset"), "dimension priors, location prediction"),
    "no_passthrough": Arm("no passthrough layer", ("--no-passthrough",), "passthrough"),
    "single_scale": Arm("every batch at 416 instead of sizes from 320 to 416", ("--sizes", "416"), "multi-scale"),
}
BASELINE = "yolov2"
HIRES_ROW = "hi-res detector (544)"

NOT_MEASURED = {
    "hi-res classifier": "fine-tuning the classifier at 448 needs ImageNet and days of training; "
                         "the detector here starts from random weights",
    "new network (Darknet-19)": "comparing backbones needs a second backbone (YOLO v1's) pretrained like the first",
    "convolutional, anchor boxes": "a YOLO v1-style head (boxes per cell without priors, one class distribution "
                                   "per cell) is not in the library yet",
}


def train_command(arm: str, *, seed: int, updates: int, out: Path | str) -> list[str]:
    """The ``yolov2`` arguments of one part: the recipe, the arm's options, the updates and the seed.

    Raises:
        YOLOv2Error: for an arm that is not in :data:`ARMS`.
    """
    if arm not in ARMS:
        raise YOLOv2Error(f"unknown arm {arm!r}; the arms are {', '.join(ARMS)}.")
    options = list(RECIPE)
    extra = ARMS[arm].options
    if extra and extra[0] == "--sizes":  # the arm replaces the recipe's sizes
        i = options.index("--sizes")
        del options[i:i + 2]
    return ["train", *options, *extra, "--max-iterations", str(updates), "--seed", str(seed), "--out", str(out)]


def read_record(path: Path) -> dict:
    """The record at ``path``, or an empty one when there is none yet.

    Raises:
        YOLOv2Error: when the file is not a record of this experiment.
    """
    if not path.exists():
        return {"benchmark": "ablation", "runs": []}
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise YOLOv2Error(f"{path}: not JSON (line {exc.lineno}): {exc.msg}") from exc
    if record.get("benchmark") != "ablation" or not isinstance(record.get("runs"), list):
        raise YOLOv2Error(f"{path} is not a record of `bench ablation` (no 'benchmark': 'ablation' and 'runs').")
    return record


def add_run(path: Path, run: dict, header: dict) -> dict:
    """Put ``run`` into the record at ``path``, replacing a run of the same arm, seed and updates.

    The record is read and written under a lock, so parts that end at the
    same time both land; the file is replaced atomically.
    """
    lock = FolderLock(path.parent)
    for attempt in range(100):
        try:
            lock.acquire()
            break
        except YOLOv2Error:
            if attempt == 99:
                raise
            time.sleep(0.1)
    try:
        record = read_record(path)
        key = (run["arm"], run["seed"], run["updates"])
        runs = [r for r in record["runs"] if (r["arm"], r["seed"], r["updates"]) != key]
        runs.append(run)
        runs.sort(key=lambda r: (list(ARMS).index(r["arm"]) if r["arm"] in ARMS else len(ARMS), r["seed"]))
        record = {**record, **header, "runs": runs}
        write_json(path, record)
    finally:
        lock.release()
    return record


def _t95(df: int) -> float:
    """The two-sided 95 % quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t  # scikit-learn's own dependency

    return float(t.ppf(0.975, df))


def _spread(values: list[float]) -> dict:
    n = len(values)
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if n > 1 else float("nan")
    half = _t95(n - 1) * sd / math.sqrt(n) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def summarise(record: dict, *, updates: int = UPDATES, metric: str = "voc07") -> dict:
    """Per arm: the mAP (%) at 416 over seeds, and its difference from YOLO v2 with a 95 % interval.

    A difference is taken seed by seed (the same seed gives both runs the same
    data order) and its interval is Student's t over the seeds. The
    high-resolution row compares each ``yolov2`` run scored at 544 with the
    same weights at 416. ``metric`` is ``"voc07"`` (11-point) or ``"area"``
    (all-point).

    Returns:
        ``{row: {"map": spread, "gain": spread, "paper_gain": float, "what": str}}``, where a spread
        is ``{"n", "mean", "sd", "low", "high"}`` and ``gain`` is what the idea adds (YOLO v2 minus the arm).
    """
    by_arm: dict[str, dict[int, dict]] = {}
    for run in record["runs"]:
        if run["updates"] == updates:
            by_arm.setdefault(run["arm"], {})[run["seed"]] = run["map"]
    base = by_arm.get(BASELINE, {})
    paper = _paper_gains()
    rows: dict[str, dict] = {}
    for arm, seeds in by_arm.items():
        if arm not in ARMS:
            continue
        row = {"what": ARMS[arm].what, "paper_row": ARMS[arm].paper_row,
               "paper_gain": paper.get(ARMS[arm].paper_row),
               "map": _spread([100 * s["416"][metric] for s in seeds.values()])}
        shared = sorted(set(seeds) & set(base))
        if arm != BASELINE and shared:
            row["gain"] = _spread([100 * (base[s]["416"][metric] - seeds[s]["416"][metric]) for s in shared])
        rows[arm] = row
    hires = [s for s in base.values() if "544" in s]
    if hires:
        rows["hires_544"] = {"what": "the same YOLO v2 weights scored at 544 instead of 416",
                             "paper_row": HIRES_ROW, "paper_gain": paper[HIRES_ROW],
                             "map": _spread([100 * s["544"][metric] for s in hires]),
                             "gain": _spread([100 * (s["544"][metric] - s["416"][metric]) for s in hires])}
    return rows


def _paper_gains() -> dict[str, float]:
    from ..paper import TABLE2_PATH

    return {after.change: round(after.voc2007_map - before.voc2007_map, 1)
            for before, after in zip(TABLE2_PATH, TABLE2_PATH[1:])}


def reference() -> dict:
    """The shipped record of this experiment."""
    return read_record(RECORD)


def format_summary(rows: dict, metric: str) -> str:
    """The summary as a plain-text table."""
    rule = "VOC 2007 11-point" if metric == "voc07" else "all-point"
    lines = [f"test mAP at 416 ({rule}), %; gain = what the idea adds (YOLO v2 minus the arm), "
             "paired by seed, with its 95 % interval",
             f"{'arm':<20}{'seeds':>6}{'mAP':>8}{'sd':>6}{'gain':>8}{'interval':>18}{'paper':>8}"]
    for arm, row in rows.items():
        m, g = row["map"], row.get("gain")
        interval = f"[{g['low']:+.1f}, {g['high']:+.1f}]" if g and g["n"] > 1 else "(one seed)"
        gain = f"{g['mean']:>+8.1f}{interval:>18}" if g else " " * 26
        paper = f"{row['paper_gain']:>+8.1f}" if row.get("paper_gain") is not None else ""
        lines.append(f"{arm:<20}{m['n']:>6}{m['mean']:>8.1f}{m['sd']:>6.1f}{gain}{paper}")
    return "\n".join(lines)


def run_part(arm: str, seed: int, *, updates: int, work: Path, test_sizes: tuple[int, ...]) -> dict:
    """Train one arm with one seed through ``yolov2 train`` and score its last (EMA) weights on the test split."""
    from .. import cli
    from ..checkpoint import model_from_checkpoint
    from ..data.catalog import split
    from ..inference import evaluate_model

    work.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=f"{arm}-seed{seed}-", dir=work))  # a fresh folder: a rerun starts over
    command = train_command(arm, seed=seed, updates=updates, out=out)
    start = time.perf_counter()
    if cli.main(command) != 0:
        raise YOLOv2Error(f"the part {arm} (seed {seed}) failed: yolov2 {' '.join(command)}")
    seconds = time.perf_counter() - start
    model = model_from_checkpoint(out / "last.pt").model
    test = split("bccd", "test").dataset()
    scores = {}
    for size in test_sizes:
        result = evaluate_model(model, test, input_size=size)
        scores[str(size)] = {"voc07": round(result.map_11point, 4), "area": round(result.map_area, 4),
                             "ap_voc07": {name: round(float(ap), 4) for name, ap in
                                          zip(result.class_names, result.ap_11point)}}
    return {"arm": arm, "seed": seed, "updates": updates, "train_seconds": round(seconds, 1), "map": scores,
            "date": date.today().isoformat(), "commit": git_commit(Path(__file__).resolve().parent),
            "hardware": hardware(torch.device("cpu"), 1), "load_average": load_average()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", choices=[*ARMS, "all"], help="the arm to run (all: every part the record lacks)")
    parser.add_argument("--seed", type=int, default=None, help="the seed of one part")
    parser.add_argument("--seeds", default="0,1,2", help="with --arm all: the seeds, comma-separated")
    parser.add_argument("--updates", type=int, default=UPDATES, help="updates per run (16 images each)")
    parser.add_argument("--record", type=Path, default=RECORD, help="the record to add to (default: the shipped one)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    parser.add_argument("--summary", action="store_true", help="print the table from the record and stop")
    parser.add_argument("--metric", choices=("voc07", "area"), default="voc07", help="AP rule of the summary")
    args = parser.parse_args(argv)
    if args.updates < 1:
        parser.error("--updates must be at least 1")
    try:
        record = read_record(args.record)
        if args.summary:
            print(format_summary(summarise(record, updates=args.updates, metric=args.metric), args.metric))
            return 0
        if args.arm is None:
            parser.error("say which part to run (--arm ARM --seed SEED, or --arm all), or ask for --summary")
        if args.arm == "all":
            try:
                seeds = [int(s) for s in args.seeds.split(",")]
            except ValueError:
                parser.error(f"--seeds must be integers separated by commas, got {args.seeds!r}")
            done = {(r["arm"], r["seed"]) for r in record["runs"] if r["updates"] == args.updates}
            parts = [(arm, s) for s in seeds for arm in ARMS if (arm, s) not in done]
        elif args.seed is None:
            parser.error(f"--arm {args.arm} needs --seed")
        else:
            parts = [(args.arm, args.seed)]
        header = {"what": "BCCD test mAP (fractions) of chapter 9's recipe with one idea taken out at a time; "
                          "voc07 = VOC 2007 11-point AP, area = all-point AP",
                  "recipe": "yolov2 " + " ".join(train_command(BASELINE, seed=0, updates=args.updates, out="RUN"))
                  .replace("--seed 0", "--seed SEED"),
                  "arms": {name: {"what": arm.what, "options": list(arm.options), "paper_row": arm.paper_row}
                           for name, arm in ARMS.items()},
                  "not_measured": NOT_MEASURED}
        work = args.work or Path(tempfile.mkdtemp(prefix="yolov2-ablation-"))
        print(f"{len(parts)} part(s); runs in {work}")
        for arm, seed in parts:
            sizes = TEST_SIZES if arm == BASELINE else TEST_SIZES[:1]
            run = run_part(arm, seed, updates=args.updates, work=work, test_sizes=sizes)
            add_run(args.record, run, header)
            scores = "  ".join(f"{s}: {v['voc07']:.3f} / {v['area']:.3f}" for s, v in run["map"].items())
            print(f"{arm} seed {seed}: {run['train_seconds'] / 60:.1f} min; mAP (07 / all-point) {scores}",
                  flush=True)
    except YOLOv2Error as exc:
        print(f"error: {exc}")
        return 1
    return 0
