"""The trainer's wall-time budget (``TrainConfig.max_seconds``), on a simulated clock.

Each update advances the clock by one second and each validation by ``EVAL_SECONDS``, so
the tests are exact whatever the machine's speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import _train_worker as worker
from yolov2_lib.data.voc import DetectionDataset
from yolov2_lib.train import Trainer, TrainConfig, load_checkpoint

EVAL_SECONDS = 3.0


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    worker.make_synthetic(root, num_images=4, splits=("train", "val"))
    return root


def dataset(data: Path, split: str) -> DetectionDataset:
    return DetectionDataset.from_boxes_csv(data / "boxes.csv", data / "images", splits=split,
                                           class_names=worker.CLASSES, image_ext=".png", seed=1)


def trainer(data: Path, val: bool = True, **overrides) -> Trainer:
    model = worker.tiny_model()
    values = dict(max_iterations=1000, batch_size=2, lr=0.01, burn_in=0, sizes=(64,), eval_size=64,
                  ema_decay=None, progress=False, verbose=False, device="cpu", eval_every=1)
    values.update(overrides)
    t = Trainer(model, dataset(data, "train"), TrainConfig(**values),
                val_data=dataset(data, "val") if val else None)
    simulate_clock(t)
    return t


def simulate_clock(t: Trainer) -> None:
    now = [0.0]
    t.clock = lambda: now[0]
    step, evaluate = t.train_step, t.evaluate

    def timed_step(images, targets):
        record = step(images, targets)
        now[0] += 1.0
        t.history["train"]["step_time"][-1] = 1.0
        return record

    def timed_evaluate(*args, **kwargs):
        result = evaluate(*args, **kwargs)
        now[0] += EVAL_SECONDS
        return result

    t.train_step, t.evaluate = timed_step, timed_evaluate


def test_budget_stops_the_run_and_leaves_time_for_the_last_evaluation(data):
    t = trainer(data, max_seconds=20)  # 2 updates an epoch, a 3 s validation after each epoch
    t.fit()
    assert t.stopped_by == "time budget"
    assert t.iteration < 1000
    assert t.elapsed_seconds <= 20  # the closing validation included
    assert t.history["val"]["iteration"][-1] == t.iteration  # the end was validated
    # three epochs of 2 s + 3 s (15 s), then one more update: a second one and the closing
    # validation would end past 20 s
    assert t.iteration == 7 and t.elapsed_seconds == pytest.approx(15 + 1 + 3)


def test_updates_end_the_run_when_they_come_first(data):
    t = trainer(data, max_iterations=4, max_seconds=1e6)
    t.fit()
    assert t.stopped_by == "updates" and t.iteration == 4


def test_no_budget_means_no_limit(data):
    t = trainer(data, max_iterations=3, val=False)
    t.fit()
    assert t.stopped_by == "updates" and t.iteration == 3


def test_fractional_steps_follow_the_budget(data):
    # 1000 planned updates would put the steps at 500 and 900; the budget of 10 s (no
    # validation) moves them to the updates after 5 and 9 seconds.
    t = trainer(data, val=False, eval_every=0, max_seconds=10, steps=(0.5, 0.9))
    assert t.schedule.steps == (500, 900)
    t.fit()
    assert t.stopped_by == "time budget" and t.iteration == 9
    assert t.schedule.steps == (6, 10)
    assert t.history["train"]["lr"] == pytest.approx([0.01] * 5 + [0.001] * 4)


def test_update_number_steps_are_not_moved(data):
    t = trainer(data, val=False, eval_every=0, max_seconds=10, steps=(0.5, 3))
    t.fit()
    assert t.schedule.steps == (6, 3)


def test_a_resumed_run_keeps_its_moved_steps_and_spends_the_rest_of_the_budget(data, tmp_path):
    out = tmp_path / "run"
    first = trainer(data, val=False, eval_every=0, max_seconds=6, steps=(0.5,), out_dir=str(out))
    first.fit()
    assert first.iteration == 5 and first.schedule.steps == (4,)
    state = load_checkpoint(out / "last.pt")
    assert state["schedule_steps"] == [4] and state["stopped_by"] == "time budget"
    assert state["train_seconds"] == pytest.approx(5.0)

    # continued with a larger budget: 5 s are spent already, 5 more updates fit in 10 s
    again = trainer(data, val=False, eval_every=0, max_seconds=10, steps=(0.5,), out_dir=str(out))
    again.load_checkpoint(out / "last.pt")
    assert again.schedule.steps == (4,)  # where the rate fell, not the plan's update 500
    assert again.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)
    again.fit()
    assert again.iteration == 9 and again.stopped_by == "time budget"


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "60"])
def test_budget_must_be_positive_seconds(bad):
    with pytest.raises(ValueError, match="max_seconds"):
        TrainConfig(max_seconds=bad)


# --------------------------------------------------------------------------- the command line


def _cli_train(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--boxes-csv", str(data / "boxes.csv"), "--images", str(data / "images"), "--image-ext",
            ".png", "--width", "0.0625", "--sizes", "64", "--eval-size", "64", "--max-iterations", "2",
            "--batch-size", "2", "--burn-in", "0", "--num-anchors", "2", "--workers", "0", "--no-progress",
            "--out", str(out), *extra]


def test_command_line_budget_reaches_the_config(data, tmp_path):
    from yolov2_lib import cli

    assert cli.main(_cli_train(data, tmp_path / "run", "--max-minutes", "30")) == 0
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["config"]["max_seconds"] == 1800 and state["stopped_by"] == "updates"


@pytest.mark.parametrize("bad", ["0", "-2", "nan", "inf", "six"])
def test_command_line_budget_must_be_positive_minutes(data, tmp_path, capsys, bad):
    from yolov2_lib import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(_cli_train(data, tmp_path / "run", "--max-minutes", bad))
    assert exc.value.code == 2 and "--max-minutes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
