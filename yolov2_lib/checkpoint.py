"""Saving and loading what a run made: checkpoints, exported weights, and one loader for both.

Chapter 9 (training end to end) explains it.

- Checkpoints hold only tensors and plain Python containers, so they load
  with ``torch.load(weights_only=True)``; a file holding other Python objects
  is refused, since unpickling them could run code.
- Every file is written atomically (:func:`~yolov2_lib.files.atomic_path`):
  a crash leaves the old file or the new one, never half of one.
- :func:`load` is the one way to get a trained detector back: a shipped name
  (``"bccd"``), a run's ``best.pt``/``last.pt`` or an exported weights file.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import re
from dataclasses import MISSING, asdict, fields, replace
from pathlib import Path
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .config import TrainConfig
from .errors import YOLOv2Error
from .files import atomic_open, process_alive, write_json
from .model import YOLOv2, YOLOv2Config

__all__ = [
    "CHECKPOINT_FORMAT",
    "WEIGHTS_FORMAT",
    "Checkpointed",
    "save_checkpoint",
    "load_checkpoint",
    "model_from_checkpoint",
    "export_weights",
    "load",
    "resolve",
]

CHECKPOINT_FORMAT = "yolov2_lib.train/1"
WEIGHTS_FORMAT = "yolov2_lib.weights/1"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a temporary file, fsync, then ``os.replace``.

    A crash at any moment leaves either the old file or the new one, never a
    partial file; the temporary file is removed if writing fails. A digest of
    every tensor goes with them (``tensor_digests``), so that reading the file
    again finds a damaged tensor and names it.

    Args:
        state: tensors and plain containers only (so it loads with ``weights_only=True``).
        path: the destination.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    state = {k: v for k, v in state.items() if k != DIGESTS}
    buffer = io.BytesIO()  # serialised first: a full disk then fails in Python's write, with its errno
    torch.save({**state, DIGESTS: _tensor_digests(state)}, buffer)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getbuffer())
    return Path(path)


DIGESTS = "tensor_digests"


def _tensors(value: Any, name: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside nested dicts and lists, with its path (``model/conv1.weight``)."""
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{name}/{key}" if name else str(key))
    elif isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            yield from _tensors(item, f"{name}/{k}" if name else str(k))


def _digest(tensor: torch.Tensor) -> str:
    data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    return hashlib.sha256(data).hexdigest()[:16]


def _tensor_digests(state: dict[str, Any]) -> dict[str, str]:
    return {name: _digest(tensor) for name, tensor in _tensors(state)}


def _verify(state: Any, path: Path) -> None:
    """Compare every tensor with the digest written with it (files written before digests pass)."""
    if not isinstance(state, dict) or not isinstance(state.get(DIGESTS), dict):
        return
    expected = state[DIGESTS]
    for name, tensor in _tensors({k: v for k, v in state.items() if k != DIGESTS}):
        if expected.get(name) != _digest(tensor):
            raise YOLOv2Error(f"{path} is damaged: tensor {name} differs from what was written (its digest "
                              "does not match); use another copy or an earlier checkpoint.")



