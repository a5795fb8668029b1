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


def test_data_benchmark_times_both_pipelines_and_allocators(shared_data, tmp_path, capsys):
    out = tmp_path / "data.json"
    assert main(["data", "--size", "64", "--images", "2", "--repeats", "1", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    rows = {r["variant"]: r for r in record["results"]}
    assert list(rows) == ["float", "uint8", "distort, textbook HSV chain", "distort",
                          "float +tuned alloc", "uint8 +tuned alloc", "distort, textbook HSV chain +tuned alloc",
                          "distort +tuned alloc"]
    assert record["allocator"] == "default" and rows["uint8 +tuned alloc"]["allocator"] == "tuned"
    for name, row in rows.items():
        reference = rows["distort, textbook HSV chain" if name.startswith("distort") else "float"]
        assert row["ms_per_image"] > 0
        assert row["speedup"] == pytest.approx(reference["ms_per_image"] / row["ms_per_image"])
    assert "augmented BCCD training image" in capsys.readouterr().out


def test_multiscale_experiment_trains_each_arm_and_scores_every_size(shared_data, tmp_path, one_thread):
    import torch

    from yolov2_lib.bench.multiscale import parse_sizes, reference, summarise

    out = tmp_path / "multiscale.json"
    assert main(["multiscale", "--updates", "2", "--seeds", "0", "--width", "0.0625", "--test-sizes", "96,128",
                 "--arms", "one=96", "two=64-128", "--work", str(tmp_path / "runs"), "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["arms"] == {"one": [96], "two": [64, 96, 128]} and record["test_sizes"] == [96, 128]
    assert [(r["arm"], r["seed"], sorted(r["map"])) for r in record["runs"]] == [("one", 0, ["128", "96"]),
                                                                                 ("two", 0, ["128", "96"])]
    assert "--sizes SIZES" in record["command"] and "--max-iterations 2" in record["command"]
    assert record["precision"] in {"float32", "bf16", "fp16"}
    state = torch.load(tmp_path / "runs" / "two-seed0" / "last.pt", weights_only=False)
    assert state["iteration"] == 2 and tuple(state["config"]["sizes"]) == (64, 96, 128)

    assert parse_sizes("320-416") == [320, 352, 384, 416] and parse_sizes("416") == [416]
    with pytest.raises(ValueError, match="positive multiples of 32, got '400'"):  # yolov2 train --sizes' rule
        parse_sizes("400")
    assert summarise([{"arm": "a", "map": {"96": 0.5}}, {"arm": "a", "map": {"96": 0.7}}]) == {"a": {"96": 0.6}}
    shipped = reference()  # the full experiment, shipped for chapter 8
    assert set(shipped["arms"]) == {"single", "multi"} and len(shipped["runs"]) == 2 * len(shipped["seeds"])


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


# --------------------------------------------------------------------------- train, post-processing (issue 7)

TOY = ["--width", "0.125", "--size", "64", "--batch", "2", "--repeats", "1", "--warmup", "0"]


def test_train_benchmark_runs_with_curve(tmp_path, capsys):
    from yolov2_lib.detect import cpu_supports_bf16

    out = tmp_path / "train.json"
    assert main(["train", *TOY, "--curve", "3", "--curve-batches", "2", "--noise-seeds", "2",
                 "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    rows = {r["variant"]: r for r in record["results"]}
    assert ("bf16+channels_last" in rows) == cpu_supports_bf16()
    assert {"plain", "channels_last"} <= set(rows)
    # The default allocator here, the tuned one in a second process (a fresh process: it cannot be undone).
    assert record["allocator"] == "default"
    tuned = [name for name in rows if name.endswith("+tuned alloc")]
    assert len(tuned) == len(rows) / 2 and all(rows[name]["allocator"] == "tuned" for name in tuned)
    plain_s = rows["plain"]["median_s"]
    for row in rows.values():
        assert row["median_s"] > 0 and all(t > 0 for t in row["times_s"])
        assert row["speedup_vs_plain"] == pytest.approx(plain_s / row["median_s"])
        assert row["images_per_s"] == pytest.approx(2 / row["median_s"])
        assert row["gflops"] == pytest.approx(3 * record["gflop_per_image_forward"] * 2 / row["median_s"])
        assert row["last_loss"] > 0
    curve = record["curve"]
    assert len(curve["losses"]) == 4 + cpu_supports_bf16()  # fp32, fp32 channels-last, [bf16], 2 other seeds
    assert all(len(v) == 3 for v in curve["losses"].values())
    seeds = [d for name, d in curve["vs_fp32"].items() if "init seed" in name]
    assert curve["noise"]["mean_rel_diff"] == max(d["mean_rel_diff"] for d in seeds) > 0
    for diff in curve["vs_fp32"].values():
        assert 0 <= diff["mean_rel_diff"] <= diff["max_rel_diff"] < float("inf")
        assert diff["final_rel_diff"] <= diff["max_rel_diff"] + 1e-12
    assert "training step" in capsys.readouterr().out


def test_train_benchmark_skips_bf16_without_native_support_and_uses_trainer_step(tmp_path, monkeypatch, capsys):
    import yolov2_lib.bench.train as bench_train
    from yolov2_lib.train import Trainer

    calls = []
    step = Trainer.train_step

    def counted_step(self, images, targets):
        calls.append(self.channels_last)
        return step(self, images, targets)

    monkeypatch.setattr(Trainer, "train_step", counted_step)
    monkeypatch.setattr(bench_train, "cpu_supports_bf16", lambda: False)
    out = tmp_path / "train.json"
    assert main(["train", *TOY, "--repeats", "2", "--allocator", "default", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [r["variant"] for r in record["results"]] == ["plain", "channels_last"]
    assert "AVX512-BF16" in record["bf16_skipped"] and "skipped" in capsys.readouterr().out
    assert sorted(calls) == [False, False, True, True]  # two timed Trainer steps per variant


def test_compare_curves_hand_computed():
    from yolov2_lib.bench.train import compare_curves

    diffs = compare_curves({"fp32": [4.0, 2.0, 1.0, 1.0], "other": [5.0, 2.0, 1.0, 0.5]})
    assert diffs["other"]["max_rel_diff"] == pytest.approx(0.5)  # |0.5 - 1| / 1 at the last update
    assert diffs["other"]["mean_rel_diff"] == pytest.approx((0.25 + 0.5) / 4)
    assert diffs["other"]["final_rel_diff"] == pytest.approx(0.5)  # the last quarter is one update
    assert set(diffs) == {"other"}


def test_model_benchmark_times_postprocessing(tmp_path):
    out = tmp_path / "model.json"
    assert main(["model", *TOY, "--conf", "0.25", "0.005", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    plain_s = next(r["median_s"] for r in record["results"] if r["variant"] == "plain")
    rows = {r["conf_threshold"]: r for r in record["postprocess"]}
    assert set(rows) == {0.25, 0.005}
    for row in rows.values():
        assert row["median_s"] > 0
        assert row["percent_of_plain_forward"] == pytest.approx(100 * row["median_s"] / plain_s)
        assert row["percent_of_fastest_forward"] >= row["percent_of_plain_forward"] - 1e-9
        assert 0 <= row["detections_per_image"] <= row["top_k"]
    # An untrained net scores every pair about sigmoid(0) / C = 0.025: all 2*2*5*20 pass 0.005, none 0.25.
    assert rows[0.005]["candidates_per_image"] == 400 and rows[0.25]["candidates_per_image"] == 0
    assert rows[0.005]["detections_per_image"] > 0


def test_chapter9_record_reads_glued_values_and_keeps_the_quiet_float32_run_as_reference(tmp_path, monkeypatch):
    import nbformat

    from yolov2_lib.bench import chapter9

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("glue(...)")
    prefix = "application/papermill.record/"  # what myst-nb's glue(..., display=False) writes
    cell.outputs = [nbformat.v4.new_output("display_data", data={prefix + "text/plain": "640"},
                                           metadata={"scrapbook": {"name": "ch9_updates", "mime_prefix": prefix}}),
                    nbformat.v4.new_output("display_data", data={"text/plain": "'float32'"},
                                           metadata={"scrapbook": {"name": "ch9_precision", "mime_prefix": ""}}),
                    nbformat.v4.new_output("stream", name="stdout", text="not glued\n")]
    nb.cells = [cell]
    assert chapter9.glued_values(nb) == {"ch9_updates": 640, "ch9_precision": "float32"}

    record = tmp_path / "r.json"
    runs = [{"busy": True, "precision": "float32", "test_map": 1.0},
            {"busy": False, "precision": "bf16", "test_map": 2.0},
            {"busy": False, "precision": "float32", "test_map": 3.0}]
    record.write_text(json.dumps({"runs": runs}))
    monkeypatch.setattr(chapter9, "RECORD", record)
    ref = chapter9.reference()
    assert ref["test_map"] == 3.0 and ref["runs"] == runs
    record.write_text(json.dumps({"runs": runs[:2]}))
    with pytest.raises(ValueError, match="no float32 run"):
        chapter9.reference()


def test_shipped_chapter9_record_has_a_float32_reference_of_the_chapters_updates():
    from yolov2_lib.bench.chapter9 import reference

    ref = reference()
    assert ref["updates"] == 640 and ref["precision"] == "float32" and not ref["busy"]
    assert all(r["updates"] == ref["updates"] for r in ref["runs"])
    assert 0 < ref["test_map"] <= 100 and ref["test_map"] <= ref["test_map_area"]


def test_cpu_model_names_family_model_and_bf16():
    from yolov2_lib.bench.chapter9 import cpu_model

    text = cpu_model()
    assert "bf16" in text and "family" in text


def test_chapter9_record_reads_what_runtime_glue_writes_in_a_real_kernel():
    import nbformat
    from nbclient import NotebookClient

    from yolov2_lib.bench.chapter9 import glued_values

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from yolov2_lib.runtime import glue\nglue('ch9_updates', 640)\n"
                                          "glue('ch9_precision', 'float32')\nglue('ch9_test_map', 78.25)")]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert glued_values(nb) == {"ch9_updates": 640, "ch9_precision": "float32", "ch9_test_map": 78.25}
