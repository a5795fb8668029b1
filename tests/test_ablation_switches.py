"""The three ablation switches of YOLOv2Config: batch_norm, passthrough and location.

Each takes one of the paper's ideas out of the detector; every part that builds,
trains, saves, loads, decodes or exports a detector must honour it.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from yolov2_lib import cli
from yolov2_lib.boxes import aligned_box_iou, cxcywh_to_xyxy
from yolov2_lib.checkpoint import load, load_checkpoint, save_checkpoint
from yolov2_lib.darknet import DarknetNet, parse_cfg_string, save_darknet_weights, load_darknet_weights, to_darknet_cfg
from yolov2_lib.decode import LOCATIONS, decode, decode_boxes, encode_boxes, postprocess
from yolov2_lib.detect import Detector
from yolov2_lib.errors import YOLOv2Error
from yolov2_lib.layout import head_view
from yolov2_lib.loss import YOLOv2Loss, central_differences, responsible_anchors
from yolov2_lib.model import ConvBlock, YOLOv2, fuse_bn, scaled_channels
from yolov2_lib.summary import count_parameters, network_stages

SETTINGS = settings(max_examples=50, deadline=None)
SWITCHES = [{}, {"batch_norm": False}, {"passthrough": False}, {"location": "offset"},
            {"batch_norm": False, "passthrough": False, "location": "offset"}]
BAD_LOCATION = "location must be one of 'direct', 'offset'"


def tiny(**switches) -> YOLOv2:
    torch.manual_seed(0)
    return YOLOv2(num_classes=2, width=1 / 16, anchors=((1.0, 1.0), (2.0, 1.5)), **switches)


# ---------------------------------------------------------------- the network


@pytest.mark.parametrize("switches", SWITCHES, ids=str)
def test_every_switch_keeps_the_head_shape(switches):
    model = tiny(**switches).eval()
    out = model(torch.rand(2, 3, 64, 96))
    assert out.shape == (2, 2 * (5 + 2), 2, 3) and out.dtype == torch.float32
    assert bool(torch.isfinite(out).all())


def test_no_batch_norm_gives_plain_convolutions_with_a_bias():
    plain, normed = tiny(batch_norm=False), tiny()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    blocks = [m for m in plain.modules() if isinstance(m, ConvBlock)]
    assert len(blocks) == 18 + 2 + 1 + 1 + 1  # backbone, neck, passthrough conv, merge, head
    assert all(b.conv.bias is not None and not b.batch_norm for b in blocks)
    # with batch norm: every block but the head has one and no conv bias
    normed_blocks = [m for m in normed.modules() if isinstance(m, ConvBlock)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in normed.modules()) == len(normed_blocks) - 1
    assert [b.conv.bias is None for b in normed_blocks] == [True] * (len(normed_blocks) - 1) + [False]
    # a bias per filter instead of BN's scale and shift (two per filter): the head is the same
    assert count_parameters(normed) - count_parameters(plain) == sum(b.conv.out_channels for b in blocks[:-1])
    assert plain.head.conv.weight.shape == normed.head.conv.weight.shape


def test_no_passthrough_drops_the_branch_and_the_merge_inputs():
    with_it, without = tiny(), tiny(passthrough=False)
    assert without.passthrough is None
    assert not any(k.startswith("passthrough.") for k in without.state_dict())
    c512, c1024 = scaled_channels(512, 1 / 16), scaled_channels(1024, 1 / 16)
    mid = scaled_channels(64, 1 / 16)
    passthrough_conv = mid * c512 + 2 * mid  # 1x1 weights, BN scale and shift
    merge_inputs = 4 * mid * c1024 * 3 * 3  # the 4*mid reorganised channels into the 3x3 merge conv
    assert count_parameters(with_it) - count_parameters(without) == passthrough_conv + merge_inputs
    assert without.merge.conv.in_channels == c1024


@pytest.mark.parametrize("switches", SWITCHES[1:3], ids=str)
def test_fusing_and_the_detector_work_without_batch_norm_or_passthrough(switches):
    model = tiny(**switches).eval()
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(fuse_bn(model)(x), model(x), atol=1e-5, rtol=1e-5)
    detector = Detector(model, precision="fp32", channels_last=False)
    torch.testing.assert_close(detector.raw(x), model(x), atol=1e-5, rtol=1e-5)


def test_bad_switch_values_are_refused_by_name():
    with pytest.raises(YOLOv2Error, match=BAD_LOCATION):
        tiny(location="sideways")
    with pytest.raises(YOLOv2Error, match="batch_norm must be True or False"):
        tiny(batch_norm="no")
    with pytest.raises(YOLOv2Error, match="passthrough must be True or False"):
        tiny(passthrough=0)


def test_network_stages_without_passthrough_have_no_branch_and_no_concat():
    stages = network_stages(tiny(passthrough=False), 64)
    assert not any(s.branch == "passthrough" or s.name == "concat" for s in stages)
    assert stages[-1].branch == "head" and stages[-1].darknet_layers == (26,)
    assert sum(s.params for s in stages) == count_parameters(tiny(passthrough=False))


# ---------------------------------------------------------------- darknet files


@pytest.mark.parametrize("switches", [{"batch_norm": False}, {"passthrough": False},
                                      {"batch_norm": False, "passthrough": False}], ids=str)
def test_darknet_cfg_and_weights_round_trip(switches, tmp_path):
    model = tiny(**switches).eval()
    text = to_darknet_cfg(model, 64)
    assert ("batch_normalize" in text) == model.config.batch_norm
    assert ("[reorg]" in text) == ("[route]" in text) == model.config.passthrough
    save_darknet_weights(model, tmp_path / "m.weights")
    net = DarknetNet(parse_cfg_string(text)).eval()
    load_darknet_weights(net, tmp_path / "m.weights")
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(net(x), model(x), atol=1e-4, rtol=1e-4)
    again = tiny(**switches).eval()
    for p in again.parameters():
        nn.init.zeros_(p)
    load_darknet_weights(again, tmp_path / "m.weights")
    torch.testing.assert_close(again(x), model(x))


def test_darknet_cfg_refuses_the_offset_location():
    with pytest.raises(YOLOv2Error, match="location='offset'"):
        to_darknet_cfg(tiny(location="offset"))


# ---------------------------------------------------------------- decoding


def test_offset_decode_hand_computed():
    t = torch.zeros(13, 13, 1, 4, dtype=torch.float64)
    t[2, 3, 0] = torch.tensor([0.5, -0.25, 0.0, math.log(2.0)], dtype=torch.float64)  # row 2, column 3
    box = decode_boxes(t, [[2.0, 4.0]], location="offset")[2, 3, 0]
    # b_x = (3 + 0.5 + 0.5 * 2) / 13, b_y = (2 + 0.5 - 0.25 * 4) / 13, b_w = 2 / 13, b_h = 4 * 2 / 13
    torch.testing.assert_close(box, torch.tensor([4.5, 1.5, 2.0, 8.0], dtype=torch.float64) / 13)
    direct = decode_boxes(t, [[2.0, 4.0]])[2, 3, 0]
    torch.testing.assert_close(direct[:2], torch.tensor([3 + 1 / (1 + math.exp(-0.5)), 2 + 1 / (1 + math.exp(0.25))],
                                                        dtype=torch.float64) / 13)
    torch.testing.assert_close(direct[2:], box[2:])  # the sizes are read the same way
    # t = 0: the anchor centred in its cell, for both readings
    torch.testing.assert_close(decode_boxes(t, [[2.0, 4.0]], "offset")[0, 0, 0],
                               decode_boxes(t, [[2.0, 4.0]])[0, 0, 0])


ANCHORS = torch.tensor([[1.0, 2.0], [3.0, 1.5]], dtype=torch.float64)


@SETTINGS
@given(arrays("float64", (3, 4, 2, 4), elements=st.floats(-6, 6, allow_nan=False, allow_infinity=False)))
def test_offset_decode_encode_round_trip(t):
    t = torch.from_numpy(t)
    boxes = decode_boxes(t, ANCHORS, "offset")
    torch.testing.assert_close(encode_boxes(boxes, ANCHORS, "offset"), t, rtol=1e-7, atol=1e-7)


@SETTINGS
@given(arrays("float64", (2, 3, 2, 2), elements=st.floats(-1.0, 2.0)),
       arrays("float64", (2, 3, 2, 2), elements=st.floats(0.05, 3.0)))
def test_offset_encode_decode_round_trip_anywhere_in_the_image(centres, sizes):
    centres, sizes = torch.from_numpy(centres), torch.from_numpy(sizes)  # centres may leave their cells
    boxes = torch.cat([centres, sizes], dim=-1)
    torch.testing.assert_close(decode_boxes(encode_boxes(boxes, ANCHORS, "offset"), ANCHORS, "offset"), boxes)


def test_decode_and_postprocess_read_the_offset_location():
    torch.manual_seed(1)
    raw = torch.randn(2, 2 * 7, 3, 3)
    anchors = torch.tensor([[1.0, 1.0], [2.0, 1.5]])
    decoded = decode(raw, anchors, 2, "offset")
    torch.testing.assert_close(decoded.boxes, decode_boxes(head_view(raw, 2)[..., :4], anchors, "offset"))
    assert not torch.equal(decoded.boxes, decode(raw, anchors, 2).boxes)
    found = postprocess(raw, anchors, 2, conf_threshold=0.0, top_k=None, clip=False, nms_threshold=1.0,
                        location="offset")[0]
    expected = cxcywh_to_xyxy(decoded.boxes[0]).reshape(-1, 4)
    assert all(bool((expected - row[:4]).abs().sum(-1).min() < 1e-6) for row in found)


@pytest.mark.parametrize("call", [
    lambda: decode_boxes(torch.zeros(2, 2, 1, 4), [[1.0, 1.0]], "rpn"),
    lambda: encode_boxes(torch.full((2, 2, 1, 4), 0.3), [[1.0, 1.0]], location="Direct"),
    lambda: decode(torch.zeros(1, 6, 2, 2), [[1.0, 1.0]], 1, location=None),
    lambda: postprocess(torch.zeros(1, 6, 2, 2), [[1.0, 1.0]], 1, location="offsets"),
    lambda: YOLOv2Loss([[1.0, 1.0]], 1, location="sigmoid"),
])
def test_a_bad_location_is_refused_with_the_allowed_values(call):
    assert LOCATIONS == ("direct", "offset")
    with pytest.raises(YOLOv2Error, match=BAD_LOCATION):
        call()


# ---------------------------------------------------------------- the loss

LOSS_ANCHORS = [(1.3221, 1.73145), (3.19275, 4.00944), (5.05587, 8.09892)]


def _loss_inputs():
    g = torch.Generator().manual_seed(1234)
    out = torch.randn(2, 3 * (5 + 4), 5, 6, generator=g, dtype=torch.float64)
    targets = [torch.tensor([[1, 0.31, 0.42, 0.2, 0.35], [3, 0.77, 0.18, 0.5, 0.4]], dtype=torch.float64),
               torch.tensor([[0, 0.52, 0.66, 0.12, 0.3]], dtype=torch.float64)]
    return out, targets


def test_direct_loss_is_unchanged():
    """The values the loss gave before ``location`` existed, on a fixed seed."""
    out, targets = _loss_inputs()
    out.requires_grad_(True)
    early = YOLOv2Loss(LOSS_ANCHORS, 4)(out, targets, 0)
    late = YOLOv2Loss(LOSS_ANCHORS, 4, location="direct")(out, targets, 20000)
    assert [float(v.detach()) for v in early[:6]] == [20.821506748221587, 4.364974775306205, 0.5198577100672224,
                                             12.298418933420288, 1.0334639372446552, 2.6047913921832153]
    assert [float(v.detach()) for v in late[:6]] == [19.788042810976933, 4.364974775306205, 0.5198577100672224,
                                            12.298418933420288, 0.0, 2.6047913921832153]
    early.total.backward()
    index = torch.arange(out.numel(), dtype=torch.float64).view_as(out)
    assert float(out.grad.abs().sum()) == pytest.approx(19.31867909292602, rel=1e-12)
    assert float((out.grad * index).sum()) == pytest.approx(7730.816038802786, rel=1e-12)


def _raw_at_offset_targets(out: torch.Tensor, targets, anchors) -> torch.Tensor:
    """``out`` with each truth's responsible anchor holding the truth encoded the offset way."""
    out = out.detach().clone()
    view = head_view(out, len(anchors))  # (B, H, W, A, 5+C), a view of out
    H, W = view.shape[1:3]
    anchors = torch.tensor(anchors, dtype=out.dtype)
    for b, truth in enumerate(targets):
        rows, cols, best = responsible_anchors(truth[:, 1:], anchors, H, W)
        for box, j, i, a in zip(truth[:, 1:], rows.tolist(), cols.tolist(), best.tolist()):
            grid = box.expand(H, W, 1, 4)  # the same box in every cell: any cell may encode it
            view[b, j, i, a, :4] = encode_boxes(grid, anchors[a:a + 1], "offset")[j, i, 0]
    return out


