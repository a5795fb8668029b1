"""The Table 2 ablation experiment: its commands, its record (parts that accumulate), its statistics and figure."""

from __future__ import annotations

import json
import math
import multiprocessing

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from yolov2_lib.bench import ablation  # noqa: E402
from yolov2_lib.errors import YOLOv2Error  # noqa: E402
from yolov2_lib.viz import plot_ablation  # noqa: E402

T95_DF2 = 4.302652729911275  # Student's t, two-sided 95 %, 2 degrees of freedom


def _run(arm, seed, m416, m544=None, updates=640):
    scores = {"416": {"voc07": m416, "area": m416 + 0.01}}
    if m544 is not None:
        scores["544"] = {"voc07": m544, "area": m544 + 0.01}
    return {"arm": arm, "seed": seed, "updates": updates, "map": scores}


def test_train_command_is_the_recipe_plus_the_arm():
    base = ablation.train_command("yolov2", seed=3, updates=640, out="RUN")
    assert base[0] == "train" and base[-6:] == ["--max-iterations", "640", "--seed", "3", "--out", "RUN"]
    assert base[1:-6] == list(ablation.RECIPE)
    no_bn = ablation.train_command("no_batch_norm", seed=0, updates=640, out="R")
    assert "--no-batch-norm" in no_bn and no_bn.count("--sizes") == 1
    single = ablation.train_command("single_scale", seed=0, updates=640, out="R")
    assert single.count("--sizes") == 1 and single[single.index("--sizes") + 1] == "416"
    priors = ablation.train_command("hand_picked_priors", seed=0, updates=640, out="R")
    assert priors[priors.index("--anchors") + 1] == "2.0,2.0 2.83,5.66 4.0,4.0 5.66,2.83 8.0,8.0"
    with pytest.raises(YOLOv2Error, match="unknown arm 'nope'"):
        ablation.train_command("nope", seed=0, updates=1, out="R")


def test_every_arm_parses_as_a_yolov2_train_command(tmp_path):
    from yolov2_lib.cli import build_parser

    parser = build_parser()
    for arm in ablation.ARMS:
        args = parser.parse_args(ablation.train_command(arm, seed=0, updates=5, out=tmp_path / arm))
        assert args.max_iterations == 5


def test_hand_picked_anchors_are_faster_rcnn_style_sizes_and_ratios():
    from yolov2_lib.data.boxstats import faster_rcnn_anchors

    pixels = faster_rcnn_anchors(scales=(128,), ratios=(0.5, 1.0, 2.0)) / 32  # (3, 2) grid cells at 416
    picked = sorted(ablation.HAND_PICKED)
    for w, h in pixels.tolist():
        assert any(math.isclose(w, a, abs_tol=0.01) and math.isclose(h, b, abs_tol=0.01) for a, b in picked)
    assert (2.0, 2.0) in picked and (8.0, 8.0) in picked  # squares of 64 and 256 pixels


def test_a_missing_record_is_empty_and_a_wrong_one_is_refused(tmp_path):
    assert ablation.read_record(tmp_path / "none.json") == {"benchmark": "ablation", "runs": []}
    bad = tmp_path / "bad.json"
    bad.write_text('{"benchmark": "ablation",\n "runs": [}')
    with pytest.raises(YOLOv2Error, match=r"bad.json: not JSON \(line 2\)"):
        ablation.read_record(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"benchmark": "multiscale", "runs": []}))
    with pytest.raises(YOLOv2Error, match="not a record of `bench ablation`"):
        ablation.read_record(other)


