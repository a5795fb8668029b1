"""Detectors trained by the project's own command, shipped with the package.

Each file in ``yolov2_lib/weights/`` was written by ``yolov2 export`` from a
``yolov2 train`` run; the JSON beside it records the command, the commit, the
time, the hardware and the results measured on the test split. Chapter 8
(multi-scale inference) and chapter 9 (training end to end) use them.

Example::

    from yolov2_lib import pretrained
    detector = pretrained.load("bccd")      # Checkpointed(model, class_names, ...)
    pretrained.info("bccd")["results"]      # what it scored, and how it was made
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .checkpoint import Checkpointed, model_from_checkpoint
from .errors import YOLOv2Error

__all__ = ["WEIGHTS_DIR", "available", "path", "info", "load"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def available() -> list[str]:
    """Names of the shipped detectors (files ``weights/<name>.pt``)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def path(name: str) -> Path:
    """The ``.pt`` file of a shipped detector.

    Raises:
        YOLOv2Error: no detector of that name (the message lists the names).
    """
    file = WEIGHTS_DIR / f"{name}.pt"
    if not file.is_file():
        raise YOLOv2Error(f"no shipped detector named {name!r}; available: {', '.join(available()) or 'none'}.")
    return file


def info(name: str) -> dict[str, Any]:
    """The provenance and results recorded beside a shipped detector (its JSON file)."""
    return json.loads(path(name).with_suffix(".json").read_text())


def load(name: str, device: str | torch.device = "cpu") -> Checkpointed:
    """Rebuild a shipped detector: ``(model in eval mode, class_names, config, letterbox, state)``."""
    return model_from_checkpoint(path(name), device=device)
