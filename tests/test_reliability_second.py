"""Reliability, second pass: nothing half-written, nothing mixed, nothing silently ignored.

Each test here failed on the library before its fix (see the README's reliability table).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from test_cli import _data_args, _train_args
from yolov2_lib import cli

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("second-run") / "run"
    assert cli.main(_train_args(tiny_data, out)) == 0
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _error(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_anchors_written_as_pairs_train_and_bad_ones_are_refused(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(_train_args(tiny_data, out, "--anchors", "1.0,1.5 2,3", "--val-split", "none")) == 0
    anchors = torch.load(out / "last.pt", weights_only=True)["model_config"]["anchors"]
    assert anchors == [[1.0, 1.5], [2.0, 3.0]]
    for bad in ("nan,1 2,3", "1,inf 2,3", "1,1 2,-3"):
        with pytest.raises(SystemExit):
            cli.main(_train_args(tiny_data, tmp_path / "bad", "--anchors", bad))
        assert "--anchors must be" in capsys.readouterr().err


def test_eval_json_never_replaces_a_file_without_force(tiny_data, run, capsys):
    last = run / "last.pt"
    before = _digest(last)
    err = _error(["eval", str(last), *_data_args(tiny_data), "--split", "val", "--json", str(last)], capsys)
    assert "--json" in err and "is the checkpoint" in err
    notes = run / "notes.json"
    notes.write_text("mine")
    err = _error(["eval", str(last), *_data_args(tiny_data), "--split", "val", "--json", str(notes)], capsys)
    assert "exists; pass --force" in err and notes.read_text() == "mine"
    assert cli.main(["eval", str(last), *_data_args(tiny_data), "--split", "val", "--json", str(notes),
                     "--force", "--no-progress"]) == 0
    assert "map_11point" in json.loads(notes.read_text()) and _digest(last) == before
    notes.unlink()


def test_resume_into_a_folder_holding_another_run_is_refused(tiny_data, run, tmp_path, capsys):
    other = tmp_path / "other"
    assert cli.main(_train_args(tiny_data, other, "--seed", "1")) == 0
    digests = {p.name: _digest(p) for p in other.iterdir() if p.is_file()}
    err = _error(_train_args(tiny_data, other, "--resume", str(run / "last.pt"), "--max-iterations", "3"), capsys)
    assert f"--out {other} holds another run" in err and "--force" in err
    assert {p.name: _digest(p) for p in other.iterdir() if p.is_file()} == digests
    assert cli.main(_train_args(tiny_data, other, "--resume", str(run / "last.pt"), "--max-iterations", "3",
                                "--val-split", "none", "--force")) == 0
    assert _digest(other / "last.pt") != digests["last.pt"]
    assert not (other / "best.pt").exists()  # the other run's best.pt is not left beside this one


def test_resume_refuses_what_cannot_change_and_keeps_the_letterbox(tiny_data, run, tmp_path, capsys):
    new = tmp_path / "new"
    for option in (("--width", "0.5"), ("--anchors", "voc"), ("--anchors", "1,1 2,1.6"), ("--num-anchors", "3"),
                   ("--letterbox",)):
        err = _error(_train_args(tiny_data, new, "--resume", str(run / "last.pt"), *option), capsys)
        assert f"{option[0]} cannot change when resuming" in err
    assert not new.exists()
    # the run's own values may be written again (the same network)
    assert cli.main(_train_args(tiny_data, new, "--resume", str(run / "last.pt"), "--max-iterations", "3",
                                "--width", "0.0625", "--num-anchors", "2")) == 0


@pytest.mark.parametrize("option, value, message", [
    ("--steps", "inf", "--steps must be"),
    ("--steps", "nan", "--steps must be"),
    ("--seed", "-1", "--seed must be"),
    ("--seed", str(10 ** 20), "--seed must be"),
    ("--lr", "inf", "--lr must be finite"),
    ("--weight-decay", "nan", "--weight-decay must be"),
    ("--weight-decay", "inf", "--weight-decay must be"),
    ("--momentum", "nan", "momentum"),
])
def test_numbers_that_are_not_numbers_are_refused_by_name(tiny_data, tmp_path, capsys, option, value, message):
    err = _error(_train_args(tiny_data, tmp_path / "run", option, value), capsys)
    assert message in err
    assert not (tmp_path / "run").exists()


def test_anchors_command_refuses_a_bad_seed(tiny_data, capsys):
    with pytest.raises(SystemExit):
        cli.main(["anchors", *_data_args(tiny_data), "--seed", "-1"])
    assert "--seed" in capsys.readouterr().err


def test_export_takes_a_shipped_name(tmp_path, capsys):
    out = tmp_path / "mine.pt"
    assert cli.main(["export", "bccd", str(out), "--result", "note=again"]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["class_names"] == ["RBC", "WBC", "Platelets"] and info["results"]["note"] == "again"
    assert info["results"]["test_map_voc07"]  # the shipped record's results are kept
    from yolov2_lib.checkpoint import load

    shipped, mine = load("bccd").model.state_dict(), load(out).model.state_dict()
    assert all(torch.equal(shipped[k], mine[k]) for k in shipped)


def test_resume_with_other_classes_is_one_line(tiny_data, run, tmp_path, capsys):
    err = _error(_train_args(tiny_data, tmp_path / "new", "--resume", str(run / "last.pt"),
                             "--classes", "red,green"), capsys)
    assert "detects" in err and "red, green" in err


def _flip_inside(path: Path, entry_suffix: str, count: int = 5000) -> str:
    """Overwrite ``count`` bytes in the middle of a stored tensor of a torch zip file; returns the entry."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    header = 30 + len(info.filename.encode()) + int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30],
                                                                 "little")
    start = info.header_offset + header + info.file_size // 2 - count // 2
    raw[start:start + count] = bytes(b ^ 0xFF for b in raw[start:start + count])
    path.write_bytes(bytes(raw))
    return info.filename


