"""Building the derived box CSVs of the registry from their official public sources.

Four files of the registry are *derived*: no public URL serves them as they
are, so they are built here, in exactly the layout of the book's mirror:

- ``voc_boxes.csv`` by :func:`voc_boxes_csv`, from the ``Annotations/*.xml``
  and ``ImageSets/Main/{train,val,test}.txt`` of the official VOC 2007 and
  2012 archives;
- ``coco/coco_val2017_boxes.csv`` by :func:`coco_boxes_csv`, from COCO's
  ``instances_val2017.json``;
- ``bccd/bccd_boxes.csv`` by :func:`bccd_boxes_csv`, from the annotations
  and image lists of the BCCD repository;
- ``images/voc2007_demo/boxes.csv`` by :func:`voc_demo_boxes_csv`, the rows
  of five VOC 2007 test photos.

Two more are derived from those: the box-size tables ``voc_box_sizes.csv``
and ``coco/coco_val2017_box_sizes.csv`` (:func:`box_size_table_csv`), which
keep of each box only its extent and its image's size. They ship with the
package (:mod:`yolov2_lib.data.shipped`), so that a figure of box shapes
does not cost the gigabytes of archives the full boxes are built from.

Each builder is a pure function from local files to the CSV. Getting the
sources is :func:`run_recipe`'s job: files are downloaded one by one, a tar
archive is read as a stream (only the annotations touch the disk) while its
bytes are hashed, and an archive whose MD5 is not the published one is
refused. The registry (:mod:`yolov2_lib.data.registry`) calls
:func:`run_recipe` when a file is missing and checks what comes out.

A built file is accepted when its SHA-256 is the registered one, or when its
*content* is: :func:`content_sha256` hashes a canonical form of the rows
(columns by name, numbers normalised, rows sorted), so the same boxes written
with other line endings or row order still pass, while any changed box does
not. :func:`describe_mismatch` says how far a rejected file is from the
registered one.

Explained in chapter 1 (the data behind the book).
"""

from __future__ import annotations

from .builders import (
    BCCD_COLUMNS,
    BOX_SIZE_KEYS,
    COCO_COLUMNS,
    VOC2007_DEMO_IDS,
    bccd_boxes_csv,
    box_size_table_csv,
    coco_boxes_csv,
    voc_boxes_csv,
    voc_demo_boxes_csv,
)
from .digests import NUM_GROUPS, ContentDigest, content_digest, content_sha256, describe_mismatch
from .downloads import download
from .recipes import BUILDERS, BuildRecipe, run_recipe
from .sources import Source, SourceChecksumError, SourceError, SourceUnavailableError
from .tars import _voc_member, extract_tar_members  # noqa: F401  (_voc_member: the VOC annotation filter)

__all__ = [
    "BCCD_COLUMNS",
    "BOX_SIZE_KEYS",
    "COCO_COLUMNS",
    "VOC2007_DEMO_IDS",
    "NUM_GROUPS",
    "SourceError",
    "SourceChecksumError",
    "SourceUnavailableError",
    "Source",
    "BuildRecipe",
    "BUILDERS",
    "bccd_boxes_csv",
    "voc_boxes_csv",
    "coco_boxes_csv",
    "voc_demo_boxes_csv",
    "box_size_table_csv",
    "ContentDigest",
    "content_digest",
    "content_sha256",
    "describe_mismatch",
    "download",
    "extract_tar_members",
    "run_recipe",
]
