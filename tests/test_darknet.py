"""Tests for yolov2_lib.darknet: cfg parsing, .weights I/O, darknet-exact forward."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import nettools
import pytest
import torch
from torch import nn

from yolov2_lib.darknet import (
    cfg_differences,
    DarknetBatchNorm2d,
    DarknetFormatError,
    DarknetMaxPool2d,
    DarknetNet,
    darknet_weight_count,
    load_darknet,
    load_darknet_weights,
    parse_cfg,
    parse_cfg_string,
    read_darknet_weights,
    save_darknet_weights,
    to_darknet_cfg,
)
from yolov2_lib.anchors import COCO_ANCHORS
from yolov2_lib.model import Darknet19, YOLOv2, count_flops, count_parameters, fuse_bn

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("YOLOV2_DATA", REPO.parent / "shared" / "data"))
CFG_DIR = DATA / "darknet" / "cfg"
CFGS = sorted(CFG_DIR.glob("*.cfg")) if CFG_DIR.is_dir() else []
needs_data = pytest.mark.skipif(not CFGS, reason=f"darknet cfgs not found under {CFG_DIR}")
SMALL = 1 / 8


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    # small variances on purpose: they exercise darknet's sqrt(var) + 1e-6 against torch's eps
    return nettools.randomize_bn(model, seed, min_var=0.05)


def assert_close(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, rel: float = 1e-4) -> None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    scale = max(np.abs(b).max(), 1e-12)
    assert np.abs(a - b).max() <= rel * scale, (np.abs(a - b).max(), scale)


# --------------------------------------------------------------------------- a numpy darknet

TINY_DETECTOR = """
[net]
batch=1
height=32
width=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

