"""The dataset registry: where each real dataset of the book comes from.

Every dataset the book and the tests use is named in ``registry.json``
beside this file: its files, their SHA-256 sums, the public source and the
licence. Data files are never part of the project; :func:`fetch` resolves a
dataset, in this order, from

1. the folder named by the ``YOLOV2_DATA`` environment variable (the
   Makefile and CI point it at a local mirror),
2. the user cache (``YOLOV2_CACHE``, default ``~/.cache/yolov2_lib``),
3. a download from the public source into that cache, each file checked
   against its SHA-256 before it is used.

A file whose checksum does not match is never used: the error names the
file and both sums. With no local copy and no network (or with
``YOLOV2_OFFLINE=1``) the error says what is missing and how to get it.

Explained in chapter 1 ("From YOLO v1 to v2", the section on the data).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

__all__ = [
    "DatasetError",
    "ChecksumError",
    "DatasetUnavailableError",
    "Dataset",
    "Registry",
    "default_registry",
    "fetch",
    "sha256_file",
]

_MANIFEST = Path(__file__).with_name("registry.json")
_CHUNK = 1 << 20
# Sums already computed in this process, by (resolved path, size, mtime): every
# `fetch` builds a fresh Registry, and re-hashing a dataset on each call is waste.
_VERIFIED: dict[tuple[str, int, int], str] = {}


class DatasetError(RuntimeError):
    """Base class of the registry's errors."""


class ChecksumError(DatasetError):
    """A file exists but its SHA-256 is not the registered one."""


