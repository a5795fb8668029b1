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


# ---------------------------------------------------------------- train, eval, detect, anchors


def _data_args(tiny_data) -> list[str]:
    csv_path, images = tiny_data
    return ["--boxes-csv", str(csv_path), "--images", str(images), "--image-ext", ".png"]


def _train_args(tiny_data, out, *extra: str) -> list[str]:
    return ["train", *_data_args(tiny_data), "--width", "0.0625", "--sizes", "64-96", "--size-every", "1",
            "--eval-size", "96", "--max-iterations", "2", "--batch-size", "2", "--burn-in", "0", "--lr", "0.01",
            "--num-anchors", "2", "--workers", "0", "--no-progress", "--out", str(out), *extra]


def test_train_eval_detect_run_end_to_end(tiny_data, tmp_path, capsys, one_thread):
    import hashlib
    import json
    from pathlib import Path

    import torch

    out = tmp_path / "run"
    assert cli.main(_train_args(tiny_data, out)) == 0
    printed = capsys.readouterr().out
    assert "anchors by k-means" in printed and "done: 2 updates" in printed
    assert {"last.pt", "best.pt", "history.json"} <= {p.name for p in out.iterdir()}
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["iteration"] == 2 and state["class_names"] == ["blue", "red"]
    assert len(state["model_config"]["anchors"]) == 2 and state["config"]["amp"] == "auto"

    report = tmp_path / "eval.json"
    assert cli.main(["eval", str(out / "best.pt"), *_data_args(tiny_data), "--split", "val", "--size", "96",
                     "--no-progress", "--json", str(report)]) == 0
    assert "mAP" in capsys.readouterr().out
    record = json.loads(report.read_text())
    assert record["images"] == 3 and set(record["per_class"]) == {"blue", "red"}
    assert 0.0 <= record["map_11point"] <= 1.0
    assert cli.main(["eval", str(out / "best.pt"), *_data_args(tiny_data), "--split", "val", "--size", "96",
                     "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["map_11point"] == record["map_11point"]

    images = tiny_data[1]
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in images.iterdir()}
    drawn = tmp_path / "drawn"
    assert cli.main(["detect", str(out / "last.pt"), str(images / "val0.png"), str(images), "--size", "96",
                     "--score", "0.0", "--out", str(drawn)]) == 0
    assert "val0.png" in capsys.readouterr().out
    assert sorted(p.name for p in drawn.iterdir()) == sorted(
        ["detections.json"] + [f"{Path(n).stem}_det.jpg" for n in before])  # each image once
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in images.iterdir()} == before
    detections = json.loads((drawn / "detections.json").read_text())
    assert all(d["class"] in ("blue", "red") for item in detections for d in item["detections"])


def test_train_resumes_from_the_last_checkpoint(tiny_data, tmp_path, capsys, one_thread):
    import torch

    out = tmp_path / "run"
    assert cli.main(_train_args(tiny_data, out, "--val-split", "none")) == 0
    assert cli.main(_train_args(tiny_data, out, "--val-split", "none", "--resume", "--max-iterations", "3")) == 0
    assert "resuming from" in capsys.readouterr().out
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["iteration"] == 3
    resumed = state["provenance"]["resumed"]  # the provenance keeps the start and each continuation
    assert len(resumed) == 1 and resumed[0]["at_iteration"] == 2 and resumed[0]["command"]
    assert state["train_seconds"] > 0


def test_detect_never_overwrites_an_input(tiny_data, tmp_path, capsys, one_thread):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "cat.jpg")
    Image.new("RGB", (64, 64)).save(folder / "cat_det.jpg")  # what detect would write for cat.jpg
    checkpoint = tmp_path / "run" / "last.pt"
    assert cli.main(_train_args(tiny_data, tmp_path / "run", "--val-split", "none", "--max-iterations", "1")) == 0
    capsys.readouterr()
    assert cli.main(["detect", str(checkpoint), str(folder), "--out", str(folder), "--size", "64"]) == 2
    assert "would overwrite an input image" in capsys.readouterr().err


def test_anchors_on_a_boxes_csv_needs_no_images(tiny_data, capsys):
    assert cli.main(["anchors", "--boxes-csv", str(tiny_data[0]), "-k", "3", "--grid", "13"]) == 0
    out = capsys.readouterr().out
    assert "3 anchors by IoU k-means" in out and out.count("\n  ") == 3
    iou = float(out.split("mean IoU: ")[1].split()[0])
    assert 0.5 < iou <= 1.0


