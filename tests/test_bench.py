"""The benchmarks run end to end (at toy sizes) and write their JSON records."""

from __future__ import annotations

import json

import pytest

from yolov2_lib.bench.__main__ import main


def test_model_benchmark_runs(tmp_path, capsys):
    out = tmp_path / "model.json"
    assert main(["model", "--width", "0.125", "--size", "64", "--batch", "1", "--repeats", "1",
                 "--warmup", "0", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert "speed-up" in capsys.readouterr().out and record


def test_loss_benchmark_runs(tmp_path):
    out = tmp_path / "loss.json"
    assert main(["loss", "--batch", "2", "--size", "64", "--width", "0.125", "--repeats", "1",
                 "--loss-repeats", "2", "--eval-repeats", "1", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["eval_s"] > 0


def test_anchors_benchmark_runs(shared_data, tmp_path):
    out = tmp_path / "anchors.json"
    assert main(["anchors", "--csv", str(shared_data / "voc_boxes.csv"), "--years", "2007",
                 "--repeats", "1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["speedup"] > 1


def test_dispatcher_lists_benchmarks(capsys):
    assert main([]) == 2
    assert "anchors" in capsys.readouterr().out


def test_model_benchmark_times_native_bf16(tmp_path):
    import torch

    from yolov2_lib.bench.model import native_precisions

    out = tmp_path / "model.json"
    assert main(["model", "--width", "0.125", "--size", "64", "--batch", "2", "--repeats", "1",
                 "--warmup", "0", "--json", str(out)]) == 0
    rows = {r["variant"]: r for r in json.loads(out.read_text())["results"]}
    if "bf16" not in native_precisions(torch.device("cpu")):
        assert "bf16" not in rows
        pytest.skip("this CPU has no native bf16: the variant is rightly left out")
    bf16 = rows["bf16"]
    assert 0 < bf16["max_abs_diff_vs_plain"] < 5e-2 * bf16["max_abs_plain"]
    assert bf16["speedup_vs_plain"] > 0
