"""Tests for yolov2_lib.model: Darknet-19, YOLO v2, fuse_bn, counting."""

from __future__ import annotations

import pytest
from nettools import randomize_bn
import torch
from torch import nn

from yolov2_lib.anchors import COCO_ANCHORS, VOC_ANCHORS
from yolov2_lib.model import (
    ConvBlock,
    Darknet19,
    Darknet19Config,
    YOLOv2,
    YOLOv2Config,
    count_flops,
    count_parameters,
    format_layer_table,
    fuse_bn,
    layer_table,
    network_stages,
    prime_batch_norm,
    scaled_channels,
)

SMALL = 1 / 8




@pytest.fixture(scope="module")
def full_yolo() -> YOLOv2:
    torch.manual_seed(0)
    return YOLOv2().eval()


def test_full_width_voc_shape_parameters_and_flops(full_yolo):
    assert count_parameters(full_yolo) == 50_655_389
    assert round(count_parameters(full_yolo) / 1e6, 2) == 50.66
    with torch.no_grad():
        y = full_yolo(torch.rand(1, 3, 416, 416))
    assert y.shape == (1, 125, 13, 13) and y.dtype == torch.float32 and torch.isfinite(y).all()
    rows = layer_table(full_yolo, 416)
    assert round(sum(r.flops for r in rows) / 1e9, 2) == 29.36
    assert sum(r.params for r in rows) == count_parameters(full_yolo)
    assert rows[-1].output_shape == (125, 13, 13)
    reorg = [r for r in rows if r.type == "reorg"]
    assert len(reorg) == 1 and reorg[0].input_shape == (64, 26, 26) and reorg[0].output_shape == (256, 13, 13)
    merge = rows[-2]
    assert merge.type == "conv" and merge.input_shape == (1280, 13, 13) and merge.filters == 1024
    assert [r.type for r in rows].count("conv") == 23 and [r.type for r in rows].count("max") == 5


def test_darknet19_flops_match_the_paper():
    torch.manual_seed(0)
    model = Darknet19()
    flops = count_flops(model, 224)
    assert abs(flops - 5.58e9) / 5.58e9 < 0.01
    assert flops == 5_581_979_648  # sum of 2 * n * k * k * c * out_h * out_w
    rows = layer_table(model, 224)
    assert [r.type for r in rows].count("conv") == 19 and [r.type for r in rows].count("max") == 5
    first = rows[0]
    assert (first.type, first.filters, first.size, first.stride) == ("conv", 32, 3, 1)
    assert first.input_shape == (3, 224, 224) and first.output_shape == (32, 224, 224)
    assert first.flops == 2 * 32 * 9 * 3 * 224 * 224
    assert rows[-1].type == "avg" and rows[-1].output_shape == (1000, 1, 1)
    text = format_layer_table(rows)
    assert "total" in text and "5.582" in text and "3x3/1" in text


@pytest.fixture(scope="module")
def small() -> YOLOv2:
    torch.manual_seed(0)
    return YOLOv2(width=SMALL).eval()


