"""Benchmark: a trained detector in float32 and in bfloat16, speed and accuracy (chapter 8).

``python -m yolov2_lib.bench precision [--sizes 288,416,544] [--repeats 3] [--json PATH]``

On the shipped BCCD detector (``pretrained.load("bccd")``) and the BCCD test split:

1. images per second of :class:`~yolov2_lib.detect.Detector` at each size, on a batch of
   4 test images, fp32 and bf16 timed in interleaved rounds (best round of each);
2. the VOC 2007 mAP of both at 416 on the whole test split;
3. how many fp32 detections (score >= 0.25) have a bf16 detection of the same class
   at IoU >= 0.95 (:func:`~yolov2_lib.detect.box_agreement`).

bf16 is measured only where the hardware computes it natively; elsewhere the
benchmark says so and measures fp32 alone. Chapter 8 calls the same functions.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import torch

from ..data.sampler import fixed_size_loader
from ..detect import Detector, box_agreement
from ..evaluate import VOCEvaluator
from ..runtime import hardware
from . import interleaved_times, load_average, write_record
from .train import bf16_native


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 natively (a CPU with AVX512-BF16/AMX, a GPU of 8.0+)."""
    return bf16_native(torch.device(device))[0]


def images_per_second(detectors: dict[str, Detector], dataset, sizes: Sequence[int], batch: int = 4,
                      repeats: int = 2) -> dict[str, dict[int, float]]:
    """Images per second of each detector at each input size, on the first ``batch`` images.

    The detectors are timed in interleaved rounds (so they share the machine's load) and the
    best round counts; the first call at a new size, which also prepares kernels, is not timed.

    Args:
        detectors: name -> :class:`~yolov2_lib.detect.Detector` (all on one device).
        dataset: a :class:`~yolov2_lib.data.voc.DetectionDataset` (items ``(index, size)``).
        sizes: input sides.
        batch: images per forward pass.
        repeats: timed rounds.

    Returns:
        name -> {size: images per second}.
    """
    device = next(iter(detectors.values())).device
    speed: dict[str, dict[int, float]] = {name: {} for name in detectors}
    for size in sizes:
        images = torch.stack([dataset[(i, size)][0] for i in range(batch)]).to(device)  # (b, 3, S, S)
        fns = {name: (lambda d=d: [x.cpu() for x in d(images)]) for name, d in detectors.items()}
        times = interleaved_times(fns, repeats=repeats, warmup=1, device=device)
        for name, seconds in times.items():
            speed[name][size] = batch / min(seconds)
    return speed


def detections_at(detectors: dict[str, Detector], dataset, size: int = 416,
                  batch: int = 8) -> tuple[dict[str, list[torch.Tensor]], list[torch.Tensor]]:
    """Every detector's detections on a whole split at one size, and the split's ground truths.

    Returns:
        (name -> one (N_i, 6) tensor per image in the image's pixels, ground truths per image).
    """
    device = next(iter(detectors.values())).device
    found: dict[str, list[torch.Tensor]] = {name: [] for name in detectors}
    truths: list[torch.Tensor] = []
    for images, _, metas in fixed_size_loader(dataset, size, batch):
        sizes = [(m["width"], m["height"]) for m in metas]
        for name, detector in detectors.items():
            found[name] += [d.cpu() for d in detector(images.to(device), image_sizes=sizes)]
        truths += [m["gt"] for m in metas]
    return found, truths


def voc_map(detections: list[torch.Tensor], truths: list[torch.Tensor], class_names: Sequence[str]) -> float:
    """VOC 2007 (11-point) mAP of per-image detections against ground truths."""
    evaluator = VOCEvaluator(len(class_names), list(class_names))
    evaluator.update(detections, truths)
    return float(evaluator.compute().map_11point)


def main(argv: list[str] | None = None) -> int:
    from .. import pretrained
    from ..data.catalog import split

    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench precision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="288,416,544", help="input sides, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = [int(s) for s in args.sizes.split(",")]

    test = split("bccd", "test").dataset()
    model = pretrained.load("bccd", device=device).model
    native = native_bf16(device)
    detectors = {"fp32": Detector(model, precision="fp32")}
    if native:
        detectors["bf16"] = Detector(model, precision="bf16")
    print(f"{hardware(device)}; native bf16: {native}" + ("" if native else " (bf16 not measured)"))

    speed = images_per_second(detectors, test, sizes, repeats=args.repeats)
    for size in sizes:
        row = "  ".join(f"{name} {speed[name][size]:7.1f}" for name in detectors)
        gain = f"  bf16/fp32 {speed['bf16'][size] / speed['fp32'][size]:.2f}x" if native else ""
        print(f"{size}: images per second  {row}{gain}")
    found, truths = detections_at(detectors, test, 416)
    maps = {name: voc_map(dets, truths, test.class_names) for name, dets in found.items()}
    print("mAP at 416 (VOC 2007, test split):", "  ".join(f"{n} {m:.4f}" for n, m in maps.items()))
    record = {
        "benchmark": "precision", "date": date.today().isoformat(), "hardware": hardware(device),
        "native_bf16": native, "load_average": load_average(), "sizes": sizes, "batch": 4,
        "images_per_s": {n: {str(s): round(v, 2) for s, v in per.items()} for n, per in speed.items()},
        "map_416": {n: round(m, 4) for n, m in maps.items()},
    }
    if native:
        same, n32, n16 = box_agreement(found["fp32"], found["bf16"])
        print(f"score >= 0.25: {n32} fp32 boxes, {n16} bf16 boxes; {same} fp32 boxes have a bf16 box of the "
              f"same class at IoU >= 0.95 ({same / max(n32, 1):.1%})")
        record["speedup"] = {str(s): round(speed["bf16"][s] / speed["fp32"][s], 3) for s in sizes}
        record["boxes"] = {"fp32": n32, "bf16": n16, "same": same}
    if args.json:
        write_record(args.json, record)
    return 0