def test_offset_coordinates_cost_nothing_at_the_encoded_target():
    out, targets = _loss_inputs()
    at_target = _raw_at_offset_targets(out, targets, LOSS_ANCHORS)
    loss = YOLOv2Loss(LOSS_ANCHORS, 4, location="offset")
    assert float(loss(at_target, targets, 0).coord) == pytest.approx(0.0, abs=1e-24)
    assert float(loss(out, targets, 0).coord) > 0.1
    # the direct loss does not consider those raw numbers its targets
    assert float(YOLOv2Loss(LOSS_ANCHORS, 4)(at_target, targets, 0).coord) > 1e-3


def test_offset_coordinate_term_hand_computed():
    out = torch.zeros(1, 1 * 6, 4, 4, dtype=torch.float64)  # one anchor, one class, a 4x4 grid
    view = head_view(out, 1)
    view[0, 1, 2, 0, :4] = torch.tensor([0.1, -0.2, 0.3, 0.05], dtype=torch.float64)  # row 1, column 2
    truth = [torch.tensor([[0, 0.7, 0.4, 0.5, 0.25]], dtype=torch.float64)]  # centre in cell (1, 2)
    p_w, p_h = 2.0, 1.0
    loss = YOLOv2Loss([[p_w, p_h]], 1, location="offset")(out, truth, 0)
    t_x, t_y = (0.7 * 4 - 2 - 0.5) / p_w, (0.4 * 4 - 1 - 0.5) / p_h
    t_w, t_h = math.log(0.5 * 4 / p_w), math.log(0.25 * 4 / p_h)
    err = (t_x - 0.1) ** 2 + (t_y + 0.2) ** 2 + (t_w - 0.3) ** 2 + (t_h - 0.05) ** 2
    assert float(loss.coord) == pytest.approx(0.5 * (2 - 0.5 * 0.25) * err, rel=1e-12)


