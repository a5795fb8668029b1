"""The dataset registry: where each real dataset of the book comes from.

Every dataset the book and the tests use is named in ``registry.json``
beside this file: its files, their SHA-256 sums, the public source, the
licence, and whether a copy ships with the package (``shipping`` says why or
why not). :func:`fetch` resolves a dataset, in this order, from

1. the folder named by the ``YOLOV2_DATA`` environment variable (a local
   copy of the data, for example on a computer without internet),
2. the user cache (``YOLOV2_CACHE``, default ``~/.cache/yolov2_lib``),
3. what is missing there is then filled in: files that ship with the
   package (entries with ``"shipped"``, a few small tables, see
   :mod:`yolov2_lib.data.shipped`) are copied from it, the others are
   downloaded from the public source (or from ``YOLOV2_MIRROR``, below);
   each file is checked against its SHA-256 before it is used.

``YOLOV2_MIRROR`` names a copy of the data laid out as ``YOLOV2_DATA`` is
(an ``http(s)://`` or ``file://`` URL, or a folder): when it is set, every
file that does not ship is downloaded from ``<mirror>/<root>/<path>``
instead of its public source, derived files included (a mirror holds them
built). The files still go through the cache and their checks; that is the
difference from ``YOLOV2_DATA``, which is used in place.

Derived files (the box CSVs) have no URL of their own: their entry carries a
``build`` recipe, and :mod:`yolov2_lib.data.build` makes them from the
official annotations (archives checked against their published MD5). A
built file is used when its SHA-256 is the registered one or, failing that,
when its rows are (``content_sha256``, the hash of the sorted, normalised
rows); otherwise it is kept aside as ``<name>.unverified`` and the error
says how it differs.

A file whose checksum does not match is never used: the error names the
file and both sums. With no local copy and no network (or with
``YOLOV2_OFFLINE=1``) the error says what is missing and how it would be
downloaded or built. Downloads happen only inside :func:`fetch`.

Explained in chapter 1 ("From YOLO v1 to v2", the section on the data).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from ..errors import YOLOv2Error
from ..files import atomic_path
from . import build
from .build import BuildRecipe
from .shipped import SHIPPED_DIR, gunzip_file

__all__ = [
    "DatasetError",
    "ChecksumError",
    "ContentMismatchError",
    "DatasetUnavailableError",
    "DataFile",
    "Dataset",
    "DatasetStatus",
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


class DatasetError(YOLOv2Error, RuntimeError):
    """Base class of the registry's errors."""


class ChecksumError(DatasetError):
    """A file exists but its SHA-256 is not the registered one."""


class ContentMismatchError(ChecksumError):
    """A file built from the official sources does not hold the registered rows."""


class DatasetUnavailableError(DatasetError):
    """A dataset is neither available locally nor downloadable."""


def _as_url(location: str | os.PathLike) -> str:
    """A mirror's base URL: as given when it has a scheme, else the folder's ``file://`` URI."""
    text = str(location)
    if "://" in text:
        return text.rstrip("/")
    return Path(text).resolve().as_uri()