@pytest.mark.filterwarnings("ignore:.*has zero area")  # BCCD's 2 degenerate upstream boxes
def test_anchors_on_bccd(shared_data, monkeypatch, capsys):
    monkeypatch.setenv("YOLOV2_DATA", str(shared_data))
    assert cli.main(["anchors", "--dataset", "bccd"]) == 0
    out = capsys.readouterr().out
    assert "5 anchors by IoU k-means on" in out and "darknet cfg: anchors = " in out
    assert 0.7 < float(out.split("mean IoU: ")[1].split()[0]) < 1.0


@pytest.mark.parametrize("argv, message", [
    (["train"], "give exactly one data source"),
    (["train", "--boxes-csv", "missing.csv", "--images", "."], "missing.csv does not exist"),
    (["train", "--dataset", "voc_boxes"], "only 'bccd'"),
    (["train", "--data-dir", "nowhere"], "no Annotations folder"),
    (["eval", "missing.pt", "--dataset", "bccd"], "checkpoint missing.pt does not exist"),
    (["detect", "missing.pt", "no_such_image.jpg"], "no_such_image.jpg does not exist"),
    (["anchors", "--boxes-csv", "missing.csv"], "missing.csv does not exist"),
])
def test_bad_files_and_sources_are_clear_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--sizes", "100"], "multiples of 32"),
    (["train", "--batch-size", "0"], "must be >= 1"),
    (["eval", "x.pt", "--size", "500"], "multiple of 32"),
    (["train", "--anchors", "1,2,3"], "--anchors must be"),
    (["train", "--amp", "fp8"], "invalid choice"),
])
def test_bad_options_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "eval", "detect", "anchors", "export"])
def test_help_documents_every_option(command, capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    undocumented = [a.dest for a in sub._actions if not a.help]
    assert not undocumented
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    for action in sub._actions:
        for option in action.option_strings:
            assert option in text
    # Each default is said once, and "(default: None)" / a flag's "(default: False)" not at all.
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text
    flat = " ".join(text.split())
    for action in sub._actions:
        if action.help:
            said = " ".join(sub.formatter_class("x")._get_help_string(action).split()).lower()
            assert said.count("default") - said.count("%(default)s") <= 1, (action.dest, said)
    assert "(default: 416)" in flat or command in ("detect", "export", "anchors")


def test_train_init_starts_from_a_checkpoint_with_a_fresh_schedule(tiny_data, tmp_path, capsys, one_thread):
    import torch

    from yolov2_lib.train import model_from_checkpoint

    first = tmp_path / "first"
    assert cli.main(_train_args(tiny_data, first, "--val-split", "none")) == 0
    start = model_from_checkpoint(first / "last.pt").model.state_dict()  # the EMA's weights
    tuned = tmp_path / "tuned"
    assert cli.main(_train_args(tiny_data, tuned, "--val-split", "none", "--init", str(first / "last.pt"),
                                "--max-iterations", "1", "--lr", "1e-12", "--width", "0.5", "--no-ema")) == 0
    assert "starting from the weights of" in capsys.readouterr().out
    state = torch.load(tuned / "last.pt", weights_only=True)
    assert state["iteration"] == 1  # a new run, not a continuation
    init = state["provenance"]["init"]  # and its record says where it started
    assert init["weights"] == str(first / "last.pt") and init["iteration"] == 2 and init["provenance"]["command"]
    assert state["model_config"]["width"] == 0.0625  # the checkpoint's network, not --width
    convs = [k for k, v in start.items() if k.endswith("conv.weight")]
    assert convs and all(torch.allclose(state["model"][k], start[k], atol=1e-6) for k in convs)

    assert cli.main(_train_args(tiny_data, tuned, "--init", str(first / "last.pt"), "--resume")) == 2
    assert "use one of them" in capsys.readouterr().err
    assert cli.main(_train_args(tiny_data, tmp_path / "new", "--init", str(tmp_path / "missing.pt"))) == 2
    assert "neither a file nor a shipped detector" in capsys.readouterr().err
    assert cli.main(_train_args(tiny_data, tmp_path / "new", "--init", "bccd")) == 2  # RBC, WBC, Platelets vs blue, red
    assert "the same classes in the same order" in capsys.readouterr().err


def test_export_writes_small_weights_with_provenance(tiny_data, tmp_path, capsys, one_thread):
    import hashlib
    import json

    import torch

    from yolov2_lib.train import WEIGHTS_FORMAT, model_from_checkpoint

    out = tmp_path / "run"
    assert cli.main(_train_args(tiny_data, out, "--val-split", "none")) == 0
    best = out / "last.pt"
    before = hashlib.sha256(best.read_bytes()).hexdigest()
    weights = tmp_path / "w" / "tiny.pt"
    assert cli.main(["export", str(best), str(weights), "--result", "test_map=0.5", "--result", "note=tiny"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert hashlib.sha256(best.read_bytes()).hexdigest() == before  # the checkpoint is untouched
    state = torch.load(weights, weights_only=True)
    assert state["format"] == WEIGHTS_FORMAT and state["dtype"] == "float16"
    assert all(v.dtype == torch.float16 for v in state["weights"].values() if v.is_floating_point())
    assert weights.stat().st_size < best.stat().st_size / 2  # no optimizer, no history, half precision
    info = json.loads(weights.with_suffix(".json").read_text())
    assert info["results"] == {"test_map": 0.5, "note": "tiny"}
    assert info["provenance"]["command"]  # sys.argv of the process that trained (here pytest's)
    assert info["provenance"]["hardware"] and info["provenance"]["started"]
    assert info["config"]["out_dir"] == "run" and str(tmp_path) not in json.dumps(info)  # no local paths shipped
    assert info["training"]["iterations"] == 2 and info["training"]["train_seconds"] > 0

    full = model_from_checkpoint(best).model
    small = model_from_checkpoint(weights).model
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        a, b = full(x), small(x)
    assert torch.allclose(a, b, rtol=1e-2, atol=1e-2)  # float16 storage: ~3 significant digits
    assert cli.main(["eval", str(weights), *_data_args(tiny_data), "--split", "val", "--size", "96",
                     "--no-progress"]) == 0

    assert cli.main(["export", str(best), str(weights)]) == 2  # never replaces a file silently
    assert "--force" in capsys.readouterr().err
    assert cli.main(["export", str(best), str(best)]) == 2
    assert cli.main(["export", str(best), str(tmp_path / "w.bin")]) == 2
    assert cli.main(["export", str(best), str(tmp_path / "x.pt"), "--result", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


# ---------------------------------------------------------------- data: local or what fetch would do


def test_data_says_each_dataset_is_local_with_the_mirror(shared_data, monkeypatch, capsys):
    monkeypatch.setenv("YOLOV2_DATA", str(shared_data))
    assert cli.main(["data"]) == 0
    out = capsys.readouterr().out
    assert out.count("  local: YOLOV2_DATA ") == 5, out


def test_data_without_local_copies_says_what_would_be_downloaded_and_built(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("YOLOV2_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("YOLOV2_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("YOLOV2_OFFLINE", "1")
    assert cli.main(["data", "bccd", "voc_boxes"]) == 0
    out = capsys.readouterr().out
    assert "not local; downloads are off (YOLOV2_OFFLINE)" in out
    assert "download 365 file(s) from Shenggan/BCCD_Dataset @ d272fb1" in out
    assert "copy bccd_boxes.csv from the package (no download)" in out and "BCCD/Annotations" not in out
    assert "build voc_boxes.csv from the Annotations/*.xml" in out and "VOCtest_06-Nov-2007.tar" in out
    assert not (tmp_path / "cache").exists(), "listing must not download or build anything"


def _boxes_clustered(capsys) -> int:
    import re

    return int(re.search(r"k-means on (\d+) boxes", capsys.readouterr().out).group(1))


def test_several_splits_joined_by_commas(tiny_data, tmp_path, capsys, one_thread):
    anchors = ["anchors", *_data_args(tiny_data), "-k", "1"]
    assert cli.main([*anchors, "--split", "train"]) == 0
    train = _boxes_clustered(capsys)
    assert cli.main([*anchors, "--split", "val"]) == 0
    val = _boxes_clustered(capsys)
    assert cli.main([*anchors, "--split", "train, val"]) == 0
    assert _boxes_clustered(capsys) == train + val
    # A typo in one of the names is an error, not a quiet run on the other split.
    assert cli.main([*anchors, "--split", "train,vall"]) == 2
    assert "'vall'" in capsys.readouterr().err
    assert cli.main([*anchors, "--split", "train,"]) == 2
    assert "empty name" in capsys.readouterr().err
    # Training on train and val: 3 + 3 images; validating on a split it trains on is refused.
    out = tmp_path / "trainval"
    assert cli.main(_train_args(tiny_data, out, "--train-split", "train,val", "--val-split", "none")) == 0
    assert ", 6 images," in capsys.readouterr().out
    for train_split in ("train,val", "train, val"):
        assert cli.main(_train_args(tiny_data, tmp_path / "bad", "--train-split", train_split)) == 2
        assert "shares val" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_several_voc_image_sets(tmp_path, capsys):
    from test_voc import GOOD, SETS, _devkit

    root = _devkit(tmp_path, GOOD, SETS)
    assert cli.main(["anchors", "--data-dir", str(root), "--split", "train,val", "-k", "1"]) == 0
    assert _boxes_clustered(capsys) == 4  # the difficult cat counts as a box to cluster
    assert cli.main(["anchors", "--data-dir", str(root), "--split", "train,test", "-k", "1"]) == 2