# layer 2: tapped by the route below
[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
padding=1
activation=leaky

[maxpool]
size=2
stride=1

# no activation key: darknet's default is logistic
[convolutional]
batch_normalize=1
filters=24
size=1
stride=1
pad=1

[route]
layers=-5

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=relu

[maxpool]
size=2
stride=2

[reorg]
stride=2

[route]
layers=-1,-5

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=16
activation=linear

[region]
anchors = 1.0,1.5,  2.5,3.0
classes=3
coords=4
num=2
softmax=1
object_scale=5
"""

TINY_CLASSIFIER = """
[net]
height=16
width=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=3
stride=2

[convolutional]
filters=10
size=1
stride=1
pad=1
activation=linear

[avgpool]

[dropout]
probability=.5

[softmax]
groups=2
temperature=2

[cost]
type=sse
"""


def im2col_cpu(im: np.ndarray, channels: int, height: int, width: int, ksize: int, stride: int, pad: int):
    """darknet's im2col_cpu (src/im2col.c), vectorised over the output pixels only."""
    height_col = (height + 2 * pad - ksize) // stride + 1
    width_col = (width + 2 * pad - ksize) // stride + 1
    col = np.zeros((channels * ksize * ksize, height_col, width_col), dtype=np.float64)
    rows = np.arange(height_col)[:, None] * stride
    cols = np.arange(width_col)[None, :] * stride
    for c in range(channels * ksize * ksize):
        w_offset = c % ksize
        h_offset = (c // ksize) % ksize
        c_im = c // ksize // ksize
        r = h_offset + rows - pad  # im2col_get_pixel: row -= pad; col -= pad
        q = w_offset + cols - pad
        valid = (r >= 0) & (q >= 0) & (r < height) & (q < width)
        col[c] = np.where(valid, im[c_im][np.clip(r, 0, height - 1), np.clip(q, 0, width - 1)], 0.0)
    return col.reshape(channels * ksize * ksize, -1), height_col, width_col


def reference_darknet(cfg_text: str, floats: np.ndarray, image: np.ndarray) -> np.ndarray:
    """A forward pass written from darknet's C code, one image (C, H, W) at a time."""
    sections = parse_cfg_string(cfg_text)[1:]
    pos = 0

    def read(n: int) -> np.ndarray:
        nonlocal pos
        out = floats[pos:pos + n].astype(np.float64)
        pos += n
        return out

    outputs: list[np.ndarray] = []
    x = image.astype(np.float64)
    for index, s in enumerate(sections):
        o = s.options
        if s.type == "convolutional":
            c, h, w = x.shape
            n, size, stride = int(o["filters"]), int(o.get("size", 1)), int(o.get("stride", 1))
            pad = size // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))
            bn = int(o.get("batch_normalize", 0))
            # load_convolutional_weights: biases, [scales, rolling_mean, rolling_variance], weights
            biases = read(n)
            if bn:
                scales, mean, var = read(n), read(n), read(n)
            weights = read(n * c * size * size).reshape(n, c * size * size)
            col, oh, ow = im2col_cpu(x, c, h, w, size, stride, pad)
            out = weights @ col  # gemm(0, 0, m, n, k, 1, a, k, b, n, 1, c, n)
            if bn:
                out = (out - mean[:, None]) / (np.sqrt(var[:, None]) + .000001)  # normalize_cpu
                out = out * scales[:, None]  # scale_bias
            out = out + biases[:, None]  # add_bias
            act = o.get("activation", "logistic")
            if act == "leaky":
                out = np.where(out > 0, out, .1 * out)
            elif act == "relu":
                out = out * (out > 0)
            elif act == "logistic":
                out = 1.0 / (1.0 + np.exp(-out))
            x = out.reshape(n, oh, ow)
        elif s.type == "maxpool":
            c, h, w = x.shape
            stride = int(o.get("stride", 1))
            size = int(o.get("size", stride))
            pad = int(o.get("padding", size - 1))
            oh, ow = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
            offset = -(pad // 2)  # int w_offset = -l.pad/2 (C division truncates toward zero)
            out = np.full((c, oh, ow), -np.finfo(np.float32).max)
            for i in range(oh):
                for j in range(ow):
                    for n_ in range(size):
                        for m in range(size):
                            cur_h, cur_w = offset + i * stride + n_, offset + j * stride + m
                            if 0 <= cur_h < h and 0 <= cur_w < w:
                                out[:, i, j] = np.maximum(out[:, i, j], x[:, cur_h, cur_w])
            x = out
        elif s.type == "route":
            parts = []
            for v in (int(t) for t in o["layers"].split(",")):
                parts.append(outputs[index + v if v < 0 else v])
            x = np.concatenate([p.reshape(-1) for p in parts]).reshape(-1, *parts[0].shape[1:])
        elif s.type == "reorg":
            c, h, w = x.shape
            stride = int(o.get("stride", 1))
            flat, out = x.reshape(-1), np.zeros(x.size)
            out_c = c // (stride * stride)
            for k in range(c):  # reorg_cpu(net.input, l.w, l.h, l.c, l.batch, l.stride, 0, l.output)
                for j in range(h):
                    for i in range(w):
                        in_index = i + w * (j + h * k)
                        c2, off = k % out_c, k // out_c
                        w2, h2 = i * stride + off % stride, j * stride + off // stride
                        out[in_index] = flat[w2 + w * stride * (h2 + h * stride * c2)]
            x = out.reshape(c * stride * stride, h // stride, w // stride)
        elif s.type == "avgpool":
            x = x.reshape(x.shape[0], -1).mean(axis=1).reshape(-1, 1, 1)
        elif s.type == "softmax":
            groups, temp = int(o.get("groups", 1)), float(o.get("temperature", 1))
            flat = x.reshape(groups, -1) / temp
            e = np.exp(flat - flat.max(axis=1, keepdims=True))
            x = (e / e.sum(axis=1, keepdims=True)).reshape(-1)
        # [region], [dropout], [cost]: the raw input passes through at inference
        outputs.append(x)
    assert pos == len(floats), "the reference did not use every weight"
    return x


def random_weights(net: DarknetNet, seed: int) -> np.ndarray:
    """Plausible random darknet weights for ``net`` (positive variances)."""
    rng = np.random.default_rng(seed)
    parts = []
    for layer in net.layers:
        if not hasattr(layer, "conv"):
            continue
        conv, n = layer.conv, layer.conv.out_channels
        parts.append(rng.normal(0, 0.1, n))
        if layer.batch_norm:
            parts += [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.uniform(0.05, 1.5, n)]
        fan_in = conv.weight[0].numel()
        parts.append(rng.normal(0, 1.5 / np.sqrt(fan_in), conv.weight.numel()))
    return np.concatenate(parts).astype(np.float32)


def write_weights(path: Path, floats: np.ndarray, version=(0, 2, 0), seen: int = 0) -> Path:
    major, minor, revision = version
    wide = major * 10 + minor >= 2
    with open(path, "wb") as f:
        f.write(struct.pack("<3i", major, minor, revision))
        f.write(struct.pack("<q" if wide else "<i", seen))
        f.write(floats.astype("<f4").tobytes())
    return path


@pytest.mark.parametrize(
    "cfg, size", [(TINY_DETECTOR, 32), (TINY_DETECTOR, 64), (TINY_CLASSIFIER, 16), (TINY_CLASSIFIER, 20)]
)
def test_forward_matches_numpy_darknet(tmp_path, cfg, size):
    (tmp_path / "tiny.cfg").write_text(cfg)
    net = load_darknet(tmp_path / "tiny.cfg")
    floats = random_weights(net, seed=size)
    assert len(floats) == darknet_weight_count(net)
    weights = write_weights(tmp_path / "tiny.weights", floats)
    net = load_darknet(tmp_path / "tiny.cfg", weights)
    images = np.random.default_rng(1).uniform(0, 1, (2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        out = net(torch.from_numpy(images)).numpy()
    for b in range(2):
        assert_close(out[b], reference_darknet(cfg, floats, images[b]).reshape(out[b].shape))
    if cfg is TINY_DETECTOR:
        assert out.shape == (2, 16, size // 8, size // 8)
        assert net.num_classes == 3 and net.num_anchors == 2
        assert torch.equal(net.anchors, torch.tensor([[1.0, 1.5], [2.5, 3.0]]))
        assert net.region.options["object_scale"] == 5
    else:
        assert out.shape == (2, 10) and np.allclose(out.reshape(2, 2, 5).sum(-1), 1, atol=1e-6)


@pytest.mark.parametrize(
    "size, stride, padding, hw", [(2, 2, None, 13), (2, 1, None, 13), (3, 2, None, 13), (2, 2, 0, 13), (3, 1, 1, 6)]
)
def test_maxpool_is_darknets(size, stride, padding, hw):
    x = torch.randn(2, 3, hw, hw + 1)
    pad = size - 1 if padding is None else padding
    y = DarknetMaxPool2d(size, stride, padding)(x)
    oh, ow = (hw + pad - size) // stride + 1, (hw + 1 + pad - size) // stride + 1
    assert y.shape == (2, 3, oh, ow)
    xn = x.numpy()
    for i in range(oh):
        for j in range(ow):
            r0, c0 = -(pad // 2) + i * stride, -(pad // 2) + j * stride
            window = xn[:, :, max(r0, 0):r0 + size, max(c0, 0):c0 + size]
            assert np.array_equal(y[:, :, i, j].numpy(), window.max(axis=(2, 3)))


def test_darknet_batch_norm_formula():
    bn = DarknetBatchNorm2d(4)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.0, 0.3]))
        bn.running_var.copy_(torch.tensor([1e-8, 0.5, 2.0, 1.0]))
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5, 1.5]))
        bn.bias.copy_(torch.tensor([0.0, 0.1, -0.1, 0.2]))
    x = torch.randn(2, 4, 3, 3)
    shape = (1, 4, 1, 1)
    expected = (x - bn.running_mean.view(shape)) / (bn.running_var.sqrt().view(shape) + 1e-6) * bn.weight.view(
        shape) + bn.bias.view(shape)
    assert torch.allclose(bn.eval()(x), expected, rtol=1e-5, atol=1e-5)
    # training: batch mean, unbiased batch variance, rolling averages with weight .01
    bn.train()
    old_mean = bn.running_mean.clone()
    y = bn(x)
    mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=True)
    expected = (x - mean.view(shape)) / (var.sqrt().view(shape) + 1e-6) * bn.weight.view(shape) + bn.bias.view(shape)
    assert torch.allclose(y, expected, rtol=1e-5, atol=1e-5)
    assert torch.allclose(bn.running_mean, 0.99 * old_mean + 0.01 * mean)


# --------------------------------------------------------------------------- the real cfgs


@needs_data
@pytest.mark.parametrize("cfg", CFGS, ids=lambda p: p.name)
def test_every_cfg_builds_and_runs(cfg):
    torch.manual_seed(0)
    net = load_darknet(cfg)
    assert not net.training and net.channels == 3 and net.height % 32 == 0
    with torch.no_grad():
        y = net(torch.rand(1, 3, 64, 64))
    assert torch.isfinite(y).all()
    if net.region is not None:
        assert y.shape == (1, net.num_anchors * (5 + net.num_classes), 2, 2)
        assert net.anchors.shape == (5, 2)
    else:
        assert y.shape == (1, 1000) and net.num_classes == 1000
        assert torch.allclose(y.sum(), torch.tensor(1.0))


@needs_data
def test_cfg_facts():
    voc = DarknetNet(parse_cfg(CFG_DIR / "yolov2-voc.cfg"))
    assert (voc.num_classes, voc.num_anchors, voc.height) == (20, 5, 416)
    assert torch.allclose(voc.anchors[0], torch.tensor([1.3221, 1.73145]))
    assert [type(m).__name__ for m in voc.layers][25:28] == ["Route", "ConvBlock", "Reorg"]
    assert voc.layers[25].indices == [16] and voc.layers[28].indices == [27, 24]
    assert voc.output_shape == (125, 13, 13)
    tiny = DarknetNet(parse_cfg(CFG_DIR / "yolov2-tiny.cfg"))
    assert tiny.num_classes == 80 and tiny.output_shape == (425, 13, 13)
    pool = tiny.layers[11]
    assert isinstance(pool, DarknetMaxPool2d) and (pool.kernel_size, pool.stride, pool.padding) == (2, 1, 1)


@needs_data
def test_yolov2_voc_cfg_is_yolov2_and_loads_its_weights(tmp_path):
    torch.manual_seed(0)
    model = randomize_bn(YOLOv2()).eval()
    net = load_darknet(CFG_DIR / "yolov2-voc.cfg")
    assert count_parameters(net) == count_parameters(model) == 50_655_389
    path = tmp_path / "yolov2.weights"
    save_darknet_weights(model, path, seen=12_800)
    assert darknet_weight_count(model) == darknet_weight_count(net) == 50_676_061  # + BN running statistics
    assert path.stat().st_size == 20 + 4 * 50_676_061
    assert load_darknet_weights(net, path).seen == 12_800
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert_close(net(x), model(x))
    del net, model


@needs_data
@pytest.mark.parametrize(
    "name, make, size",
    [
        ("yolov2-voc.cfg", lambda: YOLOv2(), 416),
        ("yolov2.cfg", lambda: YOLOv2(num_classes=80, anchors=COCO_ANCHORS), 608),
        ("darknet19.cfg", lambda: Darknet19(), 256),
    ],
)
def test_to_darknet_cfg_reproduces_the_official_cfg(name, make, size):
    official = parse_cfg(CFG_DIR / name)
    model = make()
    ours = parse_cfg_string(to_darknet_cfg(model, size))
    assert len(ours) == len(official)
    if name == "darknet19.cfg":
        with torch.device("meta"):
            assert count_parameters(DarknetNet(official)) == count_parameters(model) == 20_842_376
    keys = {"filters", "size", "stride", "pad", "activation", "batch_normalize", "layers", "classes", "num", "coords",
            "groups"}
    for a, b in zip(ours, official):
        assert a.type == b.type
        assert {k: v for k, v in a.options.items() if k in keys} == {k: v for k, v in b.options.items() if k in keys}
        if a.type == "region":
            assert np.allclose([float(v) for v in a.options["anchors"].split(",")],
                               [float(v) for v in b.options["anchors"].split(",")])
        if a.type == "net":
            assert (a.options["height"], a.options["width"]) == (b.options["height"], b.options["width"])


def test_cfg_differences_reports_each_differing_option():
    a = parse_cfg_string("[net]\nheight=224\nbatch=1\n[conv]\nfilters=32\nsize=3\n[region]\nanchors=1.3221,2\n")
    b = parse_cfg_string("[net]\nheight=448\nbatch=1\n[convolutional]\nfilters=32\nsize=1\n"
                         "[region]\nanchors=1.32210, 2.0\n[cost]\n")
    diffs = cfg_differences(a, b)
    assert diffs == [{"height": ("224", "448")}, {"size": ("3", "1")}, {}, {"type": (None, "cost")}]
    assert cfg_differences(a, b, keys=("filters",))[:3] == [{}, {}, {}]
    c = parse_cfg_string("[net]\nbatch=1\n")
    assert cfg_differences(a[:1], c) == [{"height": ("224", None)}]


@needs_data
def test_darknet19_448_changes_only_the_net_section():
    diffs = cfg_differences(parse_cfg(CFG_DIR / "darknet19.cfg"), parse_cfg(CFG_DIR / "darknet19_448.cfg"))
    assert not any(diffs[1:]) and diffs[0]["height"] == ("256", "448")


MODELS = [
    lambda: YOLOv2(width=SMALL),
    lambda: YOLOv2(width=SMALL, passthrough_channels=None),
    lambda: YOLOv2(width=0.25, num_classes=3, anchors=COCO_ANCHORS[:3], bn_eps=1e-3),
    lambda: Darknet19(width=SMALL, num_classes=10),
]


@pytest.mark.parametrize("make", MODELS)
def test_models_export_to_darknet_and_back(tmp_path, make):
    torch.manual_seed(0)
    model = randomize_bn(make()).eval()
    (tmp_path / "m.cfg").write_text(to_darknet_cfg(model, 96, 64))
    save_darknet_weights(model, tmp_path / "m.weights")
    net = load_darknet(tmp_path / "m.cfg", tmp_path / "m.weights")
    assert count_parameters(net) == count_parameters(model)
    assert count_flops(net, (96, 64)) == count_flops(model, (96, 64))
    x = torch.rand(2, 3, 96, 64)
    with torch.no_grad():
        expected = model(x)
        got = net(x)
        if isinstance(model, Darknet19):
            expected = expected.softmax(dim=1)  # darknet19.cfg ends with [softmax]
        assert_close(got, expected)
        # and back: darknet weights into a fresh PyTorch model
        back = make().eval()
        load_darknet_weights(back, tmp_path / "m.weights")
        assert_close(back(x), model(x))
    for a, b in zip(back.state_dict().values(), model.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_darknet_net_round_trip_is_exact(tmp_path):
    (tmp_path / "tiny.cfg").write_text(TINY_DETECTOR)
    net = load_darknet(tmp_path / "tiny.cfg")
    floats = random_weights(net, seed=3)
    original = write_weights(tmp_path / "a.weights", floats, seen=77)
    load_darknet_weights(net, original)
    save_darknet_weights(net, tmp_path / "b.weights", seen=77)
    assert (tmp_path / "b.weights").read_bytes() == original.read_bytes()
    again = load_darknet(tmp_path / "tiny.cfg", tmp_path / "b.weights")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))
    header, data = read_darknet_weights(tmp_path / "b.weights")
    assert header.seen == 77 and np.array_equal(data, floats)


