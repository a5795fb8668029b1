"""What a build downloads: a :class:`Source` (an address, its mirrors, its published MD5), and the errors when it cannot."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ...errors import YOLOv2Error

__all__ = ["SourceError", "SourceChecksumError", "SourceUnavailableError", "Source"]


class SourceError(YOLOv2Error, RuntimeError):
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

