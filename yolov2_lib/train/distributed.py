"""Several processes training one model: joining the group ``torchrun`` describes (chapter 9)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["init_distributed"]


def init_distributed(backend: str | None = None) -> tuple[int, int, int]:
    """Join the process group that ``torchrun`` describes in the environment.

    Does nothing when the group already exists or ``WORLD_SIZE`` is 1 or unset.

    Args:
        backend: ``None`` picks NCCL with CUDA, else gloo.

    Returns:
        ``(rank, world_size, local_rank)``.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), local_rank
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed.")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), local_rank