@pytest.mark.parametrize("version, seen", [((0, 1, 0), 2**31 - 1), ((0, 2, 0), 2**40), ((0, 0, 0), 5), ((0, 2, 5), 1)])
def test_both_header_versions(tmp_path, version, seen):
    (tmp_path / "tiny.cfg").write_text(TINY_DETECTOR)
    net = load_darknet(tmp_path / "tiny.cfg")
    floats = random_weights(net, seed=4)
    path = write_weights(tmp_path / "v.weights", floats, version, seen)
    expected_size = 12 + (8 if version[1] >= 2 else 4) + 4 * len(floats)
    assert path.stat().st_size == expected_size
    header = load_darknet_weights(net, path)
    assert tuple(header) == (*version, seen)
    save_darknet_weights(net, tmp_path / "w.weights", seen=seen, version=version)
    assert (tmp_path / "w.weights").read_bytes() == path.read_bytes()
    reference = load_darknet(tmp_path / "tiny.cfg", write_weights(tmp_path / "r.weights", floats))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), reference(x))


def test_weights_too_short_or_too_long(tmp_path):
    (tmp_path / "tiny.cfg").write_text(TINY_DETECTOR)
    net = load_darknet(tmp_path / "tiny.cfg")
    floats = random_weights(net, seed=5)
    short = write_weights(tmp_path / "short.weights", floats[:-37])
    with pytest.raises(DarknetFormatError, match=r"too short.*37 floats missing") as err:
        load_darknet_weights(net, short)
    assert "short.weights" in str(err.value) and "darknet layer 13" in str(err.value) and "tiny.cfg:" in str(err.value)
    with pytest.raises(DarknetFormatError, match="runs out in conv layer 0"):
        load_darknet_weights(net, write_weights(tmp_path / "empty.weights", floats[:0]))
    long = write_weights(tmp_path / "long.weights", np.concatenate([floats, np.zeros(5, np.float32)]))
    with pytest.raises(DarknetFormatError, match=r"too long.*5 floats more"):
        load_darknet(tmp_path / "tiny.cfg", long)
    load_darknet_weights(net, long, strict=False)
    (tmp_path / "odd.weights").write_bytes(write_weights(tmp_path / "x.weights", floats).read_bytes() + b"\0\0")
    with pytest.raises(DarknetFormatError, match="2 stray bytes"):
        load_darknet_weights(net, tmp_path / "odd.weights")


