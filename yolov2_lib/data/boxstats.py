"""Box shapes of a dataset: the ``(w, h)`` pairs that anchor k-means clusters.

Chapter 3 (anchor boxes by k-means) explains this module.

YOLO v2 resizes every image to a square input (416 x 416) without keeping
its aspect ratio, so what the network sees of a box is its width and height
as fractions of the image: :func:`box_sizes` reads them from a boxes CSV
(``voc_boxes.csv``, ``coco/coco_val2017_boxes.csv``, ``bccd/bccd_boxes.csv``)
or from a box-size table, which keeps of each box only ``dx = xmax - xmin``
and ``dy = ymax - ymin`` (``voc_box_sizes``, ``coco_val2017_box_sizes``: they
ship with the package, the chapter reads them with ``fetch``).

Pixel convention. The caller says which one the file uses (``inclusive``):

- ``inclusive=True``: VOC's 1-based *inclusive* pixels, as the VOC devkit
  measures a box: ``w = xmax - xmin + 1`` (a box with ``xmax == xmin`` is
  one pixel wide);
- ``inclusive=False``: continuous corners, ``w = xmax - xmin`` (COCO's
  0-based boxes; also the reading of darknet's ``voc_label.py``, which makes
  its VOC training labels with ``w = xmax - xmin``).

The other reference the chapter compares against is Faster R-CNN's nine
hand-picked anchors (:func:`faster_rcnn_anchors`), defined in pixels of an
image rescaled so that its shorter side is 600 (:func:`faster_rcnn_scale`).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import YOLOv2Error

__all__ = ["box_sizes", "image_count", "record_sizes", "faster_rcnn_anchors", "faster_rcnn_scale"]

_IMAGE = ("width", "height")
_CORNERS = ("xmin", "ymin", "xmax", "ymax")
_EXTENT = ("dx", "dy")  # a box-size table: xmax - xmin, ymax - ymin


def _wanted(values: str | Sequence[str] | None) -> set[str] | None:
    if values is None:
        return None
    return {values} if isinstance(values, str) else {str(v) for v in values}


def box_sizes(
    csv_path: str | Path,
    *,
    inclusive: bool,
    splits: str | Sequence[str] | None = None,
    years: str | Sequence[str] | None = None,
    difficult: bool = False,
    skip_empty: bool = False,
    return_image_size: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Widths and heights of the boxes of a boxes CSV, as fractions of their image.

    Args:
        csv_path: CSV with (at least) the columns ``width, height, xmin, ymin, xmax,
            ymax`` (image size and box corners in pixels), or a box-size table with
            ``width, height, dx, dy`` (``dx = xmax - xmin``, ``dy = ymax - ymin``);
            optional ``split``, ``year`` and ``difficult`` (missing: 0).
        inclusive: ``True`` for VOC's 1-based inclusive pixels (``w = xmax - xmin + 1``),
            ``False`` for continuous corners (``w = xmax - xmin``, COCO).
        splits: keep only rows of these splits (``("train", "val")`` is VOC trainval).
        years: keep only rows of these years (``("2007", "2012")``).
        difficult: keep the objects flagged difficult (darknet's ``voc_label.py``
            leaves them out of its training labels, the default here).
        skip_empty: drop boxes of zero width or height instead of raising.
        return_image_size: also return the image size of every box.

    Returns:
        (n, 2) float64 ``(w, h)`` in (0, 1] (up to rounding of the annotation), in file
        order; with ``return_image_size``, also the (n, 2) float64 ``(width, height)``
        of each box's image in pixels.

    Raises:
        ValueError: a missing column, a selection by a column the file lacks, a
            non-numeric value or non-positive image size (naming the line), a box
            of zero or negative width or height when ``skip_empty`` is False, a box
            larger than its image, or no box left after the selection.
    """
    csv_path = Path(csv_path)
    wanted_splits, wanted_years = _wanted(splits), _wanted(years)
    one = 1.0 if inclusive else 0.0
    sizes: list[tuple[float, float, float, float]] = []
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        extent = all(c in columns for c in _EXTENT) and not any(c in columns for c in _CORNERS)
        required = _IMAGE + (_EXTENT if extent else _CORNERS)
        missing = [c for c in required if c not in columns]
        if missing:
            raise YOLOv2Error(f"{csv_path}: missing column(s) {', '.join(missing)} (or dx, dy instead of "
                             f"the corners); found {sorted(columns)}.")
        for name, wanted in (("split", wanted_splits), ("year", wanted_years)):
            if wanted is not None and name not in columns:
                raise YOLOv2Error(f"{csv_path}: cannot select by {name}: the file has no {name!r} column.")
        for row in reader:
            if wanted_splits is not None and row["split"] not in wanted_splits:
                continue
            if wanted_years is not None and row["year"] not in wanted_years:
                continue
            where = f"{csv_path}, line {reader.line_num}"
            try:
                width, height, *box = (float(row[c]) for c in required)
                hard = float(row.get("difficult") or 0) >= 1
            except (TypeError, ValueError):
                raise YOLOv2Error(f"{where}: non-numeric value in {[row.get(c) for c in required]}.") from None
            if not all(math.isfinite(v) for v in (width, height, *box)) or width <= 0 or height <= 0:
                raise YOLOv2Error(f"{where}: image size {width} x {height} and box {box} "
                                 "must be finite with a positive image size.")
            if hard and not difficult:
                continue
            dx, dy = box if extent else (box[2] - box[0], box[3] - box[1])
            w, h = dx + one, dy + one
            if w <= 0 or h <= 0:
                if skip_empty:
                    continue
                raise YOLOv2Error(f"{where}: box {box} has width {w:g} and height {h:g} "
                                 f"(inclusive={inclusive}); pass skip_empty=True to drop such boxes.")
            if w > width or h > height:
                raise YOLOv2Error(f"{where}: box {w:g} x {h:g} is larger than its image {width:g} x {height:g} "
                                 f"(inclusive={inclusive}: is that the file's pixel convention?).")
            sizes.append((w, h, width, height))
    if not sizes:
        raise YOLOv2Error(f"{csv_path}: no box left (splits={splits}, years={years}, difficult={difficult}).")
    table = np.array(sizes)  # (n, 4) box w, h and image w, h in pixels
    wh = table[:, :2] / table[:, 2:]  # (n, 2)
    return (wh, table[:, 2:]) if return_image_size else wh


