"""Benchmark: one augmented training sample, float pipeline vs the dataset's uint8 one; the colour distortion.

``python -m yolov2_lib.bench data [--size 416] [--images 32] [--repeats 3] [--threads 1]
[--allocator both|default|tuned] [--json PATH]``

Chapter 9 (training end to end) trains while one DataLoader worker prepares
the next batch; this times that worker's work per image on the BCCD training
images, with darknet's augmentation (:class:`~yolov2_lib.data.transforms.Augment`
defaults) and the same random draws for every variant:

- ``float``: decode to float32 (:func:`~yolov2_lib.data.voc.load_image`), then
  :func:`~yolov2_lib.data.transforms.transform` in float32: crop, resize,
  flip, colour distortion (the pipeline as darknet writes it);
- ``uint8``: :class:`~yolov2_lib.data.voc.DetectionDataset`'s path: decode to
  uint8, crop and resize in uint8 (torch's channels-last kernel), float32 from
  there on;
- the colour distortion alone on ``size x size`` images:
  :func:`~yolov2_lib.data.transforms.distort` against the textbook chain it
  folds together (``rgb_to_hsv``, shift and scale, ``hsv_to_rgb``, clip).

A DataLoader worker computes with one thread, hence ``--threads 1``. The
variants run in interleaved rounds over the same ``--images`` images; the
median of the rounds, per image, is reported. With ``--allocator both`` (the
default) a second process repeats the measurement with
:func:`~yolov2_lib.runtime.tune_allocator` in force, which the Trainer sets
before it forks its workers; every ratio is against ``float`` with glibc's
default allocator.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from pathlib import Path

import torch

from ..data.catalog import split
from ..data.transforms import Augment, distort, hsv_to_rgb, rgb_to_hsv, sample_generator, sample_params, transform
from ..data.voc import load_image
from ..runtime import tune_allocator
from . import cpu_name, interleaved_times, load_average, run_with_tuned_allocator, write_record


def distort_textbook(image: torch.Tensor, dhue: float, dsat: float, dexp: float) -> torch.Tensor:
    """The colour distortion as three steps: to HSV, shift hue and scale saturation and value, back, clip."""
    hue, sat, value = rgb_to_hsv(image).unbind(0)
    return hsv_to_rgb(torch.stack(((hue + dhue) % 1.0, sat * dsat, value * dexp))).clamp_(0, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench data", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=416, help="network input side in pixels")
    parser.add_argument("--images", type=int, default=32, help="training images per round")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (a DataLoader worker uses 1)")
    parser.add_argument("--allocator", choices=("both", "default", "tuned"), default="both",
                        help="glibc's default malloc, runtime.tune_allocator, or default here and tuned in a "
                             "second process")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if args.size < 32 or args.images < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--size must be >= 32 and --images, --repeats, --threads >= 1")
    torch.set_num_threads(args.threads)
    tuned = args.allocator == "tuned" and tune_allocator()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCCD's two zero-area boxes; chapter 1 shows them
        records = split("bccd", "train").records[: args.images]  # files and boxes
    augment = Augment()

    def pipeline(dtype: torch.dtype) -> None:
        for index, rec in enumerate(records):
            image = load_image(rec.path, dtype)
            transform(image, rec.boxes, args.size, augment=augment, generator=sample_generator(0, 0, index))

    gen = torch.Generator().manual_seed(0)
    pictures = [torch.rand(3, args.size, args.size, generator=gen) for _ in range(4)]
    draws = [sample_params(640, 480, augment, sample_generator(0, 0, i)) for i in range(args.images)]

    def colour(fn) -> None:
        for i, p in enumerate(draws):
            fn(pictures[i % len(pictures)], p.dhue, p.dsat, p.dexp)

    fns = {
        "float": lambda: pipeline(torch.float32),
        "uint8": lambda: pipeline(torch.uint8),
        "distort, textbook HSV chain": lambda: colour(distort_textbook),
        "distort": lambda: colour(distort),
    }
    record: dict = {
        "benchmark": "data", "cpu": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "size": args.size, "images": len(records), "repeats": args.repeats,
        "allocator": "tuned" if tuned else "default", "load_average_before": load_average(),
    }  # fmt: skip
    times = interleaved_times(fns, args.repeats, 1, torch.device("cpu"))
    suffix = " +tuned alloc" if tuned else ""
    rows = [{"variant": name + suffix, "allocator": record["allocator"],
             "ms_per_image": 1e3 * statistics.median(t) / len(records),
             "runs_ms_per_image": [1e3 * v / len(records) for v in t]} for name, t in times.items()]
    if args.allocator == "both":
        child = ["--size", str(args.size), "--images", str(args.images), "--repeats", str(args.repeats),
                 "--threads", str(args.threads)]
        rows += run_with_tuned_allocator("data", child)["results"]
    base = {"pipeline": rows[0]["ms_per_image"], "distort": rows[2]["ms_per_image"]}  # this process's float rows
    print(f"\none augmented BCCD training image at {args.size} (640x480 JPEG, darknet's augmentation), "
          f"{record['threads']} thread(s), median of {args.repeats} rounds of {len(records)} images; "
          f"{record['cpu']}, torch {torch.__version__}")
    print(f"{'variant':<42} {'ms/image':>9} {'speed-up':>9}  runs (ms/image)")
    for row in rows:
        reference = base["distort" if row["variant"].startswith("distort") else "pipeline"]
        row["speedup"] = reference / row["ms_per_image"]
        print(f"{row['variant']:<42} {row['ms_per_image']:>9.2f} {row['speedup']:>8.2f}x  "
              + ", ".join(f"{v:.2f}" for v in row["runs_ms_per_image"]))
    print("(speed-ups: the pipelines against 'float', the distortions against the textbook chain, "
          "both with the default allocator)")
    record["results"] = rows
    record["load_average_after"] = load_average()
    if args.json is not None:
        write_record(args.json, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