@pytest.mark.parametrize(
    "header, match",
    [
        (struct.pack("<3i", 1, 0, 0) + bytes(8), "unknown darknet weights header version 1.0.0"),
        (struct.pack("<3i", 0, 3, 0) + bytes(8), "unknown darknet weights header version 0.3.0"),
        (struct.pack("<3i", 0, 1001, 0) + bytes(8), "transposed"),
        (b"\x80\x02}q\x00", "too short for a darknet header"),
        (struct.pack("<3i", 0, 2, 0) + bytes(4), "needs 20 bytes"),
        (struct.pack("<3iq", 0, 2, 0, -5), r"'seen' \(images trained on\) is negative \(-5\)"),
        (struct.pack("<4i", 0, 1, 0, -1), "is negative"),
    ],
)
def test_bad_headers(tmp_path, header, match):
    path = tmp_path / "bad.weights"
    path.write_bytes(header)
    with pytest.raises(DarknetFormatError, match=match) as err:
        read_darknet_weights(path)
    assert "bad.weights" in str(err.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_weights_are_refused_naming_the_layer(tmp_path, bad):
    (tmp_path / "tiny.cfg").write_text(TINY_DETECTOR)
    net = load_darknet(tmp_path / "tiny.cfg")
    floats = random_weights(net, seed=6)
    load_darknet_weights(net, write_weights(tmp_path / "good.weights", floats))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    first = net.layers[0].conv.out_channels * 4 + net.layers[0].conv.weight.numel()
    floats[first + 3] = bad  # the second conv layer's values
    with pytest.raises(DarknetFormatError, match=r"1 NaN or infinite value\(s\) in conv layer 1 \(darknet layer") as err:
        load_darknet_weights(net, write_weights(tmp_path / "nan.weights", floats))
    assert "nan.weights" in str(err.value) and "Nothing was loaded" in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the network is untouched


def test_backbone_loads_a_darknet19_file(tmp_path):
    # like darknet19_448.conv.23: a classifier's weights feed the detector's backbone
    torch.manual_seed(0)
    classifier = randomize_bn(Darknet19(width=SMALL)).eval()
    (tmp_path / "d19.cfg").write_text(to_darknet_cfg(classifier, 64))
    save_darknet_weights(classifier, tmp_path / "d19.weights")
    net = load_darknet(tmp_path / "d19.cfg", tmp_path / "d19.weights")
    yolo = YOLOv2(width=SMALL).eval()
    with pytest.raises(DarknetFormatError, match="too long"):
        load_darknet_weights(yolo.backbone, tmp_path / "d19.weights")
    load_darknet_weights(yolo.backbone, tmp_path / "d19.weights", strict=False)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        fine, coarse = yolo.backbone(x)
        outs = net.layer_outputs(x)
    assert len(outs) == len(net.layers)
    assert_close(fine, outs[16])
    assert_close(coarse, outs[22])


def test_fuse_and_gradients_on_darknet_net(tmp_path):
    (tmp_path / "tiny.cfg").write_text(TINY_DETECTOR)
    floats = random_weights(load_darknet(tmp_path / "tiny.cfg"), 6)
    net = load_darknet(tmp_path / "tiny.cfg", write_weights(tmp_path / "t.weights", floats))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = net(x)
        assert_close(fuse_bn(net)(x), expected, rel=1e-5)
    net.train()
    net(x).square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="fused"):
        save_darknet_weights(net.fuse(), tmp_path / "f.weights")