def test_a_damaged_tensor_is_refused_by_name(run, tiny_data, tmp_path, capsys):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes((run / "last.pt").read_bytes())
    _flip_inside(damaged, "/data/")
    err = _error(["eval", str(damaged), *_data_args(tiny_data), "--split", "val"], capsys)
    assert "damaged.pt is damaged: tensor " in err and "differs from what was written" in err
    err = _error(_train_args(tiny_data, tmp_path / "new", "--resume", str(damaged)), capsys)
    assert "is damaged: tensor " in err


def _long_run(tiny_data, out: Path):
    """``yolov2 train`` in a process of its own, for as long as it is let run; returned once it trains."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    argv = _train_args(tiny_data, out, "--max-iterations", "100000", "--val-split", "none", "--eval-every", "0")
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "yolov2_lib.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert "training on" in proc.stdout.readline() + proc.stdout.readline()
    return proc


def test_ctrl_c_saves_a_run_that_resumes(tiny_data, tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    proc = _long_run(tiny_data, out)
    time.sleep(3)  # some updates
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "interrupted after update" in lines[0], err
    assert "continue with --resume" in lines[0]
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["iteration"] == len(state["history"]["train"]["loss"]) >= 1  # a consistent state
    assert cli.main(_train_args(tiny_data, out, "--resume", "--max-iterations", str(state["iteration"] + 1),
                                "--val-split", "none", "--eval-every", "0")) == 0
    assert torch.load(out / "last.pt", weights_only=True)["iteration"] == state["iteration"] + 1


def test_a_run_started_from_exported_weights_resumes_bit_for_bit(run, tiny_data, tmp_path):
    weights = tmp_path / "w.pt"
    assert cli.main(["export", str(run / "last.pt"), str(weights)]) == 0  # float16 weights, anchors included
    common = ("--init", str(weights), "--steps", "100", "--val-split", "none", "--eval-every", "0")
    assert cli.main(_train_args(tiny_data, tmp_path / "whole", *common, "--max-iterations", "4")) == 0
    assert cli.main(_train_args(tiny_data, tmp_path / "parts", *common, "--max-iterations", "2")) == 0
    assert cli.main(_train_args(tiny_data, tmp_path / "parts", "--resume", "--steps", "100", "--val-split", "none",
                                "--eval-every", "0", "--max-iterations", "4")) == 0
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    parts = torch.load(tmp_path / "parts" / "last.pt", weights_only=True)
    assert whole["model_config"]["anchors"] == parts["model_config"]["anchors"]
    for name, value in whole["model"].items():
        assert torch.equal(value, parts["model"][name]), name


def test_one_process_at_a_time_trains_into_a_folder(tiny_data, tmp_path, capsys):
    import signal

    out = tmp_path / "run"
    first = _long_run(tiny_data, out)
    try:
        import time

        for _ in range(300):  # fit() takes the lock just after that line
            if (out / ".lock").exists():
                break
            time.sleep(0.1)
        assert (out / ".lock").read_text().split() == [str(first.pid)]
        err = _error(_train_args(tiny_data, out, "--force", "--val-split", "none"), capsys)
        assert f"is in use by another training process (pid {first.pid})" in err
        from yolov2_lib.train import TrainConfig, Trainer  # the library refuses it too, at fit()
        from yolov2_lib.data.voc import DetectionDataset
        import _train_worker as worker

        data = DetectionDataset.from_boxes_csv(tiny_data[0], tiny_data[1], splits="train", image_ext=".png")
        trainer = Trainer(worker.tiny_model(), data, TrainConfig(max_iterations=1, batch_size=2, sizes=(64,),
                                                                 eval_size=64, progress=False, verbose=False,
                                                                 device="cpu", out_dir=str(out)))
        with pytest.raises(ValueError, match=f"pid {first.pid}"):
            trainer.fit()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / ".lock").exists()  # a killed process leaves its lock: the next run takes it over
    assert cli.main(_train_args(tiny_data, out, "--force", "--max-iterations", "1", "--val-split", "none")) == 0
    assert not (out / ".lock").exists()


@pytest.fixture
def full_disk(tmp_path):
    """A real, small file system (tmpfs) filled to the last byte; skipped where none can be mounted."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small file system here (needs root)")
    try:
        with open(disk / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 1024)
            except OSError:
                pass
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def _left(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != "filler")


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(run, tiny_data, full_disk, tmp_path, capsys):
    last = str(run / "last.pt")
    image = str(tiny_data[1] / "val0.png")
    cases = [
        (["export", last, str(full_disk / "w.pt")], []),
        (["export", last, str(full_disk / "m.onnx")], []),
        (["detect", last, image, "--out", str(full_disk / "d")], ["d"]),
        (_train_args(tiny_data, full_disk / "run", "--val-split", "none"), ["run"]),
        (["eval", last, *_data_args(tiny_data), "--split", "val", "--json", str(full_disk / "e.json"),
          "--no-progress"], []),
    ]
    for argv, folders in cases:
        err = _error(argv, capsys)
        assert "No space left on device" in err and str(full_disk) in err, (argv, err)
        assert _left(full_disk) == folders, (argv, _left(full_disk))  # no file, whole or half
        for name in folders:
            import shutil

            shutil.rmtree(full_disk / name)
