"""PASCAL VOC folders, boxes CSV files and the detection ``Dataset`` built on them.

Chapter 1 (the data behind the book) reads BCCD and VOC with this module;
chapter 9 (training end to end) trains and evaluates on :class:`DetectionDataset`.

Two sources give the same :class:`ImageRecord` list:

- a VOCdevkit folder (``VOC2007/Annotations/*.xml``, ``JPEGImages/*.jpg``,
  ``ImageSets/Main/<set>.txt``): :func:`read_voc`;
- a boxes CSV (one row per object, columns as in ``voc_boxes.csv`` and
  ``bccd/bccd_boxes.csv``) plus an image folder: :func:`read_boxes_csv`.
  :func:`write_boxes_csv` rebuilds such a CSV from a VOCdevkit.

Pixel convention. VOC files count pixels from 1. As darknet's
``voc_label.py`` does, 1 is subtracted from every coordinate and the result
is read as continuous corners, so a box is ``xmax - xmin`` wide (a box with
``xmax == xmin`` has zero area). ``one_based=False`` reads 0-based files
(COCO-style) as they are.

Bad input. Annotations are checked when a dataset is built, never in a
DataLoader worker: an XML that does not parse or lacks its fields, a box
with zero area or outside the image, an unknown class name -- each gives a
:class:`DataWarning` naming the file (and object or line) and is skipped
(a box reaching past the border is clipped), or, with ``strict=True``, an
:class:`AnnotationError`. Images: :class:`DetectionDataset` opens every
image's header up front (missing, unreadable, or a size that disagrees with
its annotation: skipped with a warning, or an error when strict). An image
whose pixel data turns out corrupt only when decoded is replaced, in
non-strict mode, by the next image of the dataset that decodes (the same
one every time, whatever the worker), with a warning; in strict mode it
raises :class:`ImageLoadError` naming the file. Grayscale, palette, RGBA
and 16-bit images are converted to 8-bit-accurate RGB.
"""

from __future__ import annotations

import csv
import io
import math
import operator
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..boxes import xyxy_to_cxcywh
from .transforms import Augment, sample_generator, to_float, transform

__all__ = [
    "VOC_CLASSES",
    "BCCD_CLASSES",
    "BOXES_CSV_COLUMNS",
    "DataWarning",
    "AnnotationError",
    "ImageLoadError",
    "ImageRecord",
    "parse_voc_xml",
    "read_voc",
    "read_boxes_csv",
    "csv_class_names",
    "write_boxes_csv",
    "load_image",
    "image_size",
    "DetectionDataset",
]

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
BCCD_CLASSES: tuple[str, ...] = ("RBC", "WBC", "Platelets")
BOXES_CSV_COLUMNS: tuple[str, ...] = (
    "split", "year", "image_id", "width", "height", "class",
    "xmin", "ymin", "xmax", "ymax", "difficult",
)  # fmt: skip
_COORDS = ("xmin", "ymin", "xmax", "ymax")


class DataWarning(UserWarning):
    """A problem in the data that was worked around: the item was converted, clipped or skipped."""


class AnnotationError(ValueError):
    """An annotation that cannot be used (raised when ``strict=True``, or when nothing can be saved)."""


class ImageLoadError(ValueError):
    """An image file that is missing, unreadable or cannot be decoded."""


def _report(message: str, strict: bool, action: str, error: type[ValueError] = AnnotationError) -> None:
    """Raise ``error(message)`` when strict, else warn ``message`` plus what was done about it."""
    if strict:
        raise error(message)
    warnings.warn(f"{message} {action}", DataWarning, stacklevel=3)


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