def test_offset_coordinate_gradient_by_central_differences_and_gradcheck():
    anchors = [(1.0, 1.5), (2.5, 2.0)]
    out = torch.randn(2, 2 * (5 + 2), 3, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    targets = [torch.tensor([[1, 0.45, 0.2, 0.3, 0.5]], dtype=torch.float64),
               torch.tensor([[0, 0.9, 0.6, 0.7, 0.6]], dtype=torch.float64)]
    loss = YOLOv2Loss(anchors, 2, location="offset")

    def coord(raw: torch.Tensor) -> torch.Tensor:
        return loss(raw, targets, 0).coord

    assert torch.autograd.gradcheck(coord, (out.clone().requires_grad_(True),), eps=1e-6, atol=1e-7)
    x = out.clone().requires_grad_(True)
    coord(x).backward()
    torch.testing.assert_close(x.grad, central_differences(coord, out.clone()), atol=1e-7, rtol=1e-6)
    # the raw t_x of a responsible anchor gets -(target - t_x) * scale / B, no sigmoid' factor
    (j,), (i,), (a,) = (v.tolist() for v in responsible_anchors(targets[1][:, 1:], torch.tensor(anchors), 3, 3))
    g_x, g_w, g_h = 0.9, 0.7, 0.6
    target = (g_x * 3 - i - 0.5) / anchors[a][0]
    t_x = float(head_view(out, 2)[1, j, i, a, 0])
    grad = float(head_view(x.grad, 2)[1, j, i, a, 0])
    assert grad == pytest.approx(-(2 - g_w * g_h) * (target - t_x) / 2, rel=1e-9)


def test_offset_warm_up_pulls_the_raw_centre_to_zero():
    out = torch.zeros(1, 2 * 6, 3, 3, dtype=torch.float64)
    empty = [torch.zeros(0, 5, dtype=torch.float64)]
    offset = YOLOv2Loss([[1.0, 1.0], [2.0, 2.0]], 1, location="offset")
    direct = YOLOv2Loss([[1.0, 1.0], [2.0, 2.0]], 1)
    assert float(offset(out, empty, 0).prior) == 0.0 == float(direct(out, empty, 0).prior)
    view = head_view(out, 2)
    view[..., 0] = 1.0  # every t_x = 1
    assert float(offset(out, empty, 0).prior) == pytest.approx(0.5 * 0.01 * 18 * 1.0)
    s = 1 / (1 + math.exp(-1.0))
    assert float(direct(out, empty, 0).prior) == pytest.approx(0.5 * 0.01 * 18 * (s - 0.5) ** 2)


def test_offset_loss_measures_ious_with_the_offset_boxes():
    out, targets = _loss_inputs()
    result = YOLOv2Loss(LOSS_ANCHORS, 4, location="offset")(out, targets, 0)
    boxes = decode_boxes(head_view(out, 3)[..., :4], torch.tensor(LOSS_ANCHORS, dtype=torch.float64), "offset")
    ious = []
    for b, truth in enumerate(targets):
        rows, cols, best = responsible_anchors(truth[:, 1:], torch.tensor(LOSS_ANCHORS), 5, 6)
        pred = cxcywh_to_xyxy(boxes[b, rows, cols, best])
        ious.append(aligned_box_iou(pred, cxcywh_to_xyxy(truth[:, 1:])))
    torch.testing.assert_close(result.stats.avg_iou, torch.cat(ious).mean())
    assert not torch.allclose(result.stats.avg_iou, YOLOv2Loss(LOSS_ANCHORS, 4)(out, targets, 0).stats.avg_iou)


def test_detector_decodes_the_way_its_model_says():
    model = tiny(location="offset").eval()
    detector = Detector(model, precision="fp32", channels_last=False, conf_threshold=0.0, top_k=None)
    assert detector.location == "offset"
    x = torch.rand(1, 3, 64, 64)
    expected = postprocess(model(x).detach(), model.anchors, 2, conf_threshold=0.0, top_k=None, input_size=(64, 64),
                           location="offset")
    torch.testing.assert_close(detector(x)[0], expected[0], atol=1e-5, rtol=1e-5)


def test_onnx_export_refuses_the_offset_location(tmp_path):
    from yolov2_lib.onnx_export import export_onnx

    with pytest.raises(YOLOv2Error, match="location='offset'"):
        export_onnx(tiny(location="offset"), tmp_path / "m.onnx")


# ---------------------------------------------------------------- yolov2 train, checkpoints, resume


def _train_args(tiny_data, out, *extra: str) -> list[str]:
    csv_path, images = tiny_data
    return ["train", "--boxes-csv", str(csv_path), "--images", str(images), "--image-ext", ".png",
            "--width", "0.03125", "--sizes", "64", "--eval-size", "64", "--max-iterations", "2",
            "--batch-size", "2", "--burn-in", "0", "--lr", "0.01", "--anchors", "1,1 2,1.5", "--workers", "0",
            "--threads", "1", "--no-progress", "--val-split", "none", "--out", str(out), *extra]


RUNS = {"no-batch-norm": (("--no-batch-norm",), {"batch_norm": False}),
        "no-passthrough": (("--no-passthrough",), {"passthrough": False}),
        "offset": (("--location", "offset"), {"location": "offset"})}


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    """One two-update run per switch: ``{name: folder}``."""
    root = tmp_path_factory.mktemp("ablation-runs")
    for name, (options, _) in RUNS.items():
        assert cli.main(_train_args(tiny_data, root / name, *options)) == 0
    return {name: root / name for name in RUNS}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_switch_goes_into_the_checkpoint_and_comes_back(runs, name, one_thread):
    _, switches = RUNS[name]
    state = load_checkpoint(runs[name] / "last.pt")
    for key, value in switches.items():
        assert state["model_config"][key] == value
    loaded = load(runs[name] / "last.pt")
    expected = {"batch_norm": True, "passthrough": True, "location": "direct", **switches}
    assert {k: getattr(loaded.model.config, k) for k in expected} == expected
    assert (loaded.model.passthrough is None) == (not expected["passthrough"])
    assert any(isinstance(m, nn.BatchNorm2d) for m in loaded.model.modules()) == expected["batch_norm"]
    assert Detector(loaded.model, precision="fp32").location == expected["location"]


def test_eval_and_detect_run_on_an_offset_detector(runs, tiny_data, tmp_path, capsys, one_thread):
    csv_path, images = tiny_data
    data = ["--boxes-csv", str(csv_path), "--images", str(images), "--image-ext", ".png"]
    assert cli.main(["eval", str(runs["offset"] / "last.pt"), *data, "--split", "val", "--size", "64",
                     "--no-progress"]) == 0
    assert "mAP" in capsys.readouterr().out
    assert cli.main(["detect", str(runs["offset"] / "last.pt"), str(images / "val0.png"), "--size", "64",
                     "--out", str(tmp_path / "drawn")]) == 0


@pytest.mark.parametrize("name, option", [
    ("no-batch-norm", ("--no-passthrough",)),
    ("no-batch-norm", ("--location", "offset")),
    ("no-passthrough", ("--no-batch-norm",)),
    ("offset", ("--location", "direct")),
])
def test_resume_with_a_changed_switch_is_refused(runs, tiny_data, tmp_path, capsys, name, option):
    new = tmp_path / "new"
    code = cli.main(_train_args(tiny_data, new, "--resume", str(runs[name] / "last.pt"), *option))
    assert code == 2
    assert f"{option[0]} cannot change when resuming" in capsys.readouterr().err
    assert not new.exists()


def test_resume_keeps_the_switches_and_the_trainer_refuses_another_network(runs, tiny_data, tmp_path, capsys,
                                                                           one_thread):
    from yolov2_lib.data.voc import DetectionDataset
    from yolov2_lib.train import Trainer, TrainConfig

    out = tmp_path / "more"
    assert cli.main(_train_args(tiny_data, out, "--resume", str(runs["offset"] / "last.pt"), "--location",
                                "offset", "--max-iterations", "3")) == 0
    assert "resuming from" in capsys.readouterr().out
    state = load_checkpoint(out / "last.pt")
    assert state["iteration"] == 3 and state["model_config"]["location"] == "offset"

    csv_path, images = tiny_data
    data = DetectionDataset.from_boxes_csv(csv_path, images, splits="train", class_names=["blue", "red"],
                                           image_ext=".png")
    config = TrainConfig.from_dict(state["config"])
    model = YOLOv2(**{**state["model_config"], "location": "direct"})
    with pytest.raises(YOLOv2Error, match=r"the network: location 'direct' \(the run's: 'offset'\)"):
        Trainer(model, data, config, resume=out / "last.pt")
    trainer = Trainer(YOLOv2(**state["model_config"]), data, config, resume=out / "last.pt")
    assert trainer.loss_fn.location == "offset"


def test_a_checkpoint_saved_before_the_switches_resumes_with_the_paper_choices(runs, tiny_data, tmp_path, capsys,
                                                                               one_thread):
    # location changes no weight: the offset run without the three keys is a run of the paper's network
    state = load_checkpoint(runs["offset"] / "last.pt")
    state["model_config"] = {k: v for k, v in state["model_config"].items()
                             if k not in ("batch_norm", "passthrough", "location")}
    old = tmp_path / "old"
    old.mkdir()
    save_checkpoint(state, old / "last.pt")
    config = load(old / "last.pt").model.config
    assert (config.batch_norm, config.passthrough, config.location) == (True, True, "direct")
    assert cli.main(_train_args(tiny_data, old, "--resume", "--max-iterations", "3")) == 0
    assert "resuming from" in capsys.readouterr().out
    saved = load_checkpoint(old / "last.pt")
    assert saved["iteration"] == 3 and saved["model_config"]["location"] == "direct"
    # and a switch given on resuming it is compared with those choices
    assert cli.main(_train_args(tiny_data, old, "--resume", "--max-iterations", "4", "--no-passthrough")) == 2
    assert "--no-passthrough cannot change when resuming" in capsys.readouterr().err


def test_the_shipped_detector_loads_unchanged():
    loaded = load("bccd")
    config = loaded.model.config
    assert (config.batch_norm, config.passthrough, config.location) == (True, True, "direct")
    assert "batch_norm" not in loaded.state["model_config"]  # saved before the switches
