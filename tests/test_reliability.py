"""Reliability of the `yolov2` command and the trainer: bad input gets one clear line, a kill or a
changed setting never loses or misrecords a run, and nothing the user has is overwritten unasked.

Every bad input the project knows of goes through :func:`test_every_bad_input_is_one_clean_line`.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import _train_worker as worker
from test_cli import _data_args, _train_args
from yolov2_lib import cli
from yolov2_lib.data.transforms import Augment
from yolov2_lib.data.voc import DetectionDataset
from yolov2_lib.loss import YOLOv2Loss
from yolov2_lib.train import NonFiniteLossError, Trainer, TrainConfig, load_checkpoint, model_from_checkpoint

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).with_name("_train_worker.py")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory) -> Path:
    """A finished tiny run (2 updates, validated): its folder holds last.pt, best.pt, history.json."""
    out = tmp_path_factory.mktemp("reliability-run") / "run"
    assert cli.main(_train_args(tiny_data, out)) == 0
    return out


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, run) -> dict[str, Path]:
    """A damaged checkpoint, one holding a Python object (unsafe to unpickle), a binary CSV, a file."""
    root = tmp_path_factory.mktemp("bad-files")
    corrupt = root / "corrupt.pt"
    corrupt.write_bytes((run / "last.pt").read_bytes()[:-500])
    unsafe = root / "unsafe.pt"
    state = torch.load(run / "last.pt", weights_only=True)
    torch.save({**state, "note": argparse.Namespace(evil=True)}, unsafe)
    binary = root / "photo.csv"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" * 20)
    a_file = root / "a_file"
    a_file.write_text("not a folder")
    return {"corrupt": corrupt, "unsafe": unsafe, "binary": binary, "file": a_file}


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _fails_cleanly(argv: list[str], capsys) -> str:
    """Run the command in this process; it must exit with status 2 and one error line, never raise."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse: a usage line, then the error line
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (" ".join(argv[-12:]), code, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and "error:" in lines[-1], err
    assert len([line for line in lines if not line.startswith(("usage:", " "))]) == 1, err
    return lines[-1]


# --------------------------------------------------------------------------- bad input: one clean line


READ_ONLY = Path("/sys/yolov2-out")  # on Linux even root cannot write there


def _read_only_exists() -> bool:
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=READ_ONLY.parent):
            return False
    except OSError as exc:
        return exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)


