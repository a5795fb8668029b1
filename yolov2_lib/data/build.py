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

import csv
import hashlib
import http.client
import json
import logging
import math
import os
import re
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

from .voc import _csv_objects, _fmt, _read_ids, _report, write_boxes_csv

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

log = logging.getLogger(__name__)
_ANNOUNCE_BYTES = 10_000_000  # downloads larger than this say so on stderr

BCCD_COLUMNS: tuple[str, ...] = (
    "split", "image_id", "width", "height", "class", "xmin", "ymin", "xmax", "ymax", "difficult",
)  # fmt: skip
COCO_COLUMNS: tuple[str, ...] = ("image_id", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")
# what a box-size table keeps of a boxes CSV, besides dx and dy (those of these columns it has)
BOX_SIZE_KEYS: tuple[str, ...] = ("split", "year", "image_id", "width", "height")
VOC2007_DEMO_IDS: tuple[str, ...] = ("000456", "000542", "001150", "001763", "004545")
NUM_GROUPS = 16  # rows are hashed in this many groups (by image) to locate a difference

_CHUNK = 1 << 20
_NUMERIC = frozenset({"width", "height", "xmin", "ymin", "xmax", "ymax", "dx", "dy", "difficult"})
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_VOC_MEMBER = re.compile(
    r"(?:^|/)VOCdevkit/(VOC\d{4})/(Annotations/[^/]+\.xml|ImageSets/Main/(?:train|val|test)\.txt)$"
)


# ---------------------------------------------------------------- errors and recipes


class SourceError(RuntimeError):
    """The sources of a derived file could not be turned into it."""


class SourceChecksumError(SourceError):
    """A downloaded source is not the published one (MD5), or not an archive at all."""


class SourceUnavailableError(SourceError):
    """A source could not be downloaded from any of its addresses."""


@dataclass(frozen=True)
class Source:
    """One downloadable source of a build.

    Attributes:
        url: where to get it; may hold ``{image_id}`` (one file per image).
        md5: the published MD5 of the file, checked when given.
        mirrors: other addresses of the same bytes, tried in order when ``url`` fails.
        member: for a zip archive, the file to take from it.
    """

    url: str
    md5: str | None = None
    mirrors: tuple[str, ...] = ()
    member: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping) -> "Source":
        return cls(d["url"], d.get("md5"), tuple(d.get("mirrors", ())), d.get("member"))

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.url, *self.mirrors)

    @property
    def name(self) -> str:
        """The file name at the end of the URL."""
        return Path(urllib.parse.urlparse(self.url).path).name

    def format(self, **fields: str) -> "Source":
        """The source with ``{name}`` fields of every address filled in."""
        return Source(self.url.format(**fields), self.md5, tuple(m.format(**fields) for m in self.mirrors),
                      self.member)  # fmt: skip


@dataclass(frozen=True)
class BuildRecipe:
    """How to make a derived file: which builder, from which sources.

    Attributes:
        builder: one of :data:`BUILDERS` (``"voc_boxes"``, ``"coco_boxes"``,
            ``"bccd_boxes"``, ``"voc2007_demo_boxes"``).
        sources: what to download.
        origin: in words, what of the sources is used.
        licence: the licence of the sources.
        requires: a registered dataset used instead of ``sources`` when it is
            already available locally (the demo boxes are rows of ``voc_boxes``).
    """

    builder: str
    sources: tuple[Source, ...]
    origin: str
    licence: str
    requires: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping) -> "BuildRecipe":
        sources = tuple(Source.from_dict(s) for s in d["sources"])
        return cls(d["builder"], sources, d["origin"], d["licence"], d.get("requires"))

    def describe(self) -> str:
        """One line: what it is built from, and where that is downloaded."""
        urls = [s.url for s in self.sources]
        base = os.path.commonprefix(urls).rpartition("/")[0] + "/" if len(urls) > 1 else ""
        where = f"{base} ({', '.join(u[len(base):] for u in urls)})" if base.count("/") > 3 else ", ".join(urls)
        checked = ", MD5-checked" if all(s.md5 for s in self.sources) else ""
        also = f" (or from the {self.requires!r} dataset when it is available locally)" if self.requires else ""
        return f"{self.origin}{also}; downloaded from {where}{checked}"


# ---------------------------------------------------------------- the builders


def _write_csv(csv_path: str | Path, columns: Sequence[str], rows: list[list[str]]) -> int:
    with open(csv_path, "w", newline="") as f:  # csv's default "\r\n" line ends, as the mirror
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    return len(rows)


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


# ---------------------------------------------------------------- content


