"""Which number format the network computes in: one policy for training, evaluation, detection and export.

Chapter 9 (training end to end) and the appendix on speed explain it.

Four names, everywhere in the library and on the command line:

- ``"fp32"``: float32, no autocast (``"off"`` is accepted as another spelling);
- ``"bf16"``: bfloat16 autocast (float32's range, 8 bits of mantissa);
- ``"fp16"``: float16 autocast (CUDA only; training adds a gradient scaler);
- ``"auto"``: what the hardware computes natively, by one rule:

  ============================================  =========
  device                                        ``auto``
  ============================================  =========
  CPU with AVX512-BF16 or AMX-BF16              bf16
  any other CPU (most laptops)                  fp32
  CUDA GPU of compute capability 8.0 or newer   bf16
  older CUDA GPU (a T4, a V100)                 fp16
  any other device                              fp32
  ============================================  =========

Emulated bf16 is much slower than float32, so ``auto`` never picks it. With
``YOLOV2_NO_BF16=1`` in the environment every bf16 probe answers no
(:func:`~yolov2_lib.runtime.bf16_disabled`), as on most readers' laptops.

A precision asked for by name is treated by what it is for:

- inference (:func:`for_inference`, used by :class:`~yolov2_lib.detect.Detector`):
  a request the device cannot compute natively warns and falls back to ``auto``;
- training (:func:`autocast_dtype`): bf16 is honoured even where it is emulated
  (with a warning: it is slow, not wrong); fp16 off CUDA is an error.

Either way the head output is cast to float32 before decoding, so boxes,
scores and NMS always run in float32.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from .errors import YOLOv2Error
from .runtime import bf16_disabled, cpu_info

__all__ = [
    "PRECISIONS",
    "normalize",
    "cpu_supports_bf16",
    "cuda_supports_bf16",
    "native",
    "supported",
    "for_inference",
    "autocast_dtype",
    "dtype_of",
    "precision_name",
    "autocast",
]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_ALIASES = {"off": "fp32"}
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # None: no autocast


def normalize(precision: str, what: str = "precision") -> str:
    """``precision`` as one of :data:`PRECISIONS` (``"off"`` becomes ``"fp32"``).

    Raises:
        YOLOv2Error: not a precision name; ``what`` names the setting in the message.
    """
    name = _ALIASES.get(precision, precision)
    if name not in PRECISIONS:
        raise YOLOv2Error(f"{what} must be one of {PRECISIONS}, got {precision!r}.")
    return name


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16).

    Asks torch's own CPU feature probe (``torch.cpu.get_capabilities()``) and,
    when this torch lacks it, the ``avx512_bf16``/``amx_bf16`` flags of
    ``/proc/cpuinfo``. ``torch.backends.cpu.get_cpu_capability()`` is not
    enough: it says ``"AVX512"`` both with and without the bf16 extension.

    Returns:
        ``True`` when bf16 convolutions run natively on this CPU (always ``False`` when
        ``YOLOV2_NO_BF16`` is set, see :func:`~yolov2_lib.runtime.bf16_disabled`).
    """
    if bf16_disabled():
        return False
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        try:
            caps = get_capabilities()
            return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
        except (RuntimeError, AttributeError):
            pass
    return bool(set(cpu_info().get("flags", "").split()) & {"avx512_bf16", "amx_bf16"})


def cuda_supports_bf16(device: torch.device | int | None = None) -> bool:
    """Whether a CUDA GPU computes bfloat16 natively (compute capability 8.0 or newer: A100, L4,
    H100, ...; ROCm GPUs too).

    ``torch.cuda.is_bf16_supported()`` alone is not enough: by default it also says
    ``True`` for older GPUs (a T4, Colab's free GPU) that only emulate bf16, slowly.

    Returns:
        ``False`` without CUDA, or when ``YOLOV2_NO_BF16`` is set.
    """
    if bf16_disabled() or not torch.cuda.is_available():
        return False
    if torch.version.hip:
        return True
    index = device.index if isinstance(device, torch.device) else device
    return torch.cuda.get_device_properties(torch.cuda.current_device() if index is None else index).major >= 8


def native(device: torch.device | str) -> str:
    """What ``"auto"`` means on ``device`` (the table of the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if cuda_supports_bf16(device) else "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


def supported(precision: str, device: torch.device | str) -> bool:
    """Whether ``device`` computes ``precision`` natively (fp32 always)."""
    precision, device = normalize(precision), torch.device(device)
    if precision in ("auto", "fp32"):
        return True
    if device.type == "cuda":
        return precision == "fp16" or cuda_supports_bf16(device)
    if device.type == "cpu":
        return precision == "bf16" and cpu_supports_bf16()
    return False


def for_inference(precision: str, device: torch.device | str) -> str:
    """The precision inference runs at on ``device``: ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    ``"auto"`` follows the module's rule; a named precision the device cannot compute
    natively warns (``UserWarning``) and falls back to the ``"auto"`` choice.

    Raises:
        YOLOv2Error: ``precision`` is not one of :data:`PRECISIONS`.
    """
    precision, device = normalize(precision), torch.device(device)
    if precision == "auto":
        return native(device)
    if supported(precision, device):
        return precision
    fallback = native(device)
    warnings.warn(
        f"precision={precision!r} is not supported natively on {device} "
        f"(CPU bf16 needs AVX512-BF16 or AMX, CUDA bf16 compute capability 8.0; fp16 needs CUDA); "
        f"using {fallback!r} instead.",
        UserWarning,
        stacklevel=3,
    )
    return fallback


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype a training run's ``amp`` setting means on ``device`` (``None``: float32).

    Args:
        amp: one of :data:`PRECISIONS` (or ``"off"``).
        device: where the model runs.

    Returns:
        ``torch.bfloat16``, ``torch.float16`` or ``None``.

    Raises:
        YOLOv2Error: an unknown setting, or fp16 asked off CUDA.
    """
    amp = normalize(amp, "amp")
    if amp == "auto":
        return _DTYPES[native(device)]
    if amp == "bf16":
        if device.type == "cpu" and not cpu_supports_bf16():
            warnings.warn("This CPU has no native bfloat16 support: bf16 autocast runs, but slowly.", stacklevel=2)
        if device.type == "cuda" and not cuda_supports_bf16(device):
            warnings.warn("This GPU has no native bfloat16 support (compute capability below 8.0): bf16 "
                          "autocast is emulated, slowly; amp='auto' picks fp16 with loss scaling.", stacklevel=2)
    if amp == "fp16" and device.type != "cuda":
        raise YOLOv2Error(f"amp='fp16' needs a CUDA device (got {device}); use amp='auto', which picks "
                          f"what this device computes natively.")
    return _DTYPES[amp]


def dtype_of(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision (``None`` for fp32)."""
    return _DTYPES[normalize(precision)]


def precision_name(dtype: torch.dtype | None) -> str:
    """How a run's precision is written for people: ``"float32"`` (no autocast), ``"bf16"`` or ``"fp16"``."""
    return {None: "float32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``, or nothing for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
