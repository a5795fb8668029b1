"""What a boxes CSV holds, whatever its bytes: :func:`content_digest`, and :func:`describe_mismatch`.

A built file is accepted when its SHA-256 is the registered one or, failing
that, when its canonical content is: the same rows with other line endings,
quoting, column order or row order give the same digest; any changed value
does not.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..voc.boxes_csv import _fmt

__all__ = ["NUM_GROUPS", "ContentDigest", "content_digest", "content_sha256", "describe_mismatch"]

NUM_GROUPS = 16  # rows are hashed in this many groups (by image) to locate a difference
_NUMERIC = frozenset({"width", "height", "xmin", "ymin", "xmax", "ymax", "dx", "dy", "difficult"})


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
