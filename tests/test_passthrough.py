"""Tests for yolov2_lib.passthrough: space-to-depth and darknet's reorg."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from yolov2_lib.passthrough import (
    Reorg,
    darknet_reorg,
    darknet_reorg_inverse,
    depth_to_space,
    reorg,
    reorg_inverse,
    reorg_source,
    space_to_depth,
)


def reorg_cpu(x: np.ndarray, w: int, h: int, c: int, batch: int, stride: int, forward: int) -> np.ndarray:
    """Line-by-line transcription of darknet's reorg_cpu (src/blas.c, pjreddie/darknet)."""
    out = np.zeros_like(x)
    out_c = c // (stride * stride)
    for b in range(batch):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    in_index = i + w * (j + h * (k + c * b))
                    c2 = k % out_c
                    offset = k // out_c
                    w2 = i * stride + offset % stride
                    h2 = j * stride + offset // stride
                    out_index = w2 + w * stride * (h2 + h * stride * (c2 + out_c * b))
                    if forward:
                        out[out_index] = x[in_index]
                    else:
                        out[in_index] = x[out_index]
    return out


def darknet_forward_reorg(x: torch.Tensor, stride: int) -> torch.Tensor:
    """forward_reorg_layer: reorg_cpu(net.input, l.w, l.h, l.c, l.batch, l.stride, 0, l.output),
    with l.w, l.h, l.c the layer's input size; the output is then read as (C*s^2, H/s, W/s)."""
    b, c, h, w = x.shape
    flat = reorg_cpu(x.numpy().reshape(-1), w, h, c, b, stride, 0)
    return torch.from_numpy(flat).reshape(b, c * stride * stride, h // stride, w // stride)


@pytest.mark.parametrize(
    "shape, stride",
    [((1, 4, 2, 2), 2), ((2, 8, 4, 6), 2), ((1, 64, 26, 26), 2), ((2, 18, 3, 6), 3), ((1, 12, 4, 2), 2)],
)
def test_darknet_reorg_matches_reorg_cpu_transcription(shape, stride):
    x = torch.randn(shape)
    expected = darknet_forward_reorg(x, stride)
    assert torch.equal(darknet_reorg(x, stride), expected)


def test_darknet_backward_is_the_inverse():
    # darknet's backward_reorg_layer calls reorg_cpu(..., forward=1) on the deltas
    b, c, h, w, s = 2, 8, 4, 6, 2
    y = torch.randn(b, c * s * s, h // s, w // s)
    back = reorg_cpu(y.numpy().reshape(-1), w, h, c, b, s, 1)
    assert torch.equal(darknet_reorg_inverse(y, s), torch.from_numpy(back).reshape(b, c, h, w))


def test_space_to_depth_definition_and_pixel_unshuffle():
    x = torch.randn(2, 3, 4, 6)
    y = space_to_depth(x, 2)
    assert y.shape == (2, 12, 2, 3)
    for c in range(3):
        for dy in range(2):
            for dx in range(2):
                assert torch.equal(y[:, c * 4 + dy * 2 + dx], x[:, c, dy::2, dx::2])
    assert torch.equal(y, F.pixel_unshuffle(x, 2))
    assert torch.equal(depth_to_space(y, 2), F.pixel_shuffle(y, 2))


@settings(max_examples=50, deadline=None)
@given(
    b=st.integers(1, 2),
    c_mult=st.integers(1, 3),
    hs=st.integers(1, 4),
    ws=st.integers(1, 4),
    s=st.integers(1, 3),
    order=st.sampled_from(["darknet", "space_to_depth"]),
)
def test_exact_permutation_and_inverse(b, c_mult, hs, ws, s, order):
    c, h, w = c_mult * s * s, hs * s, ws * s
    x = torch.arange(b * c * h * w, dtype=torch.float64).reshape(b, c, h, w)
    y = reorg(x, s, order)
    assert y.shape == (b, c * s * s, hs, ws)
    # every value kept exactly once, and each image stays in its own batch slot
    for i in range(b):
        assert torch.equal(y[i].flatten().sort().values, x[i].flatten())
    assert torch.equal(reorg_inverse(y, s, order), x)
    z = torch.randn(b, c * s * s, hs, ws)
    if order == "space_to_depth" or (c * s * s) % (s**4) == 0:
        assert torch.equal(reorg(reorg_inverse(z, s, order), s, order), z)


def test_the_two_orders_differ_but_hold_the_same_values():
    x = torch.randn(1, 64, 26, 26)
    a, b = darknet_reorg(x), space_to_depth(x)
    assert a.shape == b.shape == (1, 256, 13, 13)
    assert not torch.equal(a, b)
    assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)


def test_space_to_depth_keeps_cells_local_darknet_does_not():
    # clean order: output cell (y, x) only holds input cells of the block (2y..2y+1, 2x..2x+1)
    src = reorg_source(64, 26, 26, 2, "space_to_depth")
    ys, xs = torch.meshgrid(torch.arange(13), torch.arange(13), indexing="ij")
    assert ((src[1] // 2) == ys).all() and ((src[2] // 2) == xs).all()
    # darknet's order mixes in cells from elsewhere in the map
    src = reorg_source(64, 26, 26, 2, "darknet")
    assert not (((src[1] // 2) == ys).all() and ((src[2] // 2) == xs).all())


@pytest.mark.parametrize("order", ["darknet", "space_to_depth"])
def test_reorg_source_points_at_the_values(order):
    x = torch.randn(1, 8, 4, 6)
    y = reorg(x, 2, order)[0]
    src = reorg_source(8, 4, 6, 2, order)
    assert src.shape == (3, 32, 2, 3) and src.dtype == torch.long
    assert torch.equal(y, x[0][src[0], src[1], src[2]])


def test_reorg_module_and_gradients():
    m = Reorg(2, "darknet")
    assert "darknet" in repr(m) and not list(m.parameters())
    x = torch.randn(2, 16, 4, 4, requires_grad=True)
    g = torch.randn(2, 64, 2, 2)
    (m(x) * g).sum().backward()
    assert torch.equal(x.grad, darknet_reorg_inverse(g))
    assert Reorg(2, "space_to_depth")(x).shape == (2, 64, 2, 2)


def test_channels_last_and_dtype_preserved():
    x = torch.randn(2, 8, 4, 4, dtype=torch.float64).to(memory_format=torch.channels_last)
    for f in (darknet_reorg, space_to_depth):
        y = f(x)
        assert y.dtype == torch.float64
        assert torch.equal(y, f(x.contiguous()))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: darknet_reorg(torch.zeros(4, 26, 26)), r"shape \(B, C, H, W\)"),
        (lambda: darknet_reorg(torch.zeros(1, 4, 13, 13)), "multiples of stride=2, got 13x13"),
        (lambda: darknet_reorg(torch.zeros(1, 6, 4, 4)), "multiple of 4"),
        (lambda: space_to_depth(torch.zeros(1, 3, 4, 5)), "got 4x5"),
        (lambda: space_to_depth(torch.zeros(1, 3, 4, 4), 0), "positive integer"),
        (lambda: depth_to_space(torch.zeros(1, 6, 4, 4), 2), "multiple of 4"),
        (lambda: darknet_reorg_inverse(torch.zeros(1, 8, 4, 4), 2), "multiple of 16"),
        (lambda: reorg(torch.zeros(1, 4, 4, 4), 2, "pixel"), "order must be one of"),
        (lambda: Reorg(2, "pixel"), "order must be one of"),
        (lambda: Reorg(2.0), "positive integer"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu():
    x = torch.randn(2, 64, 26, 26)
    for f in (darknet_reorg, space_to_depth):
        y = f(x.cuda())
        assert y.is_cuda
        assert torch.equal(y.cpu(), f(x))
    assert reorg_source(8, 4, 4).device.type == "cpu"
