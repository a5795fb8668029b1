"""A tiny training run in its own process, for the kill-and-resume and DDP tests.

    python tests/_train_worker.py --data DIR --out DIR [--resume] [--delay S] [--val] [--stall-in-best-save] ...
    python -m torch.distributed.run --nproc_per_node 2 tests/_train_worker.py --data DIR --out DIR --pair

Also holds :func:`make_synthetic`, the tiny dataset the trainer tests use:
coloured rectangles on noise, written as PNG files with a boxes CSV.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLASSES = ("red", "blue")


def make_synthetic(root: Path, num_images: int = 6, size: tuple[int, int] = (80, 64), seed: int = 0,
                   splits: tuple[str, ...] = ("train",)) -> tuple[Path, Path]:
    """Images with one to three filled rectangles each; returns ``(csv_path, image_dir)``.

    Every split gets ``num_images`` images. Boxes are written 1-based, like VOC and BCCD.
    """
    rng = np.random.default_rng(seed)
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    csv_path = root / "boxes.csv"
    w, h = size
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "image_id", "width", "height", "class", "xmin", "ymin", "xmax", "ymax",
                         "difficult"])
        for split in splits:
            for i in range(num_images):
                pixels = (rng.random((h, w, 3)) * 60).astype(np.uint8)
                for _ in range(int(rng.integers(1, 4))):
                    c = int(rng.integers(2))
                    bw, bh = int(rng.integers(w // 5, w // 2)), int(rng.integers(h // 5, h // 2))
                    x1, y1 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
                    pixels[y1:y1 + bh, x1:x1 + bw] = (220, 30, 30) if c == 0 else (30, 30, 220)
                    writer.writerow([split, f"{split}{i}", w, h, CLASSES[c], x1 + 1, y1 + 1, x1 + bw, y1 + bh, 0])
                Image.fromarray(pixels).save(image_dir / f"{split}{i}.png")
    return csv_path, image_dir


class SlowDataset(torch.utils.data.Dataset):
    """Delegates to a dataset, sleeping before each sample (gives a kill time to land)."""

    def __init__(self, dataset, delay: float) -> None:
        self.dataset, self.delay, self.class_names = dataset, delay, dataset.class_names

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        time.sleep(self.delay)
        return self.dataset[item]


def tiny_model():
    """The tests' detector: two classes, two anchors, 1/16 of darknet's channels, seeded weights."""
    from yolov2_lib.model import YOLOv2

    torch.manual_seed(0)
    return YOLOv2(num_classes=2, width=1 / 16, anchors=((1.0, 1.0), (2.0, 1.5)))


def build(args: argparse.Namespace):
    from yolov2_lib.data.transforms import Augment
    from yolov2_lib.data.voc import DetectionDataset
    from yolov2_lib.train import Trainer, TrainConfig

    data = Path(args.data)
    train = DetectionDataset.from_boxes_csv(data / "boxes.csv", data / "images", splits="train",
                                            class_names=CLASSES, image_ext=".png", augment=Augment(), seed=1)
    model = tiny_model()
    config = TrainConfig(
        max_iterations=args.iterations, batch_size=args.batch, accumulate=args.accumulate, lr=0.01, burn_in=2,
        steps=(0.5,), sizes=(64, 96), size_every=2, num_workers=args.workers, out_dir=args.out,
        checkpoint_every=1, ema_decay=0.9, progress=False, verbose=False, freeze_bn=args.freeze_bn,
        drop_last=True, device="cpu", eval_every=0, eval_size=96,
        amp="off",  # float32 whatever the CPU: the tests compare weights exactly
    )
    dataset = SlowDataset(train, args.delay) if args.delay else train
    val = None
    if getattr(args, "val", False):  # test_ddp builds its own Namespace without it
        val = DetectionDataset.from_boxes_csv(data / "boxes.csv", data / "images", splits="val",
                                              class_names=CLASSES, image_ext=".png")
    return Trainer(model, dataset, config, val_data=val, resume=args.out + "/last.pt" if args.resume else None)


def stall_in_best_save() -> None:
    """Make the first checkpoint file written by a save that also writes best.pt announce itself on
    stdout ("wrote NAME") and then hang, so a test can kill the process between the two writes."""
    from yolov2_lib.train import trainer as train  # the module whose save_checkpoint the trainer calls

    real_save, real_write = train.Trainer.save, train.save_checkpoint
    saving_best = [False]

    def save(self, best=False):
        saving_best[0] = best
        return real_save(self, best)

    def write(state, path):
        written = real_write(state, path)
        if saving_best[0]:
            print(f"wrote {Path(path).name}", flush=True)
            time.sleep(600)
        return written

    train.Trainer.save, train.save_checkpoint = save, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--accumulate", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--freeze-bn", action="store_true")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--val", action="store_true", help="validate on the val split at the end")
    parser.add_argument("--stall-in-best-save", action="store_true",
                        help="hang after the first file written by a save that writes best.pt")
    parser.add_argument("--pair", action="store_true",
                        help="train twice, into OUT/freeze (frozen batch norm) and OUT/live (live batch norm)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.stall_in_best_save:
        stall_in_best_save()
    if args.pair:
        out = args.out
        for name, freeze in (("freeze", True), ("live", False)):
            trainer = build(argparse.Namespace(**{**vars(args), "out": f"{out}/{name}", "freeze_bn": freeze}))
            trainer.fit()
    else:
        trainer = build(args)
        trainer.fit()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    print(f"done {trainer.iteration}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