def test_loading_tiny_variance_into_pytorch_bn_warns(tmp_path):
    model = Darknet19(width=SMALL, num_classes=4)
    (tmp_path / "d.cfg").write_text(to_darknet_cfg(model, 32))
    net = load_darknet(tmp_path / "d.cfg")
    with torch.no_grad():
        net.layers[0].bn.running_var[0] = 0.0
    save_darknet_weights(net, tmp_path / "d.weights")
    with pytest.warns(UserWarning, match="clamped"):
        load_darknet_weights(model, tmp_path / "d.weights")
    exact = Darknet19(width=SMALL, num_classes=4, bn_eps=1e-12).eval()
    load_darknet_weights(exact, tmp_path / "d.weights")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert_close(exact(x).softmax(1), net.eval()(x))


def _cfg_error(tmp_path: Path, text: str, match: str, line: int | None = None) -> None:
    path = tmp_path / "bad.cfg"
    path.write_text(text)
    with pytest.raises(DarknetFormatError, match=match) as err:
        load_darknet(path)
    assert isinstance(err.value, ValueError)
    where = f"bad.cfg:{line}:" if line else "bad.cfg"
    assert where in str(err.value), str(err.value)


NET = "[net]\nheight=64\nwidth=64\nchannels=3\n"  # lines 1-4
CONV = "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=leaky\n"


