"""One loader for every trained detector: a file or a shipped name."""

from __future__ import annotations

import pytest
import torch

from yolov2_lib import checkpoint, pretrained
from yolov2_lib.errors import YOLOv2Error


def test_a_shipped_name_and_its_file_load_the_same_detector():
    assert checkpoint.resolve("bccd") == pretrained.path("bccd")
    by_name, by_file = checkpoint.load("bccd"), checkpoint.load(pretrained.path("bccd"))
    assert by_name.class_names == by_file.class_names == ["RBC", "WBC", "Platelets"]
    for (name, a), (_, b) in zip(by_name.model.state_dict().items(), by_file.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert not by_name.model.training


def test_a_file_of_that_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bccd").write_bytes(b"not a checkpoint")
    assert checkpoint.resolve("bccd") == tmp_path.joinpath("bccd").relative_to(tmp_path)
    with pytest.raises(YOLOv2Error, match="^bccd "):  # the file was read, and refused
        checkpoint.load("bccd")


def test_neither_file_nor_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a file nor a shipped detector \\(shipped: bccd\\)"):
        checkpoint.resolve(tmp_path / "missing.pt")


def test_weights_that_do_not_fit_their_configuration(tmp_path):
    state = torch.load(pretrained.path("bccd"), weights_only=True)
    state["model_config"] = {**state["model_config"], "num_classes": 4}
    bad = tmp_path / "bad.pt"
    checkpoint.save_checkpoint(state, bad)
    with pytest.raises(YOLOv2Error, match="bad.pt: its weights do not fit its configuration"):
        checkpoint.load(bad)