@contextlib.contextmanager
def _checked_file(target: Path, sha256: str, what: str, otherwise: str) -> Iterator[Path]:
    """A temporary file beside ``target`` to write into; moved in place when the block ends and its
    SHA-256 is the registered one (else :class:`ChecksumError` names ``what``). Never left behind."""
    with atomic_path(target) as tmp:
        yield tmp
        actual = sha256_file(tmp)
        if actual != sha256:
            raise ChecksumError(f"{what} has SHA-256 {actual}, the registry expects {sha256}; {otherwise}")


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class DataFile:
    """One registered file: its path inside the dataset and how to check and get it.

    Attributes:
        path: inside the dataset's folder.
        sha256: the file's SHA-256.
        url: where to download it as it is, if anywhere.
        derived: in words, how it was made (for a file with neither ``url`` nor ``build``).
        build: how to build it from public sources (a derived file).
        content_sha256: :func:`~yolov2_lib.data.build.content_sha256` of the file; a
            file with these rows is accepted even when its bytes differ.
        rows: its number of data rows.
        content_groups: :attr:`~yolov2_lib.data.build.ContentDigest.groups`, to locate a difference.
        shipped: the gzipped copy of the file in ``yolov2_lib/data/shipped/``, if one ships.
    """

    path: str
    sha256: str
    url: str | None = None
    derived: str | None = None
    build: BuildRecipe | None = None
    content_sha256: str | None = None
    rows: int | None = None
    content_groups: tuple[str, ...] | None = None
    shipped: str | None = None

    @classmethod
    def from_dict(cls, path: str, d: Mapping) -> "DataFile":
        return cls(
            path=path, sha256=d["sha256"], url=d.get("url"), derived=d.get("derived"),
            build=BuildRecipe.from_dict(d["build"]) if "build" in d else None,
            content_sha256=d.get("content_sha256"), rows=d.get("rows"),
            content_groups=tuple(d["content_groups"]) if "content_groups" in d else None,
            shipped=d.get("shipped"),
        )  # fmt: skip


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: a folder (``root``) of files with known sums.

    ``shipping`` says, in words, which of its files ship with the package and why, or why none do.
    """

    name: str
    root: str
    description: str
    licence: str
    source: str
    files: tuple[DataFile, ...] = field(default_factory=tuple)
    shipping: str = ""

    @classmethod
    def from_dict(cls, name: str, d: Mapping) -> "Dataset":
        files = tuple(DataFile.from_dict(p, f) for p, f in d["files"].items())
        return cls(name, d["root"], d["description"], d["licence"], d["source"], files, d.get("shipping", ""))


@dataclass(frozen=True)
class DatasetStatus:
    """Where a dataset stands before :meth:`Registry.fetch` (from the files present).

    Attributes:
        name: the dataset.
        location: ``"<label> <folder>"`` where it is complete (``YOLOV2_DATA`` or cache), else ``None``.
        plan: when not local, what fetch would download and build.
    """

    name: str
    location: str | None
    plan: str

    def describe(self) -> str:
        return f"local: {self.location}" if self.location else f"not local; {self.plan}"


class Registry:
    """A set of datasets and the places to look for them.

    Args:
        datasets: name -> :class:`Dataset`.
        data_dir: local mirror (defaults to ``$YOLOV2_DATA``).
        cache_dir: download cache (defaults to ``$YOLOV2_CACHE`` or ``~/.cache/yolov2_lib``).
        offline: never download (defaults to ``$YOLOV2_OFFLINE`` being set to 1/true/yes).
        timeout: seconds for each download request.
        mirror: download from this copy of the data instead of the public sources
            (a URL or a folder; defaults to ``$YOLOV2_MIRROR``).
        shipped_dir: the folder of the tables that ship with the package.
    """

    def __init__(
        self,
        datasets: Mapping[str, Dataset],
        *,
        data_dir: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        offline: bool | None = None,
        timeout: float = 60.0,
        mirror: str | os.PathLike | None = None,
        shipped_dir: str | os.PathLike = SHIPPED_DIR,
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
        mirror = mirror if mirror is not None else (os.environ.get("YOLOV2_MIRROR") or None)
        self.mirror = _as_url(mirror) if mirror is not None else None
        self.shipped_dir = Path(shipped_dir)

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

    def _check(self, path: Path, f: DataFile) -> None:
        """Raise :class:`ChecksumError` unless ``path`` has ``f``'s bytes, or (derived files) its rows."""
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        accepted = {f.sha256} | ({f.content_sha256} if f.content_sha256 else set())
        if _VERIFIED.get(key) in accepted:
            return
        actual = sha256_file(path)
        if actual == f.sha256:
            _VERIFIED[key] = actual
            return
        content = None
        if f.content_sha256 is not None:
            try:
                content = build.content_sha256(path)
            except (ValueError, csv.Error):
                content = "unreadable"
            if content == f.content_sha256:
                _VERIFIED[key] = content
                return
        rows = f" and its rows are not the registered ones (content SHA-256 {content})" if content else ""
        raise ChecksumError(
            f"{path}: SHA-256 is {actual}, the registry expects {f.sha256}{rows}; "
            "the file was not used. Replace it with the original, or delete it to download it again."
        )

    def _complete_in(self, ds: Dataset, root: Path) -> bool:
        """True when every file is there (and then checks every sum)."""
        if not all((root / f.path).is_file() for f in ds.files):
            return False
        for f in ds.files:
            self._check(root / f.path, f)
        return True

    def _candidates(self, ds: Dataset) -> list[tuple[str, Path]]:
        """Where the dataset may already be: (label, folder), in the order they are tried."""
        out = []
        if self.data_dir is not None:
            out.append(("YOLOV2_DATA", self.data_dir / ds.root))
        out.append(("cache", self.cache_dir / ds.name))
        return out

    def _local(self, name: str) -> Path | None:
        """The dataset's path when it is complete in a local folder (sums checked), else ``None``."""
        ds = self.dataset(name)
        for _, root in self._candidates(ds):
            if self._complete_in(ds, root):
                return self._result(ds, root)
        return None

    def _source_url(self, ds: Dataset, f: DataFile) -> str | None:
        """Where ``f`` is downloaded from: the mirror when one is set, else its public URL (if any)."""
        if self.mirror is not None:
            rel = "/".join(p for p in (ds.root, f.path) if p)
            return f"{self.mirror}/{urllib.parse.quote(rel)}"
        return f.url

    def _plan(self, ds: Dataset, missing: list[DataFile]) -> str:
        """What obtaining the missing files would do, one line per kind of work."""
        lines = []
        copies = [f for f in missing if f.shipped is not None]
        if copies:
            lines.append(f"  - copy {', '.join(f.path for f in copies)} from the package (no download)")
        rest = [f for f in missing if f.shipped is None]
        downloads = [f for f in rest if self._source_url(ds, f) is not None]
        if downloads:
            where = f"the mirror {self.mirror}" if self.mirror is not None else ds.source
            lines.append(f"  - download {len(downloads)} file(s) from {where} "
                         f"(first: {self._source_url(ds, downloads[0])})")  # fmt: skip
        for f in rest:
            if self._source_url(ds, f) is None and f.build is not None:
                lines.append(f"  - build {f.path} from {f.build.describe()}")
        return "\n".join(lines)

    def _partial(self, ds: Dataset) -> str:
        """Sentences naming the files missing from each local folder that holds part of ``ds``.

        A folder holding only copies of files that ship with the package (the cache gets them
        whenever it is tried) holds nothing of the dataset's own.
        """
        sentences = []
        for label, root in self._candidates(ds):
            missing = [f.path for f in ds.files if not (root / f.path).is_file()]
            if not missing or not any(f.shipped is None and (root / f.path).is_file() for f in ds.files):
                continue
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            sentences.append(f"{label} {root} holds {len(ds.files) - len(missing)} of its {len(ds.files)} "
                             f"files; missing: {shown}.")
        return " ".join(sentences)

    def _obtain(self, ds: Dataset, root: Path, searched: list[str]) -> None:
        """Copy, download and build the files missing from ``root`` (the cache)."""
        for f in ds.files:
            if f.shipped is not None and not (root / f.path).is_file():
                self._copy_shipped(ds, f, root)
        missing = [f for f in ds.files if not (root / f.path).is_file()]
        if not missing:
            return
        stuck = [f for f in missing if self._source_url(ds, f) is None and f.build is None]
        partial = self._partial(ds)
        if stuck:
            how = "\n".join(f"  - {f.path}: {f.derived or 'no public download'}" for f in stuck)
            raise DatasetUnavailableError(
                f"dataset {ds.name!r} ({ds.source}) is not available locally "
                f"(looked in: {'; '.join(searched)}){f'. {partial} And' if partial else ''} these files cannot "
                f"be downloaded as they are:\n{how}\n"
                f"Put the files in {root}, or set YOLOV2_DATA to a folder holding '{ds.root or '.'}'."
            )
        if self.offline and partial:
            raise DatasetUnavailableError(
                f"dataset {ds.name!r} is incomplete: {partial} Downloads are off (YOLOV2_OFFLINE), so nothing "
                f"was fetched: put the missing file(s) back, or allow downloads (fetch would then fill {root}:\n"
                f"{self._plan(ds, missing)})"
            )
        if self.offline:
            raise DatasetUnavailableError(
                f"dataset {ds.name!r} is missing {len(missing)} file(s) (first: {missing[0].path}) "
                f"and downloads are off (YOLOV2_OFFLINE). Looked in: {'; '.join(searched)}. "
                f"Set YOLOV2_DATA to a folder holding '{ds.root or '.'}', or allow downloads; fetch would:\n"
                f"{self._plan(ds, missing)}"
            )
        for f in missing:
            if self._source_url(ds, f) is not None:
                self._download_file(ds, f, root, searched)
        for f in missing:
            if self._source_url(ds, f) is None and f.build is not None:
                self._build_file(ds, f, root, searched)

    def _copy_shipped(self, ds: Dataset, f: DataFile, root: Path) -> None:
        """Uncompress the package's copy of ``f`` into ``root`` and check it like a download."""
        assert f.shipped is not None
        source = self.shipped_dir / f.shipped
        what = f"the package's copy {source} of {ds.name}/{f.path}"
        with _checked_file(root / f.path, f.sha256, what, "it was not used. Reinstall yolov2_lib.") as tmp:
            try:
                gunzip_file(source, tmp)
            except (OSError, EOFError) as exc:
                raise DatasetError(f"{what} cannot be read ({exc}); reinstall yolov2_lib.") from exc

    def _download_file(self, ds: Dataset, f: DataFile, root: Path, searched: list[str]) -> None:
        url = self._source_url(ds, f)
        assert url is not None
        what = f"download of {url} for {ds.name}/{f.path}"
        try:
            with (_checked_file(root / f.path, f.sha256, what, "the file was discarded.") as tmp,
                  open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=self.timeout) as resp):
                shutil.copyfileobj(resp, out, _CHUNK)
        except (urllib.error.URLError, OSError) as exc:
            raise DatasetUnavailableError(
                f"could not download {url} for dataset {ds.name!r} ({exc}). "
                f"Looked locally in: {'; '.join(searched)}. Without internet, set YOLOV2_DATA "
                f"to a folder holding '{ds.root or '.'}' (see data/README.md)."
            ) from exc

    def _build_file(self, ds: Dataset, f: DataFile, root: Path, searched: list[str]) -> None:
        """Build a derived file in a scratch folder beside it, check it, then move it in place."""
        assert f.build is not None
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".build"))
        where = f"{ds.name}/{f.path}"
        try:
            built = work / target.name
            try:
                build.run_recipe(f.build, work, built, timeout=self.timeout, local=self._local)
            except build.SourceChecksumError as exc:
                raise ChecksumError(f"building {where}: {exc} Nothing was built.") from exc
            except build.SourceUnavailableError as exc:
                raise DatasetUnavailableError(
                    f"could not build {where} ({exc}). Looked locally in: {'; '.join(searched)}. "
                    f"Without internet, set YOLOV2_DATA to a folder holding '{ds.root or '.'}' (see data/README.md)."
                ) from exc
            except build.SourceError as exc:
                raise DatasetError(f"could not build {where}: {exc}") from exc
            self._accept_built(where, f, built, target)
            os.replace(built, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _accept_built(where: str, f: DataFile, built: Path, target: Path) -> None:
        """Keep ``built`` when its bytes or its rows are the registered ones; else set it aside and raise."""
        actual = sha256_file(built)
        if actual == f.sha256:
            return
        if f.content_sha256 is not None and build.content_sha256(built) == f.content_sha256:
            return
        kept = target.with_name(target.name + ".unverified")
        os.replace(built, kept)
        assert f.build is not None
        raise ContentMismatchError(
            f"{where} was built from {f.build.origin}, but it is not the registered file "
            f"(SHA-256 {actual}, registry {f.sha256}) and does not hold the registered rows: "
            f"{build.describe_mismatch(kept, f.rows, f.content_groups)}. The built file is kept for "
            f"inspection at {kept} and is not used; nothing else was written. The upstream annotations may "
            "have changed: use a verified copy through YOLOV2_DATA, or report the difference."
        )

    def fetch(self, name: str) -> Path:
        """Resolve dataset ``name`` and return its folder (or its file, for a one-file dataset).

        Missing files are copied from the package (those that ship), downloaded, or
        (derived files) built, into the cache.

        Raises:
            ChecksumError: a local, downloaded or built file is not the registered one
                (:class:`ContentMismatchError` for a built file with other rows).
            DatasetUnavailableError: not found locally and not obtainable (offline, no network).
        """
        ds = self.dataset(name)
        searched = []
        for label, root in self._candidates(ds):
            searched.append(f"{label} {root}")
            if self._complete_in(ds, root):
                return self._result(ds, root)
        cache_root = self.cache_dir / name
        self._obtain(ds, cache_root, searched)
        if not self._complete_in(ds, cache_root):  # pragma: no cover - _obtain guarantees it
            raise DatasetUnavailableError(f"dataset {name!r} is incomplete in {cache_root} after download")
        return self._result(ds, cache_root)

    def status(self, name: str) -> "DatasetStatus":
        """Where dataset ``name`` would resolve now, from the files present (sums are checked by :meth:`fetch`)."""
        ds = self.dataset(name)
        for label, root in self._candidates(ds):
            if all((root / f.path).is_file() for f in ds.files):
                return DatasetStatus(name, f"{label} {root}", "")
        cache_root = self.cache_dir / name
        missing = [f for f in ds.files if not (cache_root / f.path).is_file()]
        stuck = [f.path for f in missing
                 if f.shipped is None and self._source_url(ds, f) is None and f.build is None]  # fmt: skip
        partial = self._partial(ds)
        if stuck:
            plan = f"not obtainable: no download or recipe for {', '.join(stuck)}"
        else:
            off = self.offline and any(f.shipped is None for f in missing)
            plan = "downloads are off (YOLOV2_OFFLINE); fetch would:\n" if off else "fetch would:\n"
            plan += self._plan(ds, missing)
        return DatasetStatus(name, None, f"{partial}\n{plan}" if partial else plan)

    @staticmethod
    def _result(ds: Dataset, root: Path) -> Path:
        return root / ds.files[0].path if len(ds.files) == 1 else root


def default_registry() -> Registry:
    """The project's registry (``registry.json``), configured from the environment."""
    return Registry.from_json()


def fetch(name: str) -> Path:
    """Resolve a registered dataset with the default registry; see :meth:`Registry.fetch`.

    Names: ``voc_boxes`` and ``coco_val2017_boxes`` (the full box CSVs, built from
    the official archives), ``voc_box_sizes`` and ``coco_val2017_box_sizes`` (their
    box-size tables, which ship with the package), ``darknet``, ``bccd`` and
    ``demo_images`` (folders).
    """
    return default_registry().fetch(name)