@dataclass(frozen=True)
class ContentDigest:
    """What a boxes CSV holds, independent of its byte layout.

    Attributes:
        sha256: SHA-256 of the canonical form (see :func:`content_digest`).
        rows: the number of data rows.
        groups: for each of :data:`NUM_GROUPS` groups of images, ``"<16 hex>:<rows>"``.
    """

    sha256: str
    rows: int
    groups: tuple[str, ...]


def _canonical(csv_path: Path) -> tuple[list[str], list[tuple[int, str, list[str]]]]:
    """Sorted column names, and per row ``(group, canonical line, raw row)`` in file order."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [c.strip() for c in next(reader, [])]
        if not header:
            raise ValueError(f"{csv_path}: empty file.")
        order = sorted(range(len(header)), key=lambda i: header[i])
        key_at = header.index("image_id") if "image_id" in header else None
        out = []
        group_of: dict[str, int] = {}
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{csv_path}, line {reader.line_num}: {len(row)} fields, the header has {len(header)}."
                )
            values = [_normal(header[i], row[i]) for i in order]
            line = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
            key = row[key_at].strip() if key_at is not None else line
            group = group_of.get(key)
            if group is None:
                group = group_of[key] = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % NUM_GROUPS
            out.append((group, line, row))
    return [header[i] for i in order], out


def _normal(column: str, value: str) -> str:
    value = value.strip()
    if column in _NUMERIC:
        try:
            number = float(value)
        except ValueError:
            return value
        if math.isfinite(number):
            return _fmt(number)
    return value


def content_digest(csv_path: str | Path) -> ContentDigest:
    """Digest of a boxes CSV's content.

    The canonical form: the column names sorted, each row's values in that
    column order, stripped, numbers of the numeric columns written as
    integers when whole (``"156.0"`` -> ``"156"``); the rows sorted. Line
    endings, quoting, column order and row order do not change the digest;
    any changed value does. Rows are also hashed in :data:`NUM_GROUPS`
    groups chosen by ``image_id``, which locates a difference.

    Args:
        csv_path: a CSV with a header row.

    Returns:
        The :class:`ContentDigest`.

    Raises:
        ValueError: the file is empty or a row has the wrong number of fields.
    """
    columns, rows = _canonical(Path(csv_path))
    lines = sorted(line for _, line, _ in rows)
    digest = hashlib.sha256(json.dumps(columns).encode())
    for line in lines:
        digest.update(b"\n" + line.encode())
    members: list[list[str]] = [[] for _ in range(NUM_GROUPS)]
    for group, line, _ in rows:
        members[group].append(line)
    return ContentDigest(digest.hexdigest(), len(lines), tuple(_group_digest(m) for m in members))


def _group_digest(lines: list[str]) -> str:
    joined = "\n".join(sorted(lines))
    return f"{hashlib.sha256(joined.encode()).hexdigest()[:16]}:{len(lines)}"


def content_sha256(csv_path: str | Path) -> str:
    """SHA-256 of the canonical content of a boxes CSV (see :func:`content_digest`)."""
    return content_digest(csv_path).sha256


def describe_mismatch(csv_path: str | Path, rows: int | None, groups: Sequence[str] | None) -> str:
    """Say how a CSV differs from the registered content (row count, groups, an example).

    Args:
        csv_path: the rejected file.
        rows: the registered number of data rows, if known.
        groups: the registered group digests (:attr:`ContentDigest.groups`), if known.

    Returns:
        A sentence for an error message.
    """
    try:
        got = content_digest(csv_path)
        _, lines = _canonical(Path(csv_path))
    except (ValueError, csv.Error) as err:
        return f"the file cannot be read as a boxes CSV ({err})"
    parts = [f"{got.rows:,} data rows built" + (f", {rows:,} registered" if rows is not None else "")]
    if groups is not None and len(groups) == NUM_GROUPS:
        differ = [g for g in range(NUM_GROUPS) if got.groups[g] != groups[g]]
        if differ:
            g = differ[0]
            built_n, expected_n = got.groups[g].split(":")[1], groups[g].split(":")[1]
            parts.append(f"the rows of {len(differ)} of {NUM_GROUPS} groups of images differ "
                         f"(group {g}: {built_n} rows built, {expected_n} registered)")  # fmt: skip
            example = next((raw for group, _, raw in lines if group == g), None)
            if example is not None:
                parts.append(f"a built row of that group: {','.join(example)}")
    return "; ".join(parts)


# ---------------------------------------------------------------- downloads


def _urlopen(url: str, timeout: float) -> IO[bytes]:
    return urllib.request.urlopen(url, timeout=timeout)


class _HashingReader:
    """A read-only stream that hashes (MD5) and counts the bytes passing through."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.md5.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left after the end of the archive."""
        while self.read(_CHUNK):
            pass


