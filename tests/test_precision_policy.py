"""One precision policy: training, detection and evaluation pick the same precision on every device."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from yolov2_lib import precision as policy
from yolov2_lib.config import TrainConfig
from yolov2_lib.errors import YOLOv2Error

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def _simulate(monkeypatch, *, cpu_bf16: bool = False, cuda_major: int | None = None) -> None:
    """A machine: a CPU with or without native bf16, and maybe a CUDA GPU of a compute capability."""
    monkeypatch.delenv("YOLOV2_NO_BF16", raising=False)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": cpu_bf16, "amx_bf16": False},
                        raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_major is not None)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(major=cuda_major))


MACHINES = [  # (what it is, CPU bf16, CUDA major, auto on the CPU, auto on the GPU)
    ("laptop: AVX2 CPU, no GPU", False, None, "fp32", None),
    ("Xeon with AMX, no GPU", True, None, "bf16", None),
    ("T4 (compute capability 7.5)", False, 7, "fp32", "fp16"),
    ("A100 (compute capability 8.0)", False, 8, "fp32", "bf16"),
]


@pytest.mark.parametrize("name, cpu_bf16, cuda_major, on_cpu, on_gpu", MACHINES, ids=[m[0] for m in MACHINES])
def test_every_use_picks_by_one_rule(monkeypatch, name, cpu_bf16, cuda_major, on_cpu, on_gpu):
    _simulate(monkeypatch, cpu_bf16=cpu_bf16, cuda_major=cuda_major)
    devices = [(CPU, on_cpu)] + ([(CUDA, on_gpu)] if on_gpu else [])
    for device, expected in devices:
        assert policy.native(device) == expected
        assert policy.for_inference("auto", device) == expected  # Detector, evaluate_model, detect_images
        assert policy.autocast_dtype(TrainConfig().amp, device) == policy.dtype_of(expected)  # training
        assert policy.supported(expected, device)


def test_one_vocabulary():
    assert policy.PRECISIONS == ("auto", "fp32", "bf16", "fp16")
    assert policy.normalize("off") == "fp32"  # the older spelling of float32
    assert TrainConfig(amp="off").amp == "fp32"
    with pytest.raises(YOLOv2Error, match="precision must be one of"):
        policy.normalize("fp8")
    with pytest.raises(YOLOv2Error, match="TrainConfig.amp must be one of"):
        TrainConfig(amp="half")


def test_a_request_the_device_lacks(monkeypatch):
    _simulate(monkeypatch, cpu_bf16=False, cuda_major=7)
    with pytest.warns(UserWarning, match="not supported natively"):
        assert policy.for_inference("bf16", CPU) == "fp32"  # inference falls back to what auto picks
    with pytest.warns(UserWarning, match="emulated"):
        assert policy.autocast_dtype("bf16", CUDA) == torch.bfloat16  # training does as it is told, slowly
    with pytest.raises(YOLOv2Error, match="needs a CUDA device"):
        policy.autocast_dtype("fp16", CPU)
