"""Benchmark: one YOLOv2 training step, plain fp32 vs channels-last vs bf16 autocast; bf16's loss curve.

``python -m yolov2_lib.bench train [--batch 8] [--size 416] [--width 1.0] [--boxes 3]
[--repeats 3] [--warmup 1] [--device cpu] [--threads N] [--allocator both|default|tuned]
[--curve N] [--curve-lr 1e-3] [--curve-batches 4] [--noise-seeds 1] [--json PATH]``

Chapter 9 (training end to end) trains with the :class:`~yolov2_lib.train.Trainer`
this benchmark times.

1. **Step time.** Each variant is a :class:`~yolov2_lib.train.Trainer` and one
   step is its own :meth:`~yolov2_lib.train.Trainer.train_step` (images to
   the device and memory format, forward under autocast, :class:`~yolov2_lib.loss.YOLOv2Loss`,
   backward, gradient norm, SGD step, schedule): the code that trains, not a copy.

   - ``plain``: fp32, contiguous (NCHW) memory: the plain eager model;
   - ``channels_last``: fp32, channels-last model and input (the Trainer's CPU default);
   - ``bf16+channels_last``: ``amp="bf16"`` autocast and channels-last, only where
     the device computes bf16 natively (a CPU with AVX512-BF16 or AMX,
     :func:`~yolov2_lib.detect.cpu_supports_bf16`; a CUDA GPU that has it);
     elsewhere it is skipped and the reason printed (emulated bf16 is slower than fp32).

   Memory allocator (``--allocator``): the variants above run with glibc's
   default malloc, as a plain PyTorch program does; with ``both`` (the
   default) a second process then times them again with
   :func:`~yolov2_lib.runtime.tune_allocator` in force (freed memory kept for
   reuse: the Trainer's CPU default), and every ratio is against the plain
   step with the default allocator. The setting is process-wide and cannot
   be undone, hence the second process; each prints its reference conv, the
   gauge of the machine's load during its rounds.

   All start from copies of one randomly initialised YOLOv2 (20 classes) and
   train on the same batch: random images and ``--boxes`` random ground truths
   per image. The default schedule is kept, so the timed steps run inside
   darknet's burn-in (learning rate ~1e-15): the weights hardly move and every
   step does the same work. No EMA (``--ema`` adds it). The variants are timed
   in interleaved rounds (one step of each per round) and the median is
   reported, so all see the same background load; the load average before and
   after is printed. The reference convolution of the ``model`` benchmark runs
   in the same rounds as a gauge of the machine's throughput at the time.

   **FLOP convention**: a training step counts 3x the forward FLOPs of
   :func:`~yolov2_lib.model.count_flops` (convolutions only, multiply-add = 2):
   the backward pass computes a gradient for the inputs and one for the
   weights of each convolution, each costing about one forward. Batch norm,
   activations, the loss and the optimizer are not counted.

2. **Loss curve** (``--curve N``). From one initialisation, ``N`` updates on
   the same ``--curve-batches`` fixed batches in turn, with
   ``lr = --curve-lr``, no burn-in and no EMA, for: fp32 (plain), fp32
   channels-last, bf16 + channels-last (where native) and, as the noise
   reference, fp32 from ``--noise-seeds`` other initialisations (seed + 1, ...). Each curve is
   compared with the fp32 one update by update: the mean and the largest
   relative difference ``|loss - loss_fp32| / |loss_fp32|``, and that of the
   mean of the last quarter of the updates. The noise is, for each measure, the
   largest difference of the other initialisations. bf16 "matches fp32 within
   noise" when its mean and last-quarter differences are no larger than that
   (the largest difference is printed too, but over a few noisy updates one
   spike decides it).
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ..precision import cpu_supports_bf16, cuda_supports_bf16
from ..model import YOLOv2, count_flops, count_parameters
from ..runtime import tune_allocator
from ..train import NonFiniteLossError, TrainConfig, Trainer
from . import cpu_name, interleaved_times, load_average, run_with_tuned_allocator, write_record
from .model import reference_conv

NUM_CLASSES = 20
TRAIN_FLOPS_PER_FORWARD = 3  # forward + gradient for the inputs + gradient for the weights
# (name, amp, channels_last) of the timed variants
VARIANTS = (("plain", "fp32", False), ("channels_last", "fp32", True), ("bf16+channels_last", "bf16", True))


def bf16_native(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` computes bf16 natively, and why not when it does not.

    Returns:
        ``(True, "")`` or ``(False, reason)``.
    """
    if device.type == "cpu":
        if cpu_supports_bf16():
            return True, ""
        return False, "this CPU has no AVX512-BF16 or AMX-BF16: bf16 would be emulated, slower than fp32"
    if device.type == "cuda":
        if cuda_supports_bf16(device):
            return True, ""
        return False, f"{torch.cuda.get_device_name(device)} has no native bf16 (compute capability below 8.0)"
    return False, f"no native bf16 path is known on {device.type}"