def _bad_inputs(tiny_data, run: Path, bad: dict[str, Path], tmp: Path) -> list[tuple[list[str], str]]:
    data, last, best = _data_args(tiny_data), str(run / "last.pt"), str(run / "best.pt")
    new = str(tmp / "new")
    train = lambda *extra, out=new: _train_args(tiny_data, out, *extra)  # noqa: E731
    resume = lambda *extra: train("--resume", last, "--out", new, *extra)  # noqa: E731
    image = str(tiny_data[1] / "val0.png")
    return [
        # data sources
        (["train"], "give exactly one data source"),
        (["train", "--boxes-csv", "missing.csv", "--images", "."], "missing.csv does not exist"),
        (["train", "--dataset", "voc_boxes"], "only 'bccd'"),
        (["train", "--data-dir", "nowhere"], "no Annotations folder"),
        (["train", "--boxes-csv", str(bad["binary"]), "--images", "."], "photo.csv: not a UTF-8 text CSV"),
        (["anchors", "--boxes-csv", str(bad["binary"])], "photo.csv: not a UTF-8 text CSV"),
        (["anchors", "--boxes-csv", "missing.csv"], "missing.csv does not exist"),
        (["anchors", *data, "--split", "train,vall"], "'vall'"),
        (train("--val-split", "train"), "shares train"),
        # options
        (["train", "--sizes", "100"], "multiples of 32"),
        (["train", "--sizes", "128-96"], "the range is reversed; write 96-128"),
        (["train", "--batch-size", "0"], "must be >= 1"),
        (["train", "--anchors", "1,2,3"], "--anchors must be"),
        (["train", "--amp", "fp8"], "invalid choice"),
        (["train", "--width", "0"], "--width: must be > 0"),
        (["train", "--jitter", "5"], "--jitter: must be in [0, 0.5)"),
        (train("--accumulate", "3"), "--accumulate 3 must divide --batch-size 2"),
        (train("--lr", "-1"), "lr must be > 0"),
        (train("--device", "banana"), "--device 'banana' is not a device name"),
        (train("--device", "cuda"), "no CUDA GPU is usable here"),
        (["eval", last, "--size", "500"], "multiple of 32"),
        (["eval", last, "--conf", "2"], "--conf: must be between 0 and 1"),
        (["eval", last, "--nms", "-0.1"], "--nms: must be between 0 and 1"),
        (["eval", last, *data, "--workers", "-1"], "--workers: must be >= 0"),
        (train("--max-iterations", "0"), "max_iterations must be None or >= 1"),
        (["detect", last, image, "--score", "1.5"], "--score: must be between 0 and 1"),
        (["detect", last, image, "--device", "banana", "--out", new], "is not a device name"),
        (["eval", last, *data, "--amp", "fp16", "--device", "cpu"], "--amp fp16: amp='fp16' needs a CUDA device"),
        (["detect", last, image, "--amp", "fp16", "--device", "cpu", "--out", new], "use amp='auto'"),
        # outputs
        (train(out=str(bad["file"])), "is a file, not a folder"),
        (train(out=str(bad["file"] / "run")), "is a file, so no folder can be made there"),
        (train(out=str(run)), "holds a run (last.pt, best.pt, history.json): pass --resume"),
        (["detect", last, image, "--out", str(bad["file"])], "is a file, not a folder"),
        (["export", last, str(bad["file"] / "w.pt")], "is a file, so no folder can be made there"),
        (["export", last, str(tmp / "w.bin")], "must end in .pt"),
        (["export", last, str(tmp / "x.pt"), "--result", "novalue"], "KEY=VALUE"),
        (["export", last, best], "exists; pass --force"),
        # checkpoints
        (["eval", "missing.pt", "--dataset", "bccd"], "checkpoint missing.pt does not exist"),
        (["detect", "missing.pt", "no_such_image.jpg"], "no_such_image.jpg does not exist"),
        (["eval", str(bad["corrupt"]), *data], "corrupt.pt cannot be read: it is damaged"),
        (["eval", str(bad["unsafe"]), *data], "unsafe.pt is refused: it is not a weights-only file"),
        (["detect", str(bad["unsafe"]), image, "--out", new], "could run code"),
        (["export", str(bad["unsafe"]), str(tmp / "u.pt")], "could run code"),
        (["export", str(bad["corrupt"]), str(tmp / "c.pt")], "it is damaged"),
        (train("--init", str(bad["unsafe"])), "could run code"),
        (train("--resume", str(bad["corrupt"])), "corrupt.pt cannot be read: it is damaged"),
        (train("--resume", str(bad["unsafe"])), "unsafe.pt is refused: it is not a weights-only file"),
        (train("--resume", "nothing.pt"), "checkpoint nothing.pt does not exist"),
        # a run continued with what cannot change midway
        (resume("--optimizer", "adamw"), "optimizer 'adamw' (the run's: 'sgd'; --optimizer)"),
        (resume("--sizes", "128"), "sizes 128 (the run's: 64,96; --sizes)"),
        (resume("--batch-size", "1"), "batch_size 1 (the run's: 2; --batch-size)"),
        (resume("--classes", "red,blue,green"), "detects blue, red but the training data has red, blue, green"),
        (resume("--train-split", "train,val", "--val-split", "none"), "the batch plan (Cannot resume with "
                                                                      "different settings: num_samples: saved 3, now 6"),
    ] + ([  # a folder nobody may write in
        (train(out=str(READ_ONLY)), "cannot write in /sys"),
        (["detect", last, image, "--out", str(READ_ONLY)], "cannot write in /sys"),
        (["eval", last, *data, "--json", str(READ_ONLY / "eval.json")], "cannot write in /sys"),
        (["export", last, str(READ_ONLY / "w.pt")], "cannot write in /sys"),
    ] if _read_only_exists() else [])


