"""One annotated image, checked: :class:`ImageRecord`, and the checks every box and class name pass.

Both readers (VOC XML in :mod:`.annotations`, boxes CSVs in :mod:`.boxes_csv`)
turn what they read into the same records, through the same checks: a box is
made 0-based, must have an area and lie in its image (a box reaching past the
border is clipped), and its class must be one of the class list
(:data:`VOC_CLASSES`, :data:`BCCD_CLASSES`, or the CSV's own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from .errors import _report

__all__ = ["VOC_CLASSES", "BCCD_CLASSES", "ImageRecord"]

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
BCCD_CLASSES: tuple[str, ...] = ("RBC", "WBC", "Platelets")
_COORDS = ("xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One annotated image, checked.

    Attributes:
        image_id: the image's name without extension (``"000012"``).
        path: the image file.
        width: image width in pixels.
        height: image height in pixels.
        boxes: (N, 4) float32 ``(x1, y1, x2, y2)``, 0-based continuous pixels.
        labels: (N,) int64 class indices.
        difficult: (N,) bool, VOC's "difficult" flag.
        year: the VOC year (``"2007"``) or ``""``.
        split: the image set or CSV split (``"train"``) or ``""``.
    """

    image_id: str
    path: Path
    width: int
    height: int
    boxes: Tensor
    labels: Tensor
    difficult: Tensor
    year: str = ""
    split: str = ""

    @property
    def num_objects(self) -> int:
        return int(self.boxes.shape[0])

    def gt(self) -> Tensor:
        """(N, 6) float32 rows ``(x1, y1, x2, y2, class, difficult)`` in pixels, for evaluation."""
        return torch.cat(
            (self.boxes, self.labels[:, None].float(), self.difficult[:, None].float()), dim=1
        )


def _make_record(
    image_id: str, path: Path, width: int, height: int, objects: list[tuple[tuple[float, ...], int, bool]],
    year: str = "", split: str = "",
) -> ImageRecord:  # fmt: skip
    boxes = torch.tensor([o[0] for o in objects], dtype=torch.float32).reshape(-1, 4)
    labels = torch.tensor([o[1] for o in objects], dtype=torch.int64)
    difficult = torch.tensor([o[2] for o in objects], dtype=torch.bool)
    return ImageRecord(image_id, Path(path), int(width), int(height), boxes, labels, difficult, year, split)


def _check_box(
    coords: Sequence[float], width: int, height: int, where: str, strict: bool, one_based: bool
) -> tuple[float, float, float, float] | None:
    """Validate one box; returns it 0-based and clipped to the image, or ``None`` to skip it."""
    x1, y1, x2, y2 = (c - 1 for c in coords) if one_based else coords
    shown = "(" + ", ".join(f"{c:g}" for c in coords) + ")"
    if x2 < x1 or y2 < y1:
        swapped = " and ".join(a for a, bad in (("xmax < xmin", x2 < x1), ("ymax < ymin", y2 < y1)) if bad)
        _report(f"{where}: box (xmin, ymin, xmax, ymax) = {shown} is inverted ({swapped}); the corners may be "
                "swapped in the file.", strict, "The box is skipped.")  # fmt: skip
        return None
    if x2 == x1 or y2 == y1:
        _report(f"{where}: box (xmin, ymin, xmax, ymax) = {shown} has zero area.", strict,
                "The box is skipped.")  # fmt: skip
        return None
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        _report(f"{where}: box {shown} lies outside the {width}x{height} image.", strict,
                "The box is skipped.")  # fmt: skip
        return None
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        _report(f"{where}: box {shown} reaches outside the {width}x{height} image.", strict,
                "The box is clipped to the image.")  # fmt: skip
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    return (float(x1), float(y1), float(x2), float(y2))


def _class_index(name: str, class_names: Sequence[str], where: str, strict: bool) -> int | None:
    try:
        return list(class_names).index(name)
    except ValueError:
        _report(f"{where}: unknown class name {name!r} (known: {', '.join(class_names)}).", strict,
                "The object is skipped.")  # fmt: skip
        return None


def _number(text: str | None) -> float | None:
    """The finite number a field of a file holds, or ``None`` (missing, not a number, inf, nan)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