def test_parts_accumulate_and_a_rerun_replaces_its_own_part(tmp_path):
    path = tmp_path / "rec" / "ablation.json"
    path.parent.mkdir()
    ablation.add_run(path, _run("no_passthrough", 1, 0.70), {"what": "x"})
    ablation.add_run(path, _run("yolov2", 0, 0.75), {"what": "x"})
    ablation.add_run(path, _run("yolov2", 1, 0.74), {"what": "y"})
    record = ablation.add_run(path, _run("yolov2", 0, 0.76), {"what": "y"})  # seed 0 again: replaced
    assert [(r["arm"], r["seed"]) for r in record["runs"]] == [("yolov2", 0), ("yolov2", 1), ("no_passthrough", 1)]
    assert record["runs"][0]["map"]["416"]["voc07"] == 0.76 and record["what"] == "y"
    assert json.loads(path.read_text()) == record
    assert sorted(p.name for p in path.parent.iterdir()) == ["ablation.json"]  # no lock or temporary left


def _add_from_another_process(path, seed):
    ablation.add_run(path, _run("yolov2", seed, 0.5 + seed / 100), {})


def test_parts_that_end_together_both_land(tmp_path):
    path = tmp_path / "ablation.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_from_another_process, args=(path, seed)) for seed in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert sorted(r["seed"] for r in ablation.read_record(path)["runs"]) == [0, 1, 2, 3]


def test_summary_pairs_seeds_and_gives_a_t_interval():
    record = {"benchmark": "ablation", "runs": [
        _run("yolov2", 0, 0.80, 0.78), _run("yolov2", 1, 0.78, 0.79), _run("yolov2", 2, 0.79, 0.75),
        _run("no_batch_norm", 0, 0.70), _run("no_batch_norm", 1, 0.74), _run("no_batch_norm", 2, 0.73),
        _run("no_passthrough", 0, 0.79), _run("no_passthrough", 7, 0.60),  # seed 7 has no YOLO v2 to pair with
        _run("yolov2", 0, 0.10, updates=5),  # another number of updates: not mixed in
    ]}
    rows = ablation.summarise(record)
    base = rows["yolov2"]["map"]
    assert base["n"] == 3 and base["mean"] == pytest.approx(79.0) and base["sd"] == pytest.approx(1.0)
    assert "gain" not in rows["yolov2"]
    gain = rows["no_batch_norm"]["gain"]  # paired differences 10, 4, 6
    assert gain["n"] == 3 and gain["mean"] == pytest.approx(20 / 3)
    sd = math.sqrt(((10 - 20 / 3) ** 2 + (4 - 20 / 3) ** 2 + (6 - 20 / 3) ** 2) / 2)
    assert gain["sd"] == pytest.approx(sd)
    assert gain["high"] - gain["mean"] == pytest.approx(T95_DF2 * sd / math.sqrt(3))
    assert rows["no_batch_norm"]["paper_gain"] == pytest.approx(2.4)
    assert rows["no_passthrough"]["map"]["n"] == 2 and rows["no_passthrough"]["gain"]["n"] == 1
    assert rows["no_passthrough"]["gain"]["mean"] == pytest.approx(1.0)
    assert math.isnan(rows["no_passthrough"]["gain"]["low"])
    hires = rows["hires_544"]  # the same weights at 544 against 416: -2, +1, -4
    assert hires["gain"]["mean"] == pytest.approx(-5 / 3) and hires["paper_gain"] == pytest.approx(1.8)
    area = ablation.summarise(record, metric="area")
    assert area["yolov2"]["map"]["mean"] == pytest.approx(80.0)


def test_paper_gains_are_the_steps_of_table_2():
    gains = ablation._paper_gains()
    assert gains["batch norm"] == 2.4 and gains["passthrough"] == 1.0 and gains["multi-scale"] == 1.4
    assert gains["dimension priors, location prediction"] == 4.8 and gains["hi-res detector (544)"] == 1.8
    for arm in ablation.ARMS.values():
        assert arm.paper_row is None or arm.paper_row in gains


