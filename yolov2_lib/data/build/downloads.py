"""Downloading a source: every address tried in turn, the bytes hashed (MD5) as they arrive and checked.

:func:`download` writes a file only once its bytes are the published ones;
:class:`_HashingReader` and :func:`_try_each` also serve the streamed tar
archives of :mod:`.tars`. Every URL is opened by :func:`_urlopen`, here.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Callable

from ...files import atomic_path
from .sources import Source, SourceChecksumError, SourceUnavailableError

__all__ = ["download"]

log = logging.getLogger(__package__)
_ANNOUNCE_BYTES = 10_000_000  # downloads larger than this say so on stderr
_CHUNK = 1 << 20


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

    def attempt(url: str) -> None:
        log.info("downloading %s", url)
        with atomic_path(dest) as part:  # renamed to dest only if the MD5 check passes
            with _urlopen(url, timeout) as resp, open(part, "wb") as out:
                size = int(resp.headers.get("Content-Length") or 0) if hasattr(resp, "headers") else 0
                if size > _ANNOUNCE_BYTES:  # minutes of silence otherwise (the COCO zip is 241 MB)
                    print(f"yolov2_lib: downloading {url} ({size / 1e6:,.0f} MB)", file=sys.stderr, flush=True)
                reader = _HashingReader(resp)
                while chunk := reader.read(_CHUNK):
                    out.write(chunk)
            _check_md5(source, url, reader)

    _try_each(source, attempt)