@pytest.mark.parametrize("size", range(320, 609, 32))
def test_multiscale_sizes(small, size):
    with torch.no_grad():
        y = small(torch.rand(1, 3, size, size))
    assert y.shape == (1, 125, size // 32, size // 32)
    assert torch.isfinite(y).all()


def test_rectangular_input_and_backbone_features(small):
    model = small
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        fine, coarse = model.backbone(x)
        y = model(x)
    assert fine.shape == (2, 64, 4, 6) and coarse.shape == (2, 128, 2, 3)
    assert model.backbone.out_channels == (64, 128)
    assert y.shape == (2, 125, 2, 3)


@pytest.mark.parametrize("shape", [(1, 3, 100, 416), (1, 3, 416, 400), (1, 3, 16, 16)])
def test_size_not_multiple_of_32_is_a_clear_error(small, shape):
    with pytest.raises(ValueError, match="multiples of 32"):
        small(torch.zeros(shape))


@pytest.mark.parametrize("x", [torch.zeros(3, 64, 64), torch.zeros(1, 1, 64, 64), [1, 2]])
def test_bad_input_shape(small, x):
    with pytest.raises(ValueError, match=r"shape \(B, 3, H, W\)"):
        small(x)
    with pytest.raises(ValueError, match=r"shape \(B, 3, H, W\)"):
        Darknet19(width=SMALL)(x)


def test_defaults_and_anchors_buffer(small):
    model = small
    assert model.num_classes == 20 and model.num_anchors == 5
    assert torch.equal(model.anchors, VOC_ANCHORS)
    assert "anchors" in model.state_dict()
    assert model.config.reorg == "darknet" and model.config.passthrough_channels == 64
    coco = YOLOv2(num_classes=80, anchors=COCO_ANCHORS, width=SMALL)
    assert coco.head.conv.out_channels == 425


def test_paper_2016_variant_concatenates_3072_channels():
    with torch.device("meta"):  # structure only, no memory
        model = YOLOv2(passthrough_channels=None)
    assert model.merge.conv.in_channels == 3072  # 2048 from reorg(512) + 1024
    assert isinstance(model.passthrough.conv, nn.Identity)
    small = YOLOv2(passthrough_channels=None, width=SMALL).eval()
    rows = layer_table(small, 64)
    reorg = next(r for r in rows if r.type == "reorg")
    assert reorg.input_shape == (64, 4, 4) and reorg.output_shape == (256, 2, 2)
    assert small.merge.conv.in_channels == 3072 // 8


def test_darknet19_classifier():
    model = Darknet19(num_classes=10, width=SMALL).eval()
    with torch.no_grad():
        y = model(torch.rand(3, 3, 64, 64))
    assert y.shape == (3, 10) and model.num_classes == 10
    with torch.device("meta"):
        assert Darknet19().classifier.conv.out_channels == 1000
    assert Darknet19(Darknet19Config(num_classes=5)).num_classes == 5


def test_scaled_channels():
    assert scaled_channels(1024, 1.0) == 1024
    assert scaled_channels(32, SMALL) == 4 and scaled_channels(64, SMALL) == 8
    assert scaled_channels(32, 0.01) == 4
    assert scaled_channels(512, 0.3) % 4 == 0
    with pytest.raises(ValueError, match="width must be > 0"):
        scaled_channels(32, 0)


def test_conv_has_no_bias_before_batch_norm(small):
    model = small
    blocks = [m for m in model.modules() if isinstance(m, ConvBlock)]
    assert len(blocks) == 23
    for b in blocks[:-1]:
        assert b.conv.bias is None and isinstance(b.bn, nn.BatchNorm2d)
        assert isinstance(b.act, nn.LeakyReLU) and b.act.negative_slope == 0.1
    head = blocks[-1]
    assert head.conv.bias is not None and isinstance(head.bn, nn.Identity) and isinstance(head.act, nn.Identity)


def test_config_and_override_errors():
    with pytest.raises(ValueError, match="unknown YOLOv2Config field"):
        YOLOv2(classes=3)
    with pytest.raises(ValueError, match="anchors must be"):
        YOLOv2(anchors=[(1.0, -1.0)], width=SMALL)
    with pytest.raises(ValueError, match="anchors must be"):
        YOLOv2(anchors=[1.0, 2.0, 3.0], width=SMALL)
    with pytest.raises(ValueError, match="reorg must be one of"):
        YOLOv2(reorg="pixel", width=SMALL)
    with pytest.raises(ValueError, match="num_classes"):
        YOLOv2(num_classes=0, width=SMALL)
    with pytest.raises(ValueError, match="num_classes"):
        Darknet19(num_classes=0, width=SMALL)
    cfg = YOLOv2Config(num_classes=3)
    assert YOLOv2(cfg, width=SMALL).num_classes == 3 and cfg.width == 1.0


CONFIGS = [
    dict(),
    dict(num_classes=1, anchors=[(1.0, 1.0)]),
    dict(num_classes=3, anchors=COCO_ANCHORS[:3], reorg="space_to_depth"),
    dict(passthrough_channels=None),
    dict(passthrough_channels=None, reorg="space_to_depth"),
    dict(passthrough_channels=32, width=0.25),
    dict(bn_eps=1e-3, leaky_slope=0.2, bn_momentum=0.01),
]


@pytest.mark.parametrize("overrides", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_smoke_all_configurations(overrides, dtype):
    torch.manual_seed(0)
    kw = {"width": SMALL, **overrides}
    model = YOLOv2(**kw).to(dtype).eval()
    a = model.num_anchors
    with torch.no_grad():
        y = model(torch.rand(2, 3, 96, 64, dtype=dtype))
    assert y.shape == (2, a * (5 + model.num_classes), 3, 2)
    assert y.dtype == dtype and torch.isfinite(y).all()


def test_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    model = YOLOv2(width=SMALL).train()
    model(torch.rand(2, 3, 64, 64)).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_reorg_order_changes_the_output_for_the_same_weights():
    torch.manual_seed(0)
    a = YOLOv2(width=SMALL).eval()
    b = YOLOv2(width=SMALL, reorg="space_to_depth").eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))


