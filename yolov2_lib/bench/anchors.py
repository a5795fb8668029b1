"""Benchmark: IoU k-means on every VOC box against the same algorithm as a per-box Python loop.

``python -m yolov2_lib.bench anchors [--csv PATH] [--years 2007,2012] [--splits train,val]
[--include-difficult] [--k 5] [--n-init 10] [--repeats 5] [--reference-boxes 3000] [--json PATH]``

Data: the (w, h) of every object of VOC 2007 + 2012 trainval (splits ``train``
and ``val``), difficult objects left out by default as darknet's
``voc_label.py`` leaves them out of training; VOC's 1-based inclusive pixels
give ``w = xmax - xmin + 1``, divided by the image width (``h`` likewise).

1. :class:`~yolov2_lib.anchors.AnchorKMeans` (k = 5, n_init = 10, k-means++,
   mean update, seed 0) fitted on all those boxes: the median of ``--repeats``
   fits.
2. The same algorithm (Lloyd, 1 - IoU, mean update) written naively, one box
   and one centre at a time in plain Python. It would take minutes on all boxes,
   so it runs on a random subset of ``--reference-boxes`` boxes from the same
   k-means++ start until no label changes; its cost per box-iteration is then
   multiplied by the box-iterations the vectorised fit performed
   (``n_boxes * sum of iterations over the n_init runs``). That extrapolation is
   stated in the output and the record. On the subset both implementations must
   end on the same centres; the benchmark checks it.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from ..anchors import AnchorKMeans
from ..data.boxstats import box_sizes
from . import write_record

Shape = tuple[float, float]


def kmeans_python_loop(boxes: list[Shape], centers: list[Shape], max_iter: int = 300) -> tuple[list[Shape], int]:
    """Lloyd's algorithm with d = 1 - IoU, one box and one centre at a time (the naive reference).

    Args:
        boxes: (w, h) pairs.
        centers: k initial (w, h) centres.
        max_iter: most iterations.

    Returns:
        The final centres and the number of iterations run (stops when no label changes).
    """
    k = len(centers)
    labels = [-1] * len(boxes)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        changed = False
        sums = [[0.0, 0.0] for _ in range(k)]
        counts = [0] * k
        for i, (w, h) in enumerate(boxes):
            best, best_iou = 0, -1.0
            for j, (cw, ch) in enumerate(centers):
                inter = min(w, cw) * min(h, ch)
                iou = inter / (w * h + cw * ch - inter)
                if iou > best_iou:
                    best, best_iou = j, iou
            if labels[i] != best:
                labels[i], changed = best, True
            sums[best][0] += w
            sums[best][1] += h
            counts[best] += 1
        if not changed:
            break
        centers = [(s[0] / c, s[1] / c) if c else centers[j] for j, (s, c) in enumerate(zip(sums, counts))]
    return centers, iterations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench anchors", description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=None, help="voc_boxes.csv (default: the dataset registry)")
    parser.add_argument("--years", default="2007,2012")
    parser.add_argument("--splits", default="train,val", help="train,val is trainval; test is VOC 2007 test")
    parser.add_argument("--include-difficult", action="store_true")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="timed fits (the median is reported)")
    parser.add_argument("--reference-boxes", type=int, default=3000, help="subset for the Python-loop reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)

    path = args.csv
    if path is None:
        from ..data.registry import fetch  # lazily: only the benchmark needs the registry

        try:
            path = fetch("voc_box_sizes")
        except Exception as err:  # the registry explains where it looked
            print(f"error: {err}\n(or pass --csv PATH to a voc_boxes.csv or voc_box_sizes.csv)")
            return 2
    years, splits = set(args.years.split(",")), set(args.splits.split(","))
    wh = box_sizes(path, inclusive=True, years=sorted(years), splits=sorted(splits),
                   difficult=args.include_difficult)
    n = len(wh)
    what = (f"VOC {'+'.join(sorted(years))} {'/'.join(sorted(splits))}, "
            f"{'with' if args.include_difficult else 'without'} difficult")
    print(f"{n} boxes ({what}) from {path}")

    # 1. The vectorised estimator on every box.
    times, fit = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        fit = AnchorKMeans(n_clusters=args.k, n_init=args.n_init, random_state=args.seed).fit(wh)
        times.append(time.perf_counter() - start)
    fit_s = statistics.median(times)
    box_iterations = n * int(fit.n_iter_per_init_.sum())
    print(f"AnchorKMeans k={args.k} n_init={args.n_init}: {fit_s:.3f} s (median of {args.repeats}; "
          f"runs {', '.join(f'{t:.3f}' for t in times)}); iterations per init {fit.n_iter_per_init_.tolist()}; "
          f"mean IoU {fit.score(wh):.4f}")

    # 2. The naive loop on a subset, from the same kind of start, extrapolated per box-iteration.
    rng = np.random.RandomState(args.seed)
    subset = wh[rng.choice(n, size=min(args.reference_boxes, n), replace=False)]
    seeded = AnchorKMeans(n_clusters=args.k, n_init=1, max_iter=1, random_state=args.seed)
    init = seeded._init_centers(subset, np.unique(subset, axis=0), np.random.RandomState(args.seed))
    start = time.perf_counter()
    loop_centers, loop_iters = kmeans_python_loop([tuple(r) for r in subset], [tuple(c) for c in init])
    loop_s = time.perf_counter() - start
    per_box_iteration = loop_s / (len(subset) * loop_iters)
    extrapolated = per_box_iteration * box_iterations
    same = AnchorKMeans(n_clusters=args.k, init=init, tol=0.0).fit(subset).cluster_centers_
    expected = np.array(loop_centers)[np.argsort(np.prod(loop_centers, axis=1), kind="stable")]
    agree = float(np.abs(same - expected).max())
    if agree > 1e-9:
        print(f"error: the Python loop and AnchorKMeans disagree on the subset (max difference {agree:.2e})")
        return 1
    print(f"Python loop on {len(subset)} boxes: {loop_s:.3f} s for {loop_iters} iterations = "
          f"{1e6 * per_box_iteration:.2f} us per box-iteration (same centres as AnchorKMeans, max diff {agree:.1e})")
    print(f"Python loop extrapolated to {n} boxes x {int(fit.n_iter_per_init_.sum())} iterations "
          f"(all {args.n_init} inits, k-means++ seeding not counted): {extrapolated:.1f} s")
    print(f"speed-up: {extrapolated / fit_s:.0f}x")

    if args.json is not None:
        record = {
            "benchmark": "anchors",
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "data": {"csv": str(path), "years": sorted(years), "splits": sorted(splits),
                     "include_difficult": args.include_difficult, "n_boxes": n},
            "k": args.k,
            "n_init": args.n_init,
            "vectorised": {"median_s": fit_s, "runs_s": times, "n_iter_per_init": fit.n_iter_per_init_.tolist(),
                           "box_iterations": box_iterations, "mean_iou": fit.score(wh),
                           "centers": fit.cluster_centers_.tolist()},
            "python_loop": {"subset_boxes": len(subset), "iterations": loop_iters, "seconds": loop_s,
                            "per_box_iteration_s": per_box_iteration, "extrapolated_s": extrapolated,
                            "extrapolated": True, "max_center_difference": agree},
            "speedup": extrapolated / fit_s,
        }
        write_record(args.json, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
