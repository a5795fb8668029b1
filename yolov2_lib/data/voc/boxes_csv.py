"""Boxes CSV files: one row per object, read into records (:func:`read_boxes_csv`) or written from a VOCdevkit (:func:`write_boxes_csv`).

The columns are those of ``voc_boxes.csv`` (:data:`BOXES_CSV_COLUMNS`);
``bccd/bccd_boxes.csv`` has the same ones without ``year``. A file is read
as UTF-8, with or without the byte-order mark a spreadsheet program writes,
and written atomically (:func:`~yolov2_lib.files.atomic_open`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable, Sequence

from ...files import atomic_open
from .annotations import _raw_objects, _read_ids, _read_xml
from .errors import AnnotationError, _report
from .records import _COORDS, ImageRecord, _check_box, _class_index, _make_record, _number

__all__ = ["BOXES_CSV_COLUMNS", "csv_class_names", "read_boxes_csv", "write_boxes_csv"]

BOXES_CSV_COLUMNS: tuple[str, ...] = (
    "split", "year", "image_id", "width", "height", "class",
    "xmin", "ymin", "xmax", "ymax", "difficult",
)  # fmt: skip


def _write_csv(csv_path: str | Path, columns: Sequence[str], rows: list[list[str]]) -> int:
    """Write a header and ``rows`` to ``csv_path`` atomically; returns the number of rows.

    Line ends are csv's default ``"\\r\\n"``, as in the book's mirror.
    """
    with atomic_open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    return len(rows)


def _csv_objects(xml_path: Path, strict: bool) -> list[list[str]]:
    """One XML's objects as boxes-CSV fields ``width, height, class, xmin..ymax, difficult``.

    An XML that does not parse or lacks its size is reported (or raised, when
    ``strict``) and gives no rows.
    """
    try:
        root, width, height = _read_xml(xml_path)
        if width is None or height is None:
            raise AnnotationError(f"{xml_path}: <size> with positive <width>, <height> is missing.")
    except AnnotationError as err:
        _report(str(err), strict, "The image is skipped.")
        return []
    return [[str(width), str(height), name, *(_fmt(c) for c in coords), str(int(difficult))]
            for _, name, coords, difficult in _raw_objects(root, xml_path, strict)]


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_boxes_csv(
    devkit_root: str | Path,
    csv_path: str | Path,
    *,
    years: Iterable[str] | None = None,
    image_sets: Sequence[str] = ("train", "val", "test"),
    strict: bool = False,
) -> int:
    """Rebuild a boxes CSV (the columns of ``voc_boxes.csv``) from a VOCdevkit.

    One row per object: ``split,year,image_id,width,height,class,xmin,ymin,xmax,ymax,difficult``
    with the numbers as the XML holds them (1-based pixels), in the order of
    the years, of ``image_sets``, of each list, and of the objects in each file.
    Class names are written as they are; boxes are not filtered (the readers check them).

    Args:
        devkit_root: the ``VOCdevkit`` folder holding ``VOC2007``, ``VOC2012``, ...
        csv_path: the file to write.
        years: which years (``"2007"``); default every ``VOC*`` folder found.
        image_sets: lists of ``ImageSets/Main`` to export, when present.
        strict: raise on a file or object that cannot be read instead of skipping it.

    Returns:
        The number of rows written.
    """
    devkit_root = Path(devkit_root)
    if years is None:
        year_list = sorted(p.name[3:] for p in devkit_root.glob("VOC*") if (p / "Annotations").is_dir())
    else:
        year_list = [str(y) for y in years]
    if not year_list:
        raise FileNotFoundError(f"No VOC<year>/Annotations folder under {devkit_root}.")
    rows: list[list[str]] = []
    found_list = False
    for year in year_list:
        voc_root = devkit_root / f"VOC{year}"
        for image_set in image_sets:
            list_path = voc_root / "ImageSets" / "Main" / f"{image_set}.txt"
            if not list_path.is_file():
                continue
            found_list = True
            for image_id in _read_ids(list_path):
                objects = _csv_objects(voc_root / "Annotations" / f"{image_id}.xml", strict)
                rows.extend([image_set, year, image_id, *row] for row in objects)
    if not found_list:
        raise FileNotFoundError(
            f"None of the image sets {list(image_sets)} exists under {devkit_root} for years {year_list}."
        )
    return _write_csv(csv_path, BOXES_CSV_COLUMNS, rows)


def _wanted(values: str | Sequence[str] | None) -> set[str] | None:
    if values is None:
        return None
    return {values} if isinstance(values, str) else {str(v) for v in values}


def _csv_text(csv_path: Path) -> io.StringIO:
    """A CSV file's text for :mod:`csv`: UTF-8, with or without the byte-order mark spreadsheet
    programs write (``utf-8-sig``).

    Raises:
        FileNotFoundError: naming the file.
        ValueError: the file is not UTF-8 text (a binary file, another encoding), naming it.
    """
    try:
        data = Path(csv_path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{csv_path} does not exist.") from None
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{csv_path}: not a UTF-8 text CSV (byte 0x{data[exc.start]:02x} at offset {exc.start} "
                         "cannot be decoded); save it as CSV (UTF-8) from your spreadsheet program.") from None


def csv_class_names(csv_path: str | Path) -> list[str]:
    """The sorted class names of a boxes CSV (the default class list of :func:`read_boxes_csv`).

    Chapter 9 explains boxes CSVs (its BCCD boxes are one; `yolov2 train --boxes-csv` reads yours).

    Args:
        csv_path: the boxes CSV.

    Raises:
        ValueError: the file is not a readable UTF-8 CSV, naming it.
    """
    try:
        return sorted({row.get("class") or "" for row in csv.DictReader(_csv_text(Path(csv_path)))})
    except csv.Error as exc:
        raise ValueError(f"{csv_path}: not a readable CSV ({exc}).") from None


def read_boxes_csv(
    csv_path: str | Path,
    image_dir: str | Path,
    *,
    splits: str | Sequence[str] | None = None,
    years: str | Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    one_based: bool = True,
    image_ext: str = ".jpg",
    strict: bool = False,
) -> list[ImageRecord]:
    """Read a boxes CSV (one row per object) into one record per image.

    Required columns: ``image_id, width, height, class, xmin, ymin, xmax, ymax``;
    optional: ``split``, ``year``, ``difficult`` (default 0). Images appear in
    the order of their first row.

    Args:
        csv_path: the CSV file (``bccd/bccd_boxes.csv``, ``voc_boxes.csv``).
        image_dir: the image folder; may contain ``{year}`` and ``{split}``,
            filled from each row (``"VOCdevkit/VOC{year}/JPEGImages"``).
        splits: keep only rows of these splits (``"train"`` or ``("train", "val")``).
        years: keep only rows of these years.
        class_names: the classes; default: the sorted names found in the whole file.
        one_based: the file counts pixels from 1 (VOC, BCCD); ``False`` for 0-based.
        image_ext: extension added to ``image_id``.
        strict: raise on the first bad row instead of skipping it with a warning.

    Returns:
        One :class:`ImageRecord` per image.
    """
    csv_path = Path(csv_path)
    wanted_splits = _wanted(splits)
    wanted_years = _wanted(years)
    with _csv_text(csv_path) as f:
        reader = csv.DictReader(f)
        try:
            rows, all_classes = _csv_rows(reader, csv_path, wanted_splits, wanted_years)
        except csv.Error as exc:
            raise ValueError(f"{csv_path}, line {reader.line_num}: not a readable CSV ({exc}).") from None
    if not rows:
        raise ValueError(f"{csv_path}: no rows (splits={splits}, years={years}).")
    if class_names is None:
        class_names = sorted(all_classes)
    return _records_from_rows(csv_path, rows, image_dir, class_names, one_based, image_ext, strict)


def _csv_rows(reader: csv.DictReader, csv_path: Path, wanted_splits: set[str] | None,
              wanted_years: set[str] | None) -> tuple[list[tuple[int, dict]], set[str]]:
    """The selected rows of a boxes CSV, with their line numbers, and every class name in it."""
    columns = set(reader.fieldnames or ())
    missing = [c for c in ("image_id", "width", "height", "class", *_COORDS) if c not in columns]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {', '.join(missing)}; found {sorted(columns)}.")
    for name, wanted in (("split", wanted_splits), ("year", wanted_years)):
        if wanted is not None and name not in columns:
            raise ValueError(f"{csv_path}: cannot select by {name}: the file has no {name!r} column.")
    rows = []
    all_classes = set()
    for row in reader:
        all_classes.add(row["class"])
        if wanted_splits is not None and row.get("split") not in wanted_splits:
            continue
        if wanted_years is not None and row.get("year") not in wanted_years:
            continue
        rows.append((reader.line_num, row))
    return rows, all_classes


def _records_from_rows(csv_path: Path, rows: list[tuple[int, dict]], image_dir: str | Path,
                       class_names: Sequence[str], one_based: bool, image_ext: str,
                       strict: bool) -> list[ImageRecord]:
    """One :class:`ImageRecord` per image of the rows of :func:`read_boxes_csv`."""
    images: dict[tuple[str, str], dict[str, Any]] = {}
    for line, row in rows:
        where = f"{csv_path}, line {line} (image {row['image_id']!r})"
        year, split = row.get("year") or "", row.get("split") or ""
        size = (_number(row["width"]), _number(row["height"]))
        coords = [_number(row[c]) for c in _COORDS]
        bad = [c for c, v in zip(("width", "height", *_COORDS), (*size, *coords)) if v is None]
        if bad or size[0] < 1 or size[1] < 1:  # type: ignore[operator]
            _report(f"{where}: missing, non-numeric or non-positive {', '.join(bad) or 'width/height'}.",
                    strict, "The row is skipped.")  # fmt: skip
            continue
        width, height = int(size[0]), int(size[1])  # type: ignore[arg-type]
        key = (year, row["image_id"])
        entry = images.get(key)
        if entry is None:
            folder = Path(str(image_dir).format(year=year, split=split))
            entry = images[key] = {"path": folder / f"{row['image_id']}{image_ext}", "width": width,
                                   "height": height, "year": year, "split": split, "objects": []}  # fmt: skip
        elif (entry["width"], entry["height"]) != (width, height):
            _report(f"{where}: size {width}x{height} differs from {entry['width']}x{entry['height']} "
                    "on an earlier row of the same image.", strict, "The row is skipped.")  # fmt: skip
            continue
        label = _class_index(row["class"], class_names, where, strict)
        if label is None:
            continue
        box = _check_box(coords, width, height, where, strict, one_based)  # type: ignore[arg-type]
        if box is None:
            continue
        difficult = (_number(row.get("difficult") or "0") or 0.0) >= 1
        entry["objects"].append((box, label, difficult))
    return [
        _make_record(image_id, e["path"], e["width"], e["height"], e["objects"], e["year"], e["split"])
        for (_, image_id), e in images.items()
    ]
