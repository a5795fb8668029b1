"""Multi-scale training: batches whose input size changes every few batches.

Chapter 8 (multi-scale training) explains this module.

YOLO v2 is fully convolutional, so darknet trains it on inputs of several
sizes: every 10 batches it picks a new side from {320, 352, ..., 608}
(multiples of the network stride 32). Here the size is decided by the batch
sampler and *travels with every index of the batch* as a
:class:`MultiScaleItem` ``(index, size, epoch)``. The dataset reads the size
from the item, so DataLoader workers -- separate processes holding their own
copy of the dataset -- always build the batch at the right size. (Ports that
store the current size on the dataset object in the main process see it
never change inside workers.)

Everything is a function of ``seed``: the order of an epoch from
``(seed, epoch)``, the size of a block of ``every`` batches from
``(seed, block)`` with blocks counted across epochs as darknet counts
iterations. So a run can be repeated, resumed mid-epoch from
:meth:`MultiScaleBatchSampler.state_dict`, and split over processes for
DistributedDataParallel: each of ``num_replicas`` ranks takes its slice of
the same global batch, so the union over ranks is the single-process batch.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, NamedTuple, Sequence, Sized

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import YOLOv2Error
from .transforms import derive_seed

__all__ = ["MultiScaleItem", "MultiScaleBatchSampler", "detection_collate", "fixed_size_loader"]

# Tags that keep the sampler's random streams apart from the per-sample ones (epoch >= 0).
_SIZE_STREAM = -1
_ORDER_STREAM = -2


class MultiScaleItem(NamedTuple):
    """One request to the dataset: which image, at which input size, in which epoch."""

    index: int
    size: int
    epoch: int


class MultiScaleBatchSampler(Sampler[list[MultiScaleItem]]):
    """Batches of :class:`MultiScaleItem` with a new input size every ``every`` batches.

    Use it as a DataLoader's ``batch_sampler`` with :func:`detection_collate`::

        sampler = MultiScaleBatchSampler(len(dataset), 64, seed=0)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=detection_collate,
                            num_workers=4)
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            for images, targets, metas in loader:  # images: (B, 3, S, S), S changes
                ...

    Args:
        data_source: the number of samples, anything with a length (a dataset),
            or a ``Sampler`` giving the order of each epoch (then ``shuffle``
            is not used; its ``set_epoch`` is called if it has one, and it must
            give the same order for the same epoch for resuming to be exact).
        batch_size: the global batch size (all ranks together).
        sizes: input sides to choose from (darknet: 320, 352, ..., 608).
        every: batches between two size draws (darknet: 10).
        drop_last: drop the last, smaller batch of an epoch.
        shuffle: draw a new order each epoch (from ``seed`` and the epoch).
        seed: the seed of orders and sizes.
        num_replicas: processes sharing each batch (default: the
            ``torch.distributed`` world size when initialised, else 1).
        rank: this process's rank (default: the ``torch.distributed`` rank, else 0).
    """

    def __init__(
        self,
        data_source: int | Sized | Sampler[int],
        batch_size: int,
        *,
        sizes: Sequence[int] = range(320, 609, 32),
        every: int = 10,
        drop_last: bool = False,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        self._sampler: Sampler[int] | None = None
        if isinstance(data_source, bool):
            raise TypeError("data_source must be a length, a sized dataset or a Sampler, got a bool.")
        if isinstance(data_source, int):
            num_samples = data_source
        elif isinstance(data_source, Sampler):
            self._sampler = data_source
            num_samples = len(data_source)  # type: ignore[arg-type]
        elif hasattr(data_source, "__len__"):
            num_samples = len(data_source)
        else:
            raise TypeError(
                "data_source must be a length, a sized dataset or a Sampler, "
                f"got {type(data_source).__name__}."
            )
        if num_samples <= 0:
            raise YOLOv2Error(f"Expected at least one sample, got {num_samples}.")
        if batch_size <= 0:
            raise YOLOv2Error(f"Expected a positive batch_size, got {batch_size}.")
        if every <= 0:
            raise YOLOv2Error(f"Expected a positive every, got {every}.")
        sizes = [int(s) for s in sizes]
        if not sizes or min(sizes) <= 0:
            raise YOLOv2Error(f"Expected a non-empty list of positive sizes, got {sizes}.")
        if num_replicas is None:
            num_replicas = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if rank is None:
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if num_replicas <= 0 or not 0 <= rank < num_replicas:
            raise YOLOv2Error(f"Expected 0 <= rank < num_replicas, got rank {rank} of {num_replicas}.")
        if batch_size % num_replicas:
            raise YOLOv2Error(
                f"batch_size {batch_size} (the global batch) must be divisible by "
                f"num_replicas {num_replicas}."
            )
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.sizes = sizes
        self.every = every
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = int(seed)
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self._resume: tuple[int, int] | None = None  # (epoch, batches to skip) after load_state_dict
        self._done = 0  # batches of self.epoch handed out by the last iteration
        if self.batches_per_epoch == 0:
            raise YOLOv2Error(f"drop_last with {num_samples} samples < batch_size {batch_size}: no batch.")

    # ------------------------------------------------------------ the plan

    @property
    def batches_per_epoch(self) -> int:
        """Number of (global) batches in a full epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch of the next iteration (its order, sizes and augmentation)."""
        self.epoch = int(epoch)

    def size_at(self, batch: int, epoch: int | None = None) -> int:
        """Input size of batch number ``batch`` of ``epoch`` (default: the current epoch).

        Blocks of ``every`` batches are counted across epochs, as darknet counts
        iterations, and each block's size is drawn from ``(seed, block)``.
        """
        epoch = self.epoch if epoch is None else epoch
        block = (epoch * self.batches_per_epoch + batch) // self.every
        g = torch.Generator().manual_seed(derive_seed(self.seed, _SIZE_STREAM, block))
        return self.sizes[int(torch.randint(len(self.sizes), (), generator=g))]

    def order(self, epoch: int | None = None) -> list[int]:
        """The sample indices of ``epoch`` in the order they are batched."""
        epoch = self.epoch if epoch is None else epoch
        if self._sampler is not None:
            if hasattr(self._sampler, "set_epoch"):
                self._sampler.set_epoch(epoch)
            indices = [int(i) for i in self._sampler]
            if len(indices) != self.num_samples:
                raise YOLOv2Error(f"The sampler gave {len(indices)} indices, expected {self.num_samples}.")
            return indices
        if not self.shuffle:
            return list(range(self.num_samples))
        g = torch.Generator().manual_seed(derive_seed(self.seed, _ORDER_STREAM, epoch))
        return torch.randperm(self.num_samples, generator=g).tolist()

    def global_batches(self, epoch: int | None = None) -> list[list[int]]:
        """The single-process batches of ``epoch`` (what all ranks together take)."""
        indices = self.order(epoch)
        batches = [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def _rank_slice(self, batch: list[int], indices_head: list[int]) -> list[int]:
        if self.num_replicas == 1:
            return batch
        # A last, short batch is padded from the start of the epoch so every rank gets
        # the same number of samples (DDP needs that); full batches are never padded.
        pad = -len(batch) % self.num_replicas
        padded = batch + [indices_head[i % len(indices_head)] for i in range(pad)]
        per = len(padded) // self.num_replicas
        return padded[self.rank * per : (self.rank + 1) * per]

    # ------------------------------------------------------------ iteration

    def _start(self) -> int:
        if self._resume is not None and self._resume[0] == self.epoch:
            return self._resume[1]
        return 0

    def __iter__(self) -> Iterator[list[MultiScaleItem]]:
        epoch, start = self.epoch, self._start()
        self._resume = None
        batches = self.global_batches(epoch)
        head = batches[0]
        self._done = start
        for b in range(start, len(batches)):
            size = self.size_at(b, epoch)
            mine = self._rank_slice(batches[b], head)
            self._done = b + 1
            yield [MultiScaleItem(i, size, epoch) for i in mine]

    def __len__(self) -> int:
        """Batches the next iteration yields (fewer than an epoch right after a mid-epoch resume)."""
        return self.batches_per_epoch - self._start()

    # ------------------------------------------------------------ resuming

    _CONFIG = ("seed", "num_samples", "batch_size", "sizes", "every", "drop_last", "shuffle")

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        """Where the sampler stands, to continue the exact same sequence later.

        Args:
            batches_done: batches of the current epoch the training loop has
                consumed. Default: those this sampler has handed out -- exact when
                iterating it directly or with ``num_workers=0``, but a DataLoader
                with workers draws a few batches ahead, so pass the loop's count.

        Returns:
            A dict of plain Python values (the epoch, the batches done in it, and
            the settings a resumed sampler must share).
        """
        if batches_done is None:
            epoch, done = self._resume if self._resume is not None else (self.epoch, self._done)
        else:
            epoch, done = self.epoch, int(batches_done)
        if not 0 <= done <= self.batches_per_epoch:
            raise YOLOv2Error(f"batches_done must be in [0, {self.batches_per_epoch}], got {done}.")
        if done == self.batches_per_epoch:  # a finished epoch resumes at the start of the next
            epoch, done = epoch + 1, 0
        state: dict[str, Any] = {"epoch": epoch, "batches_done": done}
        for key in self._CONFIG:
            value = getattr(self, key)
            state[key] = list(value) if key == "sizes" else value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`: the next iteration yields the remaining batches.

        Raises:
            ValueError: a setting differs from the saved one (the sequence would differ).
        """
        missing = [k for k in ("epoch", "batches_done", *self._CONFIG) if k not in state]
        if missing:
            raise YOLOv2Error(f"Sampler state lacks {', '.join(missing)}.")
        mismatched = []
        for key in self._CONFIG:
            mine = getattr(self, key)
            mine = list(mine) if key == "sizes" else mine
            theirs = list(state[key]) if key == "sizes" else state[key]
            if mine != theirs:
                mismatched.append(f"{key}: saved {theirs!r}, now {mine!r}")
        if mismatched:
            raise YOLOv2Error("Cannot resume with different settings: " + "; ".join(mismatched) + ".")
        done = int(state["batches_done"])
        if not 0 <= done <= self.batches_per_epoch:
            raise YOLOv2Error(f"batches_done must be in [0, {self.batches_per_epoch}], got {done}.")
        self.epoch = int(state["epoch"])
        self._resume = (self.epoch, done)
        self._done = done