@pytest.mark.parametrize("overrides", [dict(), dict(passthrough_channels=None, reorg="space_to_depth")])
def test_fuse_bn_keeps_outputs(overrides):
    torch.manual_seed(0)
    model = randomize_bn(YOLOv2(width=SMALL, **overrides)).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = model(x)
        fused = fuse_bn(model)
        got = fused(x)
    assert fused is not model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    assert count_parameters(fused) < count_parameters(model)


def test_fuse_method_in_place_and_idempotent():
    torch.manual_seed(0)
    model = randomize_bn(Darknet19(width=SMALL, num_classes=7)).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        assert model.fuse() is model
        once = model(x)
        fuse_bn(model, inplace=True)
        twice = model(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(b.fused for b in model.modules() if isinstance(b, ConvBlock) and b.batch_norm)
    assert torch.allclose(once, expected, rtol=1e-5, atol=1e-6) and torch.equal(once, twice)


def test_fuse_bn_respects_bn_eps():
    torch.manual_seed(0)
    model = randomize_bn(YOLOv2(width=SMALL, bn_eps=0.5)).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(fuse_bn(model)(x), model(x), rtol=1e-5, atol=1e-6)


def test_layer_table_restores_training_mode_and_statistics():
    model = YOLOv2(width=SMALL).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = layer_table(model, (64, 96))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert rows[0].input_shape == (3, 64, 96) and rows[-1].output_shape == (125, 2, 3)
    assert [r.index for r in rows] == list(range(len(rows)))


def test_channels_last():
    torch.manual_seed(0)
    model = randomize_bn(YOLOv2(width=SMALL)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.to(memory_format=torch.channels_last))
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_prime_batch_norm_gives_the_batch_statistics_and_restores_momentum():
    torch.manual_seed(0)
    model = YOLOv2(width=SMALL)
    model.backbone.stage16[0].bn.momentum = 0.01  # darknet's own momentum survives priming
    x = torch.rand(2, 3, 64, 64)
    assert prime_batch_norm(model, x) is model and not model.training
    first = model.backbone.stage16[0]
    with torch.no_grad():
        z = first.conv(x)  # what the first batch norm saw
    torch.testing.assert_close(first.bn.running_mean, z.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(first.bn.running_var, z.var(dim=(0, 2, 3), unbiased=True))
    assert first.bn.momentum == 0.01 and model.neck[0].bn.momentum == 0.1
    assert int(first.bn.num_batches_tracked) == 1


def test_network_stages_follow_yolov2_voc_cfg():
    stages = network_stages(YOLOv2(width=SMALL), 416)
    assert [s.name for s in stages if s.branch == "passthrough"] == ["conv", "reorg /2"]
    assert [s.darknet_layers for s in stages if s.branch == "passthrough"] == [(26,), (27,)]
    concat = next(s for s in stages if s.name == "concat")
    assert concat.darknet_layers == (28,) and concat.output_shape == (160, 13, 13)  # 4 * 8 + 128
    assert stages[-1].darknet_layers == (30,) and stages[-1].output_shape == (125, 13, 13)
    assert sum(s.name == "max-pool" for s in stages) == 5
    covered = [k for s in stages for k in s.darknet_layers]
    assert covered == [k for k in range(31) if k != 25]  # every layer once; 25 is the route
    assert sum(s.params for s in stages) == count_parameters(YOLOv2(width=SMALL))
    assert sum(s.flops for s in stages) == count_flops(YOLOv2(width=SMALL), 416)
    paper = network_stages(YOLOv2(width=SMALL, passthrough_channels=None), 320)
    assert [s.name for s in paper if s.branch == "passthrough"] == ["reorg /2"]
    assert paper[-1].output_shape == (125, 10, 10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_forward_fuse_and_counting():
    torch.manual_seed(0)
    model = randomize_bn(YOLOv2(width=0.25)).eval()
    x = torch.rand(2, 3, 416, 416)
    with torch.no_grad():
        cpu = model(x)
        model = model.cuda()
        y = model(x.cuda())
        fused = fuse_bn(model)(x.cuda())
        half = model.half()(x.cuda().half())
    assert y.is_cuda and y.shape == (2, 125, 13, 13)
    assert torch.allclose(y.cpu(), cpu, rtol=1e-3, atol=1e-3 * cpu.abs().max().item())
    assert torch.allclose(fused, y, rtol=1e-3, atol=1e-3 * y.abs().max().item())
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    assert count_flops(model.float(), 416) == count_flops(YOLOv2(width=0.25), 416)
