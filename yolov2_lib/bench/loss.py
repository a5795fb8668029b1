"""Benchmark: the loss against a whole training step, and a VOC07-sized mAP evaluation.

``python -m yolov2_lib.bench loss [--batch 16] [--size 416] [--boxes 3] [--width 1.0]
[--repeats 3] [--device cpu] [--json PATH]``

1. :class:`~yolov2_lib.loss.YOLOv2Loss` forward + backward (from the head
   output, model excluded) at batch 16, 416 x 416 input (13 x 13 grid), 3 boxes
   per image, as a fraction of one YOLOv2-416 training step on the same batch
   (model forward, loss, backward, SGD step). Target: under 5 %.
2. :func:`~yolov2_lib.evaluate.evaluate_voc` on a synthetic problem the size of
   VOC 2007 test: 4,952 images, about 100k detections, 20 classes.

Every number printed is a median of the repeats measured in this run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..evaluate import evaluate_voc
from ..loss import YOLOv2Loss
from ..model import YOLOv2
from . import write_record


def _median_seconds(fn: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> tuple[float, list[float]]:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _targets(batch: int, boxes: int, num_classes: int, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    out = []
    for _ in range(batch):
        cls = torch.randint(0, num_classes, (boxes, 1), generator=gen).float()
        centre = 0.05 + 0.9 * torch.rand(boxes, 2, generator=gen)
        size = 0.05 + 0.6 * torch.rand(boxes, 2, generator=gen)
        out.append(torch.cat((cls, centre, size), 1).to(device))
    return out


def synthetic_voc07(seed: int = 0, num_images: int = 4952, dets_per_image: int = 20, num_classes: int = 20):
    """Detections and ground truths shaped like VOC 2007 test (about 3 objects, 20 detections per image)."""
    rng = np.random.default_rng(seed)
    detections, ground_truths = [], []
    for _ in range(num_images):
        m = int(rng.integers(1, 6))
        xy = rng.uniform(0, 400, (m, 2))
        g = np.c_[np.round(xy), np.round(xy + rng.uniform(10, 200, (m, 2))),
                  rng.integers(0, num_classes, m), rng.random(m) < 0.2]
        ground_truths.append(g)
        src = rng.integers(0, m, dets_per_image)
        b = np.round(g[src, :4] + rng.normal(0, 15, (dets_per_image, 4)))
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2])
        cls = np.where(rng.random(dets_per_image) < 0.7, g[src, 4], rng.integers(0, num_classes, dets_per_image))
        detections.append(np.c_[b, rng.random(dets_per_image), cls])
    return detections, ground_truths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench loss", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=416, help="input size in pixels (multiple of 32)")
    parser.add_argument("--boxes", type=int, default=3, help="ground-truth boxes per image")
    parser.add_argument("--width", type=float, default=1.0, help="model width multiplier (1.0 is YOLOv2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps (a full step is slow on CPU)")
    parser.add_argument("--loss-repeats", type=int, default=30, help="timed loss forward+backward passes")
    parser.add_argument("--eval-repeats", type=int, default=3, help="timed VOC evaluations")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip-step", action="store_true", help="time the loss and the evaluation only")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    num_classes = 20
    gen = torch.Generator().manual_seed(0)

    model = YOLOv2(num_classes=num_classes, width=args.width).to(device)
    loss_fn = YOLOv2Loss(model.anchors.detach().cpu(), num_classes, location=model.config.location).to(device)
    images = torch.randn(args.batch, 3, args.size, args.size, generator=gen).to(device)
    targets = _targets(args.batch, args.boxes, num_classes, gen, device)
    grid = args.size // 32
    record: dict = {
        "benchmark": "loss",
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "size": args.size,
        "grid": grid,
        "boxes_per_image": args.boxes,
        "width": args.width,
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)

    # 1a. The loss alone, on a head output that needs a gradient.
    channels = model.num_anchors * (5 + num_classes)
    output = (0.1 * torch.randn(args.batch, channels, grid, grid, generator=gen)).to(device).requires_grad_(True)

    def loss_step() -> None:
        output.grad = None
        loss_fn(output, targets, seen=0).total.backward()

    loss_s, loss_times = _median_seconds(loss_step, args.loss_repeats, 3, device)
    record["loss_fwd_bwd_s"] = loss_s
    print(f"loss forward+backward  batch {args.batch} @{args.size} ({grid}x{grid}), {args.boxes} boxes/image: "
          f"{1e3 * loss_s:.2f} ms (median of {args.loss_repeats})")

    # 1b. A whole training step on the same batch.
    if not args.skip_step:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)

        def train_step() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(images), targets, seen=0).total.backward()
            optimizer.step()

        step_s, step_times = _median_seconds(train_step, args.repeats, 1, device)
        record["train_step_s"] = step_s
        record["train_step_times_s"] = step_times
        record["loss_fraction_of_step"] = loss_s / step_s
        print(f"training step (YOLOv2 width {args.width}): {step_s:.3f} s (median of {args.repeats}); "
              f"loss share {100 * loss_s / step_s:.2f} % (target < 5 %)")

    # 2. VOC 2007-sized evaluation.
    detections, ground_truths = synthetic_voc07()
    num_dets = sum(len(d) for d in detections)
    num_gts = sum(len(g) for g in ground_truths)
    result = None

    def run_eval() -> None:
        nonlocal result
        result = evaluate_voc(detections, ground_truths, num_classes=num_classes)

    eval_s, eval_times = _median_seconds(run_eval, args.eval_repeats, 1, torch.device("cpu"))
    record.update(eval_images=len(detections), eval_detections=num_dets, eval_ground_truths=num_gts,
                  eval_s=eval_s, eval_map_11point=result.map_11point)
    print(f"VOC evaluation {len(detections)} images, {num_dets} detections, {num_gts} ground truths, "
          f"{num_classes} classes: {eval_s:.3f} s (median of {args.eval_repeats}; target well under 2 s)")

    if args.json is not None:
        write_record(args.json, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