def detection_collate(
    samples: Sequence[tuple[Tensor, Tensor, dict[str, Any]]],
) -> tuple[Tensor, list[Tensor], list[dict[str, Any]]]:
    """Stack a batch of same-size samples; targets stay a list (each image has its own count).

    Args:
        samples: ``(image (3, S, S), target (N_i, 5), meta)`` from :class:`DetectionDataset`.

    Returns:
        ``(images (B, 3, S, S), targets [(N_i, 5)], metas [dict])``.

    Raises:
        ValueError: the images do not all have the same shape.
    """
    if not samples:
        raise YOLOv2Error("detection_collate got an empty batch.")
    images, targets, metas = zip(*samples)
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) != 1:
        raise YOLOv2Error(
            f"detection_collate got images of different shapes {sorted(shapes)} in one batch; "
            "a batch must share one input size (use MultiScaleBatchSampler)."
        )
    return torch.stack(images), list(targets), list(metas)


def fixed_size_loader(dataset: Dataset, size: int, batch_size: int = 8, num_workers: int = 0) -> DataLoader:
    """The whole dataset in order, in batches at one input size: how a detector is scored.

    Each batch is a list of ``(index, size)`` requests, so the size reaches the
    dataset (and its worker processes) with every image, as in training.

    Args:
        dataset: a :class:`~yolov2_lib.data.voc.DetectionDataset`.
        size: the input side (a multiple of 32).
        batch_size: images per batch (the last one may be smaller).
        num_workers: DataLoader worker processes.

    Returns:
        A DataLoader of ``(images, targets, metas)`` batches (:func:`detection_collate`).
    """
    if size <= 0 or size % 32:
        raise YOLOv2Error(f"input size must be a positive multiple of 32, got {size}.")
    if batch_size < 1:
        raise YOLOv2Error(f"batch_size must be at least 1, got {batch_size}.")
    batches = [[(i, size) for i in range(s, min(s + batch_size, len(dataset)))]
               for s in range(0, len(dataset), batch_size)]
    return DataLoader(dataset, batch_sampler=batches, collate_fn=detection_collate, num_workers=num_workers)
