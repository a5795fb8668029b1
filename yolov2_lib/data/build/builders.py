"""The builders: pure functions from local annotation files to the derived box CSVs.

One per derived file (:func:`voc_boxes_csv`, :func:`coco_boxes_csv`,
:func:`bccd_boxes_csv`, :func:`voc_demo_boxes_csv`), and
:func:`box_size_table_csv`, which reduces a boxes CSV to its box sizes.
Each writes its CSV atomically and returns the number of rows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

from ..voc.annotations import _read_ids
from ..voc.boxes_csv import _csv_objects, _fmt, _write_csv, write_boxes_csv
from ..voc.errors import _report

__all__ = [
    "BCCD_COLUMNS",
    "BOX_SIZE_KEYS",
    "COCO_COLUMNS",
    "VOC2007_DEMO_IDS",
    "bccd_boxes_csv",
    "voc_boxes_csv",
    "coco_boxes_csv",
    "voc_demo_boxes_csv",
    "box_size_table_csv",
]

BCCD_COLUMNS: tuple[str, ...] = (
    "split", "image_id", "width", "height", "class", "xmin", "ymin", "xmax", "ymax", "difficult",
)  # fmt: skip
COCO_COLUMNS: tuple[str, ...] = ("image_id", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")
# what a box-size table keeps of a boxes CSV, besides dx and dy (those of these columns it has)
BOX_SIZE_KEYS: tuple[str, ...] = ("split", "year", "image_id", "width", "height")
VOC2007_DEMO_IDS: tuple[str, ...] = ("000456", "000542", "001150", "001763", "004545")


def bccd_boxes_csv(
    annotations_dir: str | Path,
    image_sets_dir: str | Path,
    csv_path: str | Path,
    *,
    splits: Sequence[str] = ("train", "val", "test"),
    strict: bool = False,
) -> int:
    """Build ``bccd_boxes.csv`` from the BCCD repository's annotations.

    One row per object, ``split,image_id,width,height,class,xmin,ymin,xmax,ymax,difficult``,
    numbers as the XML holds them (1-based pixels), images sorted by id and
    objects in their file's order. Degenerate boxes are kept as they are (the
    readers check boxes). An image listed in two lists keeps the first
    (in the order of ``splits``), with a warning.

    Args:
        annotations_dir: the ``BCCD/Annotations`` folder (``<image_id>.xml``).
        image_sets_dir: the ``BCCD/ImageSets/Main`` folder (``<split>.txt``).
        csv_path: the file to write.
        splits: the lists to read; each image's split is the list naming it.
        strict: raise on a file or object that cannot be read instead of skipping it.

    Returns:
        The number of rows written.
    """
    annotations_dir, image_sets_dir = Path(annotations_dir), Path(image_sets_dir)
    split_of: dict[str, str] = {}
    for split in splits:
        list_path = image_sets_dir / f"{split}.txt"
        for image_id in _read_ids(list_path):
            first = split_of.setdefault(image_id, split)
            if first != split:
                _report(f"{list_path}: image {image_id!r} is already in {first}.txt.", strict,
                        f"It stays in {first}.")  # fmt: skip
    if not split_of:
        raise ValueError(f"{image_sets_dir}: the lists {', '.join(f'{s}.txt' for s in splits)} name no image.")
    rows: list[list[str]] = []
    for image_id in sorted(split_of):
        objects = _csv_objects(annotations_dir / f"{image_id}.xml", strict)
        rows.extend([split_of[image_id], image_id, *row] for row in objects)
    return _write_csv(csv_path, BCCD_COLUMNS, rows)


def voc_boxes_csv(devkit_root: str | Path, csv_path: str | Path, *, strict: bool = False) -> int:
    """Build ``voc_boxes.csv`` from a VOCdevkit folder (``VOC2007``, ``VOC2012``, ...).

    The rows of :func:`~yolov2_lib.data.voc.write_boxes_csv` for the lists
    ``train``, ``val`` and ``test`` of every year found: years in order, then
    lists, then the images of each list, then the objects of each file, with
    VOC's 1-based pixels as the XML holds them (a non-integer coordinate is
    written as the float it is).

    Args:
        devkit_root: the folder holding ``VOC<year>/Annotations`` and ``VOC<year>/ImageSets/Main``.
        csv_path: the file to write.
        strict: raise on a file or object that cannot be read instead of skipping it.

    Returns:
        The number of rows written.
    """
    return write_boxes_csv(devkit_root, csv_path, image_sets=("train", "val", "test"), strict=strict)


def coco_boxes_csv(instances_json: str | Path, csv_path: str | Path) -> int:
    """Build ``coco_val2017_boxes.csv`` from a COCO ``instances_*.json``.

    One row per annotation, crowd boxes included:
    ``image_id,width,height,class,xmin,ymin,xmax,ymax`` in 0-based pixels.
    Images come in the order of their first annotation, and each image's
    boxes in the file's order. As the common COCO-to-YOLO conversions do,
    whole pixels are kept: ``xmin = int(x)``, ``xmax = int(x) + int(w)``
    (so ``[473.07, 395.93, 38.65, 28.67]`` gives ``473,395,511,423``).

    Args:
        instances_json: the annotation file.
        csv_path: the file to write.

    Returns:
        The number of rows written.

    Raises:
        ValueError: the file lacks ``images``, ``annotations`` or ``categories``,
            or an annotation names an unknown image or category or has no bbox.
    """
    with open(instances_json, "rb") as f:
        data = json.load(f)
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise ValueError(f"{instances_json}: no {', '.join(missing)} in the file (not a COCO instances file?).")
    sizes = {img["id"]: (int(img["width"]), int(img["height"])) for img in data["images"]}
    names = {cat["id"]: cat["name"] for cat in data["categories"]}
    by_image: dict[int, list[list[str]]] = {}  # insertion order: the order of first annotation
    for i, ann in enumerate(data["annotations"]):
        try:
            image_id = ann["image_id"]
            width, height = sizes[image_id]
            name = names[ann["category_id"]]
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"{instances_json}: annotation {i} (id {ann.get('id')!r}) has no usable image, category "
                f"or bbox ({type(err).__name__}: {err})."
            ) from err
        x1, y1 = int(x), int(y)
        by_image.setdefault(image_id, []).append(
            [str(image_id), str(width), str(height), name, str(x1), str(y1), str(x1 + int(w)), str(y1 + int(h))]
        )
    rows = [row for image_rows in by_image.values() for row in image_rows]
    return _write_csv(csv_path, COCO_COLUMNS, rows)


def voc_demo_boxes_csv(
    voc_boxes: str | Path,
    csv_path: str | Path,
    *,
    image_ids: Sequence[str] = VOC2007_DEMO_IDS,
    year: str = "2007",
    split: str = "test",
) -> int:
    """Build ``voc2007_demo/boxes.csv``: the rows of a few images of a boxes CSV.

    Args:
        voc_boxes: a CSV with the columns of ``voc_boxes.csv``.
        csv_path: the file to write (same columns, rows in the source's order).
        image_ids: the images to keep.
        year: their VOC year.
        split: their split.

    Returns:
        The number of rows written.

    Raises:
        ValueError: a column is missing, or an image has no row.
    """
    wanted = set(image_ids)
    with open(voc_boxes, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        needed = ("split", "year", "image_id")
        if header is None or any(c not in header for c in needed):
            raise ValueError(f"{voc_boxes}: expected the columns of voc_boxes.csv, got {header}.")
        at = {c: header.index(c) for c in needed}
        rows = [r for r in reader
                if r[at["image_id"]] in wanted and r[at["year"]] == year and r[at["split"]] == split]  # fmt: skip
    absent = sorted(wanted - {r[at["image_id"]] for r in rows})
    if absent:
        raise ValueError(f"{voc_boxes}: no {split} {year} rows for image(s) {', '.join(absent)}.")
    return _write_csv(csv_path, header, rows)


def box_size_table_csv(boxes_csv: str | Path, csv_path: str | Path) -> int:
    """Reduce a boxes CSV to a box-size table: each box's extent and its image's size.

    One row per row of ``boxes_csv``, in its order, with the columns of
    :data:`BOX_SIZE_KEYS` that it has, then ``dx = xmax - xmin`` and
    ``dy = ymax - ymin`` in the file's own pixels, then ``difficult`` when it
    has one. No class and no position: what :func:`~yolov2_lib.data.boxstats.box_sizes`
    needs, in either pixel convention (VOC's inclusive width is ``dx + 1``),
    and nothing a detector could be trained on.

    Args:
        boxes_csv: a CSV with at least ``width, height, xmin, ymin, xmax, ymax``.
        csv_path: the table to write (``"\\r\\n"`` line ends, as the other built CSVs).

    Returns:
        The number of rows written.

    Raises:
        ValueError: a column is missing or a coordinate is not a number.
    """
    with open(boxes_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        missing = [c for c in ("width", "height", "xmin", "ymin", "xmax", "ymax") if c not in columns]
        if missing:
            raise ValueError(f"{boxes_csv}: missing column(s) {', '.join(missing)}; found {columns}.")
        keys = [c for c in BOX_SIZE_KEYS if c in columns]
        tail = ["difficult"] if "difficult" in columns else []
        rows = []
        for row in reader:
            try:
                dx = float(row["xmax"]) - float(row["xmin"])
                dy = float(row["ymax"]) - float(row["ymin"])
            except ValueError:
                raise ValueError(f"{boxes_csv}, line {reader.line_num}: a corner is not a number.") from None
            rows.append([*(row[c] for c in keys), _fmt(dx), _fmt(dy), *(row[c] for c in tail)])
    return _write_csv(csv_path, [*keys, "dx", "dy", *tail], rows)
