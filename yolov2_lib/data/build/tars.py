"""Streaming a tar archive from its URL and keeping only some members: :func:`extract_tar_members`.

A VOC archive is 0.4-2 GB, of which the annotations are a few MB: the
archive is read once, as it arrives, hashed on the way, and never stored.
"""

from __future__ import annotations

import re
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Callable

from ...files import atomic_open
from . import downloads
from .downloads import _CHUNK, _check_md5, _HashingReader, _try_each, log
from .sources import Source, SourceChecksumError

__all__ = ["extract_tar_members"]

_VOC_MEMBER = re.compile(
    r"(?:^|/)VOCdevkit/(VOC\d{4})/(Annotations/[^/]+\.xml|ImageSets/Main/(?:train|val|test)\.txt)$"
)


def _voc_member(name: str) -> str | None:
    """``.../VOCdevkit/VOC2007/Annotations/x.xml`` -> ``VOC2007/Annotations/x.xml``; lists likewise."""
    m = _VOC_MEMBER.search(name)
    return f"{m[1]}/{m[2]}" if m else None


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
            with downloads._urlopen(url, timeout) as resp:  # the one opener, in .downloads
                reader = _HashingReader(resp)
                try:
                    with tarfile.open(fileobj=reader, mode="r|*") as tar:  # type: ignore[call-overload]
                        for member in tar:
                            rel = keep(member.name) if member.isfile() else None
                            if rel is None:
                                continue
                            target = dest_dir / rel
                            with tar.extractfile(member) as src, atomic_open(target, "wb") as out:  # type: ignore[union-attr]
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
