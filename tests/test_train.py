"""The trainer: schedule, a short run, checkpoints, the NaN guard, kill-and-resume, evaluation."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import _train_worker as worker
from _train_worker import tiny_model
from yolov2_lib import precision as policy
from yolov2_lib.data.transforms import Augment
from yolov2_lib.data.voc import DetectionDataset, load_image
from yolov2_lib.loss import YOLOv2Loss
from yolov2_lib.train import (
    DarknetSchedule,
    ModelEMA,
    NonFiniteLossError,
    Trainer,
    TrainConfig,
    autocast_dtype,
    first_look,
    precision_name,
    detect_images,
    evaluate_model,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    sgd_update,
)

WORKER = Path(__file__).with_name("_train_worker.py")
ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    worker.make_synthetic(root, num_images=6, splits=("train", "val"))
    return root


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    """Wide images, so that a letterbox and a stretch place boxes far apart."""
    root = tmp_path_factory.mktemp("wide")
    worker.make_synthetic(root, num_images=6, size=(160, 48), seed=3, splits=("val",))
    return root


def dataset(data: Path, split: str = "train", augment: bool = True, letterbox: bool = False) -> DetectionDataset:
    return DetectionDataset.from_boxes_csv(
        data / "boxes.csv", data / "images", splits=split, class_names=worker.CLASSES, image_ext=".png",
        augment=Augment() if augment else None, letterbox=letterbox, seed=1,
    )


def tiny_config(**overrides) -> TrainConfig:
    values = dict(max_iterations=4, batch_size=2, lr=0.01, burn_in=0, sizes=(64,), eval_size=64,
                  ema_decay=None, progress=False, verbose=False, device="cpu", eval_every=0,
                  amp="off")  # float32 whatever the CPU: these tests compare numbers exactly
    values.update(overrides)
    return TrainConfig(**values)


# --------------------------------------------------------------------------- schedule, config


def test_darknet_schedule_burn_in_and_steps():
    s = DarknetSchedule(burn_in=100, power=4, steps=(200, 300), scale=0.1)
    assert s.factor(1) == pytest.approx((1 / 100) ** 4)
    assert s.factor(50) == pytest.approx(0.5 ** 4)
    assert [s.factor(i) for i in (100, 199)] == [1.0, 1.0]
    assert s.factor(200) == pytest.approx(0.1) and s.factor(299) == pytest.approx(0.1)
    assert s.factor(300) == pytest.approx(0.01)
    assert s(0) == s.factor(1)  # LambdaLR's first call is update 1


def test_trainer_uses_the_schedule_and_decays_conv_weights_only(data):
    trainer = Trainer(tiny_model(), dataset(data), tiny_config(max_iterations=3, burn_in=2, steps=(0.5,)))
    assert trainer.schedule.steps == (2,)  # 0.5 of 3 updates, rounded
    trainer.fit()
    lrs = trainer.history["train"]["lr"]
    assert lrs == pytest.approx([0.01 * (1 / 2) ** 4, 0.001, 0.001])
    decay, no_decay = trainer.optimizer.param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 4 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])


def test_paper_recipe_is_the_default():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.burn_in, cfg.epochs) == (1e-3, 0.9, 5e-4, 1000, 160)
    assert cfg.steps == (60 / 160, 90 / 160) and cfg.step_scale == 0.1
    assert cfg.sizes == tuple(range(320, 609, 32)) and cfg.size_every == 10


@pytest.mark.parametrize("bad, message", [
    (dict(batch_size=0), "batch_size"),
    (dict(sizes=(100,)), "multiples of 32"),
    (dict(amp="fp8"), "amp"),
    (dict(lr=-1.0), "lr"),
    (dict(ema_decay=1.5), "ema_decay"),
    (dict(optimizer="lbfgs"), "optimizer"),
])
def test_config_errors_are_clear(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)


def test_config_round_trips_through_a_dict():
    cfg = TrainConfig(sizes=(64, 96), steps=(0.5, 100))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown TrainConfig"):
        TrainConfig.from_dict({"learning_rate": 1})


def test_amp_choice(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(policy, "cpu_supports_bf16", lambda: False)  # most laptops
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("off", cpu) is None
    monkeypatch.setattr(policy, "cpu_supports_bf16", lambda: True)  # AVX512-BF16 or AMX
    assert autocast_dtype("auto", cpu) == torch.bfloat16 and autocast_dtype("off", cpu) is None
    assert autocast_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="fp16"):
        autocast_dtype("fp16", cpu)


def test_first_look_shortens_a_run_only_in_quick_mode(monkeypatch):
    config = TrainConfig(max_seconds=360, sizes=(352, 320, 416), eval_every=10)
    monkeypatch.delenv("YOLOV2_QUICK", raising=False)
    assert first_look(config) is config
    monkeypatch.setenv("YOLOV2_QUICK", "1")
    short = first_look(config)
    assert (short.max_seconds, short.sizes, short.eval_every) == (20, (320,), 0)
    assert short.lr == config.lr and config.max_seconds == 360  # a copy; the rest of the recipe is kept


def test_precision_names():
    assert [precision_name(d) for d in (None, torch.bfloat16, torch.float16)] == ["float32", "bf16", "fp16"]


def test_amp_auto_on_cuda_picks_bf16_only_where_native(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(policy, "cuda_supports_bf16", lambda device=None: True)  # A100, L4, H100
    assert autocast_dtype("auto", cuda) == torch.bfloat16
    monkeypatch.setattr(policy, "cuda_supports_bf16", lambda device=None: False)  # T4 (Colab), V100
    assert autocast_dtype("auto", cuda) == torch.float16
    with pytest.warns(UserWarning, match="emulated"):
        assert autocast_dtype("bf16", cuda) == torch.bfloat16


def test_cuda_bf16_is_native_from_compute_capability_8(monkeypatch):
    from types import SimpleNamespace

    from yolov2_lib import detect

    monkeypatch.delenv("YOLOV2_NO_BF16", raising=False)  # the real probe, not the common reader's switch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert detect.cuda_supports_bf16() is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    for major, native in [(7, False), (8, True), (9, True)]:  # T4/V100, A100, H100
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index, m=major: SimpleNamespace(major=m))
        assert detect.cuda_supports_bf16(torch.device("cuda", 0)) is native
        assert policy.supported("bf16", torch.device("cuda")) is native


def test_adamw_option_decays_conv_weights_only(data):
    trainer = Trainer(tiny_model(), dataset(data), tiny_config(max_iterations=1, optimizer="adamw",
                                                               weight_decay=0.05))
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [0.05, 0.0]
    trainer.fit()
    assert math.isfinite(trainer.history["train"]["loss"][0])


def test_batch_must_split_over_accumulation(data):
    with pytest.raises(ValueError, match="divisible"):
        Trainer(tiny_model(), dataset(data), tiny_config(batch_size=3, accumulate=2))


# --------------------------------------------------------------------------- training


def test_short_run_lowers_the_loss(data):
    config = tiny_config(max_iterations=30, batch_size=3, lr=0.005, sizes=(64, 96), size_every=2,
                         ema_decay=0.9, amp="auto")  # bf16 where native
    trainer = Trainer(tiny_model(), dataset(data, augment=False), config)
    history = trainer.fit()
    loss = history["train"]["loss"]
    assert len(loss) == 30 and all(math.isfinite(v) for v in loss)
    assert np.mean(loss[-6:]) < 0.7 * np.mean(loss[:6])  # measured: 0.54
    assert set(history["train"]["size"]) == {64, 96}  # multi-scale
    assert history["train"]["seen"][-1] == trainer.seen == 30 * 3
    for term in ("coord", "obj", "noobj", "prior", "cls"):  # the loss's breakdown is logged
        assert len(history["train"][term]) == 30
    parts = sum(history["train"][t][-1] for t in ("coord", "obj", "noobj", "prior", "cls"))
    assert parts == pytest.approx(loss[-1], rel=1e-5)


def test_loader_workers_live_through_the_epochs_of_a_fit_and_end_with_it(data, monkeypatch):
    import multiprocessing

    pids = []
    step = Trainer.train_step

    def watched_step(self, images, targets):
        pids.append(sorted(p.pid for p in multiprocessing.active_children()))
        return step(self, images, targets)

    monkeypatch.setattr(Trainer, "train_step", watched_step)
    # 6 training images in batches of 6: one batch per epoch, so 4 updates are 4 epochs.
    trainer = Trainer(tiny_model(), dataset(data), tiny_config(num_workers=1, batch_size=6))
    trainer.fit()
    assert trainer.epoch == 4 and len(pids) == 4
    assert len(pids[0]) == 1 and all(p == pids[0] for p in pids)  # one worker, never forked again
    assert multiprocessing.active_children() == []  # fit() stopped it
    trainer.config.max_iterations = trainer.total_iterations = 6
    trainer.fit()  # a later fit() starts its own
    assert len(pids) == 6 and pids[4] != pids[0] and multiprocessing.active_children() == []


def test_accumulation_equals_one_big_batch_with_frozen_bn(data):
    runs = []
    for accumulate in (1, 2):
        trainer = Trainer(tiny_model(), dataset(data), tiny_config(max_iterations=3, batch_size=4,
                                                                   accumulate=accumulate, freeze_bn=True))
        trainer.fit()
        runs.append(trainer.model.state_dict())
    for name in runs[0]:
        torch.testing.assert_close(runs[0][name], runs[1][name], rtol=1e-4, atol=1e-6)


def test_the_plain_trainer_step_is_sgd_update(data, monkeypatch):
    import yolov2_lib.train as train_module

    calls = []
    real = train_module.sgd_update
    monkeypatch.setattr(train_module.trainer, "sgd_update", lambda *a, **k: calls.append(a[3].shape) or real(*a, **k))
    Trainer(tiny_model(), dataset(data), tiny_config(max_iterations=2, batch_size=2)).fit()
    assert calls == [torch.Size([2, 3, 64, 64])] * 2  # chapter 9's path: one batch, one process
    calls.clear()
    Trainer(tiny_model(), dataset(data), tiny_config(max_iterations=2, batch_size=4, accumulate=2)).fit()
    assert calls == []  # micro-batches take the general path


def test_sgd_update_learns_a_batch_and_refuses_a_nan_loss_before_stepping():
    model = tiny_model()
    loss_fn = YOLOv2Loss(model.anchors, num_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    torch.manual_seed(1)
    images = torch.rand(2, 3, 64, 64)
    targets = [torch.tensor([[0, 0.5, 0.5, 0.3, 0.4]]), torch.tensor([[1, 0.3, 0.6, 0.2, 0.2]])]
    losses = [sgd_update(model, loss_fn, optimizer, images, targets, seen=10**6, grad_clip=10.0)[0].total.item()
              for _ in range(8)]
    assert losses[-1] < 0.8 * losses[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images[0, 0, 0, 0] = math.nan
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\): the update was not applied") as err:
        sgd_update(model, loss_fn, optimizer, images, targets, seen=10**6)
    assert (err.value.what, math.isnan(err.value.value)) == ("loss", True)
    for name, value in model.state_dict().items():
        if "running" not in name and "num_batches" not in name:  # batch norm's statistics saw the batch
            assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_ema_follows_the_model():
    model = nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.add_(1.0)
    before = ema.module.weight.clone()
    ema.update(model)
    d = min(0.5, 2 / 11)
    torch.testing.assert_close(ema.module.weight, d * before + (1 - d) * model.weight)
    assert not ema.module.weight.requires_grad


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_loads_with_weights_only_and_holds_every_state(data, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(tiny_model(), dataset(data), tiny_config(max_iterations=2, ema_decay=0.9, out_dir=str(out)),
                      val_data=dataset(data, "val", augment=False))
    trainer.fit()
    state = torch.load(out / "last.pt", weights_only=True)
    for key in ("model", "ema", "optimizer", "scheduler", "sampler", "rng", "seen", "history", "config"):
        assert key in state
    assert state["seen"] == 4 and state["iteration"] == 2
    assert set(state["rng"]) >= {"python", "numpy", "torch"}
    assert (out / "best.pt").is_file() and json.loads((out / "history.json").read_text())["val"]["map"]
    rebuilt = model_from_checkpoint(out / "best.pt")
    assert rebuilt.class_names == list(worker.CLASSES) and rebuilt.config.max_iterations == 2
    for name, value in trainer.ema.module.state_dict().items():
        assert torch.equal(rebuilt.model.state_dict()[name], value)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a yolov2_lib training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"format": "x", "v": torch.ones(3)}, path)
    original = path.read_bytes()
    real_save = torch.save

    def crash(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(10)  # half written ...
        raise OSError("disk full")  # ... then the failure

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"format": "x", "v": torch.zeros(1000)}, path)
    assert path.read_bytes() == original  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary left behind


class _NaNAfter(YOLOv2Loss):
    """The real loss, but NaN from update ``at`` on."""

    def __init__(self, *args, at: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at, self.calls = at, 0

    def forward(self, output, targets, seen):
        self.calls += 1
        out = super().forward(output, targets, seen)
        if self.calls >= self.at:
            return out._replace(total=out.total * float("nan"))
        return out


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    model = tiny_model()
    loss = _NaNAfter(model.anchors, 2, at=3)
    out = tmp_path / "run"
    trainer = Trainer(model, dataset(data), tiny_config(max_iterations=5, checkpoint_every=1, out_dir=str(out)),
                      loss_fn=loss)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss \(nan\) at update 3.*last good checkpoint is"):
        trainer.fit()
    state = load_checkpoint(out / "last.pt")
    assert state["iteration"] == 2 and trainer.iteration == 2
    for name, value in state["model"].items():
        assert torch.isfinite(value.float()).all()
        if value.is_floating_point() and "running" not in name:  # the weights were not updated
            assert torch.equal(value, trainer.model.state_dict()[name])


def test_shipped_provenance_keeps_the_run_folder_name_only():
    from yolov2_lib.checkpoint import _shareable

    record = {"command": "yolov2 train --dataset bccd --out /home/me/runs/bccd-s3 --no-progress",
              "hardware": "a CPU", "resumed": [{"at_iteration": 9, "command": "yolov2 train --out=/tmp/x/r --resume"}]}
    shared = _shareable(record)
    assert shared["command"] == "yolov2 train --dataset bccd --out bccd-s3 --no-progress"
    assert shared["resumed"] == [{"at_iteration": 9, "command": "yolov2 train --out=r --resume"}]
    assert shared["hardware"] == "a CPU" and record["command"].endswith("/bccd-s3 --no-progress")  # a copy
    assert _shareable(None) is None


# --------------------------------------------------------------------------- kill and resume


def _run_worker(out: Path, data: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(WORKER), "--data", str(data), "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_killed_run_resumes_to_the_same_weights(data, tmp_path):
    """SIGKILL a training process after its first checkpoint; resuming must end bit for bit equal."""
    reference = _run_worker(tmp_path / "ref", data, "--workers", "0")
    victim_dir = tmp_path / "victim"
    victim = _run_worker(victim_dir, data, "--workers", "2", "--delay", "0.05")
    deadline = time.monotonic() + 60
    while not (victim_dir / "last.pt").exists():
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    time.sleep(random.uniform(0.0, 0.1))  # anywhere in the next update, checkpoint writes included
    victim.send_signal(signal.SIGKILL)
    stdout, _ = victim.communicate()
    assert victim.returncode == -signal.SIGKILL and "done" not in stdout
    killed_at = load_checkpoint(victim_dir / "last.pt")["iteration"]
    assert 1 <= killed_at < 6

    resumed = _run_worker(victim_dir, data, "--workers", "2", "--resume")
    for proc in (resumed, reference):
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        assert "done 6" in stdout

    a, b = load_checkpoint(tmp_path / "ref" / "last.pt"), load_checkpoint(victim_dir / "last.pt")
    assert (a["iteration"], a["seen"], a["epoch"]) == (b["iteration"], b["seen"], b["epoch"]) == (6, 12, 2)
    for part in ("model", "ema"):
        sa, sb = (a[part], b[part]) if part == "model" else (a[part]["module"], b[part]["module"])
        for name in sa:
            assert torch.equal(sa[name], sb[name]), f"{part}.{name} differs after resuming at {killed_at}"
    for k, v in a["optimizer"]["state"].items():
        assert torch.equal(v["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])
    assert a["history"]["train"]["loss"] == b["history"]["train"]["loss"]
    assert a["history"]["train"]["size"] == b["history"]["train"]["size"]


# --------------------------------------------------------------------------- evaluation and detection


class _Oracle(nn.Module):
    """A 'detector' whose head output encodes the ground truth of each image it is shown, in order."""

    def __init__(self, targets: list[torch.Tensor], num_classes: int = 2) -> None:
        super().__init__()
        self.register_buffer("anchors", torch.tensor([[1.0, 1.0], [2.0, 1.5], [1.5, 2.0]]))
        self.num_classes = num_classes
        self.dummy = nn.Parameter(torch.zeros(1))
        self.targets, self.next = targets, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        A, C = len(self.anchors), self.num_classes
        raw = torch.full((B, A, 5 + C, H // 32, W // 32), -20.0)
        gh, gw = H // 32, W // 32
        for b in range(B):
            for cls, cx, cy, w, h in self.targets[self.next].tolist():
                i, j = min(int(cx * gw), gw - 1), min(int(cy * gh), gh - 1)
                a = int((raw[b, :, 4, j, i] > 0).sum())  # the next free anchor of the cell
                fx, fy = cx * gw - i, cy * gh - j
                raw[b, a, 0, j, i] = math.log(fx / (1 - fx))
                raw[b, a, 1, j, i] = math.log(fy / (1 - fy))
                raw[b, a, 2, j, i] = math.log(w * gw / float(self.anchors[a, 0]))
                raw[b, a, 3, j, i] = math.log(h * gh / float(self.anchors[a, 1]))
                raw[b, a, 4, j, i] = 20.0
                raw[b, a, 5 + int(cls), j, i] = 20.0
            self.next += 1
        return raw.reshape(B, A * (5 + C), H // 32, W // 32)


@pytest.mark.parametrize("letterbox", [False, True])
def test_evaluate_model_maps_boxes_back_to_original_pixels(wide, letterbox):
    ds = dataset(wide, "val", augment=False, letterbox=letterbox)
    targets = [ds[(i, 96)][1] for i in range(len(ds))]  # (class, cx, cy, w, h) in input units
    assert sum(len(t) for t in targets) == sum(len(r.boxes) for r in ds.records)  # none dropped
    result = evaluate_model(_Oracle(targets), ds, input_size=96, batch_size=4)
    assert result.num_positives.sum() == sum(len(r.boxes) for r in ds.records)
    assert result.map_11point == pytest.approx(1.0) and result.map_area == pytest.approx(1.0)
    # Boxes placed as the other resize mode places them land elsewhere in the original image.
    other = dataset(wide, "val", augment=False, letterbox=not letterbox)
    wrong = evaluate_model(_Oracle([other[(i, 96)][1] for i in range(len(ds))]), ds, input_size=96)
    assert wrong.map_11point < 0.9


def test_evaluate_model_on_a_trained_model_restores_its_mode(data):
    model = tiny_model().train()
    result = evaluate_model(model, dataset(data, "val", augment=True), input_size=64)
    assert model.training and 0.0 <= result.map_11point <= 1.0
    assert result.class_names == worker.CLASSES


def test_detect_images_returns_boxes_in_image_pixels(data):
    ds = dataset(data, "val", augment=False, letterbox=True)
    record = ds.records[0]
    target = ds[(0, 96)][1][:1]  # the first box, in input units
    image = load_image(record.path)
    dets = detect_images(_Oracle([target]), [image], input_size=96, letterbox=True)
    assert len(dets) == 1 and dets[0].shape == (1, 6)
    torch.testing.assert_close(dets[0][0, :4], record.boxes[0], atol=1e-3, rtol=0)
    assert int(dets[0][0, 5]) == int(record.labels[0])
    with pytest.raises(ValueError, match="images\\[0\\]"):
        detect_images(_Oracle([target]), [torch.zeros(4, 4)], input_size=96)


def test_resume_with_a_new_length_follows_the_new_schedule(data, tmp_path):
    """The checkpoint says where the run is; the resuming config says where the steps are."""
    train = dataset(data)
    short = dict(max_iterations=4, steps=(0.5,), burn_in=0, eval_every=0)
    first = Trainer(tiny_model(), train, tiny_config(**short, out_dir=str(tmp_path)))
    first.fit()
    planned = Trainer(tiny_model(), train, tiny_config(**{**short, "max_iterations": 12}))
    planned.fit()  # the same length from the start: its step comes later
    assert first.history["train"]["lr"] != planned.history["train"]["lr"][:4]
    longer = Trainer(tiny_model(), train, tiny_config(**{**short, "max_iterations": 12}), resume=tmp_path / "last.pt")
    longer.fit()
    assert longer.history["train"]["lr"][4:] == planned.history["train"]["lr"][4:]


def test_threads_setting_is_checked_and_applies_only_during_fit():
    import torch

    from yolov2_lib.train import TrainConfig

    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            TrainConfig(threads=bad)
    assert TrainConfig(threads=1).threads == 1


def test_fit_trains_with_the_configured_threads_and_gives_them_back(data):
    seen = []
    trainer = Trainer(tiny_model(), dataset(data), tiny_config(max_iterations=2, threads=2))
    step = trainer.train_step

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return step(*args, **kwargs)

    trainer.train_step = spy
    before = torch.get_num_threads()
    trainer.fit()
    assert seen == [2, 2] and torch.get_num_threads() == before
    assert ", 2 torch threads," in trainer.provenance["hardware"]
