"""Where the code runs: seeding and device choice, shared by chapters and the trainer.

Every chapter's first cell calls :func:`setup` (chapter 1 explains why the
book is reproducible).
"""

from __future__ import annotations

import ctypes
import os
import platform
import random
import re
import subprocess
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import YOLOv2Error

__all__ = [
    "MAX_SEED", "seed_everything", "default_device", "check_device", "setup", "plain_warnings", "training_threads", "cpu_info", "cpu_name", "hardware", "git_commit", "provenance", "glue", "quick_mode", "bf16_disabled",
    "tune_allocator", "allocator_tuned",
]  # fmt: skip


#: The largest seed every generator takes (NumPy's limit).
MAX_SEED = 2**32 - 1


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def default_device() -> torch.device:
    """CUDA when available, then Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")



def check_device(name: str | None) -> torch.device | None:
    """The device ``name`` names, once this PyTorch is known to be able to use it (``None`` stays None).

    Raises:
        YOLOv2Error: not a device name, or a device this machine or this PyTorch build lacks.
    """
    if name is None:
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise YOLOv2Error(f"{name!r} is not a device name: use cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise YOLOv2Error(f"{name}: no CUDA GPU is usable here (this PyTorch is built without CUDA, or no GPU "
                              "is visible); use cpu, or install a CUDA build of PyTorch.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise YOLOv2Error(f"{name}: there are {torch.cuda.device_count()} GPU(s), numbered from 0.")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise YOLOv2Error(f"{name}: Apple's MPS is not available here; use cpu.")
    elif device.type != "cpu":
        raise YOLOv2Error(f"{name}: only cpu, cuda and mps are supported.")
    return device

def setup(seed: int = 0) -> torch.device:
    """Seed everything, show warnings plainly (:func:`plain_warnings`) and return the device to
    use (what each chapter's first cell does)."""
    seed_everything(seed)
    plain_warnings()
    return default_device()


# a path with at least one folder: (drive) / folder / ... / name
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\\/\s,:;'\"()]+)+[\\/]([^\\/\s,:;'\"()]+)")


def _plain_warning(message, category, filename, lineno, line=None) -> str:
    text = _PATH.sub(r"\1", str(message))
    return f"{category.__name__}: {text}\n"


def plain_warnings() -> None:
    """Show a warning as ``Category: message``, with every file path in it shortened to the
    file's name, and without the line of code that raised it.

    Python's default names the source file and line that called ``warnings.warn``
    (somewhere inside a library) and repeats that line of code: useful when debugging
    the library, noise on a page that explains one idea. The message itself still
    says which data file, line and box are concerned.
    """
    warnings.formatwarning = _plain_warning


def training_threads() -> int:
    """Torch threads for training on this CPU: every core but one.

    The spare core runs the data worker that prepares the next batch, and whatever
    else the machine does (a browser, another notebook). A team of threads that
    occupies every core waits for its slowest member as soon as anything else
    wants one: on two busy cores, one thread trains faster than two.
    """
    return max(1, (os.cpu_count() or 1) - 1)


def cpu_info() -> dict[str, str]:
    """The first processor's fields in ``/proc/cpuinfo`` (``"model name"``, ``"flags"``, ...);
    empty where the OS has no such file."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    return cpu_info().get("model name") or platform.processor() or platform.machine()


def hardware(device: torch.device | str | None = None, threads: int | None = None) -> str:
    """One line naming what a run used: the GPU, or the CPU with its core and thread counts
    (``threads``: the count the run uses, default torch's current one)."""
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    return (f"{cpu_name()}, {os.cpu_count()} cores, {threads or torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}")


def git_commit(where: Path) -> str | None:
    """``HEAD`` of the git work tree holding ``where`` (``+dirty`` with uncommitted changes), or None."""
    try:
        run = dict(cwd=where, capture_output=True, text=True, timeout=10, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") if commit else None


def provenance(device: torch.device | str | None = None, threads: int | None = None) -> dict[str, Any]:
    """Where a run comes from: the command line, the library's git commit, the time and the hardware
    (``threads``: the torch threads the run uses, default torch's current count)."""
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else None,
        "commit": git_commit(Path(__file__).resolve().parent),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware(device, threads),
    }


def quick_mode() -> bool:
    """True when ``YOLOV2_QUICK`` is set (not ``0``): a first look, in which the book's
    chapters train for seconds instead of minutes."""
    return os.environ.get("YOLOV2_QUICK", "0") not in ("", "0")


def bf16_disabled() -> bool:
    """True when ``YOLOV2_NO_BF16`` is set (not ``0``): the library then acts as on hardware
    without native bfloat16, whatever the computer has.

    Every bf16 probe (:func:`~yolov2_lib.detect.cpu_supports_bf16`,
    :func:`~yolov2_lib.detect.cuda_supports_bf16`) answers ``False``, so ``amp="auto"``
    and ``precision="auto"`` pick float32 on the CPU and fp16 on a GPU. Use it to see the
    book as most readers do: on a laptop without native bf16.
    """
    return os.environ.get("YOLOV2_NO_BF16", "0") not in ("", "0")


def glue(name: str, value: Any) -> Any:
    """Hand a computed value to the book's prose (myst-nb's ``glue``, not displayed).

    The prose writes ``{glue:text}`name:.2f``` and the built page shows the
    number this run computed. Outside a book build (Jupyter, Colab without
    myst-nb) nothing happens. Returns ``value``.
    """
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # numpy / torch scalars: myst-nb formats plain Python numbers only
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    myst_glue(name, value, display=False)
    return value


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_allocator_tuned = False


def tune_allocator() -> bool:
    """Keep freed memory in the process for reuse instead of handing it back to the OS.

    glibc serves each block above a threshold (at most 32 MB) with its own
    ``mmap`` and unmaps it when freed, so every training step faults in its
    large activations again, page by page, and zeroes them. This sets
    ``M_MMAP_MAX = 0`` (blocks come from the heap) and a 2 GB trim
    threshold (freed heap stays), the effect of ``MALLOC_MMAP_MAX_=0
    MALLOC_TRIM_THRESHOLD_=...`` in the environment, applied at run time.

    Measured on the 2-core machine of the README (``bench train``): a full-width
    fp32 channels-last training step at batch 8 takes 3.9 s instead of 4.6 s
    (plain NCHW: 4.0 instead of 4.9); the peak memory rises
    about 20 % (the freed blocks are kept, not returned). DataLoader workers
    forked afterwards inherit it. CUDA memory is not affected (PyTorch caches it).

    Returns:
        True when the setting is in force (now or from an earlier call); False
        where there is no glibc (macOS, Windows, musl), which changes nothing.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _allocator_tuned = bool(ok)
    return _allocator_tuned


def allocator_tuned() -> bool:
    """Whether :func:`tune_allocator` is in force in this process."""
    return _allocator_tuned
