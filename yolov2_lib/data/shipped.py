"""The small tables that ship inside the package, and how to make them again.

A chapter that draws box shapes needs a few megabytes of numbers, not the
gigabytes of archives the full VOC boxes are built from. So the registry
(:mod:`yolov2_lib.data.registry`) can take some files from the package
itself: a file whose entry names ``"shipped"`` is copied from the gzipped
table of that name in ``yolov2_lib/data/shipped/`` (uncompressed, then checked
against its registered SHA-256 like any download), before any download or
build is tried. What ships, and why it may:

- ``voc_box_sizes.csv.gz`` and ``coco_val2017_box_sizes.csv.gz``: box-size
  tables (:func:`~yolov2_lib.data.build.box_size_table_csv`: split, year,
  image id, image size, box extent; no class, no position), for chapter 3,
  chapter 8 and the Table 1 appendix;
- ``bccd_boxes.csv.gz`` (BCCD, MIT): saves a reader 367 requests for the XML files;
- ``voc2007_demo_boxes.csv.gz``: the 17 boxes of the five demo photos, which
  would otherwise be built by streaming the 451 MB VOC 2007 test archive.

Each table is made from the book's data mirror by :func:`rebuild`; the test
``tests/test_shipped.py`` checks that the mirror gives the registered bytes.

    python -m yolov2_lib.data.shipped /path/to/data   # rewrite the tables from a mirror

Explained in chapter 1 (the data behind the book).
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

from ..files import atomic_open
from .build import box_size_table_csv

__all__ = ["SHIPPED_DIR", "TABLES", "gzip_file", "gunzip_file", "rebuild"]

SHIPPED_DIR = Path(__file__).with_name("shipped")


def _copy(src: Path, dst: Path) -> int:
    shutil.copyfile(src, dst)
    return 0


# shipped name -> (the file of the data mirror it is made from, how)
TABLES: dict[str, tuple[str, Callable[[Path, Path], int]]] = {
    "voc_box_sizes.csv.gz": ("voc_boxes.csv", box_size_table_csv),
    "coco_val2017_box_sizes.csv.gz": ("coco/coco_val2017_boxes.csv", box_size_table_csv),
    "bccd_boxes.csv.gz": ("bccd/bccd_boxes.csv", _copy),
    "voc2007_demo_boxes.csv.gz": ("images/voc2007_demo/boxes.csv", _copy),
}


def gzip_file(src: str | Path, dst: str | Path) -> None:
    """Gzip ``src`` to ``dst`` reproducibly: no file name or time in the header, level 9."""
    with open(src, "rb") as fin, atomic_open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as out:
            shutil.copyfileobj(fin, out, 1 << 20)


def gunzip_file(src: str | Path, dst: str | Path) -> None:
    """Uncompress the gzip file ``src`` to ``dst``."""
    with gzip.open(src, "rb") as fin, atomic_open(dst, "wb") as out:
        shutil.copyfileobj(fin, out, 1 << 20)


def rebuild(data_dir: str | Path, out_dir: str | Path, *, compress: bool = True) -> dict[str, Path]:
    """Make every shipped table from a data mirror.

    Args:
        data_dir: a folder laid out as the book's data mirror (``YOLOV2_DATA``).
        out_dir: where to write them (created).
        compress: write the gzipped tables (as shipped); ``False`` keeps the
            plain CSVs, named without ``.gz`` (the bytes the registry's SHA-256 is of).

    Returns:
        shipped name -> the file written.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (source, make) in TABLES.items():
            plain = Path(tmp) / name.removesuffix(".gz")
            make(data_dir / source, plain)
            target = out_dir / (name if compress else plain.name)
            if compress:
                gzip_file(plain, target)
            else:
                shutil.copyfile(plain, target)
            written[name] = target
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    for name, path in rebuild(argv[0], SHIPPED_DIR).items():
        print(f"{name}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
