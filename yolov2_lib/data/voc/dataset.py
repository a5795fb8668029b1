"""The detection ``Dataset``: :class:`DetectionDataset` turns records into ``(image, target, meta)`` samples.

Its images are checked up front (their headers), decoded when asked for,
resized (and augmented) for the input size each request carries.
"""

from __future__ import annotations

import operator
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...boxes import xyxy_to_cxcywh
from ..transforms import Augment, sample_generator, transform
from .annotations import read_voc
from .boxes_csv import csv_class_names, read_boxes_csv
from .errors import DataWarning, ImageLoadError, _report
from .images import image_size, load_image
from .records import VOC_CLASSES, ImageRecord

__all__ = ["DetectionDataset"]


class DetectionDataset(Dataset):
    """Images and boxes ready for YOLO v2: ``(image, target, meta)`` samples.

    An item is an index, or ``(index, size)``, or ``(index, size, epoch)`` --
    the form :class:`~yolov2_lib.data.sampler.MultiScaleBatchSampler` yields,
    so the input size travels with each request and DataLoader workers
    always use the size of the batch they are making.

    A sample is

    - ``image``: (3, S, S) float32 RGB in [0, 1];
    - ``target``: (M, 5) float32 rows ``(class, cx, cy, w, h)`` in [0, 1]
      image units of the network input -- what the loss takes. As in darknet,
      difficult objects are left out unless ``train_difficult``;
    - ``meta``: ``index`` (the record used), ``requested_index``,
      ``image_id``, ``path``, ``width``, ``height`` (original pixels),
      ``input_size``, ``letterbox``, and ``gt``: (N, 6) rows
      ``(x1, y1, x2, y2, class, difficult)`` in original pixels, every object
      included, for evaluation.

    Augmentation (``augment``) is drawn from :func:`~.transforms.sample_generator`
    with ``(seed, epoch, index)``: the same sample whatever the worker.

    Args:
        records: the images (:func:`read_voc`, :func:`read_boxes_csv`).
        class_names: the classes the labels index.
        input_size: ``S`` used when an item carries no size.
        augment: darknet augmentation strengths, or ``None`` (plain resize: evaluation).
        letterbox: keep the aspect ratio inside a grey square instead of stretching.
        seed: seed of the augmentation.
        train_difficult: put difficult objects in ``target`` too.
        min_size: targets narrower or shorter than this (image units) are dropped.
        check_images: open every image's header now (see :mod:`yolov2_lib.data.voc`).
        strict: raise instead of warning and skipping.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        class_names: Sequence[str],
        *,
        input_size: int = 416,
        augment: Augment | None = None,
        letterbox: bool = False,
        seed: int = 0,
        train_difficult: bool = False,
        min_size: float = 0.01,
        check_images: bool = True,
        strict: bool = False,
    ) -> None:
        if input_size <= 0:
            raise ValueError(f"Expected a positive input_size, got {input_size}.")
        self.class_names = tuple(class_names)
        for rec in records:
            if rec.num_objects and int(rec.labels.max()) >= len(self.class_names):
                raise ValueError(
                    f"Image {rec.image_id!r} has label {int(rec.labels.max())}, "
                    f"but only {len(self.class_names)} class names were given."
                )
        self.input_size = int(input_size)
        self.augment = augment
        self.letterbox = letterbox
        self.seed = int(seed)
        self.epoch = 0
        self.train_difficult = train_difficult
        self.min_size = float(min_size)
        self.strict = strict
        self.records: list[ImageRecord] = list(records)
        if check_images:
            self.records = [rec for rec in self.records if self._header_ok(rec)]
        if not self.records:
            raise ValueError("DetectionDataset: no usable image.")
        self._failed: set[int] = set()  # indices whose pixels failed to decode, in this process

    @classmethod
    def from_voc(
        cls,
        voc_root: str | Path,
        image_set: str = "trainval",
        *,
        class_names: Sequence[str] = VOC_CLASSES,
        image_ext: str = ".jpg",
        strict: bool = False,
        **kwargs: Any,
    ) -> "DetectionDataset":
        """Build from a VOC year folder (see :func:`read_voc`); ``kwargs`` go to the constructor."""
        records = read_voc(voc_root, image_set, class_names=class_names, image_ext=image_ext, strict=strict)
        return cls(records, class_names, strict=strict, **kwargs)

    @classmethod
    def from_boxes_csv(
        cls,
        csv_path: str | Path,
        image_dir: str | Path,
        *,
        splits: str | Sequence[str] | None = None,
        years: str | Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        one_based: bool = True,
        image_ext: str = ".jpg",
        strict: bool = False,
        **kwargs: Any,
    ) -> "DetectionDataset":
        """Build from a boxes CSV and image folder (see :func:`read_boxes_csv`)."""
        if class_names is None:  # the same classes for every split of the file
            class_names = csv_class_names(csv_path)
        records = read_boxes_csv(
            csv_path, image_dir, splits=splits, years=years, class_names=class_names,
            one_based=one_based, image_ext=image_ext, strict=strict,
        )  # fmt: skip
        return cls(records, class_names, strict=strict, **kwargs)

    def _header_ok(self, rec: ImageRecord) -> bool:
        try:
            size = image_size(rec.path)
        except ImageLoadError as err:
            _report(str(err), self.strict, "The image is skipped.", ImageLoadError)
            return False
        if size != (rec.width, rec.height):
            message = (f"{rec.path}: the image is {size[0]}x{size[1]} "
                       f"but its annotation says {rec.width}x{rec.height}.")  # fmt: skip
            _report(message, self.strict, "The image is skipped.", ImageLoadError)
            return False
        return True

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_objects(self) -> int:
        return sum(rec.num_objects for rec in self.records)

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for items that carry none (plain indices, ``(index, size)`` pairs)."""
        self.epoch = int(epoch)

    def _unpack(self, item: Any) -> tuple[int, int, int]:
        if isinstance(item, (tuple, list)):
            if len(item) not in (2, 3):
                raise ValueError(f"Expected an index, (index, size) or (index, size, epoch), got {item!r}.")
            index, size = operator.index(item[0]), operator.index(item[1])
            epoch = operator.index(item[2]) if len(item) == 3 else self.epoch
        else:
            index, size, epoch = operator.index(item), self.input_size, self.epoch
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"Index {index} out of range for a dataset of {n} images.")
        if size <= 0:
            raise ValueError(f"Expected a positive input size, got {size} (item {item!r}).")
        return index % n, size, epoch

    def __getitem__(self, item: Any) -> tuple[Tensor, Tensor, dict[str, Any]]:
        index, size, epoch = self._unpack(item)
        n = len(self)
        for step in range(n):
            j = (index + step) % n
            if j in self._failed:
                continue
            rec = self.records[j]
            try:
                image = load_image(rec.path, torch.uint8)  # (3, H, W); float once resized
            except ImageLoadError as err:
                if self.strict:
                    raise
                self._failed.add(j)
                message = f"{err} Using the next image of the dataset in its place."
                warnings.warn(message, DataWarning, stacklevel=2)
                continue
            return self._sample(j, index, rec, image, size, epoch)
        raise ImageLoadError(f"None of the {n} images of the dataset could be decoded.")

    def _sample(
        self, j: int, requested: int, rec: ImageRecord, image: Tensor, size: int, epoch: int
    ) -> tuple[Tensor, Tensor, dict[str, Any]]:
        if image.shape[1:] != (rec.height, rec.width):
            # The header said otherwise at construction; only a file changed since can get here.
            raise ImageLoadError(
                f"{rec.path}: decoded {image.shape[2]}x{image.shape[1]}, "
                f"annotation says {rec.width}x{rec.height}."
            )
        use = torch.ones_like(rec.difficult) if self.train_difficult else ~rec.difficult
        boxes, labels = rec.boxes[use], rec.labels[use]
        generator = sample_generator(self.seed, epoch, j) if self.augment is not None else None
        out, unit_boxes, keep = transform(
            image, boxes, size, augment=self.augment, letterbox=self.letterbox,
            generator=generator, min_size=self.min_size,
        )  # fmt: skip
        target = torch.cat((labels[keep, None].float(), xyxy_to_cxcywh(unit_boxes)), dim=1)  # (M, 5)
        meta = {
            "index": j, "requested_index": requested, "image_id": rec.image_id, "path": str(rec.path),
            "width": rec.width, "height": rec.height, "input_size": size, "letterbox": self.letterbox,
            "gt": rec.gt(),
        }  # fmt: skip
        return out, target, meta
