"""The detections explorer of chapter 8 (multi-scale training), in the page.

Chapter 8 explains it. One trained detector, run at every input size on a few
test images: the reader picks the image, the input size and a score threshold,
and sees the detections above it with the grid of that size and the ground truth.
Python runs the detector (:class:`yolov2_lib.detect.Detector`) in advance, at each
size, and keeps every detection scoring at least ``min_score``; the page only
chooses among them and filters by score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .. import viz
from ..data import DetectionDataset
from ..detect import Detector
from . import PageWidget, photo_url
from ..errors import YOLOv2Error

__all__ = ["detections_explorer"]

#: Every input size of the paper's multi-scale training and its Table 3, 288 to 608.
SIZES: tuple[int, ...] = tuple(range(288, 609, 32))


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    sizes = list(sizes)
    if not sizes:
        raise YOLOv2Error("detections_explorer needs at least one input size.")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int) or s <= 0 or s % 32:
            raise YOLOv2Error(f"Expected input sizes that are positive multiples of 32, got {s!r}.")
    if len(set(sizes)) != len(sizes):
        raise YOLOv2Error(f"Expected distinct input sizes, got {sizes}.")
    return sorted(sizes)


@torch.inference_mode()
def detections_explorer(
    detector: Detector,
    dataset: DetectionDataset,
    image_ids: Sequence[str],
    *,
    sizes: Sequence[int] = SIZES,
    image_id: str | None = None,
    size: int = 416,
    score: float = 0.25,
    min_score: float = 0.05,
    max_side: int = 480,
) -> PageWidget:
    """The detections of one detector at every input size, on a few images, filtered in the page.

    Chapter 8 (multi-scale training) explains it. For each size, the images are
    resized by ``dataset[(index, size)]`` (as :func:`yolov2_lib.train.evaluate_model`
    does) and run through ``detector`` with their original sizes, so the boxes are in
    the image's pixels; every detection it reports with a score of at least
    ``min_score`` is kept (the detector's own threshold, NMS and ``top_k`` apply
    first). The page has a select for the image and sliders for the size and the
    score threshold; it draws the detections above the threshold in their class
    colours (:data:`yolov2_lib.viz.CLASS_COLORS`), the ground truth dashed white and the
    grid of that size, and counts the boxes. It runs without Python.

    Args:
        detector: the trained detector.
        dataset: where the images and their ground truth come from.
        image_ids: the images to offer (ids of ``dataset.records``).
        sizes: the input sizes, multiples of 32.
        image_id: the initial image (default: the first).
        size: the initial size, one of ``sizes``.
        score: the initial score threshold.
        min_score: the lowest threshold offered; weaker detections are not kept.
        max_side: longest side of each embedded photo, in pixels.

    Returns:
        The explorer; ``.data["images"][i]["detections"][str(size)]`` holds the rows
        ``(x1, y1, x2, y2, score, class)`` kept for image ``i``. The root element carries
        ``data-image``, ``data-size``, ``data-score`` and ``data-count``, the number of
        boxes drawn.
    """
    if not isinstance(detector, Detector):
        raise YOLOv2Error(f"Expected a yolov2_lib.detect.Detector, got {type(detector).__name__}.")
    sizes = _check_sizes(sizes)
    if size not in sizes:
        raise YOLOv2Error(f"The initial size {size} is not one of the sizes {sizes}.")
    if not (0.0 <= min_score <= score <= 1.0) or not math.isfinite(score):
        raise YOLOv2Error(f"Expected 0 <= min_score <= score <= 1, got min_score={min_score}, score={score}.")
    if len(dataset.class_names) != detector.num_classes:
        raise YOLOv2Error(f"The dataset has {len(dataset.class_names)} classes, the detector "
                         f"{detector.num_classes}.")
    if bool(getattr(dataset, "letterbox", False)) != bool(detector.letterbox):
        raise YOLOv2Error(f"The dataset letterboxes (letterbox={dataset.letterbox}) but the detector undoes "
                         f"letterbox={detector.letterbox}: the boxes would land in the wrong place.")
    image_ids = [str(i) for i in image_ids]
    if not image_ids or len(set(image_ids)) != len(image_ids):
        raise YOLOv2Error(f"Expected one or more distinct image ids, got {image_ids}.")
    known = {rec.image_id: k for k, rec in enumerate(dataset.records)}
    unknown = [i for i in image_ids if i not in known]
    if unknown:
        raise YOLOv2Error(f"Image ids {unknown} are not in the dataset.")
    image_id = image_ids[0] if image_id is None else image_id
    if image_id not in image_ids:
        raise YOLOv2Error(f"The initial image {image_id!r} is not one of {image_ids}.")
    indices = [known[i] for i in image_ids]

    images = []
    for k in indices:
        rec = dataset.records[k]
        images.append({"id": rec.image_id, "photo": photo_url(viz.load_rgb(rec.path), max_side),
                       "width": rec.width, "height": rec.height,
                       "gt": [[round(v, 1) for v in row[:4]] + [int(row[4]), int(row[5])] for row in rec.gt().tolist()],
                       "detections": {}})
    for s in sizes:
        batch = [dataset[(k, s)] for k in indices]
        pixels = torch.stack([image for image, _, _ in batch]).to(detector.device)  # (N, 3, s, s)
        found = detector(pixels, image_sizes=[(meta["width"], meta["height"]) for _, _, meta in batch])
        for entry, dets in zip(images, found):
            dets = dets[dets[:, 4] >= min_score].cpu().double()  # (n, 6), by decreasing score
            entry["detections"][str(s)] = [[round(v, 1) for v in row[:4]] + [row[4], int(row[5])]
                                           for row in dets.tolist()]
    names = list(dataset.class_names)
    data = {
        "images": images,
        "sizes": sizes,
        "class_names": names,
        "colors": [viz.CLASS_COLORS[c % len(viz.CLASS_COLORS)] for c in range(len(names))],
        "image": image_ids.index(image_id),
        "size": int(size),
        "score": float(score),
        "min_score": float(min_score),
    }
    return PageWidget("detections", data)