@pytest.mark.parametrize(
    "text, match, line",
    [
        (NET + "[shortcut]\nfrom=-3\n", r"\[shortcut\] is a darknet layer outside", 5),
        (NET + "[banana]\n", r"unknown section \[banana\]", 5),
        (NET + CONV + "colour=blue\n", r"unknown key 'colour' in \[convolutional\]", 10),
        (NET + "[convolutional]\nfilters=eight\n", "bad value for 'filters'.*expected an integer, got 'eight'", 6),
        (NET + "[convolutional]\nfilters=0\n", "bad value for 'filters'.*>= 1", 6),
        (NET + CONV + "[route]\nlayers=-2\n", "route.*missing layer: -2 resolves to layer -1", 11),
        (NET + CONV + "[route]\nlayers=3\n", "route.*missing layer", 11),
        (NET + CONV + "[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-1,-2\n", "different sizes", 14),
        (NET + CONV + "[region]\nclasses=20\nnum=5\n", "needs 125 input channels.*gives 8", 10),
        (NET + "[convolutional]\nfilters=25\n[region]\nclasses=0\nnum=5\nanchors=1,2,3\n", "needs 10 anchor values", 10),
        (NET + CONV + "[reorg]\nstride=2\nreverse=1\n", "reverse is not supported", 12),
        (NET + CONV + "activation=swish\n", "repeats", 10),
        (NET + "[convolutional]\nfilters=8\nactivation=swish\n", "unsupported activation 'swish'", 7),
        (NET + CONV + "dontload=1\n", "dontload", 10),
        (NET + "filters=3\n", None, None),
        ("filters=3\n" + NET, "before the first", 1),
        (NET + "[convolutional\n", "malformed section header", 5),
        (NET + "[convolutional]\nfilters\n", "expected '\\[section\\]' or 'key=value'", 6),
        (CONV, r"first section must be \[net\]", 1),
        ("[net]\nheight=64\n" + CONV, "channels", 1),
        (NET + "[softmax]\n[convolutional]\nfilters=2\n", "needs an image from the layer before", 6),
        ("# only a comment\n", "no sections", None),
    ],
)
def test_cfg_errors_name_file_line_and_problem(tmp_path, text, match, line):
    if match is None:  # a [net] key that is not a [net] key
        match, line = r"unknown key 'filters' in \[net\]", 5
    _cfg_error(tmp_path, text, match, line)


