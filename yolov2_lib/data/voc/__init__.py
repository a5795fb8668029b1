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

from .annotations import parse_voc_xml, read_voc
from .boxes_csv import BOXES_CSV_COLUMNS, csv_class_names, read_boxes_csv, write_boxes_csv
from .dataset import DetectionDataset
from .errors import AnnotationError, DataWarning, ImageLoadError
from .images import image_size, load_image
from .records import BCCD_CLASSES, VOC_CLASSES, ImageRecord

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