class DatasetUnavailableError(DatasetError):
    """A dataset is neither available locally nor downloadable."""


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class DataFile:
    """One registered file: its path inside the dataset and how to check and get it."""

    path: str
    sha256: str
    url: str | None = None
    derived: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: a folder (``root``) of files with known sums."""

    name: str
    root: str
    description: str
    licence: str
    source: str
    files: tuple[DataFile, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, name: str, d: Mapping) -> "Dataset":
        files = tuple(
            DataFile(path=p, sha256=f["sha256"], url=f.get("url"), derived=f.get("derived"))
            for p, f in d["files"].items()
        )
        return cls(name, d["root"], d["description"], d["licence"], d["source"], files)


class Registry:
    """A set of datasets and the places to look for them.

    Args:
        datasets: name -> :class:`Dataset`.
        data_dir: local mirror (defaults to ``$YOLOV2_DATA``).
        cache_dir: download cache (defaults to ``$YOLOV2_CACHE`` or ``~/.cache/yolov2_lib``).
        offline: never download (defaults to ``$YOLOV2_OFFLINE`` being set to 1/true/yes).
        timeout: seconds for each download request.
    """

    def __init__(
        self,
        datasets: Mapping[str, Dataset],
        *,
        data_dir: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        offline: bool | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.datasets = dict(datasets)
        env_data = os.environ.get("YOLOV2_DATA")
        self.data_dir = Path(data_dir) if data_dir is not None else (Path(env_data) if env_data else None)
        env_cache = os.environ.get("YOLOV2_CACHE")
        self.cache_dir = Path(
            cache_dir if cache_dir is not None else (env_cache or Path.home() / ".cache" / "yolov2_lib")
        )
        if offline is None:
            offline = os.environ.get("YOLOV2_OFFLINE", "").lower() in {"1", "true", "yes"}
        self.offline = offline
        self.timeout = timeout

    @classmethod
    def from_json(cls, path: str | os.PathLike = _MANIFEST, **kwargs) -> "Registry":
        raw = json.loads(Path(path).read_text())
        return cls({name: Dataset.from_dict(name, d) for name, d in raw.items()}, **kwargs)

    def names(self) -> list[str]:
        return sorted(self.datasets)

    def dataset(self, name: str) -> Dataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise DatasetError(
                f"unknown dataset {name!r}; registered datasets: {', '.join(self.names())}"
            ) from None

    def _check(self, path: Path, expected: str) -> None:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        actual = _VERIFIED.get(key) or sha256_file(path)
        if actual != expected:
            raise ChecksumError(
                f"{path}: SHA-256 is {actual}, the registry expects {expected}; "
                "the file was not used. Replace it with the original, or delete it to download it again."
            )
        _VERIFIED[key] = actual

    def _complete_in(self, ds: Dataset, root: Path) -> bool:
        """True when every file is there (and then checks every sum)."""
        if not all((root / f.path).is_file() for f in ds.files):
            return False
        for f in ds.files:
            self._check(root / f.path, f.sha256)
        return True

    def _download(self, ds: Dataset, root: Path, searched: list[str]) -> None:
        missing = [f for f in ds.files if not (root / f.path).is_file()]
        derived = [f for f in missing if f.url is None]
        if derived:
            how = "\n".join(f"  - {f.path}: {f.derived or 'no public download'}" for f in derived)
            raise DatasetUnavailableError(
                f"dataset {ds.name!r} ({ds.source}) is not available locally "
                f"(looked in: {'; '.join(searched)}) and these files cannot be downloaded as they are:\n{how}\n"
                f"Put the files in {root}, or set YOLOV2_DATA to a folder holding '{ds.root or '.'}'."
            )
        if self.offline:
            raise DatasetUnavailableError(
                f"dataset {ds.name!r} is missing {len(missing)} file(s) (first: {missing[0].path}) "
                f"and downloads are off (YOLOV2_OFFLINE). Looked in: {'; '.join(searched)}. "
                f"Set YOLOV2_DATA to a folder holding '{ds.root or '.'}', or allow downloads from {ds.source}."
            )
        for f in missing:
            target = root / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(f.url, timeout=self.timeout) as resp:
                    shutil.copyfileobj(resp, out, _CHUNK)
                actual = sha256_file(Path(tmp))
                if actual != f.sha256:
                    raise ChecksumError(
                        f"download of {f.url} for {ds.name}/{f.path} has SHA-256 {actual}, "
                        f"the registry expects {f.sha256}; the file was discarded."
                    )
                os.replace(tmp, target)
            except (urllib.error.URLError, OSError) as exc:
                raise DatasetUnavailableError(
                    f"could not download {f.url} for dataset {ds.name!r} ({exc}). "
                    f"Looked locally in: {'; '.join(searched)}. Without internet, set YOLOV2_DATA "
                    f"to a folder holding '{ds.root or '.'}' (see data/README.md)."
                ) from exc
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)

    def fetch(self, name: str) -> Path:
        """Resolve dataset ``name`` and return its folder (or its file, for a one-file dataset).

        Raises:
            ChecksumError: a local or downloaded file has the wrong SHA-256.
            DatasetUnavailableError: not found locally and not downloadable.
        """
        ds = self.dataset(name)
        searched = []
        candidates = []
        if self.data_dir is not None:
            candidates.append(("YOLOV2_DATA", self.data_dir / ds.root))
        cache_root = self.cache_dir / name
        candidates.append(("cache", cache_root))
        for label, root in candidates:
            searched.append(f"{label} {root}")
            if self._complete_in(ds, root):
                return self._result(ds, root)
        self._download(ds, cache_root, searched)
        if not self._complete_in(ds, cache_root):  # pragma: no cover - _download guarantees it
            raise DatasetUnavailableError(f"dataset {name!r} is incomplete in {cache_root} after download")
        return self._result(ds, cache_root)

    @staticmethod
    def _result(ds: Dataset, root: Path) -> Path:
        return root / ds.files[0].path if len(ds.files) == 1 else root


def default_registry() -> Registry:
    """The project's registry (``registry.json``), configured from the environment."""
    return Registry.from_json()


def fetch(name: str) -> Path:
    """Resolve a registered dataset with the default registry; see :meth:`Registry.fetch`.

    Names: ``voc_boxes`` (the CSV), ``coco_val2017_boxes`` (the CSV), ``darknet``,
    ``bccd`` and ``demo_images`` (folders).
    """
    return default_registry().fetch(name)
