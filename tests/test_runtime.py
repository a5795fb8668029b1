"""Seeding, device choice, hardware description, quick mode and glue (yolov2_lib.runtime)."""

from __future__ import annotations

import platform
import subprocess
import sys
import types

import pytest
import torch

from yolov2_lib import runtime


def test_setup_seeds_everything_and_picks_a_device():
    device = runtime.setup(seed=3)
    a = torch.rand(3)
    runtime.setup(seed=3)
    assert torch.equal(a, torch.rand(3))
    assert device == runtime.default_device()


def test_hardware_names_the_cpu_and_torch():
    line = runtime.hardware("cpu")
    assert runtime.cpu_name() in line and torch.__version__ in line and "threads" in line


def test_quick_mode_follows_the_environment(monkeypatch):
    monkeypatch.delenv("YOLOV2_QUICK", raising=False)
    assert not runtime.quick_mode()
    monkeypatch.setenv("YOLOV2_QUICK", "0")
    assert not runtime.quick_mode()
    monkeypatch.setenv("YOLOV2_QUICK", "1")
    assert runtime.quick_mode()


def test_glue_hands_the_value_to_myst_nb(monkeypatch):
    calls = []
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=True: calls.append((name, value, display))
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    assert runtime.glue("map", 0.81) == 0.81
    assert calls == [("map", 0.81, False)]


def test_glue_without_myst_nb_does_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import fails as in a plain Colab
    assert runtime.glue("map", 0.5) == 0.5


def test_glue_turns_numpy_and_torch_scalars_into_python_numbers(monkeypatch):
    import numpy as np

    calls = []
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=True: calls.append(value)
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    runtime.glue("a", np.float64(72.5))
    runtime.glue("b", torch.tensor(3.0))
    assert calls == [72.5, 3.0] and all(type(v) is float for v in calls)  # "{glue:text}`a:.1f`" needs a float


_MMAPPED_PROBE = """
import ctypes, sys, torch
from yolov2_lib import runtime

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    assert runtime.tune_allocator() and runtime.tune_allocator() and runtime.allocator_tuned()
before = libc.mallinfo2().hblkhd  # bytes in blocks served by mmap
block = torch.empty(64 * 2**20, dtype=torch.uint8)
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_tune_allocator_serves_large_blocks_from_the_heap():
    # A fresh process each: the setting is process-wide and cannot be undone.
    def mmapped(mode):
        out = subprocess.run([sys.executable, "-c", _MMAPPED_PROBE, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    assert mmapped("default") >= 64 * 2**20  # glibc's default: a 64 MB block is its own mmap, unmapped when freed
    assert mmapped("tuned") == 0  # from the heap, which keeps it for the next step when freed


def test_plain_warnings_show_category_and_file_names_only():
    import warnings

    from yolov2_lib import runtime
    from yolov2_lib.data.voc import DataWarning

    before = warnings.formatwarning
    try:
        runtime.plain_warnings()
        text = warnings.formatwarning(
            DataWarning("/home/me/data/bccd/bccd_boxes.csv, line 4006 (image 'B'): box has zero area"),
            DataWarning, "/site-packages/yolov2_lib/data/voc.py", 623, "box = _check_box(...)  # type: ignore")
        assert text == "DataWarning: bccd_boxes.csv, line 4006 (image 'B'): box has zero area\n"
        assert warnings.formatwarning(UserWarning("C:\\data\\x.csv: w/h 1/2"), UserWarning, "f.py", 1) == \
            "UserWarning: x.csv: w/h 1/2\n"
    finally:
        warnings.formatwarning = before


def test_training_threads_leave_one_core(monkeypatch):
    from yolov2_lib import runtime

    for cores, threads in ((1, 1), (2, 1), (8, 7), (None, 1)):
        monkeypatch.setattr(runtime.os, "cpu_count", lambda cores=cores: cores)
        assert runtime.training_threads() == threads


def test_hardware_names_the_threads_a_run_uses():
    from yolov2_lib.runtime import hardware

    assert ", 3 torch threads," in hardware("cpu", threads=3)


def test_cpu_info_reads_the_first_processors_fields(monkeypatch, tmp_path):
    from pathlib import Path

    from yolov2_lib import runtime

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n\nprocessor\t: 1\n"
                    "model name\t: other\n")
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: real(fake if str(self) == "/proc/cpuinfo" else self,
                                                                      *a, **k))
    assert runtime.cpu_info() == {"processor": "0", "model name": "AMD EPYC", "flags": "fpu avx2"}
    assert runtime.cpu_name() == "AMD EPYC"


def test_check_device_names_what_this_machine_lacks():
    import pytest

    from yolov2_lib.errors import YOLOv2Error
    from yolov2_lib.runtime import check_device

    assert check_device(None) is None and str(check_device("cpu")) == "cpu"
    with pytest.raises(YOLOv2Error, match="'banana' is not a device name"):
        check_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(YOLOv2Error, match="no CUDA GPU is usable here"):
            check_device("cuda")