def random_batch(
    batch: int, size: int, boxes: int, gen: torch.Generator, num_classes: int = NUM_CLASSES
) -> tuple[Tensor, list[Tensor]]:
    """Random images in [0, 1] and ``boxes`` random ground truths per image.

    Returns:
        ``(images, targets)``: (batch, 3, size, size) and ``batch`` tensors (boxes, 5),
        rows ``(class, cx, cy, w, h)`` in [0, 1] image units (as the Trainer's loader gives).
    """
    images = torch.rand(batch, 3, size, size, generator=gen)
    targets = []
    for _ in range(batch):
        cls = torch.randint(0, num_classes, (boxes, 1), generator=gen).float()
        wh = 0.05 + 0.6 * torch.rand(boxes, 2, generator=gen)
        centre = wh / 2 + (1 - wh) * torch.rand(boxes, 2, generator=gen)  # the whole box inside the image
        targets.append(torch.cat((cls, centre, wh), dim=1))
    return images, targets


def make_trainer(
    model: YOLOv2, batch: int, size: int, device: torch.device, *, amp: str, channels_last: bool,
    lr: float = 1e-3, burn_in: int = 1000, ema: bool = False, tune_allocator: bool = False,
) -> Trainer:
    """A :class:`~yolov2_lib.train.Trainer` on a copy of ``model``, for steps fed by hand.

    Args:
        model: the initial weights (not modified: the trainer gets a deep copy).
        batch: images per step.
        size: input side.
        device: where to train.
        amp, channels_last: the :class:`~yolov2_lib.train.TrainConfig` settings of the variant.
        lr, burn_in: learning rate and burn-in updates.
        ema: keep the trainer's EMA of the weights.
        tune_allocator: let the trainer tune this process's allocator (see ``--allocator``).

    Returns:
        The trainer; call ``trainer.train_step(images, targets)``.
    """
    config = TrainConfig(
        batch_size=batch, sizes=(size,), device=str(device), amp=amp, channels_last=channels_last,
        lr=lr, burn_in=burn_in, ema_decay=0.9999 if ema else None, distributed=False,
        progress=False, verbose=False, tune_allocator=tune_allocator,
    )
    # The trainer's sampler needs only the number of images; the steps are fed their batch directly.
    return Trainer(copy.deepcopy(model), list(range(batch)), config)


def loss_curves(
    args: argparse.Namespace, device: torch.device, native: bool
) -> dict[str, list[float]]:
    """Loss per update of each curve run (see the module docstring); a diverged run ends in ``inf``."""
    gen = torch.Generator().manual_seed(args.seed + 100)
    batches = [random_batch(args.batch, args.size, args.boxes, gen) for _ in range(args.curve_batches)]
    runs = [("fp32", args.seed, "fp32", False), ("fp32 channels_last", args.seed, "fp32", True)]
    if native:
        runs.append(("bf16+channels_last", args.seed, "bf16", True))
    for k in range(1, args.noise_seeds + 1):
        runs.append((f"fp32, init seed {args.seed + k}", args.seed + k, "fp32", False))
    curves: dict[str, list[float]] = {}
    for name, seed, amp, channels_last in runs:
        torch.manual_seed(seed)
        model = YOLOv2(num_classes=NUM_CLASSES, width=args.width)
        trainer = make_trainer(model, args.batch, args.size, device, amp=amp, channels_last=channels_last,
                               lr=args.curve_lr, burn_in=0)
        trainer.model.train()
        losses: list[float] = []
        for i in range(args.curve):
            images, targets = batches[i % len(batches)]
            try:
                losses.append(trainer.train_step(images, targets)["loss"])
            except NonFiniteLossError:
                losses += [math.inf] * (args.curve - i)
                break
        curves[name] = losses
        print(f"  {name:<26} " + " ".join(f"{v:.4g}" for v in losses))
        del trainer, model
    return curves


