"""Benchmark: YOLOv2-416 inference, plain vs fused batch norm vs fused + channels-last (vs bf16/fp16); post-processing.

``python -m yolov2_lib.bench model [--size 416] [--batch 1 8] [--width 1.0]
[--repeats 5] [--warmup 1] [--device cpu] [--threads N] [--conf 0.25 0.005]
[--nms 0.45] [--top-k 100] [--json PATH]``

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

Post-processing: in the same rounds, :func:`~yolov2_lib.decode.postprocess`
(decode, score filter, class-wise NMS, top-k, boxes to image pixels: what
:class:`~yolov2_lib.detect.Detector` runs after the network) is timed on the
plain model's float32 head output for each ``--conf`` threshold, and printed
as a share of the plain and of the fastest forward pass of the round (target:
under 5 %). The network is untrained, so every score is about
``sigmoid(0) / C`` (0.025 for VOC): at 0.25 (darknet's demo threshold) no pair
passes, at 0.005 (the Detector's and VOC evaluation's default) every one of the
``H*W*A*C`` pairs does (16,900 per image at 416): the most candidates a
trained network can produce, so the worst case.
Every number is measured in this run.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ..decode import decode, postprocess
from ..detect import Detector
from ..precision import for_inference
from ..model import YOLOv2, count_flops, count_parameters, fuse_bn
from . import cpu_name, interleaved_times, load_average, write_record


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
            if for_inference(precision, device) == precision:
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
    parser.add_argument("--conf", type=float, nargs="+", default=[0.25, 0.005],
                        help="post-processing score thresholds to time (0.005: Detector and VOC mAP default)")
    parser.add_argument("--nms", type=float, default=0.45, help="post-processing NMS IoU threshold")
    parser.add_argument("--top-k", type=int, default=100, help="post-processing detections kept per image")
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
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "size": args.size,
        "width": args.width,
        "params": count_parameters(model),
        "gflop_per_image": flops / 1e9,
        "repeats": args.repeats,
        "load_average_before": load_average(),
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    print(f"YOLOv2-{args.size} width {args.width}: {record['params'] / 1e6:.2f} M parameters, "
          f"{flops / 1e9:.2f} GFLOP per image; {record['cpu']}, torch {torch.__version__}, "
          f"{record['threads']} threads, device {device}")

    conv_run, conv_flops = reference_conv(device)
    record["reference_conv"] = {"shape": "8x256x52x52, 3x3 -> 256", "flops": conv_flops, "per_batch": {}}
    results, post_results = [], []
    gen = torch.Generator().manual_seed(0)
    for batch in args.batch:
        x = torch.rand(batch, 3, args.size, args.size, generator=gen).to(device)
        x_cl = x.to(memory_format=torch.channels_last)
        fns: dict[str, Callable[[], object]] = {"reference conv": conv_run}
        for name, net, channels_last in variants:
            fns[name] = (lambda net=net, inp=(x_cl if channels_last else x): net(inp))
        with torch.inference_mode():
            raw = model(x).float()  # (B, A*(5+C), S/32, S/32), what Detector.raw hands to postprocess
        image_sizes = [(500, 375)] * batch  # a typical VOC photo: boxes go back to its pixels
        for conf in args.conf:
            fns[f"post {conf:g}"] = (lambda conf=conf: postprocess(
                raw, model.anchors, model.num_classes, conf_threshold=conf, nms_threshold=args.nms,
                top_k=args.top_k, input_size=(args.size, args.size), image_sizes=image_sizes,
                location=model.config.location))
        with torch.inference_mode():
            times = interleaved_times(fns, args.repeats, args.warmup, device)
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
        post_results += _post_rows(times, raw, model, args, batch, variants)
    record["results"] = results
    record["postprocess"] = post_results
    record["load_average_after"] = load_average()
    print(f"load average (1, 5, 15 min): before {record['load_average_before']}, "
          f"after {record['load_average_after']}")
    if args.json:
        write_record(args.json, record)
    return 0


def _post_rows(times: dict[str, list[float]], raw: Tensor, model: YOLOv2, args: argparse.Namespace,
               batch: int, variants: list) -> list[dict]:
    """Print and return the post-processing rows of one batch size (times from the same rounds)."""
    plain_s = statistics.median(times["plain"])
    fastest = min((name for name, _, _ in variants), key=lambda name: statistics.median(times[name]))
    fastest_s = statistics.median(times[fastest])
    with torch.inference_mode():
        decoded = decode(raw, model.anchors, model.num_classes, model.config.location)
        scores = decoded.objectness.unsqueeze(-1) * decoded.class_probs  # (B, H, W, A, C)
    print(f"post-processing (decode, score filter, class-wise NMS {args.nms}, top {args.top_k}) of batch {batch}; "
          f"share of the plain forward and of the fastest ({fastest}); target < 5 %")
    print(f"{'conf':>8} {'median ms':>10} {'cand./image':>11} {'dets/image':>10} {'% plain':>8} {'% fastest':>9}")
    rows = []
    for conf in args.conf:
        seconds = statistics.median(times[f"post {conf:g}"])
        with torch.inference_mode():
            dets = postprocess(raw, model.anchors, model.num_classes, conf_threshold=conf, nms_threshold=args.nms,
                               top_k=args.top_k, location=model.config.location)
        row = {
            "batch": batch, "conf_threshold": conf, "nms_threshold": args.nms, "top_k": args.top_k,
            "median_s": seconds, "times_s": times[f"post {conf:g}"],
            "candidates_per_image": (scores > conf).sum().item() / batch,
            "detections_per_image": sum(len(d) for d in dets) / batch,
            "percent_of_plain_forward": 100 * seconds / plain_s,
            "fastest_forward": fastest, "percent_of_fastest_forward": 100 * seconds / fastest_s,
        }
        rows.append(row)
        print(f"{conf:>8g} {1e3 * seconds:>10.2f} {row['candidates_per_image']:>11.0f} "
              f"{row['detections_per_image']:>10.1f} {row['percent_of_plain_forward']:>7.2f}% "
              f"{row['percent_of_fastest_forward']:>8.2f}%")
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
