"""``train.overfit_batch``: the small experiment of chapter 6 (the loss)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from yolov2_lib.loss import YOLOv2Loss
from yolov2_lib.model import YOLOv2
from yolov2_lib.train import OVERFIT_COLUMNS, overfit_batch


def _setup():
    torch.manual_seed(0)
    model = YOLOv2(num_classes=2, width=1 / 32, anchors=[[1.0, 1.0], [2.0, 1.5]])
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    targets = [torch.tensor([[0, 0.3, 0.4, 0.3, 0.3]]), torch.tensor([[1, 0.6, 0.6, 0.5, 0.4]])]
    return model, images, targets


def test_overfit_batch_records_each_step_and_repeats_from_the_same_start():
    model, images, targets = _setup()
    initial = copy.deepcopy(model.state_dict())
    loss = YOLOv2Loss(model.anchors, 2)
    run = overfit_batch(model, images, targets, loss, steps=6, initial_state=initial)
    assert run.history.shape == (6, len(OVERFIT_COLUMNS)) and np.isfinite(run.history).all()
    assert run.stats.count == 2
    coord = OVERFIT_COLUMNS.index("coord")
    assert run.history[-1, coord] < run.history[0, coord], "the coordinate term falls on one batch"
    again = overfit_batch(model, images, targets, loss, steps=6, initial_state=initial)
    np.testing.assert_allclose(again.history, run.history, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        overfit_batch(model, images, targets, loss, steps=0)