def _check_md5(source: Source, url: str, reader: _HashingReader) -> None:
    actual = reader.md5.hexdigest()
    if source.md5 is not None and actual != source.md5.lower():
        raise SourceChecksumError(
            f"{url}: MD5 is {actual} ({reader.size:,} bytes), the published sum is {source.md5}; "
            "what was read was discarded."
        )


def _try_each(source: Source, attempt: Callable[[str], None]) -> None:
    """Run ``attempt(url)`` on each address of ``source`` until one succeeds."""
    failures: list[str] = []
    bad_bytes = False
    for url in source.urls:
        try:
            attempt(url)
            return
        except SourceChecksumError as err:
            bad_bytes = True
            failures.append(str(err))
        except (urllib.error.URLError, http.client.HTTPException, OSError, EOFError) as err:
            failures.append(f"{url}: {err}")
        log.warning("could not use %s; %s", url, failures[-1])
    error = SourceChecksumError if bad_bytes else SourceUnavailableError
    raise error(f"could not get {source.name}: " + " | ".join(failures))


def download(source: Source, dest: str | Path, *, timeout: float = 60.0) -> None:
    """Download a source file to ``dest``, checking its MD5 when one is published.

    The addresses of the source are tried in order; ``dest`` appears only
    once its bytes are checked.

    Args:
        source: the file and its published MD5, if any.
        dest: where to write it.
        timeout: seconds for each network operation.

    Raises:
        SourceChecksumError: the bytes are not the published ones.
        SourceUnavailableError: no address could be read.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    def attempt(url: str) -> None:
        log.info("downloading %s", url)
        try:
            with _urlopen(url, timeout) as resp, open(part, "wb") as out:
                size = int(resp.headers.get("Content-Length") or 0) if hasattr(resp, "headers") else 0
                if size > _ANNOUNCE_BYTES:  # minutes of silence otherwise (the COCO zip is 241 MB)
                    print(f"yolov2_lib: downloading {url} ({size / 1e6:,.0f} MB)", file=sys.stderr, flush=True)
                reader = _HashingReader(resp)
                while chunk := reader.read(_CHUNK):
                    out.write(chunk)
            _check_md5(source, url, reader)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)

    _try_each(source, attempt)


def extract_tar_members(
    source: Source, dest_dir: str | Path, keep: Callable[[str], str | None], *, timeout: float = 60.0
) -> list[Path]:
    """Stream a tar archive from its URL and write only the members ``keep`` names.

    The archive is never stored: it is read once, as it arrives, and its MD5
    (when published) is computed on the way and checked at the end; on a
    mismatch everything written is removed.

    Args:
        source: the archive (``.tar``, ``.tar.gz``, ...).
        dest_dir: where kept members go.
        keep: member name -> path relative to ``dest_dir``, or ``None`` to skip it.
        timeout: seconds for each network operation.

    Returns:
        The files written.

    Raises:
        SourceChecksumError: the archive is not the published one (MD5), or not a tar archive.
        SourceUnavailableError: no address could be read.
    """
    dest_dir = Path(dest_dir)
    written: list[Path] = []

    def attempt(url: str) -> None:
        log.info("reading %s (keeping the annotations only)", url)
        print(f"yolov2_lib: reading {url} as it downloads, keeping only the annotations "
              "(a VOC archive is 0.4-2 GB: minutes)", file=sys.stderr, flush=True)
        try:
            with _urlopen(url, timeout) as resp:
                reader = _HashingReader(resp)
                try:
                    with tarfile.open(fileobj=reader, mode="r|*") as tar:  # type: ignore[call-overload]
                        for member in tar:
                            rel = keep(member.name) if member.isfile() else None
                            if rel is None:
                                continue
                            target = dest_dir / rel
                            target.parent.mkdir(parents=True, exist_ok=True)
                            with tar.extractfile(member) as src, open(target, "wb") as out:  # type: ignore[union-attr]
                                shutil.copyfileobj(src, out, _CHUNK)
                            written.append(target)
                except tarfile.TarError as err:
                    raise SourceChecksumError(f"{url}: not a readable tar archive ({err}).") from err
                reader.drain()
            _check_md5(source, url, reader)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            written.clear()
            raise

    _try_each(source, attempt)
    return list(written)


# ---------------------------------------------------------------- recipes


def _voc_member(name: str) -> str | None:
    """``.../VOCdevkit/VOC2007/Annotations/x.xml`` -> ``VOC2007/Annotations/x.xml``; lists likewise."""
    m = _VOC_MEMBER.search(name)
    return f"{m[1]}/{m[2]}" if m else None


def _run_voc(recipe: BuildRecipe, work: Path, out: Path, timeout: float, local) -> int:
    devkit = work / "VOCdevkit"
    for source in recipe.sources:
        extract_tar_members(source, devkit, _voc_member, timeout=timeout)
    return voc_boxes_csv(devkit, out)


def _run_demo(recipe: BuildRecipe, work: Path, out: Path, timeout: float, local) -> int:
    voc = local(recipe.requires) if (recipe.requires and local is not None) else None
    if voc is None:
        wanted = {f"VOC2007/Annotations/{i}.xml" for i in VOC2007_DEMO_IDS} | {"VOC2007/ImageSets/Main/test.txt"}
        devkit = work / "VOCdevkit"
        for source in recipe.sources:
            extract_tar_members(source, devkit, lambda n: r if (r := _voc_member(n)) in wanted else None,
                                timeout=timeout)  # fmt: skip
        test_list = devkit / "VOC2007" / "ImageSets" / "Main" / "test.txt"
        test_list.write_text("".join(f"{i}\n" for i in _read_ids(test_list) if i in VOC2007_DEMO_IDS))
        voc = work / "voc2007_demo_rows.csv"
        write_boxes_csv(devkit, voc, years=["2007"], image_sets=("test",), strict=True)
    return voc_demo_boxes_csv(voc, out)


def _run_coco(recipe: BuildRecipe, work: Path, out: Path, timeout: float, local) -> int:
    if len(recipe.sources) != 1:
        raise ValueError(f"the coco_boxes recipe takes one zip archive, got {len(recipe.sources)} sources.")
    source = recipe.sources[0]
    member = source.member or "annotations/instances_val2017.json"
    archive = work / source.name
    download(source, archive, timeout=timeout)
    instances = work / Path(member).name
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(instances, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, KeyError) as err:
        raise SourceChecksumError(f"{source.url}: no {member} in the archive ({err}).") from err
    archive.unlink()
    return coco_boxes_csv(instances, out)


def _run_bccd(recipe: BuildRecipe, work: Path, out: Path, timeout: float, local) -> int:
    per_image = [s for s in recipe.sources if "{image_id}" in s.url]
    lists = [s for s in recipe.sources if "{image_id}" not in s.url]
    if len(per_image) != 1 or not lists:
        raise ValueError("the bccd_boxes recipe takes image lists and one annotation URL with {image_id}.")
    sets_dir, annotations = work / "ImageSets" / "Main", work / "Annotations"
    for source in lists:
        download(source, sets_dir / source.name, timeout=timeout)
    ids = sorted({i for source in lists for i in _read_ids(sets_dir / source.name)})
    bad = [i for i in ids if not _SAFE_ID.match(i)]
    if bad:
        raise SourceChecksumError(f"the image lists name unexpected ids, for example {bad[0]!r}.")
    for image_id in ids:
        download(per_image[0].format(image_id=image_id), annotations / f"{image_id}.xml", timeout=timeout)
    splits = tuple(Path(s.name).stem for s in lists)
    return bccd_boxes_csv(annotations, sets_dir, out, splits=splits)


BUILDERS: dict[str, Callable[..., int]] = {
    "voc_boxes": _run_voc,
    "coco_boxes": _run_coco,
    "bccd_boxes": _run_bccd,
    "voc2007_demo_boxes": _run_demo,
}


def run_recipe(
    recipe: BuildRecipe,
    work_dir: str | Path,
    csv_path: str | Path,
    *,
    timeout: float = 60.0,
    local: Callable[[str], Path | None] | None = None,
) -> int:
    """Get a recipe's sources into ``work_dir`` and build ``csv_path`` from them.

    Args:
        recipe: what to build and from where.
        work_dir: an empty scratch folder (the caller removes it).
        csv_path: the CSV to write.
        timeout: seconds for each network operation.
        local: dataset name -> its local path, or ``None`` when it would need
            a download (for ``recipe.requires``).

    Returns:
        The number of rows written.

    Raises:
        SourceChecksumError: a source is not the published one.
        SourceUnavailableError: a source could not be downloaded.
        SourceError: the sources do not hold what the builder needs.
    """
    runner = BUILDERS.get(recipe.builder)
    if runner is None:
        raise ValueError(f"unknown builder {recipe.builder!r}; known: {', '.join(sorted(BUILDERS))}.")
    try:
        return runner(recipe, Path(work_dir), Path(csv_path), timeout, local)
    except SourceError:
        raise
    except (OSError, ValueError) as err:  # includes AnnotationError
        raise SourceError(f"the {recipe.builder} builder could not use the downloaded sources ({err}).") from err
