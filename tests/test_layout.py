"""Tests for yolov2_lib.layout: the channel order of the YOLO v2 head."""

from __future__ import annotations

import pytest
import torch

from yolov2_lib.layout import (
    FIELDS,
    HeadFields,
    channel_index,
    head_view,
    num_channels,
    raw_from_view,
    split_fields,
)


def hand_built_raw(B: int, A: int, C: int, H: int, W: int) -> torch.Tensor:
    """raw[b, ch, i, j] = 100000*b + 1000*ch + 10*i + j: every number says where it came from."""
    b = torch.arange(B).view(B, 1, 1, 1)
    ch = torch.arange(A * (5 + C)).view(1, -1, 1, 1)
    i = torch.arange(H).view(1, 1, H, 1)
    j = torch.arange(W).view(1, 1, 1, W)
    return (100000 * b + 1000 * ch + 10 * i + j).float()


def test_num_channels():
    assert num_channels(5, 20) == 125  # VOC
    assert num_channels(5, 80) == 425  # COCO
    assert num_channels(1, 0) == 5
    with pytest.raises(ValueError, match="num_anchors"):
        num_channels(0, 20)


def test_channel_index_darknet_order():
    assert FIELDS == ("x", "y", "w", "h", "objectness")
    assert channel_index(0, "x", 20) == 0
    assert channel_index(0, "objectness", 20) == 4
    assert channel_index(0, "class:0", 20) == 5
    assert channel_index(1, "x", 20) == 25
    assert channel_index(1, "objectness", 20) == 29
    assert channel_index(2, "class:3", 20) == 58
    assert channel_index(4, "class:19", 20) == 124
    assert channel_index(3, 7, 20) == 3 * 25 + 7
    assert channel_index(4, "class:79", 80) == 424


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((0, "z", 20), {}, "Unknown field"),
        ((0, "class:20", 20), {}, "class 20 out of range"),
        ((0, "class:x", 20), {}, "integer k"),
        ((0, 25, 20), {}, "out of range"),
        ((-1, "x", 20), {}, "anchor"),
        ((5, "x", 20), {"num_anchors": 5}, "anchor 5 out of range"),
    ],
)
def test_channel_index_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        channel_index(*args, **kwargs)


def test_head_view_against_hand_built_tensor():
    B, A, C, H, W = 2, 3, 4, 5, 6
    raw = hand_built_raw(B, A, C, H, W)
    view = head_view(raw, A)
    assert view.shape == (B, H, W, A, 5 + C)
    for b, i, j, a in [(0, 0, 0, 0), (1, 4, 5, 2), (0, 2, 3, 1), (1, 1, 0, 2)]:
        for field in [*FIELDS, "class:0", f"class:{C - 1}"]:
            e = channel_index(a, field, C) - a * (5 + C)
            expected = 100000 * b + 1000 * channel_index(a, field, C) + 10 * i + j
            assert view[b, i, j, a, e].item() == expected


def test_head_view_shares_storage_and_writes_through():
    raw = torch.zeros(1, 2 * 7, 3, 3)
    view = head_view(raw, 2)
    assert view.data_ptr() == raw.data_ptr()
    assert view.untyped_storage().data_ptr() == raw.untyped_storage().data_ptr()
    view[0, 1, 2, 1, 4] = 5.0  # objectness of anchor 1 at row 1, column 2
    assert raw[0, channel_index(1, "objectness", 2), 1, 2].item() == 5.0
    assert raw.sum().item() == 5.0


def test_raw_from_view_is_the_inverse_without_copy():
    raw = torch.randn(2, 125, 4, 3)
    view = head_view(raw, 5)
    back = raw_from_view(view)
    assert torch.equal(back, raw)
    assert back.data_ptr() == raw.data_ptr()
    # And from an arbitrary (contiguous) view tensor back and forth:
    v = torch.randn(2, 4, 3, 5, 25)
    torch.testing.assert_close(head_view(raw_from_view(v), 5), v)


def test_split_fields_are_named_views():
    B, A, C, H, W = 1, 2, 3, 2, 2
    raw = hand_built_raw(B, A, C, H, W)
    fields = split_fields(head_view(raw, A))
    assert isinstance(fields, HeadFields)
    for name, e in zip(("tx", "ty", "tw", "th", "to"), range(5)):
        t = getattr(fields, name)
        assert t.shape == (B, H, W, A)
        assert t[0, 1, 0, 1].item() == 1000 * channel_index(1, e, C) + 10
    assert fields.class_logits.shape == (B, H, W, A, C)
    assert fields.class_logits[0, 0, 1, 0, 2].item() == 1000 * channel_index(0, "class:2", C) + 1
    fields.to.fill_(-1.0)  # writes through to the raw tensor
    assert bool((raw[:, [channel_index(a, "objectness", C) for a in range(A)]] == -1).all())


def test_gradient_flows_through_the_view():
    raw = torch.randn(1, 2 * 6, 2, 2, requires_grad=True)
    split_fields(head_view(raw, 2)).tw.sum().backward()
    expected = torch.zeros_like(raw)
    expected[:, [channel_index(0, "w", 1), channel_index(1, "w", 1)]] = 1.0
    torch.testing.assert_close(raw.grad, expected)


def test_head_view_errors():
    with pytest.raises(ValueError, match="not num_anchors"):
        head_view(torch.zeros(1, 124, 13, 13), 5)
    with pytest.raises(ValueError, match=r"\(B, A\*\(5\+C\), H, W\)"):
        head_view(torch.zeros(125, 13, 13), 5)
    with pytest.raises(ValueError, match="not num_anchors"):
        head_view(torch.zeros(1, 8, 2, 2), 2)  # 4 channels per anchor: fewer than 5 fields
    with pytest.raises(ValueError, match="B, H, W, A, 5\\+C"):
        raw_from_view(torch.zeros(1, 2, 2, 125))
    with pytest.raises(ValueError, match="B, H, W, A, 5\\+C"):
        split_fields(torch.zeros(1, 2, 2, 5, 4))