def compare_curves(curves: dict[str, list[float]], reference: str = "fp32") -> dict[str, dict[str, float]]:
    """Relative differences of each curve from ``reference``, update by update.

    Returns:
        name -> ``{"mean_rel_diff", "max_rel_diff", "final_rel_diff"}``: the mean and the
        largest ``|l - l_ref| / |l_ref|`` and the relative difference of the means over the
        last quarter of the updates.
    """
    ref = torch.tensor(curves[reference], dtype=torch.float64)
    tail = max(1, len(ref) // 4)
    out = {}
    for name, values in curves.items():
        if name == reference:
            continue
        cur = torch.tensor(values, dtype=torch.float64)
        rel = (cur - ref).abs() / ref.abs()
        final = abs(cur[-tail:].mean().item() - ref[-tail:].mean().item()) / abs(ref[-tail:].mean().item())
        out[name] = {"mean_rel_diff": rel.mean().item(), "max_rel_diff": rel.max().item(), "final_rel_diff": final}
    return out


def _tuned_rows(args: argparse.Namespace, plain_s: float) -> list[dict]:
    """Time the variants again in a child process with the tuned allocator; rows with ratios to ``plain_s``."""
    argv = ["--curve", "0"]
    for option in ("batch", "size", "width", "boxes", "repeats", "warmup", "device", "threads", "seed"):
        value = getattr(args, option)
        if value is not None:
            argv += [f"--{option}", str(value)]
    if args.ema:
        argv.append("--ema")
    rows = run_with_tuned_allocator("train", argv)["results"]
    for row in rows:
        row["speedup_vs_plain"] = plain_s / row["median_s"]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yolov2_lib.bench train", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=416, help="input side in pixels (multiple of 32)")
    parser.add_argument("--width", type=float, default=1.0, help="model width multiplier (1.0 is YOLOv2)")
    parser.add_argument("--boxes", type=int, default=3, help="ground-truth boxes per image")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per variant (a step is seconds on a CPU)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant first")
    parser.add_argument("--ema", action="store_true", help="also update the trainer's EMA in each step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the data")
    parser.add_argument("--curve", type=int, default=0, help="also train N updates per curve run (0: no curve)")
    parser.add_argument("--curve-lr", type=float, default=1e-3, help="learning rate of the curve runs (no burn-in)")
    parser.add_argument("--curve-batches", type=int, default=4, help="fixed batches the curve runs cycle through")
    parser.add_argument("--noise-seeds", type=int, default=1,
                        help="other initialisations trained in fp32 as the curve's noise reference")
    parser.add_argument("--allocator", choices=("both", "default", "tuned"), default="both",
                        help="glibc's default malloc, runtime.tune_allocator, or default here and tuned in a "
                             "second process (CPU only)")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if args.size % 32 or args.size < 32:
        parser.error(f"--size must be a positive multiple of 32, got {args.size}")
    counts = (args.batch, args.repeats, args.boxes, args.curve_batches, args.noise_seeds)
    if min(counts) < 1 or args.warmup < 0 or args.curve < 0:
        parser.error("--batch, --repeats, --boxes, --curve-batches and --noise-seeds must be >= 1, "
                     "--warmup and --curve >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    native, why_not = bf16_native(device)
    if device.type != "cpu" and args.allocator != "default":
        args.allocator = "default"  # the host allocator does not touch CUDA memory
    tuned = args.allocator == "tuned" and tune_allocator()
    if args.allocator == "tuned" and not tuned:
        print("runtime.tune_allocator() has no effect here (no glibc): timing with the default allocator")

    torch.manual_seed(args.seed)
    model = YOLOv2(num_classes=NUM_CLASSES, width=args.width)
    flops = count_flops(model, args.size)
    step_flops = TRAIN_FLOPS_PER_FORWARD * flops * args.batch
    record: dict = {
        "benchmark": "train",
        "device": str(device),
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "size": args.size,
        "width": args.width,
        "num_classes": NUM_CLASSES,
        "boxes_per_image": args.boxes,
        "params": count_parameters(model),
        "gflop_per_image_forward": flops / 1e9,
        "flop_convention": (f"training step = {TRAIN_FLOPS_PER_FORWARD} x forward FLOPs (convolutions only, "
                            f"multiply-add = 2); batch norm, activations, loss and optimizer not counted"),
        "gflop_per_step": step_flops / 1e9,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "ema": args.ema,
        "bf16_native": native,
        "allocator": "tuned" if tuned else "default",
        "load_average_before": load_average(),
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    print(f"YOLOv2-{args.size} width {args.width}, {NUM_CLASSES} classes: {record['params'] / 1e6:.2f} M parameters, "
          f"{flops / 1e9:.2f} GFLOP per image forward, {step_flops / 1e9:.1f} GFLOP per training step of "
          f"{args.batch} ({record['flop_convention']}); {record['cpu']}, torch {torch.__version__}, "
          f"{record['threads']} threads, device {device}; load average {record['load_average_before']}")

    variants = [v for v in VARIANTS if v[1] == "fp32" or native]
    if not native:
        print(f"bf16+channels_last skipped: {why_not}")
        record["bf16_skipped"] = why_not
    gen = torch.Generator().manual_seed(args.seed)
    images, targets = random_batch(args.batch, args.size, args.boxes, gen)
    trainers = {name: make_trainer(model, args.batch, args.size, device, amp=amp, channels_last=cl, ema=args.ema,
                                   tune_allocator=tuned) for name, amp, cl in variants}
    for trainer in trainers.values():
        trainer.model.train()
    conv_run, conv_flops = reference_conv(device)

    def conv_no_grad() -> None:
        with torch.no_grad():
            conv_run()

    fns: dict[str, Callable[[], object]] = {"reference conv": conv_no_grad}
    for name, trainer in trainers.items():
        fns[name] = (lambda trainer=trainer: trainer.train_step(images, targets))
    times = interleaved_times(fns, args.repeats, args.warmup, device)
    losses = {name: trainer.history["train"]["loss"][-1] for name, trainer in trainers.items()}
    del fns, trainers  # free their models before the curve runs

    conv_s = statistics.median(times.pop("reference conv"))
    conv_gflops = conv_flops / conv_s / 1e9
    record["reference_conv"] = {"shape": "8x256x52x52, 3x3 -> 256, forward", "median_s": conv_s,
                                "gflops": conv_gflops}
    plain_s = statistics.median(times["plain"])
    suffix = " +tuned alloc" if tuned else ""
    results = []
    for name, _, _ in variants:
        seconds = statistics.median(times[name])
        results.append({
            "variant": name + suffix, "allocator": record["allocator"], "median_s": seconds, "times_s": times[name],
            "images_per_s": args.batch / seconds, "gflops": step_flops / seconds / 1e9,
            "ratio_to_conv": step_flops / seconds / conv_flops * conv_s, "speedup_vs_plain": plain_s / seconds,
            "last_loss": losses[name], "reference_conv_gflops": conv_gflops,
        })  # fmt: skip
    if args.allocator == "both":
        results += _tuned_rows(args, plain_s)
    print(f"\ntraining step, batch {args.batch} @{args.size} (median of {args.repeats} interleaved rounds, "
          f"after {args.warmup} warm-up step(s) each); 'conv': the reference conv's GFLOP/s in the same rounds; "
          f"ratios against the plain step with the default allocator")
    print(f"{'variant':<32} {'median s':>9} {'images/s':>9} {'GFLOP/s':>8} {'of conv':>8} {'vs plain':>8}  "
          f"{'last loss':>10} {'conv':>6}  runs (s)")
    for row in results:
        print(f"{row['variant']:<32} {row['median_s']:>9.3f} {row['images_per_s']:>9.2f} {row['gflops']:>8.1f} "
              f"{row['ratio_to_conv']:>8.2f} {row['speedup_vs_plain']:>7.2f}x  {row['last_loss']:>10.4f} "
              f"{row['reference_conv_gflops']:>6.1f}  " + ", ".join(f"{t:.3f}" for t in row["times_s"]))
    print("(goals: channels_last >= 1.15x, bf16+channels_last >= 1.6x the plain step)")
    record["results"] = results

    if args.curve:
        print(f"\nloss curves: {args.curve} updates, lr {args.curve_lr}, no burn-in, on {args.curve_batches} "
              f"fixed batches in turn")
        curves = loss_curves(args, device, native)
        diffs = compare_curves(curves)
        print(f"relative difference from the fp32 curve\n{'curve':<26} {'mean':>9} {'max':>9} {'last quarter':>13}")
        for name, d in diffs.items():
            print(f"{name:<26} {d['mean_rel_diff']:>9.2e} {d['max_rel_diff']:>9.2e} {d['final_rel_diff']:>13.2e}")
        seeds = [d for name, d in diffs.items() if name.startswith("fp32, init seed")]
        noise = {k: max(d[k] for d in seeds) for k in ("mean_rel_diff", "max_rel_diff", "final_rel_diff")}
        record["curve"] = {"updates": args.curve, "lr": args.curve_lr, "batches": args.curve_batches,
                           "losses": curves, "vs_fp32": diffs, "noise": noise, "noise_seeds": args.noise_seeds}
        if native:
            bf16 = diffs["bf16+channels_last"]
            within = all(bf16[k] <= noise[k] for k in ("mean_rel_diff", "final_rel_diff"))
            record["curve"]["bf16_within_noise"] = within
            print(f"bf16 {'matches' if within else 'does NOT match'} fp32 within the noise of "
                  f"{args.noise_seeds} other initialisation(s) (mean {bf16['mean_rel_diff']:.2e} vs "
                  f"{noise['mean_rel_diff']:.2e}, last quarter {bf16['final_rel_diff']:.2e} vs "
                  f"{noise['final_rel_diff']:.2e}; "
                  f"max {bf16['max_rel_diff']:.2e} vs {noise['max_rel_diff']:.2e})")

    record["load_average_after"] = load_average()
    print(f"load average (1, 5, 15 min): before {record['load_average_before']}, after {record['load_average_after']}")
    if args.json is not None:
        write_record(args.json, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
