"""`yolov2 eval`, `detect`, `export` and `anchors`: a trained detector, or a dataset's anchors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import YOLOv2Error
from .options import (_IMAGE_SUFFIXES, _about, _add_data_options, _class_names, _count, _device, _fraction,
                      _HelpFormatter, _load, _positive, _precision, _precision_on_device, _seed, _side, _split,
                      _writable)


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from ..files import write_json
    from ..inference import evaluate_model

    _device(args.device)
    if args.json and args.json != "-":
        _writable(Path(args.json), "--json", folder=False)
        _never_over_the_checkpoint(Path(args.json), args.checkpoint, "--json")
        if Path(args.json).exists() and not args.force:
            raise YOLOv2Error(f"--json {args.json} exists; pass --force to replace it, or choose another file.")
    _precision_on_device(args)
    loaded, _ = _load(args.checkpoint, use_ema=not args.no_ema, device=args.device)
    letterbox = loaded.letterbox if args.letterbox is None else args.letterbox
    data = _split(args, args.split, _class_names(args) or loaded.class_names).dataset(letterbox=letterbox)
    if list(data.class_names) != loaded.class_names:
        raise YOLOv2Error(f"the data's classes {list(data.class_names)} differ from the checkpoint's "
                          f"{loaded.class_names}.")
    result = evaluate_model(
        loaded.model, data, input_size=args.size, batch_size=args.batch_size, num_workers=args.workers,
        conf_threshold=args.conf, nms_threshold=args.nms, amp=args.amp,
        class_names=loaded.class_names, progress=not args.no_progress,
    )
    record = {"checkpoint": str(args.checkpoint), "split": args.split, "images": len(data),
              "input_size": args.size, "letterbox": letterbox, "ema": not args.no_ema, **result.to_dict()}
    if args.json == "-":
        print(json.dumps(record, indent=2))
    else:
        print(f"{args.checkpoint} on {args.split} ({len(data)} images, input {args.size}):")
        print(result.table())
        if args.json:
            write_json(args.json, record)
            print(f"wrote {args.json}")
    return 0


def _never_over_the_checkpoint(path: Path, checkpoint: str, option: str) -> None:
    """Refuse, even with --force, to write an output over the checkpoint it comes from."""
    if Path(checkpoint).is_file() and path.resolve() == Path(checkpoint).resolve():
        raise YOLOv2Error(f"{option} {path} is the checkpoint being read; choose another file.")


def _image_paths(inputs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in _IMAGE_SUFFIXES and q.is_file())
            if not found:
                raise YOLOv2Error(f"{p}: no image files ({', '.join(_IMAGE_SUFFIXES)}) in this folder.")
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            raise YOLOv2Error(f"{p} does not exist.")
    unique = {p.resolve(): p for p in reversed(paths)}  # an image named twice is drawn once
    return [p for p in paths if unique.get(p.resolve()) is p]


def _cmd_detect(args: argparse.Namespace) -> int:
    from ..data.voc import ImageLoadError, load_image
    from ..files import atomic_path, write_json
    from ..inference import detect_images
    from ..pictures import annotate, to_picture

    _device(args.device)
    out = Path(args.out)
    _writable(out, "--out", folder=True)
    paths = _image_paths(args.images)
    inputs = {p.resolve() for p in paths}
    targets: dict[Path, Path] = {}
    for p in paths:
        target = out / f"{p.stem}_det.jpg"
        k = 2
        while target in targets.values():  # two inputs with one name
            target, k = out / f"{p.stem}_det_{k}.jpg", k + 1
        if target.resolve() in inputs:
            raise YOLOv2Error(f"writing {target} would overwrite an input image; choose another --out.")
        targets[p] = target
    there = [t.name for t in (*targets.values(), out / "detections.json") if t.exists()]
    if there and not args.force:
        shown = ", ".join(there[:3]) + (f" and {len(there) - 3} more" if len(there) > 3 else "")
        raise YOLOv2Error(f"--out {out} already holds {shown}: pass --force to replace them, or choose another --out.")
    _precision_on_device(args)
    loaded, _ = _load(args.checkpoint, use_ema=not args.no_ema, device=args.device)
    letterbox = loaded.letterbox if args.letterbox is None else args.letterbox
    out.mkdir(parents=True, exist_ok=True)
    status, report = 0, []
    for p in paths:
        try:
            image = load_image(p)
        except ImageLoadError as exc:
            print(f"yolov2 detect: skipping {p}: {exc}", file=sys.stderr)
            status = 1
            continue
        dets = detect_images(loaded.model, [image], input_size=args.size, letterbox=letterbox,
                             conf_threshold=args.score, nms_threshold=args.nms, amp=args.amp)[0].cpu()
        with atomic_path(targets[p]) as tmp:
            annotate(to_picture(image), dets, loaded.class_names).save(tmp, format="JPEG", quality=95)
        report.append({"image": str(p), "output": str(targets[p]), "detections": [
            {"box": [round(v, 2) for v in row[:4]], "score": round(row[4], 4),
             "class": loaded.class_names[int(row[5])]} for row in dets.tolist()]})
        print(f"{p}: {len(dets)} detection(s) -> {targets[p]}")
    write_json(out / "detections.json", report)
    return status


def _cmd_anchors(args: argparse.Namespace) -> int:
    from ..anchors import kmeans_anchors
    from ..data.boxstats import record_sizes

    records = _split(args, args.split, _class_names(args), images_required=False).records
    found = kmeans_anchors(record_sizes(records).double(), args.num_anchors, args.grid, args.seed)
    anchors = found.anchors.tolist()
    print(f"{args.num_anchors} anchors by IoU k-means on {found.num_boxes} boxes of split {args.split!r}, "
          f"in cells of a {args.grid}x{args.grid} grid (w, h):")
    for w, h in anchors:
        print(f"  {w:.4f}, {h:.4f}")
    print(f"mean IoU: {found.mean_iou:.4f}")
    print("darknet cfg: anchors = " + ", ".join(f"{w:.4f},{h:.4f}" for w, h in anchors))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ..checkpoint import export_weights

    from ..checkpoint import resolve

    out = Path(args.out)
    if out.suffix == ".onnx":
        return _export_onnx(args, out)
    try:
        source = resolve(args.checkpoint)  # a run's checkpoint, exported weights, or a shipped name
    except FileNotFoundError as exc:
        raise YOLOv2Error(str(exc)) from None
    if out.suffix != ".pt":
        raise YOLOv2Error(f"--out {out}: the file must end in .pt (weights; their provenance goes beside it as "
                          f".json) or .onnx (the network for ONNX runtimes).")
    _writable(out, "out", folder=False)
    there = [str(p) for p in (out, out.with_suffix(".json")) if p.exists()]
    if there and not args.force:
        raise YOLOv2Error(f"{' and '.join(there)} exist{'s' if len(there) == 1 else ''}; pass --force to replace "
                          f"{'it' if len(there) == 1 else 'them'}.")
    results = {}
    for item in args.result:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise YOLOv2Error(f"--result {item!r}: expected KEY=VALUE.")
        try:
            results[key] = float(value)
        except ValueError:
            results[key] = value
    with _about(f"{source}:"):
        export_weights(source, out, half=not args.fp32, use_ema=not args.no_ema, results=results)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {out.with_suffix('.json')}")
    return 0


def _export_onnx(args: argparse.Namespace, out: Path) -> int:
    """`yolov2 export CHECKPOINT model.onnx`: the network as ONNX (see yolov2_lib.onnx_export)."""
    if args.result:
        raise YOLOv2Error("--result is recorded in .pt exports only; an .onnx file keeps the detector's description.")
    from ..onnx_export import export_onnx

    _writable(out, "out", folder=False)
    if out.exists() and not args.force:
        raise YOLOv2Error(f"{out} exists; pass --force to replace it.")
    loaded, path = _load(args.checkpoint, use_ema=not args.no_ema)
    if out.resolve() == path.resolve():
        raise YOLOv2Error(f"writing {out} would overwrite the checkpoint; choose another output file.")
    try:
        done = export_onnx(loaded.model, out, weights="fp32" if args.fp32 else "auto",
                           class_names=loaded.class_names, letterbox=loaded.letterbox, input_size=args.size)
    except ImportError as exc:
        raise YOLOv2Error(str(exc)) from None
    (side, batch), diff = next(iter(done.max_abs_diff.items()))
    print(f"wrote {out} ({done.num_bytes / 1e6:.1f} MB; {done.fp16_tensors} weight tensors in float16, "
          f"{done.fp32_tensors} in float32): batch and input size dynamic (sides multiples of 32); "
          f"ONNX Runtime's head differs from PyTorch's by {diff:.1e} at {side}x{side}")
    return 0



def _add_checkpoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint of `yolov2 train` (last.pt or best.pt), exported "
                                      "weights, or the name of a shipped detector (bccd)")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights, not their average")
    p.add_argument("--size", type=_side, default=416, help="network input side (a multiple of 32)")
    p.add_argument("--nms", type=_fraction, default=0.45, help="NMS IoU threshold")
    p.add_argument("--letterbox", action=argparse.BooleanOptionalAction, default=None,
                   help="letterbox the images (default: as in training)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: cpu)")
    p.add_argument("--amp", type=_precision, choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="precision: auto is bf16 where the hardware computes it natively, fp16 on older GPUs, "
                        "float32 elsewhere; fp32 (or off) is float32 everywhere")
    p.add_argument("--bf16", action="store_true", help="same as --amp bf16")


def _add_inference_parsers(sub) -> None:
    e = sub.add_parser("eval", help="VOC AP per class and mAP of a checkpoint on a split",
                       description="Evaluate a checkpoint with the VOC protocol (IoU > 0.5, difficult "
                                   "objects ignored; 11-point VOC07 AP and area AP).",
                       formatter_class=_HelpFormatter)
    _add_checkpoint_options(e)
    _add_data_options(e)
    e.add_argument("--split", default="test", help="split (CSV) or image set (VOC); several joined by commas")
    e.add_argument("--conf", type=_fraction, default=0.005, help="keep detections scoring above this")
    e.add_argument("--batch-size", type=_positive, default=8, help="images per forward pass")
    e.add_argument("--workers", type=_count, default=0, help="DataLoader worker processes")
    e.add_argument("--json", metavar="PATH", help="also write the result as JSON ('-': print JSON only)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument("--force", action="store_true", help="replace the --json file when it exists")
    e.set_defaults(func=_cmd_eval)

    d = sub.add_parser("detect", help="draw a checkpoint's detections on your images",
                       description="Detect objects on image files (or every image of a folder) and write "
                                   "copies with the boxes drawn, plus detections.json, into --out. "
                                   "The input images are never modified.",
                       formatter_class=_HelpFormatter)
    _add_checkpoint_options(d)
    d.add_argument("images", nargs="+", help="image files or folders")
    d.add_argument("--out", default="detections", help="output folder")
    d.add_argument("--score", type=_fraction, default=0.25, help="draw detections scoring above this")
    d.add_argument("--force", action="store_true",
                   help="replace drawings and detections.json that --out already holds")
    d.set_defaults(func=_cmd_detect)

    x = sub.add_parser("export", help="write a checkpoint's weights and provenance as a small file, or as ONNX",
                       description="Keep what inference needs from a training checkpoint -- model "
                                   "configuration, (averaged) weights, class names -- with the run's "
                                   "provenance (command, commit, time, hardware); a JSON copy of everything "
                                   "but the weights goes beside it. The checkpoint is not modified. "
                                   "With an OUT ending in .onnx, write the network instead as an ONNX file "
                                   "(raw head, any batch size and any input side that is a multiple of 32, "
                                   "darknet's reorg order) for ONNX Runtime and the browser (chapter 10); "
                                   "CHECKPOINT may then also be a shipped detector's name (bccd), and the "
                                   "file is checked against PyTorch with ONNX Runtime.",
                       formatter_class=_HelpFormatter)
    x.add_argument("checkpoint", help="best.pt or last.pt of `yolov2 train` (for .onnx also exported weights "
                                      "or a shipped detector's name)")
    x.add_argument("out", help="the .pt file to write, or an .onnx file")
    x.add_argument("--fp32", action="store_true", help="store float32 weights (default: float16, half the size; "
                                                       "for .onnx: float16 where that loses nothing)")
    x.add_argument("--size", type=_side, default=416, help="for .onnx: the input side recorded as the detector's "
                                                           "own (the file accepts any multiple of 32)")
    x.add_argument("--no-ema", action="store_true", help="export the raw weights, not their average")
    x.add_argument("--result", action="append", default=[], metavar="KEY=VALUE",
                   help="a measured result to record, e.g. test_map=0.88 (repeatable)")
    x.add_argument("--force", action="store_true", help="replace an existing output file")
    x.set_defaults(func=_cmd_export)

    a = sub.add_parser("anchors", help="anchors by IoU k-means on a dataset's boxes",
                       description="Cluster the (width, height) of a split's boxes with the 1 - IoU distance "
                                   "and print the anchors in grid cells and their mean IoU (chapter 3).",
                       formatter_class=_HelpFormatter)
    _add_data_options(a, images_required=False)
    a.add_argument("--split", default="train", help="split (CSV) or image set (VOC); several joined by commas")
    a.add_argument("-k", "--num-anchors", type=_positive, default=5, help="number of anchors")
    a.add_argument("--grid", type=_positive, default=13, help="grid cells per side (13 for a 416 input)")
    a.add_argument("--seed", type=_seed, default=0, help="k-means seed")
    a.set_defaults(func=_cmd_anchors)