def test_every_bad_input_is_one_clean_line(tiny_data, run, bad_files, tmp_path, capsys):
    before = _digests(run)
    for argv, message in _bad_inputs(tiny_data, run, bad_files, tmp_path):
        line = _fails_cleanly(argv, capsys)
        assert message in line, (argv, line)
        assert "weights_only" not in line  # never the advice to load unsafely
    assert _digests(run) == before  # nothing the run had was touched
    assert not (tmp_path / "new").exists()  # and nothing was started


def test_the_console_command_prints_no_traceback(run, bad_files, tiny_data):
    """The same through the installed entry point, in a process of its own."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cases = [
        (["eval", str(bad_files["unsafe"]), *_data_args(tiny_data)], "could run code"),
        (_train_args(tiny_data, run, "--resume", "--optimizer", "adamw"), "--optimizer"),
        (["detect", str(run / "last.pt"), str(tiny_data[1]), "--device", "cuda", "--out", str(run / "d")],
         "no CUDA GPU"),
    ]
    for argv, message in cases:
        done = subprocess.run([sys.executable, "-m", "yolov2_lib.cli", *argv], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr


# --------------------------------------------------------------------------- resuming with other settings


def _state(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_resume_applies_changed_hyperparameters_and_records_them(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    base = ("--val-split", "none", "--steps", "100", "--ema-decay", "0.9")
    assert cli.main(_train_args(tiny_data, out, *base, "--lr", "0.05")) == 0
    capsys.readouterr()
    assert cli.main(_train_args(tiny_data, out, "--val-split", "none", "--resume", "--max-iterations", "3",
                                "--lr", "0.0001", "--momentum", "0.8", "--weight-decay", "0.001",
                                "--ema-decay", "0.95")) == 0
    printed = capsys.readouterr().out
    assert "from update 3 on: max_iterations 2 -> 3, lr 0.05 -> 0.0001, momentum 0.9 -> 0.8" in printed
    state = _state(out / "last.pt")
    assert state["history"]["train"]["lr"] == pytest.approx([0.05, 0.05, 0.0001])  # applied at update 3
    decay, no_decay = state["optimizer"]["param_groups"]
    assert (decay["momentum"], decay["weight_decay"], no_decay["weight_decay"]) == (0.8, 0.001, 0.0)
    assert decay["initial_lr"] == 0.0001 and state["ema"]["decay"] == 0.95
    assert (state["config"]["lr"], state["config"]["ema_decay"]) == (0.0001, 0.95)  # what ran is what is recorded
    resumed = state["provenance"]["resumed"][0]
    assert resumed["from_update"] == 3 and resumed["at_iteration"] == 2
    assert resumed["changed"]["lr"] == {"from": 0.05, "to": 0.0001}
    assert set(resumed["changed"]) == {"max_iterations", "lr", "momentum", "weight_decay", "ema_decay"}

    # Options left out keep the run's values (not the command's defaults, lr 1e-3 or momentum 0.9).
    assert cli.main(["train", *_data_args(tiny_data), "--val-split", "none", "--resume", "--out", str(out),
                     "--max-iterations", "4", "--workers", "0", "--no-progress"]) == 0
    state = _state(out / "last.pt")
    assert state["history"]["train"]["lr"][-1] == pytest.approx(0.0001)
    assert state["optimizer"]["param_groups"][0]["momentum"] == 0.8 and state["ema"]["decay"] == 0.95
    assert state["provenance"]["resumed"][1]["changed"] == {"max_iterations": {"from": 3, "to": 4}}
    # export passes on what really ran
    weights = tmp_path / "w.pt"
    assert cli.main(["export", str(out / "last.pt"), str(weights)]) == 0
    info = json.loads(weights.with_suffix(".json").read_text())
    assert info["config"]["lr"] == 0.0001 and len(info["provenance"]["resumed"]) == 2


def _tiny_trainer(data: Path, out: Path, resume: Path | None = None, **overrides) -> Trainer:
    train = DetectionDataset.from_boxes_csv(data / "boxes.csv", data / "images", splits="train",
                                            class_names=worker.CLASSES, image_ext=".png", augment=Augment(), seed=1)
    model = worker.tiny_model()
    values = dict(max_iterations=2, batch_size=2, lr=0.01, burn_in=0, steps=(100,), sizes=(64,), eval_size=64,
                  ema_decay=0.9,
                  progress=False, verbose=False, device="cpu", eval_every=0, out_dir=str(out))
    values.update(overrides)
    return Trainer(model, train, TrainConfig(**values), resume=resume)


def test_the_trainer_applies_a_new_rate_and_refuses_another_optimizer(tiny_data, tmp_path):
    data = tiny_data[0].parent
    _tiny_trainer(data, tmp_path / "a").fit()
    checkpoint = tmp_path / "a" / "last.pt"
    before = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    resumed = _tiny_trainer(data, tmp_path / "a", checkpoint, max_iterations=3, lr=0.002, weight_decay=0.0)
    assert resumed.resumed_changes == {"max_iterations": [2, 3], "lr": [0.01, 0.002], "weight_decay": [5e-4, 0.0]}
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.002)
    assert resumed.optimizer.param_groups[0]["weight_decay"] == 0.0
    for bad, named in [(dict(optimizer="adamw"), "optimizer 'adamw'"), (dict(sizes=(96,)), "sizes 96"),
                       (dict(seed=3), "seed 3"), (dict(ema_decay=None), None)]:
        if named is None:  # dropping the EMA is allowed, and recorded
            assert _tiny_trainer(data, tmp_path / "a", checkpoint, **bad).resumed_changes == {"ema_decay": [0.9, None]}
            continue
        with pytest.raises(ValueError, match=rf"cannot resume .*last\.pt: this run asks for {named}"):
            _tiny_trainer(data, tmp_path / "a", checkpoint, **bad)
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == before


# --------------------------------------------------------------------------- a run in --out


def test_train_refuses_an_out_that_holds_a_run(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(_train_args(tiny_data, out)) == 0  # validated: best.pt too
    before = _digests(out)
    assert cli.main(_train_args(tiny_data, out, "--val-split", "none")) == 2
    assert "holds a run" in capsys.readouterr().err and _digests(out) == before
    # --force trains a new run there, and the old run's best.pt does not stay beside the new last.pt
    assert cli.main(_train_args(tiny_data, out, "--val-split", "none", "--force", "--max-iterations", "1")) == 0
    assert "best.pt" not in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "last.pt"]
    assert _state(out / "last.pt")["iteration"] == 1


def test_stale_temporaries_of_dead_processes_are_removed(tiny_data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = [f".last.pt.{dead.pid}.tmp", f".best.pt.{dead.pid}.tmp", f".history.json.{dead.pid}.tmp",
                 f".last.pt.{alive.pid}.tmp", ".notes.txt.12.tmp", f"last.pt.{dead.pid}.tmp"]
        for name in names:
            (out / name).write_bytes(b"half a checkpoint")
        _tiny_trainer(tiny_data[0].parent, out)
        left = sorted(p.name for p in out.iterdir())
        assert left == sorted(names[3:])  # a running writer's file, and files that are not ours, stay
    finally:
        alive.kill()
        alive.wait()


# --------------------------------------------------------------------------- a kill between best.pt and last.pt


def test_a_kill_between_the_two_writes_keeps_best_and_last_consistent(tmp_path):
    data = tmp_path / "data"
    worker.make_synthetic(data, num_images=6, splits=("train", "val"))
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, str(WORKER), "--data", str(data), "--out", str(out), "--val"]
    victim = subprocess.Popen([*command, "--stall-in-best-save"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
    line = victim.stdout.readline()  # the final save (the only one with best.pt) wrote its first file
    assert line.startswith("wrote "), victim.communicate()
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=env, timeout=120)
    assert resumed.returncode == 0 and "done 6" in resumed.stdout, resumed.stderr
    last, best = load_checkpoint(out / "last.pt"), load_checkpoint(out / "best.pt")
    val = last["history"]["val"]
    top = max(range(len(val["map"])), key=lambda k: (val["map"][k], -k))
    assert best["best_map"] == last["best_map"] == val["map"][top]
    assert best["iteration"] == val["iteration"][top] == 6  # best.pt holds the weights that scored best
    assert not list(out.glob(".*.tmp"))


# --------------------------------------------------------------------------- smaller messages and overwrites


class _NaNLoss(YOLOv2Loss):
    def forward(self, output, targets, seen):
        out = super().forward(output, targets, seen)
        return out._replace(total=out.total * float("nan"))


def test_nan_before_the_first_checkpoint_says_so(tiny_data, tmp_path):
    out = tmp_path / "run"
    trainer = _tiny_trainer(tiny_data[0].parent, out)
    trainer.loss_fn = _NaNLoss(trainer.model.anchors, 2)
    with pytest.raises(NonFiniteLossError) as exc:
        trainer.fit()
    message = str(exc.value)
    assert f"no checkpoint was written to {out} yet (the first comes at the end of the first epoch)" in message
    assert "set out_dir" not in message


def test_unsafe_checkpoints_are_refused_without_unsafe_advice(bad_files):
    for load in (load_checkpoint, model_from_checkpoint):
        with pytest.raises(ValueError) as exc:
            load(bad_files["unsafe"])
        message = str(exc.value)
        assert "is refused: it is not a weights-only file" in message and "could run code" in message
        assert "argparse.Namespace" in message and "weights_only" not in message
    with pytest.raises(ValueError, match="damaged"):
        load_checkpoint(bad_files["corrupt"])


def test_detect_draws_a_visible_copy_of_a_16_bit_png(run, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    ramp = np.tile(np.linspace(8000, 40000, 96, dtype=np.uint16), (64, 1))  # (64, 96): mid greys
    Image.fromarray(ramp).save(folder / "scan.png")
    assert Image.open(folder / "scan.png").mode.startswith("I;16")
    drawn = tmp_path / "drawn"
    assert cli.main(["detect", str(run / "last.pt"), str(folder), "--out", str(drawn), "--size", "64",
                     "--score", "1"]) == 0  # no boxes: only the picture
    pixels = np.asarray(Image.open(drawn / "scan_det.jpg").convert("L"), dtype=np.float64)
    expected = ramp / 65535 * 255
    assert abs(pixels.mean() - expected.mean()) < 3 and pixels.std() > 20  # not a blank white copy


def test_detect_and_export_replace_nothing_unasked(run, tiny_data, tmp_path, capsys):
    images, drawn = tiny_data[1], tmp_path / "drawn"
    detect = ["detect", str(run / "last.pt"), str(images / "val0.png"), "--out", str(drawn), "--size", "64"]
    assert cli.main(detect) == 0
    mine = drawn / "val0_det.jpg"
    mine.write_bytes(b"my own picture")
    (drawn / "detections.json").unlink()
    assert cli.main(detect) == 2
    assert "already holds val0_det.jpg: pass --force" in capsys.readouterr().err
    assert mine.read_bytes() == b"my own picture"
    (drawn / "val0_det.jpg").unlink()
    (drawn / "detections.json").write_text("mine")
    assert cli.main(detect) == 2 and "detections.json" in capsys.readouterr().err
    assert cli.main([*detect, "--force"]) == 0
    assert json.loads((drawn / "detections.json").read_text())[0]["image"].endswith("val0.png")

    weights = tmp_path / "w.pt"
    weights.with_suffix(".json").write_text("my notes")
    assert cli.main(["export", str(run / "last.pt"), str(weights)]) == 2
    assert f"{weights.with_suffix('.json')} exists; pass --force" in capsys.readouterr().err
    assert weights.with_suffix(".json").read_text() == "my notes" and not weights.exists()
    assert cli.main(["export", str(run / "last.pt"), str(weights), "--force"]) == 0
    assert math.isfinite(json.loads(weights.with_suffix(".json").read_text())["training"]["train_seconds"])


def test_a_full_disk_midway_is_one_clean_line(tiny_data, tmp_path, monkeypatch, capsys):
    from yolov2_lib import train

    def full(state, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(train.trainer, "save_checkpoint", full)
    out = tmp_path / "run"
    line = _fails_cleanly(_train_args(tiny_data, out, "--val-split", "none"), capsys)
    assert f"writing to {out} failed (No space left on device)" in line and "--resume" in line
