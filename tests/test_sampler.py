"""MultiScaleBatchSampler and detection_collate: the size really changes inside
DataLoader workers, the sequence is a function of the seed, resumes mid-epoch,
and splits a global batch over DDP ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, SequentialSampler

from yolov2_lib.data.sampler import MultiScaleBatchSampler, MultiScaleItem, detection_collate
from yolov2_lib.data.transforms import Augment
from yolov2_lib.data.voc import BCCD_CLASSES, DetectionDataset


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> DetectionDataset:
    """24 small JPEGs with one box each, read through the boxes-CSV path."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    lines = ["image_id,width,height,class,xmin,ymin,xmax,ymax"]
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(root / f"im{i:02d}.jpg")
        lines.append(f"im{i:02d},40,30,{BCCD_CLASSES[i % 3]},{1 + i % 5},2,{30 + i % 7},25")
    (root / "boxes.csv").write_text("\n".join(lines) + "\n")
    return DetectionDataset.from_boxes_csv(root / "boxes.csv", root, class_names=BCCD_CLASSES,
                                           augment=Augment(), seed=0)  # fmt: skip


def _plan(sampler: MultiScaleBatchSampler) -> list[list[MultiScaleItem]]:
    return [list(batch) for batch in sampler]


# ---------------------------------------------------------------- sizes in DataLoader workers


def test_size_changes_every_n_batches_with_two_workers(small_dataset):
    sampler = MultiScaleBatchSampler(len(small_dataset), 2, sizes=(32, 64, 96), every=2, seed=1)
    loader = DataLoader(small_dataset, batch_sampler=sampler, collate_fn=detection_collate, num_workers=2)
    sizes = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for b, (images, targets, metas) in enumerate(loader):
            expected = sampler.size_at(b, epoch)
            # The tensors made in the workers have the size planned for this batch.
            assert images.shape == (2, 3, expected, expected)
            assert len(targets) == 2 and all(t.shape[1] == 5 for t in targets)
            assert all(m["input_size"] == expected for m in metas)
            sizes.append(expected)
    assert len(sizes) == 24
    blocks = [sizes[i : i + 2] for i in range(0, 24, 2)]
    assert all(len(set(block)) == 1 for block in blocks)  # constant inside a block of `every`
    assert len({block[0] for block in blocks}) == 3  # and it does change: all three sizes appear
    assert sum(a[0] != b[0] for a, b in zip(blocks, blocks[1:])) >= 4


def test_default_sizes_are_darknets():
    sampler = MultiScaleBatchSampler(10_000, 1)
    assert sampler.sizes == list(range(320, 609, 32)) and sampler.every == 10
    seen = {sampler.size_at(b) for b in range(0, 2000, 10)}
    assert seen == set(range(320, 609, 32))
    assert all(sampler.size_at(b) == sampler.size_at(b - b % 10) for b in range(100))


def test_blocks_run_across_epochs():
    # 5 batches per epoch, a size every 2 batches: batch 0 of epoch 1 shares its block with batch 4 of epoch 0.
    sampler = MultiScaleBatchSampler(10, 2, sizes=range(32, 1024, 32), every=2, seed=0)
    assert sampler.size_at(0, epoch=1) == sampler.size_at(4, epoch=0)
    assert sampler.size_at(1, epoch=1) == sampler.size_at(2, epoch=1)  # global batches 6, 7: block 3


# ---------------------------------------------------------------- reproducibility


def test_reproducible_from_seed():
    a = _plan(MultiScaleBatchSampler(50, 4, every=3, seed=7))
    b = _plan(MultiScaleBatchSampler(50, 4, every=3, seed=7))
    c = _plan(MultiScaleBatchSampler(50, 4, every=3, seed=8))
    assert a == b and a != c
    assert len(a) == 13 and [len(x) for x in a[-2:]] == [4, 2]
    assert sorted(i.index for batch in a for i in batch) == list(range(50))
    assert all(i.epoch == 0 for batch in a for i in batch)


