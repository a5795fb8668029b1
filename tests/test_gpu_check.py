"""The prepared GPU check (.ci/gpu_check.sh) runs end to end, here on the CPU in its quick mode,
so that a session lent a GPU finds it working; and it refuses to start without its data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "gpu_check.sh"


def _run(env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_QUICK": "1",
           "GPU_CHECK_UPDATES": "2", "OUT": str(tmp_path / "out"), **env_extra}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=900)


def test_gpu_check_runs_on_the_cpu_in_quick_mode(shared_data, tmp_path):
    proc = _run({"YOLOV2_DATA": str(shared_data)}, tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = tmp_path / "out"
    # What the device tool brings back: at most 8 plain files, no checkpoints.
    assert sorted(p.name for p in out.iterdir()) == [
        "bench-model.json", "bench-train.json", "gpu-check.log", "test-map.json", "train-history.json"]
    log = (out / "gpu-check.log").read_text()
    assert "native CUDA bf16: False" in log and "gpu_check: done" in log
    assert "done: 2 updates" in log
    result = json.loads((out / "test-map.json").read_text())
    assert result["split"] == "test" and result["images"] == 72 and "map_11point" in result
    assert json.loads((out / "bench-train.json").read_text())["results"]


def test_gpu_check_needs_bccd(tmp_path):
    proc = _run({"YOLOV2_DATA": str(tmp_path / "nothing")}, tmp_path)
    assert proc.returncode == 2 and "no BCCD under YOLOV2_DATA" in proc.stdout + proc.stderr
