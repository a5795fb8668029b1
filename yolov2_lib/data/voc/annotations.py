"""Reading PASCAL VOC annotations: one XML file (:func:`parse_voc_xml`), or an image set (:func:`read_voc`).

A VOC year folder holds ``Annotations/<image_id>.xml`` (the image's size
and one ``<object>`` per box) and ``ImageSets/Main/<set>.txt`` (the lists of
image ids). VOC counts pixels from 1; the records count from 0.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from .errors import AnnotationError, _report
from .images import image_size
from .records import _COORDS, VOC_CLASSES, ImageRecord, _check_box, _class_index, _make_record, _number

__all__ = ["parse_voc_xml", "read_voc"]


def _text(node: ET.Element, tag: str) -> str | None:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


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