def test_epochs_shuffle_and_drop_last():
    sampler = MultiScaleBatchSampler(10, 4, seed=0, drop_last=True)
    assert len(sampler) == 2
    first = _plan(sampler)
    assert _plan(sampler) == first  # the same epoch again
    sampler.set_epoch(1)
    second = _plan(sampler)
    assert [i.index for b in second for i in b] != [i.index for b in first for i in b]
    assert all(i.epoch == 1 for b in second for i in b)
    ordered = MultiScaleBatchSampler(10, 4, shuffle=False)
    assert [[i.index for i in b] for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_sampler_source_gives_the_order():
    sampler = MultiScaleBatchSampler(SequentialSampler(range(7)), 3, sizes=(64,))
    assert [[i.index for i in b] for b in sampler] == [[0, 1, 2], [3, 4, 5], [6]]
    assert MultiScaleBatchSampler(list(range(9)), 3).num_samples == 9  # a sized object


def test_augmentation_follows_the_epoch_in_the_item(small_dataset):
    a = small_dataset[MultiScaleItem(3, 64, 0)][0]
    b = small_dataset[MultiScaleItem(3, 64, 1)][0]
    assert not torch.equal(a, b) and torch.equal(a, small_dataset[MultiScaleItem(3, 64, 0)][0])


# ---------------------------------------------------------------- resume


def test_state_dict_resume_mid_epoch():
    def fresh():
        return MultiScaleBatchSampler(37, 4, sizes=(32, 64, 96, 128), every=3, seed=5)

    full = fresh()
    full.set_epoch(2)
    reference = _plan(full)

    first = fresh()
    first.set_epoch(2)
    it = iter(first)
    consumed = [next(it) for _ in range(4)]
    state = first.state_dict()
    assert state["epoch"] == 2 and state["batches_done"] == 4
    assert consumed == reference[:4]

    resumed = fresh()
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # a trainer's loop calls it again: the offset survives
    assert len(resumed) == len(reference) - 4
    assert _plan(resumed) == reference[4:]
    assert len(resumed) == len(reference)  # the next pass is a whole epoch again
    resumed.set_epoch(3)
    full.set_epoch(3)
    assert _plan(resumed) == _plan(full)


def test_state_dict_with_a_dataloader_count(small_dataset):
    def fresh():
        return MultiScaleBatchSampler(len(small_dataset), 4, sizes=(32, 48), every=2, seed=2)

    sampler = fresh()
    loader = DataLoader(small_dataset, batch_sampler=sampler, collate_fn=detection_collate, num_workers=2)
    seen = []
    for step, (images, _, metas) in enumerate(loader):
        seen.append((images.shape[-1], [m["index"] for m in metas]))
        if step == 2:
            state = sampler.state_dict(batches_done=step + 1)  # workers read ahead: pass the count
            break
    resumed = fresh()
    resumed.load_state_dict(state)
    loader = DataLoader(small_dataset, batch_sampler=resumed, collate_fn=detection_collate, num_workers=0)
    rest = [(images.shape[-1], [m["index"] for m in metas]) for images, _, metas in loader]
    plan = [(b[0].size, [i.index for i in b]) for b in fresh()]
    assert seen + rest == plan


def test_finished_epoch_resumes_at_next_and_mismatch_is_refused():
    sampler = MultiScaleBatchSampler(8, 4, seed=0)
    _plan(sampler)
    state = sampler.state_dict()
    assert (state["epoch"], state["batches_done"]) == (1, 0)
    other = MultiScaleBatchSampler(8, 2, seed=0)
    with pytest.raises(ValueError, match="batch_size: saved 4, now 2"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="lacks"):
        other.load_state_dict({"epoch": 0})
    with pytest.raises(ValueError, match="batches_done"):
        sampler.state_dict(batches_done=9)


# ---------------------------------------------------------------- DDP


@pytest.mark.parametrize("num_replicas", [2, 4])
def test_ddp_ranks_split_the_global_batch(num_replicas):
    kwargs = dict(sizes=(32, 64, 96), every=2, seed=3)
    single = _plan(MultiScaleBatchSampler(30, 8, **kwargs))
    ranks = [_plan(MultiScaleBatchSampler(30, 8, num_replicas=num_replicas, rank=r, **kwargs))
             for r in range(num_replicas)]  # fmt: skip
    assert all(len(r) == len(single) for r in ranks)
    for b, batch in enumerate(single):
        parts = [r[b] for r in ranks]
        assert len({len(p) for p in parts}) == 1  # equal shares (DDP needs that)
        assert {i.size for p in parts for i in p} == {batch[0].size}  # every rank at the same size
        union = [i for p in parts for i in p]
        if len(batch) == 8:
            assert union == batch  # full batches: the union is exactly the single-process batch
        else:  # the last batch (6 of 8) is padded from the epoch's start to a multiple of the ranks
            assert union[: len(batch)] == batch and len(union) % num_replicas == 0


def test_ddp_arguments_checked():
    with pytest.raises(ValueError, match="divisible by num_replicas 3"):
        MultiScaleBatchSampler(30, 8, num_replicas=3, rank=0)
    with pytest.raises(ValueError, match="rank"):
        MultiScaleBatchSampler(30, 8, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="batch_size"):
        MultiScaleBatchSampler(30, 0)
    with pytest.raises(ValueError, match="sizes"):
        MultiScaleBatchSampler(30, 2, sizes=())
    with pytest.raises(TypeError, match="data_source"):
        MultiScaleBatchSampler(3.5, 2)  # type: ignore[arg-type]


# ---------------------------------------------------------------- collate


def test_detection_collate():
    samples = [(torch.zeros(3, 32, 32), torch.zeros(n, 5), {"index": n}) for n in (0, 2, 1)]
    images, targets, metas = detection_collate(samples)
    assert images.shape == (3, 3, 32, 32)
    assert [t.shape[0] for t in targets] == [0, 2, 1] and [m["index"] for m in metas] == [0, 2, 1]
    with pytest.raises(ValueError, match="different shapes"):
        detection_collate([samples[0], (torch.zeros(3, 64, 64), torch.zeros(0, 5), {})])
    with pytest.raises(ValueError, match="empty"):
        detection_collate([])


def test_fixed_size_loader_visits_every_image_once_in_order_at_one_size():
    from yolov2_lib.data.sampler import fixed_size_loader

    class Recorder(torch.utils.data.Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, item):
            index, size = item
            return torch.full((3, size, size), float(index)), torch.zeros(0, 5), {"index": index, "size": size}

    batches = list(fixed_size_loader(Recorder(), 64, batch_size=3))
    assert [[m["index"] for m in metas] for _, _, metas in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert {images.shape[1:] for images, _, _ in batches} == {(3, 64, 64)}
    assert [float(im[0, 0, 0]) for images, _, _ in batches for im in images] == list(range(7))
    for bad, message in [(dict(size=100), "multiple of 32"), (dict(size=64, batch_size=0), "at least 1")]:
        with pytest.raises(ValueError, match=message):
            fixed_size_loader(Recorder(), **bad)