def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a trainer checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: naming the path.
        YOLOv2Error: the file is not a checkpoint of this trainer, is damaged, or is not a
            weights-only file (see :func:`_read_torch_file`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    state = _read_torch_file(path, map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise YOLOv2Error(f"{path} is not a yolov2_lib training checkpoint (format {CHECKPOINT_FORMAT!r}).")
    return state


def _read_torch_file(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one clear error per way it can fail.

    Raises:
        YOLOv2Error: the file holds Python objects other than tensors and plain containers
            (refused: unpickling them could run code), or it is damaged or not a PyTorch file.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise YOLOv2Error(f"{path} cannot be read: it is damaged or not a PyTorch file "
                             f"({type(exc).__name__}).") from None
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise YOLOv2Error(
            f"{path} is refused: it is not a weights-only file -- it holds a Python object{what}, and "
            "loading it could run code. Only files of tensors and plain containers, as yolov2_lib "
            "writes them, are read."
        ) from None
    except (RuntimeError, EOFError, KeyError, IndexError, ValueError, TypeError, AttributeError,
            UnicodeDecodeError, OSError) as exc:
        raise YOLOv2Error(f"{path} cannot be read: it is damaged (truncated or overwritten) or not a "
                         f"PyTorch file ({type(exc).__name__}).") from None
    _verify(state, path)
    return state


_TEMPORARY = re.compile(r"^\.(last\.pt|best\.pt|history\.json)\.(\d+)\.tmp$")


def _remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the hidden ``.last.pt.<pid>.tmp`` files (and those of ``best.pt`` and
    ``history.json``) that processes killed while writing left in ``folder``; the files of
    processes still running stay. Returns the paths removed."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        found = _TEMPORARY.match(p.name)
        if found is None or not p.is_file():
            continue
        pid = int(found.group(2))
        if pid != os.getpid() and not process_alive(pid):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    mps = getattr(torch, "mps", None)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        state["mps"] = mps.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


def _model_config_dict(model: nn.Module) -> dict[str, Any] | None:
    config = getattr(model, "config", None)
    if not isinstance(config, YOLOv2Config):
        return None
    values = asdict(config)
    values["anchors"] = [[float(v) for v in a] for a in config.anchors]
    return values


def _complete_model_config(values: dict[str, Any]) -> dict[str, Any]:
    """A saved model configuration with the fields it predates at their defaults.

    A checkpoint written before a field of :class:`~yolov2_lib.model.YOLOv2Config`
    existed built the network that field's default describes (with batch norm,
    with the passthrough, direct location prediction), so that is its value.

    Args:
        values: the ``model_config`` of a checkpoint.

    Returns:
        A new dictionary with every field of ``YOLOv2Config``.
    """
    missing = {f.name: f.default for f in fields(YOLOv2Config)
               if f.name not in values and f.default is not MISSING}
    return {**values, **missing}



class Checkpointed(NamedTuple):
    """A model rebuilt from a checkpoint, with what it was trained on.

    ``letterbox`` says whether the training images were letterboxed (keep it for
    evaluation and detection).
    """

    model: YOLOv2
    class_names: list[str]
    config: TrainConfig
    letterbox: bool
    state: dict[str, Any]


def _load_any(path: str | Path) -> dict[str, Any]:
    """A trainer checkpoint or an exported weights file, checked for either format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    state = _read_torch_file(path)
    if not isinstance(state, dict) or state.get("format") not in (CHECKPOINT_FORMAT, WEIGHTS_FORMAT):
        raise YOLOv2Error(f"{path} is neither a yolov2_lib training checkpoint ({CHECKPOINT_FORMAT!r}) "
                         f"nor exported weights ({WEIGHTS_FORMAT!r}).")
    return state


def model_from_checkpoint(path: str | Path, *, use_ema: bool = True,
                          device: str | torch.device = "cpu") -> Checkpointed:
    """Rebuild the trained :class:`~yolov2_lib.model.YOLOv2` of a checkpoint or exported weights.

    Args:
        path: ``last.pt`` or ``best.pt`` of a run, or a file of :func:`export_weights`.
        use_ema: take the averaged weights when the run kept an EMA (exported
            weights hold one set only).
        device: where to put the model.

    Returns:
        :class:`Checkpointed` ``(model in eval mode, class_names, config, letterbox, state)``.
    """
    state = _load_any(path)
    if state.get("model_config") is None:
        raise YOLOv2Error(f"{path} holds no YOLOv2 configuration; build the model yourself and load state['model'].")
    model = YOLOv2(YOLOv2Config(**state["model_config"]))
    if state["format"] == WEIGHTS_FORMAT:
        weights = {k: v.float() if v.is_floating_point() else v for k, v in state["weights"].items()}
    else:
        weights = state["ema"]["module"] if use_ema and state.get("ema") else state["model"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:  # weights of another network than its configuration describes
        raise YOLOv2Error(f"{path}: its weights do not fit its configuration "
                          f"({str(exc).splitlines()[0]}).") from None
    # One truth for the anchors: the buffer just loaded (float16 in exported weights), also in the
    # configuration a run started from these weights records, so that resuming it rebuilds the same loss.
    model.config = replace(model.config, anchors=tuple(tuple(a) for a in model.anchors.tolist()))
    return Checkpointed(model.to(device).eval(), list(state["class_names"]),
                        TrainConfig.from_dict(state["config"]), bool(state.get("letterbox", False)), state)


def export_weights(checkpoint: str | Path, out: str | Path, *, half: bool = True, use_ema: bool = True,
                   results: dict[str, Any] | None = None) -> Path:
    """Write the inference part of a training checkpoint: a small file to ship or share.

    The file keeps the model configuration, the weights (the EMA's by default;
    stored in float16 when ``half``, which halves the size and loads back to
    float32), the class names, the training configuration and the run's
    provenance; it loads with :func:`model_from_checkpoint` (and ``torch.load``
    with ``weights_only=True``). A JSON file beside it (same name, ``.json``)
    repeats everything but the weights, for people to read.

    Args:
        checkpoint: ``best.pt`` or ``last.pt`` of ``yolov2 train``, or exported weights (written
            again, e.g. in float32 or with more results).
        out: the ``.pt`` file to write (never the checkpoint itself).
        half: store floating point weights as float16.
        use_ema: export the averaged weights when the run kept them.
        results: measured numbers to record with it (e.g. the test mAP).

    Returns:
        ``out`` as a :class:`~pathlib.Path`.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if out.resolve() == checkpoint.resolve():
        raise YOLOv2Error(f"export_weights would overwrite its input {checkpoint}; choose another output file.")
    state = _load_any(checkpoint)
    if state.get("model_config") is None:
        raise YOLOv2Error(f"{checkpoint} holds no YOLOv2 configuration to export.")
    if state["format"] == WEIGHTS_FORMAT:  # exported weights again: the same record, with these results added
        weights = state["weights"]
        info = {k: v for k, v in state.items() if k not in ("weights", DIGESTS)}
        info["results"] = {**info.get("results", {}), **(results or {})}
    else:
        weights = state["ema"]["module"] if use_ema and state.get("ema") else state["model"]
        info = _exported_record(state, use_ema, results)
    weights = {k: (v.half() if half else v.float()) if v.is_floating_point() else v for k, v in weights.items()}
    info.update(dtype="float16" if half else "float32", source_checkpoint=checkpoint.name)
    save_checkpoint({**info, "weights": weights}, out)
    write_json(out.with_suffix(".json"), info, indent=2)
    return out


def _exported_record(state: dict[str, Any], use_ema: bool, results: dict[str, Any] | None) -> dict[str, Any]:
    """What exported weights record of the training checkpoint ``state`` (everything but the weights)."""
    train = state["history"]["train"]
    return {
        "format": WEIGHTS_FORMAT,
        "model_config": state["model_config"],
        "class_names": list(state["class_names"]),
        "letterbox": bool(state.get("letterbox", False)),
        "config": {**state["config"], "out_dir": _folder_name(state["config"].get("out_dir"))},
        "provenance": _shareable(state.get("provenance")),
        "training": {
            "iterations": int(state["iteration"]), "epochs": int(state["epoch"]), "seen": int(state["seen"]),
            "train_seconds": float(state.get("train_seconds", sum(train["step_time"]))),
            "best_val_map": state.get("best_map"), "ema": bool(use_ema and state.get("ema")),
        },
        "results": dict(results or {}),
    }


def _folder_name(path: str | None) -> str | None:
    """The last part of a run folder's path: where it lay on the trainer's disk means nothing elsewhere."""
    return None if path is None else Path(path).name


def _shareable(provenance: dict[str, Any] | None) -> dict[str, Any] | None:
    """Provenance to ship: every command's ``--out`` folder reduced to its name."""
    if not provenance:
        return provenance

    def command(text: str | None) -> str | None:
        return None if text is None else re.sub(r"(--out[ =])(\S+)", lambda m: m[1] + Path(m[2]).name, text)

    shared = {**provenance, "command": command(provenance.get("command"))}
    if "resumed" in provenance:
        shared["resumed"] = [{**r, "command": command(r.get("command"))} for r in provenance["resumed"]]
    return shared



def load(source: str | os.PathLike, *, use_ema: bool = True, device: str | torch.device = "cpu") -> Checkpointed:
    """The one way back to a trained detector: a file (a run's ``best.pt``/``last.pt``, exported
    weights) or the name of a shipped detector (``"bccd"``, see :mod:`yolov2_lib.pretrained`).

    A file of that name wins over a shipped detector.

    Returns:
        :class:`Checkpointed` ``(model in eval mode, class_names, config, letterbox, state)``
        (:func:`resolve` says which file that is).

    Raises:
        FileNotFoundError: neither a file nor a shipped name (the message lists the shipped ones).
        YOLOv2Error: the file is damaged, unsafe or not one of this library's.
    """
    return model_from_checkpoint(resolve(source), use_ema=use_ema, device=device)


def resolve(source: str | os.PathLike) -> Path:
    """The file :func:`load` reads for ``source``: the file itself, else a shipped detector's."""
    from . import pretrained  # the shipped weights' folder; pretrained loads through this module

    path = Path(source)
    if path.is_file():
        return path
    if str(source) in pretrained.available():
        return pretrained.path(str(source))
    shipped = ", ".join(pretrained.available()) or "none"
    raise FileNotFoundError(f"checkpoint {path} does not exist: it is neither a file nor a shipped detector "
                            f"(shipped: {shipped}).")