def image_count(csv_path: str | Path, *, splits: str | Sequence[str] | None = None,
                years: str | Sequence[str] | None = None) -> int:
    """How many images a boxes CSV (or box-size table) annotates: distinct ``(year, image_id)``
    among its rows of the chosen splits and years (every row counts, difficult objects too)."""
    wanted_splits, wanted_years = _wanted(splits), _wanted(years)
    with open(csv_path, newline="") as f:
        return len({(row.get("year", ""), row["image_id"]) for row in csv.DictReader(f)
                    if (wanted_splits is None or row.get("split") in wanted_splits)
                    and (wanted_years is None or row.get("year") in wanted_years)})


def record_sizes(records: Sequence) -> torch.Tensor:
    """(n, 2) float32 widths and heights of the boxes of read images, as fractions of their image.

    Args:
        records: :class:`~yolov2_lib.data.voc.ImageRecord` s (a split's records).
    """
    sizes = [(r.boxes[:, 2:] - r.boxes[:, :2]) / torch.tensor([r.width, r.height]) for r in records]  # (N_i, 2)
    return torch.cat(sizes) if sizes else torch.zeros(0, 2)


def faster_rcnn_anchors(
    scales: Sequence[float] = (128, 256, 512), ratios: Sequence[float] = (0.5, 1.0, 2.0)
) -> np.ndarray:
    """Faster R-CNN's hand-picked anchors: every scale times every aspect ratio.

    An anchor of scale ``s`` and ratio ``r = h / w`` has area ``s**2``:
    ``w = s / sqrt(r)``, ``h = s * sqrt(r)``. (py-faster-rcnn rounds them on a
    16-pixel base, e.g. 184 x 96 instead of 181 x 91; the ideal values are used here.)

    Args:
        scales: square roots of the areas, in pixels of the rescaled image.
        ratios: heights over widths.

    Returns:
        (len(scales) * len(ratios), 2) float64 ``(w, h)`` in pixels, scale-major.
    """
    s = np.asarray(scales, dtype=np.float64)
    r = np.asarray(ratios, dtype=np.float64)
    if s.ndim != 1 or r.ndim != 1 or s.size == 0 or r.size == 0 or (s <= 0).any() or (r <= 0).any():
        raise YOLOv2Error(f"Expected non-empty lists of positive scales and ratios, got {scales!r} and {ratios!r}.")
    s, r = s[:, None], r[None, :]  # (S, 1), (1, R)
    return np.stack([s / np.sqrt(r), s * np.sqrt(r)], axis=-1).reshape(-1, 2)  # (S, R, 2) -> (S*R, 2)


def faster_rcnn_scale(image_size: np.ndarray, short_side: float = 600, max_side: float = 1000) -> np.ndarray:
    """Faster R-CNN's image rescaling: shorter side to ``short_side``, longer side at most ``max_side``.

    Args:
        image_size: (n, 2) image ``(width, height)`` in pixels.
        short_side: target of the shorter side.
        max_side: cap of the longer side.

    Returns:
        (n,) factors that multiply pixel sizes of the original image.
    """
    size = np.asarray(image_size, dtype=np.float64)
    if size.ndim != 2 or size.shape[1] != 2 or (size <= 0).any():
        raise YOLOv2Error(f"Expected image_size of shape (n, 2) with positive sizes, got shape {size.shape}.")
    return np.minimum(short_side / size.min(axis=1), max_side / size.max(axis=1))