def test_missing_files(tmp_path):
    with pytest.raises(DarknetFormatError, match="cannot read the cfg file"):
        load_darknet(tmp_path / "nope.cfg")
    with pytest.raises(DarknetFormatError, match="cannot read the weights file"):
        read_darknet_weights(tmp_path / "nope.weights")


def test_runtime_size_errors_name_the_layer(tmp_path):
    (tmp_path / "tiny.cfg").write_text(TINY_DETECTOR)
    net = load_darknet(tmp_path / "tiny.cfg")
    with pytest.raises(ValueError, match=r"tiny.cfg:\d+: layer 10 \[reorg\]: .*multiples of stride=2"):
        net(torch.rand(1, 3, 36, 36))
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 3, H, W\)"):
        net(torch.rand(1, 1, 32, 32))


def test_save_errors(tmp_path):
    model = YOLOv2(width=SMALL)
    with pytest.raises(ValueError, match="version"):
        save_darknet_weights(model, tmp_path / "a.weights", version=(1, 0, 0))
    with pytest.raises(ValueError, match="does not fit"):
        save_darknet_weights(model, tmp_path / "a.weights", seen=2**31, version=(0, 1, 0))
    with pytest.raises(ValueError, match="no convolutional layers"):
        save_darknet_weights(nn.Linear(2, 2), tmp_path / "a.weights")
    with pytest.raises(ValueError, match="space_to_depth"):
        to_darknet_cfg(YOLOv2(width=SMALL, reorg="space_to_depth"))
    with pytest.raises(ValueError, match="slope 0.1"):
        to_darknet_cfg(YOLOv2(width=SMALL, leaky_slope=0.2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_forward_matches_cpu(tmp_path):
    (tmp_path / "tiny.cfg").write_text(TINY_DETECTOR)
    net = load_darknet(tmp_path / "tiny.cfg")
    path = write_weights(tmp_path / "t.weights", random_weights(net, 7))
    net = load_darknet(tmp_path / "tiny.cfg", path)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        cpu = net(x)
        gpu = net.cuda()(x.cuda())
    assert gpu.is_cuda
    assert_close(gpu.cpu(), cpu, rel=1e-3)
    load_darknet_weights(net, path)  # loading into a CUDA module
    save_darknet_weights(net, tmp_path / "g.weights")
    assert (tmp_path / "g.weights").read_bytes() == path.read_bytes()
