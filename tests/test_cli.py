"""The `yolov2` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from yolov2_lib import cli


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("bench", "data"):
        assert command in out


def test_data_lists_registered_datasets(capsys):
    assert cli.main(["data"]) == 0
    out = capsys.readouterr().out
    assert "voc_boxes" in out and "bccd" in out


def test_data_unknown_name_is_a_clear_error(capsys):
    assert cli.main(["data", "imagenet"]) == 1
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err


def test_data_fetch_resolves_from_the_local_mirror(shared_data, monkeypatch, capsys):
    monkeypatch.setenv("YOLOV2_DATA", str(shared_data))
    assert cli.main(["data", "--fetch", "darknet"]) == 0
    assert str(shared_data / "darknet") in capsys.readouterr().out


def test_unknown_benchmark_is_a_clear_error(capsys):
    assert cli.main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "yolov2_lib.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "yolov2_lib" in out.stdout
