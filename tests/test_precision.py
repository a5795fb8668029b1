"""Precision by what the hardware computes natively, and the YOLOV2_NO_BF16 switch."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from yolov2_lib import detect, runtime
from yolov2_lib import precision as policy
from yolov2_lib import train as train_module
from yolov2_lib.detect import Detector, cpu_supports_bf16, cuda_supports_bf16
from yolov2_lib.model import YOLOv2
from yolov2_lib.train import autocast_dtype


def _probe_says_native(monkeypatch) -> None:
    """Make torch's CPU probe report AVX512-BF16, whatever this CPU is."""
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True}, raising=False)


@pytest.mark.parametrize("value, disabled", [(None, False), ("0", False), ("", False), ("1", True), ("yes", True)])
def test_switch_reads_the_environment(monkeypatch, value, disabled):
    if value is None:
        monkeypatch.delenv("YOLOV2_NO_BF16", raising=False)
    else:
        monkeypatch.setenv("YOLOV2_NO_BF16", value)
    assert runtime.bf16_disabled() is disabled


def test_switch_hides_native_cpu_bf16(monkeypatch):
    _probe_says_native(monkeypatch)
    monkeypatch.delenv("YOLOV2_NO_BF16", raising=False)
    assert cpu_supports_bf16() is True
    assert autocast_dtype("auto", torch.device("cpu")) == torch.bfloat16
    monkeypatch.setenv("YOLOV2_NO_BF16", "1")
    assert cpu_supports_bf16() is False
    assert autocast_dtype("auto", torch.device("cpu")) is None  # float32, as on a laptop
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16  # asked for: still honoured


def test_switch_hides_native_cuda_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(major=9))  # H100
    monkeypatch.delenv("YOLOV2_NO_BF16", raising=False)
    assert cuda_supports_bf16(torch.device("cuda", 0)) is True
    assert autocast_dtype("auto", torch.device("cuda", 0)) == torch.bfloat16
    monkeypatch.setenv("YOLOV2_NO_BF16", "1")
    assert cuda_supports_bf16(torch.device("cuda", 0)) is False
    assert autocast_dtype("auto", torch.device("cuda", 0)) == torch.float16  # fp16 with loss scaling


def test_detector_follows_the_switch(monkeypatch):
    model = YOLOv2(num_classes=2, width=1 / 16).eval()
    _probe_says_native(monkeypatch)
    monkeypatch.delenv("YOLOV2_NO_BF16", raising=False)
    assert Detector(model).precision == "bf16"
    monkeypatch.setenv("YOLOV2_NO_BF16", "1")
    assert Detector(model).precision == "fp32"
    assert detect.resolve_precision("auto", "cpu") == "fp32"


def test_trainer_default_is_fp32_without_native_bf16(monkeypatch):
    monkeypatch.setattr(policy, "cpu_supports_bf16", lambda: False)
    assert train_module.TrainConfig().amp == "auto"
    assert autocast_dtype(train_module.TrainConfig().amp, torch.device("cpu")) is None


def test_switch_reaches_a_fresh_process():
    """The switch is read when asked, so a child process (a notebook kernel) sees it too."""
    code = "from yolov2_lib.detect import cpu_supports_bf16; print(cpu_supports_bf16())"
    env = {"YOLOV2_NO_BF16": "1", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_box_agreement_counts_shown_boxes_found_again():
    from yolov2_lib.detect import box_agreement

    a = torch.tensor([[0, 0, 10, 10, 0.9, 0], [20, 20, 40, 40, 0.8, 1], [50, 50, 60, 60, 0.1, 0]])
    moved = torch.tensor([[0, 0, 10, 10.2, 0.85, 0],  # the same box, a little taller: IoU 0.98
                          [20, 20, 40, 40, 0.8, 0],     # the right place, the wrong class
                          [0, 0, 10, 10, 0.5, 0]])      # a duplicate: each box counts once
    assert box_agreement([a], [moved]) == (1, 2, 3)
    assert box_agreement([a], [a]) == (2, 2, 2)
    assert box_agreement([a], [moved], iou=0.99) == (1, 2, 3)  # now the exact duplicate is the match
    assert box_agreement([a], [moved], score=0.05) == (1, 3, 3)
    with pytest.raises(ValueError, match="same images"):
        box_agreement([a], [a, a])


def test_precision_benchmark_measures_fp32_everywhere_and_bf16_only_where_native(monkeypatch, tmp_path,
                                                                                    shared_data):
    import json

    from yolov2_lib.bench import precision
    from yolov2_lib.data import BCCD_CLASSES

    monkeypatch.setenv("YOLOV2_NO_BF16", "1")
    monkeypatch.setenv("YOLOV2_DATA", str(shared_data))
    monkeypatch.setattr(precision, "detections_at", lambda detectors, dataset, size: (
        {n: [torch.zeros(0, 6)] for n in detectors}, [torch.zeros(0, 6)]))
    calls = []
    monkeypatch.setattr(precision, "images_per_second",
                        lambda d, data, sizes, repeats: calls.append(sorted(d)) or {n: {s: 1.0 for s in sizes} for n in d})
    assert precision.main(["--sizes", "64", "--repeats", "1", "--json", str(tmp_path / "r.json")]) == 0
    record = json.loads((tmp_path / "r.json").read_text())
    assert calls == [["fp32"]] and record["native_bf16"] is False and "speedup" not in record
    assert set(record["map_416"]) == {"fp32"} and len(BCCD_CLASSES) == 3


def test_without_torchs_probe_the_cpu_flags_decide(monkeypatch):
    monkeypatch.delenv("YOLOV2_NO_BF16", raising=False)
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    monkeypatch.setattr(policy, "cpu_info", lambda: {"flags": "fpu avx2 amx_bf16"})
    assert cpu_supports_bf16() is True
    monkeypatch.setattr(policy, "cpu_info", lambda: {"flags": "fpu avx2 avx512f"})
    assert cpu_supports_bf16() is False
    monkeypatch.setattr(policy, "cpu_info", lambda: {})  # no /proc/cpuinfo
    assert cpu_supports_bf16() is False
