"""DistributedDataParallel on CPU: 2 gloo processes started by torchrun equal one process.

torch 2.13's ``SyncBatchNorm`` refuses CPU tensors, so on CPU each process
normalises with the batch statistics of its own slice. Two configurations
make the equality exact (to float rounding), and both are checked on the
same 2-process run:

- ``freeze_bn``: batch norm uses fixed statistics; 2 processes x 2 images
  equal 1 process x 4 images, every weight and buffer;
- batch norm live: 2 processes x 2 images equal 1 process that accumulates
  two micro-batches of 2 (``accumulate=2``), every parameter -- and differ
  from 1 process x 4 images, which normalises over all 4.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import _train_worker as worker
from yolov2_lib.train import load_checkpoint

WORKER = Path(__file__).with_name("_train_worker.py")
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _single_process(data: Path, out: Path, freeze_bn: bool, accumulate: int) -> dict:
    args = argparse.Namespace(data=str(data), out=str(out), iterations=3, batch=4, accumulate=accumulate, workers=0,
                              delay=0.0, threads=1, freeze_bn=freeze_bn, resume=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        worker.build(args).fit()
    finally:
        torch.set_num_threads(threads)
    return load_checkpoint(out / "last.pt")


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory) -> tuple[Path, Path]:
    """One torchrun launch of 2 gloo processes, training both configurations."""
    tmp = tmp_path_factory.mktemp("ddp")
    data = tmp / "data"
    worker.make_synthetic(data, num_images=8)
    env = dict(os.environ, PYTHONPATH=str(ROOT), GLOO_SOCKET_IFNAME="lo")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(WORKER), "--data", str(data), "--out", str(tmp / "ddp"), "--batch", "4", "--iterations", "3", "--pair",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("done 3") == 2  # both ranks finished
    return data, tmp


def test_ddp_with_frozen_bn_equals_one_process_with_the_global_batch(ddp_runs):
    data, tmp = ddp_runs
    ddp = load_checkpoint(tmp / "ddp" / "freeze" / "last.pt")
    single = _single_process(data, tmp / "single-freeze", freeze_bn=True, accumulate=1)
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["seen"] == single["seen"] == 12  # seen counts the global batch
    for name, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][name], value, rtol=1e-5, atol=1e-7, msg=name)
    for name, value in single["ema"]["module"].items():
        torch.testing.assert_close(ddp["ema"]["module"][name], value, rtol=1e-5, atol=1e-7, msg=name)
    torch.testing.assert_close(ddp["history"]["train"]["loss"], single["history"]["train"]["loss"], rtol=1e-5,
                               atol=1e-6)


def test_ddp_with_live_bn_equals_one_process_accumulating_the_same_slices(ddp_runs):
    data, tmp = ddp_runs
    ddp = load_checkpoint(tmp / "ddp" / "live" / "last.pt")
    accumulated = _single_process(data, tmp / "single-acc", freeze_bn=False, accumulate=2)
    whole = _single_process(data, tmp / "single-whole", freeze_bn=False, accumulate=1)
    parameters = [n for n in accumulated["model"] if not n.endswith(("running_mean", "running_var", "batches_tracked"))]
    worst_whole = 0.0
    for name in parameters:
        torch.testing.assert_close(ddp["model"][name], accumulated["model"][name], rtol=1e-5, atol=1e-6, msg=name)
        worst_whole = max(worst_whole, float((ddp["model"][name] - whole["model"][name]).abs().max()))
    assert worst_whole > 1e-4  # per-process statistics are not one big batch's
    torch.testing.assert_close(ddp["history"]["train"]["loss"], accumulated["history"]["train"]["loss"],
                               rtol=1e-5, atol=1e-6)
