"""Decoding image files to RGB tensors (:func:`load_image`), and reading their size (:func:`image_size`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..transforms import to_float
from .errors import ImageLoadError

__all__ = ["image_size", "load_image"]


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image, reading only its header.

    Raises:
        ImageLoadError: the file is missing or not an image PIL can open.
    """
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageLoadError(f"{path}: cannot open the image ({type(err).__name__}: {err}).") from err


def load_image(path: str | Path, dtype: torch.dtype = torch.float32) -> Tensor:
    """Decode an image file to an RGB tensor: float32 in [0, 1], or uint8.

    Grayscale, black-and-white and palette images are expanded to RGB,
    an alpha channel is dropped, 16-bit images (PIL modes ``I;16`` and ``I``)
    are divided by 65535 (rounded to 8 bits for uint8). EXIF orientation is
    ignored: annotations refer to the stored pixels.

    Args:
        path: the image file.
        dtype: ``torch.float32`` (default) or ``torch.uint8``: the decoded
            bytes, 4x smaller, in channels-last memory (the layout the JPEG
            decoder writes; :class:`DetectionDataset` reads images this way and
            converts after resizing).

    Returns:
        (3, H, W) of ``dtype``.

    Raises:
        ImageLoadError: the file is missing, truncated, corrupt, or float-valued.
        ValueError: ``dtype`` is neither float32 nor uint8.
    """
    if dtype not in (torch.float32, torch.uint8):
        raise ValueError(f"load_image: dtype must be torch.float32 or torch.uint8, got {dtype}.")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode.startswith("I;16") or mode == "I":
                gray = np.clip(np.asarray(img).astype(np.float32) / 65535.0, 0, 1)  # (H, W)
                if dtype == torch.uint8:
                    gray = np.rint(gray * 255).astype(np.uint8)
                return torch.from_numpy(np.repeat(gray[..., None], 3, axis=2)).permute(2, 0, 1).contiguous()
            if mode == "F":
                raise ImageLoadError(f"{path}: 32-bit float images (PIL mode F) are not supported.")
            if mode == "P" or "A" in mode:  # via RGBA so a palette's transparency is read right
                img = img.convert("RGBA")
            rgb = np.array(img.convert("RGB"), dtype=np.uint8)  # (H, W, 3), a writable copy
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise ImageLoadError(f"{path}: cannot decode the image ({type(err).__name__}: {err}).") from err
    image = torch.from_numpy(rgb).permute(2, 0, 1)  # (3, H, W), channels-last strides
    return image if dtype == torch.uint8 else to_float(image)