def test_summary_command_prints_the_table_and_a_part_needs_a_seed(tmp_path, capsys):
    path = tmp_path / "ablation.json"
    for seed, (a, b) in enumerate([(0.8, 0.7), (0.78, 0.74)]):
        ablation.add_run(path, _run("yolov2", seed, a, a - 0.01), {})
        ablation.add_run(path, _run("no_batch_norm", seed, b), {})
    assert ablation.main(["--summary", "--record", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no_batch_norm" in out and "+7.0" in out and "hires_544" in out
    with pytest.raises(SystemExit):
        ablation.main(["--arm", "yolov2", "--record", str(path)])
    assert "needs --seed" in capsys.readouterr().err


def test_all_runs_only_the_missing_parts(tmp_path, monkeypatch, capsys):
    path = tmp_path / "ablation.json"
    for arm in ablation.ARMS:
        ablation.add_run(path, _run(arm, 0, 0.5), {})
    ablation.add_run(path, _run("yolov2", 1, 0.5), {})
    ran = []
    monkeypatch.setattr(ablation, "run_part",
                        lambda arm, seed, **kw: ran.append((arm, seed)) or {**_run(arm, seed, 0.6), "train_seconds": 1})
    assert ablation.main(["--arm", "all", "--seeds", "0,1", "--record", str(path), "--work", str(tmp_path)]) == 0
    assert ran == [(arm, 1) for arm in ablation.ARMS if arm != "yolov2"]
    record = ablation.read_record(path)
    assert len(record["runs"]) == 2 * len(ablation.ARMS) and set(record["not_measured"]) == set(ablation.NOT_MEASURED)


def test_shipped_record_if_any_is_consistent():
    if not ablation.RECORD.exists():
        pytest.skip("no shipped record yet")
    record = ablation.reference()
    for run in record["runs"]:
        assert run["arm"] in ablation.ARMS and 0 <= run["map"]["416"]["voc07"] <= 1
        assert run["commit"] and run["hardware"] and run["train_seconds"] > 0
    rows = ablation.summarise(record)
    assert set(rows) <= set(ablation.ARMS) | {"hires_544"}


def test_figure_draws_each_gain_with_its_interval_and_the_paper():
    rows = {"yolov2": {"map": {"n": 3}},
            "no_batch_norm": {"gain": {"n": 3, "mean": 2.0, "low": -1.0, "high": 5.0}, "paper_gain": 2.4},
            "hires_544": {"gain": {"n": 1, "mean": -1.0, "low": math.nan, "high": math.nan}, "paper_gain": None}}
    fig, ax = plt.subplots()
    assert plot_ablation(ax, rows) == ["no_batch_norm", "hires_544"]
    xs = [tuple(line.get_xdata()) for line in ax.get_lines()]
    assert (-1.0, 5.0) in xs and (2.0,) in xs and (2.4,) in xs and (-1.0,) in xs
    assert [t.get_text() for t in ax.get_yticklabels()] == ["no_batch_norm\n(3 seeds)", "hires_544\n(1 seeds)"]
    plt.close(fig)
    fig, ax = plt.subplots()
    with pytest.raises(YOLOv2Error, match="no row has a measured gain"):
        plot_ablation(ax, {"yolov2": {"map": {"n": 1}}})
    with pytest.raises(YOLOv2Error, match="does not hold the mean"):
        plot_ablation(ax, {"x": {"gain": {"n": 2, "mean": 9.0, "low": 0.0, "high": 1.0}}})
    plt.close(fig)


@pytest.mark.slow
def test_one_part_trains_scores_and_lands_in_the_record(shared_data, tmp_path, one_thread):
    path = tmp_path / "ablation.json"
    assert ablation.main(["--arm", "offset_location", "--seed", "0", "--updates", "2", "--record", str(path),
                          "--work", str(tmp_path / "work")]) == 0
    (run,) = ablation.read_record(path)["runs"]
    assert run["arm"] == "offset_location" and run["updates"] == 2 and set(run["map"]) == {"416"}
    assert 0 <= run["map"]["416"]["voc07"] <= 1 and run["train_seconds"] > 0
    assert set(run["map"]["416"]["ap_voc07"]) == {"RBC", "WBC", "Platelets"}
    from yolov2_lib.checkpoint import model_from_checkpoint

    (folder,) = (tmp_path / "work").iterdir()
    assert model_from_checkpoint(folder / "last.pt").model.config.location == "offset"
