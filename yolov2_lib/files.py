"""Writing files so that a crash never leaves half of one: :func:`atomic_path`.

Every file the library writes (checkpoints, histories, exported weights,
ONNX models, pictures, downloads) is first written to a temporary file beside
its destination, flushed to disk, and then renamed over the destination
(``os.replace``, atomic on one file system). A crash or an error at any moment
leaves either the old file or the new one, and the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import YOLOv2Error

__all__ = ["atomic_path", "atomic_open", "write_json", "write_text", "temporary_name", "check_writable", "FolderLock",
           "process_alive"]


def temporary_name(path: Path) -> Path:
    """Where ``path`` is written before it is renamed: ``.NAME.PID.tmp`` beside it."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content into; renamed over ``path`` when the
    block ends without an error, removed when it raises.

    Use it with writers that take a file name (``torch.save``, ``onnx.save``, ``PIL.Image.save``)::

        with atomic_path("model.onnx") as tmp:
            onnx.save(proto, str(tmp))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None  # name the file being written
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` that replaces ``path`` only when the block ends without an error."""
    if not mode.startswith("w"):
        raise YOLOv2Error(f"atomic_open writes a whole file: mode must start with 'w', got {mode!r}.")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path`` as a :class:`~pathlib.Path`."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON atomically (a final newline when indented)."""
    return write_text(path, json.dumps(data, indent=indent) + ("\n" if indent else ""))


def check_writable(path: str | os.PathLike, *, folder: bool) -> Path:
    """Stop before any work when ``path`` (a folder to fill, or a file to write) cannot be written.

    Raises:
        YOLOv2Error: ``path`` is of the wrong kind, lies under a file, or its nearest existing
            folder refuses a new file.
    """
    import tempfile

    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise YOLOv2Error(f"{path} is a file, not a folder: give a folder for the outputs.")
    if not folder and path.is_dir():
        raise YOLOv2Error(f"{path} is a folder: give a file name.")
    existing = path if folder and path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise YOLOv2Error(f"{path}: {existing} is a file, so no folder can be made there.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise YOLOv2Error(f"{path}: cannot write in {existing} ({exc.strerror or exc}); "
                          "choose a writable place.") from None
    return path


def process_alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, ValueError):
        return False  # not a possible process id
    return True


class FolderLock:
    """One process at a time writes into a folder: a ``.lock`` file holding its process id.

    A lock left by a process that no longer runs (killed) is taken over. Use it as a context
    manager around the writing.

    Raises:
        YOLOv2Error: on entering, when another running process holds the folder (naming its pid).
    """

    NAME = ".lock"

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self.held = False

    def _holder(self) -> int | None:
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def check(self) -> None:
        """Raise, without taking the lock, when another running process holds the folder."""
        holder = self._holder()
        if holder is not None and holder != os.getpid() and process_alive(holder):
            raise YOLOv2Error(f"{self.folder} is in use by another training process (pid {holder}); "
                              "wait for it to end, or choose another folder.")

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self.check()
                self.path.unlink(missing_ok=True)  # our own, or a killed process's lock: taken over
                continue
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(f"{os.getpid()}\n")
            except OSError:  # a full disk: no half-written lock either
                self.path.unlink(missing_ok=True)
                raise
            self.held = True
            return
        raise YOLOv2Error(f"{self.folder}: could not take its lock {self.path}; another process keeps taking it.")

    def release(self) -> None:
        if self.held and self._holder() == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