# ---------------------------------------------------------------- images


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image, reading only its header.

    Raises:
        ImageLoadError: the file is missing or not an image PIL can open.
    """
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageLoadError(f"{path}: cannot open the image ({type(err).__name__}: {err}).") from err


def load_image(path: str | Path, dtype: torch.dtype = torch.float32) -> Tensor:
    """Decode an image file to an RGB tensor: float32 in [0, 1], or uint8.

    Grayscale, black-and-white and palette images are expanded to RGB,
    an alpha channel is dropped, 16-bit images (PIL modes ``I;16`` and ``I``)
    are divided by 65535 (rounded to 8 bits for uint8). EXIF orientation is
    ignored: annotations refer to the stored pixels.

    Args:
        path: the image file.
        dtype: ``torch.float32`` (default) or ``torch.uint8``: the decoded
            bytes, 4x smaller, in channels-last memory (the layout the JPEG
            decoder writes; :class:`DetectionDataset` reads images this way and
            converts after resizing).

    Returns:
        (3, H, W) of ``dtype``.

    Raises:
        ImageLoadError: the file is missing, truncated, corrupt, or float-valued.
        ValueError: ``dtype`` is neither float32 nor uint8.
    """
    if dtype not in (torch.float32, torch.uint8):
        raise ValueError(f"load_image: dtype must be torch.float32 or torch.uint8, got {dtype}.")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode.startswith("I;16") or mode == "I":
                gray = np.clip(np.asarray(img).astype(np.float32) / 65535.0, 0, 1)  # (H, W)
                if dtype == torch.uint8:
                    gray = np.rint(gray * 255).astype(np.uint8)
                return torch.from_numpy(np.repeat(gray[..., None], 3, axis=2)).permute(2, 0, 1).contiguous()
            if mode == "F":
                raise ImageLoadError(f"{path}: 32-bit float images (PIL mode F) are not supported.")
            if mode == "P" or "A" in mode:  # via RGBA so a palette's transparency is read right
                img = img.convert("RGBA")
            rgb = np.array(img.convert("RGB"), dtype=np.uint8)  # (H, W, 3), a writable copy
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise ImageLoadError(f"{path}: cannot decode the image ({type(err).__name__}: {err}).") from err
    image = torch.from_numpy(rgb).permute(2, 0, 1)  # (3, H, W), channels-last strides
    return image if dtype == torch.uint8 else to_float(image)


# ---------------------------------------------------------------- VOC XML


def _text(node: ET.Element, tag: str) -> str | None:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_xml(xml_path: Path) -> tuple[ET.Element, int | None, int | None]:
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise AnnotationError(f"{xml_path}: the XML does not parse ({err}).") from err
    except OSError as err:
        raise AnnotationError(f"{xml_path}: cannot read the file ({err}).") from err
    size = root.find("size")
    width = height = None
    if size is not None:
        w, h = _number(_text(size, "width")), _number(_text(size, "height"))
        if w is not None and h is not None and w >= 1 and h >= 1:
            width, height = int(w), int(h)
    return root, width, height


def _raw_objects(
    root: ET.Element, xml_path: Path, strict: bool
) -> list[tuple[int, str, tuple[float, float, float, float], bool]]:
    """(object number, class name, (xmin, ymin, xmax, ymax) as in the file, difficult)."""
    out = []
    for i, obj in enumerate(root.findall("object")):
        name = _text(obj, "name")
        box = obj.find("bndbox")
        coords = [_number(_text(box, c)) for c in _COORDS] if box is not None else [None] * 4
        missing = [c for c, v in zip(_COORDS, coords) if v is None]
        if name is None or box is None or missing:
            what = "<name>" if name is None else "<bndbox>" if box is None else ", ".join(missing)
            _report(f"{xml_path}: object {i} lacks {what} (or it is not a number).", strict,
                    "The object is skipped.")  # fmt: skip
            continue
        difficult = _number(_text(obj, "difficult")) or 0.0
        out.append((i, name, tuple(coords), difficult >= 1))  # type: ignore[arg-type]
    return out


def parse_voc_xml(
    xml_path: str | Path,
    class_names: Sequence[str] = VOC_CLASSES,
    *,
    image_dir: str | Path | None = None,
    image_ext: str = ".jpg",
    one_based: bool = True,
    strict: bool = False,
) -> ImageRecord:
    """Read one VOC annotation file.

    Args:
        xml_path: ``.../Annotations/<image_id>.xml``.
        class_names: the classes; ``labels`` index into it.
        image_dir: where the image is (default: ``JPEGImages`` beside ``Annotations``).
        image_ext: the image file's extension.
        one_based: the file counts pixels from 1 (VOC does).
        strict: raise on a bad object instead of skipping it with a warning.

    Returns:
        The checked :class:`ImageRecord` (it may hold zero objects).

    Raises:
        AnnotationError: the file does not parse, or has no usable ``<size>`` and
            no readable image to take it from (always); any bad object (when strict).
    """
    xml_path = Path(xml_path)
    image_dir = Path(image_dir) if image_dir is not None else xml_path.parent.parent / "JPEGImages"
    image_path = image_dir / f"{xml_path.stem}{image_ext}"
    root, width, height = _read_xml(xml_path)
    if width is None or height is None:
        message = f"{xml_path}: <size> with a positive <width> and <height> is missing."
        if strict or not image_path.exists():
            raise AnnotationError(message)
        width, height = image_size(image_path)
        _report(message, False, f"Using the image's own size {width}x{height}.")
    objects = []
    for i, name, coords, difficult in _raw_objects(root, xml_path, strict):
        where = f"{xml_path}: object {i} ({name!r})"
        label = _class_index(name, class_names, where, strict)
        box = _check_box(coords, width, height, where, strict, one_based) if label is not None else None
        if box is not None:
            objects.append((box, label, difficult))
    return _make_record(xml_path.stem, image_path, width, height, objects)


def _read_ids(list_path: Path) -> list[str]:
    if not list_path.is_file():
        raise FileNotFoundError(f"Image set list {list_path} does not exist.")
    ids = []
    for line in list_path.read_text().splitlines():
        if line.strip():
            ids.append(line.split()[0])
    return ids


def read_voc(
    voc_root: str | Path,
    image_set: str = "trainval",
    *,
    class_names: Sequence[str] = VOC_CLASSES,
    image_ext: str = ".jpg",
    strict: bool = False,
) -> list[ImageRecord]:
    """Read the images of one image set of a VOC year folder.

    Args:
        voc_root: the folder holding ``Annotations``, ``JPEGImages``,
            ``ImageSets/Main`` (for example ``VOCdevkit/VOC2007``).
        image_set: the list ``ImageSets/Main/<image_set>.txt`` to read.
        class_names: the classes.
        image_ext: the images' extension.
        strict: raise :class:`AnnotationError` on the first problem instead of
            skipping it with a warning.

    Returns:
        One :class:`ImageRecord` per usable image, in the list's order.
    """
    voc_root = Path(voc_root)
    year = voc_root.name[3:] if voc_root.name.upper().startswith("VOC") else ""
    records = []
    for image_id in _read_ids(voc_root / "ImageSets" / "Main" / f"{image_set}.txt"):
        xml_path = voc_root / "Annotations" / f"{image_id}.xml"
        if not xml_path.is_file():
            _report(f"{xml_path}: annotation file of image {image_id!r} ({image_set}) is missing.",
                    strict, "The image is skipped.")  # fmt: skip
            continue
        try:
            rec = parse_voc_xml(xml_path, class_names, image_ext=image_ext, strict=strict)
        except AnnotationError as err:
            if strict:
                raise
            _report(str(err), False, "The image is skipped.")
            continue
        records.append(replace(rec, year=year, split=image_set))
    return records


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
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(BOXES_CSV_COLUMNS)
        writer.writerows(rows)
    return len(rows)


# ---------------------------------------------------------------- boxes CSV


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


# ---------------------------------------------------------------- the Dataset


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
        check_images: open every image's header now (see the module docstring).
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
