"""Benchmark: YOLOv2-416 inference, plain vs fused batch norm vs fused + channels-last (vs bf16/fp16).

``python -m yolov2_lib.bench model [--size 416] [--batch 1 8] [--width 1.0]
[--repeats 5] [--warmup 1] [--device cpu] [--threads N] [--json PATH]``

For each batch size and each variant (eval mode, ``torch.inference_mode``):
the median forward time over the repeats, ms per image, and the achieved
GFLOP/s from :func:`~yolov2_lib.model.count_flops` (29.36 GFLOP per image at
416, a multiply-add counted as 2). The same run measures the machine's own
convolution throughput on one big 3x3 convolution (256 -> 256 channels,
52x52, batch 8, the shape of YOLOv2's middle layers) and prints each
variant's GFLOP/s as a ratio of it. Where the device computes it natively,
the reduced-precision paths of :class:`~yolov2_lib.detect.Detector` (fused +
channels-last + autocast, head cast back to float32) are timed too: ``bf16``
on a CPU with AVX512-BF16/AMX or a GPU that has it, ``fp16`` on CUDA; their
``max |diff|`` against plain is printed beside the plain output's own scale
(and their ``of conv`` ratio, taken against the float32 reference convolution,
can exceed 1).
Every number is measured in this run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ..detect import Detector, resolve_precision
from ..model import YOLOv2, count_flops, count_parameters, fuse_bn
from . import write_record


def _interleaved_times(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int, device: torch.device
) -> dict[str, list[float]]:
    """Time each function once per round, round after round.

    Interleaving makes every variant see the same background load, so the
    ratios stay meaningful on a shared machine.
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


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def reference_conv(device: torch.device, batch: int = 8) -> tuple[Callable[[], object], int]:
    """One 3x3 convolution 256 -> 256 at 52x52: the machine's own conv throughput.

    Returns:
        ``(run, flops)``: a function doing the convolution, and its FLOPs (multiply-add = 2).
    """
    conv = nn.Conv2d(256, 256, 3, padding=1, bias=False).to(device).eval()
    x = torch.randn(batch, 256, 52, 52, device=device)
    return (lambda: conv(x)), 2 * 256 * 256 * 9 * 52 * 52 * batch


def native_precisions(device: torch.device) -> list[str]:
    """The reduced precisions ``device`` computes natively (``[]``, ``["bf16"]``, ``["fp16"]`` or both)."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unsupported one falls back: that is the answer, not news
        for precision in ("bf16", "fp16"):
            if resolve_precision(precision, device) == precision:
                out.append(precision)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench model", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=416, help="input side in pixels (multiple of 32)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="batch sizes to time")
    parser.add_argument("--width", type=float, default=1.0, help="model width multiplier (1.0 is YOLOv2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forward passes per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes before each measurement")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if args.size % 32 or args.size < 32:
        parser.error(f"--size must be a positive multiple of 32, got {args.size}")
    if args.repeats < 1 or args.warmup < 0 or min(args.batch) < 1:
        parser.error("--repeats and --batch must be >= 1, --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)

    model = YOLOv2(width=args.width).to(device).eval()
    flops = count_flops(model, args.size)
    fused = fuse_bn(model)
    fused_cl = fuse_bn(model).to(memory_format=torch.channels_last)
    # (name, function of the input, wants channels-last input)
    variants: list[tuple[str, Callable[[Tensor], Tensor], bool]] = [
        ("plain", model, False), ("fuse_bn", fused, False), ("fuse_bn+channels_last", fused_cl, True)]
    for precision in native_precisions(device):
        variants.append((precision, Detector(model, precision=precision).raw, True))

    record: dict = {
        "benchmark": "model",
        "device": str(device),
        "cpu": _cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "size": args.size,
        "width": args.width,
        "params": count_parameters(model),
        "gflop_per_image": flops / 1e9,
        "repeats": args.repeats,
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    print(f"YOLOv2-{args.size} width {args.width}: {record['params'] / 1e6:.2f} M parameters, "
          f"{flops / 1e9:.2f} GFLOP per image; {record['cpu']}, torch {torch.__version__}, "
          f"{record['threads']} threads, device {device}")

    conv_run, conv_flops = reference_conv(device)
    record["reference_conv"] = {"shape": "8x256x52x52, 3x3 -> 256", "flops": conv_flops, "per_batch": {}}
    results = []
    gen = torch.Generator().manual_seed(0)
    for batch in args.batch:
        x = torch.rand(batch, 3, args.size, args.size, generator=gen).to(device)
        x_cl = x.to(memory_format=torch.channels_last)
        fns: dict[str, Callable[[], object]] = {"reference conv": conv_run}
        for name, net, channels_last in variants:
            fns[name] = (lambda net=net, inp=(x_cl if channels_last else x): net(inp))
        with torch.inference_mode():
            times = _interleaved_times(fns, args.repeats, args.warmup, device)
            outputs = {name: net(x_cl if cl else x).float() for name, net, cl in variants}
        plain_scale = outputs["plain"].abs().max().item()
        conv_s = statistics.median(times.pop("reference conv"))
        conv_gflops = conv_flops / conv_s / 1e9
        record["reference_conv"]["per_batch"][batch] = {"median_s": conv_s, "gflops": conv_gflops}
        print(f"\nbatch {batch}: reference conv {record['reference_conv']['shape']}: {1e3 * conv_s:.1f} ms, "
              f"{conv_gflops:.1f} GFLOP/s (median of {args.repeats}, interleaved with the model runs)")
        print(f"{'variant':<22} {'median ms':>10} {'ms/image':>9} {'images/s':>9} {'GFLOP/s':>8} "
              f"{'of conv':>8} {'speed-up':>8} {'max |diff|':>10}")
        plain_s = statistics.median(times["plain"])
        for name, _, _ in variants:
            seconds = statistics.median(times[name])
            gflops = flops * batch / seconds / 1e9
            row = {
                "batch": batch, "variant": name, "median_s": seconds, "times_s": times[name],
                "max_abs_plain": plain_scale,
                "ms_per_image": 1e3 * seconds / batch, "images_per_s": batch / seconds, "gflops": gflops,
                "ratio_to_conv": gflops / conv_gflops, "speedup_vs_plain": plain_s / seconds,
                "max_abs_diff_vs_plain": (outputs[name] - outputs["plain"]).abs().max().item(),
            }
            results.append(row)
            print(f"{name:<22} {1e3 * seconds:>10.1f} {row['ms_per_image']:>9.1f} {row['images_per_s']:>9.2f} "
                  f"{gflops:>8.1f} {row['ratio_to_conv']:>8.2f} {row['speedup_vs_plain']:>7.2f}x "
                  f"{row['max_abs_diff_vs_plain']:>10.1e}")
        print(f"(max |plain output| = {plain_scale:.1e}: the scale of the diff column)")
    record["results"] = results
    if args.json:
        write_record(args.json, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
