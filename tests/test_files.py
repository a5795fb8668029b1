"""Files written whole or not at all; a place to write checked before any work."""

from __future__ import annotations

import json

import pytest

from yolov2_lib.errors import YOLOv2Error
from yolov2_lib.files import atomic_open, atomic_path, check_writable, temporary_name, write_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"the old weights")
    with pytest.raises(RuntimeError, match="disk"):
        with atomic_open(target, "wb") as f:
            f.write(b"half of the new")
            raise RuntimeError("the disk is full")
    assert target.read_bytes() == b"the old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_a_finished_write_replaces_the_file(tmp_path):
    target = tmp_path / "sub" / "model.onnx"  # the folder is made
    with atomic_path(target) as tmp:
        assert tmp == temporary_name(target) and tmp.name.startswith(".model.onnx.")
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and not tmp.exists()
    write_json(tmp_path / "r.json", {"map": 0.5})
    assert json.loads((tmp_path / "r.json").read_text()) == {"map": 0.5}
    with pytest.raises(YOLOv2Error, match="mode must start with 'w'"):
        with atomic_open(target, "a"):
            pass


def test_check_writable(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert check_writable(tmp_path / "new" / "run", folder=True) == tmp_path / "new" / "run"
    with pytest.raises(YOLOv2Error, match="is a file, not a folder"):
        check_writable(a_file, folder=True)
    with pytest.raises(YOLOv2Error, match="is a folder: give a file name"):
        check_writable(tmp_path, folder=False)
    with pytest.raises(YOLOv2Error, match="is a file, so no folder can be made there"):
        check_writable(a_file / "run", folder=True)
    assert not (tmp_path / "new").exists() and a_file.read_text() == "mine"  # nothing was made or changed
