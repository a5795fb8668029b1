"""Tests for yolov2_lib.boxes: formats, IoU and NMS."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import yolov2_lib.boxes as boxes_module
from yolov2_lib.boxes import (
    aligned_box_iou,
    batched_nms,
    box_area,
    box_iou,
    cxcywh_to_xyxy,
    denormalize_boxes,
    nms,
    normalize_boxes,
    wh_iou,
    xyxy_to_cxcywh,
)

SETTINGS = settings(max_examples=50, deadline=None)

coord = st.floats(0, 100, allow_nan=False, allow_infinity=False)
size = st.floats(0, 60, allow_nan=False, allow_infinity=False)
positive_size = st.floats(0.5, 60, allow_nan=False, allow_infinity=False)


@st.composite
def box_sets(draw, min_size=1, max_size=12, sizes=size):
    """(N, 4) float64 xyxy boxes, possibly empty-area."""
    n = draw(st.integers(min_size, max_size))
    rows = [
        (x, y, x + w, y + h)
        for x, y, w, h in draw(st.lists(st.tuples(coord, coord, sizes, sizes), min_size=n, max_size=n))
    ]
    return torch.tensor(rows, dtype=torch.float64).reshape(n, 4)


def reference_iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    """Plain greedy NMS, one pair at a time."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep: list[int] = []
    for i in order:
        if all(reference_iou(boxes[i].tolist(), boxes[j].tolist()) <= threshold for j in keep):
            keep.append(i)
    return keep


# ---------------------------------------------------------------- formats


def test_conversions_hand_computed():
    xyxy = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    cxcywh = torch.tensor([[20.0, 40.0, 20.0, 40.0]])
    torch.testing.assert_close(xyxy_to_cxcywh(xyxy), cxcywh)
    torch.testing.assert_close(cxcywh_to_xyxy(cxcywh), xyxy)


@SETTINGS
@given(box_sets())
def test_conversions_round_trip(boxes):
    torch.testing.assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)
    cxcywh = xyxy_to_cxcywh(boxes)
    torch.testing.assert_close(xyxy_to_cxcywh(cxcywh_to_xyxy(cxcywh)), cxcywh)


def test_conversions_keep_batch_dims():
    boxes = torch.rand(2, 3, 5, 4)
    assert xyxy_to_cxcywh(boxes).shape == (2, 3, 5, 4)
    assert cxcywh_to_xyxy(boxes).shape == (2, 3, 5, 4)


def test_normalize_hand_computed_and_round_trip():
    boxes = torch.tensor([[50.0, 30.0, 250.0, 150.0]])
    normalised = normalize_boxes(boxes, 500, 300)
    torch.testing.assert_close(normalised, torch.tensor([[0.1, 0.1, 0.5, 0.5]]))
    torch.testing.assert_close(denormalize_boxes(normalised, 500, 300), boxes)


def test_normalize_per_image_sizes_broadcast():
    boxes = torch.full((2, 3, 4), 100.0)  # (B, N, 4)
    width = torch.tensor([[200.0], [400.0]])  # (B, 1)
    height = torch.tensor([[100.0], [50.0]])
    out = normalize_boxes(boxes, width, height)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.5, 1.0, 0.5, 1.0]))
    torch.testing.assert_close(out[1, 2], torch.tensor([0.25, 2.0, 0.25, 2.0]))
    torch.testing.assert_close(denormalize_boxes(out, width, height), boxes)


def test_normalize_rejects_non_positive_size():
    with pytest.raises(ValueError, match="positive width and height"):
        normalize_boxes(torch.zeros(1, 4), 0, 10)


@pytest.mark.parametrize("fn", [xyxy_to_cxcywh, cxcywh_to_xyxy, box_area])
def test_wrong_last_dim_raises(fn):
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        fn(torch.zeros(3, 5))


# ---------------------------------------------------------------- IoU


def test_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0], [0.0, 0.0, 2.0, 1.0]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1 / 7, 0.0, 0.5]]))
    torch.testing.assert_close(box_area(b), torch.tensor([4.0, 1.0, 2.0]))


def test_iou_of_empty_boxes_is_zero_with_finite_gradient():
    a = torch.zeros(1, 4, requires_grad=True)
    iou = box_iou(a, a)
    assert iou.item() == 0.0
    iou.sum().backward()
    assert torch.isfinite(a.grad).all()


@SETTINGS
@given(box_sets(), box_sets())
def test_iou_symmetric_bounded_and_matches_reference(b1, b2):
    iou = box_iou(b1, b2)
    assert iou.shape == (len(b1), len(b2))
    torch.testing.assert_close(iou, box_iou(b2, b1).T)
    assert bool(((iou >= 0) & (iou <= 1)).all())
    for i in range(len(b1)):
        for j in range(len(b2)):
            assert math.isclose(float(iou[i, j]), reference_iou(b1[i].tolist(), b2[j].tolist()), abs_tol=1e-9)


@SETTINGS
@given(box_sets(sizes=positive_size))
def test_iou_is_one_on_identical_boxes(boxes):
    torch.testing.assert_close(aligned_box_iou(boxes, boxes), torch.ones(len(boxes), dtype=torch.float64))
    torch.testing.assert_close(box_iou(boxes, boxes).diagonal(), torch.ones(len(boxes), dtype=torch.float64))


@SETTINGS
@given(box_sets(), box_sets())
def test_box_iou_consistent_with_aligned(b1, b2):
    expected = aligned_box_iou(b1[:, None, :], b2[None, :, :])  # broadcast to (N, M)
    torch.testing.assert_close(box_iou(b1, b2), expected)


def test_box_iou_batched_leading_dims():
    b1 = torch.rand(2, 3, 4) * 10
    b1[..., 2:] += b1[..., :2]
    b2 = torch.rand(2, 5, 4) * 10
    b2[..., 2:] += b2[..., :2]
    iou = box_iou(b1, b2)
    assert iou.shape == (2, 3, 5)
    for b in range(2):
        torch.testing.assert_close(iou[b], box_iou(b1[b], b2[b]))


@SETTINGS
@given(
    st.lists(st.tuples(positive_size, positive_size), min_size=1, max_size=8),
    st.lists(st.tuples(positive_size, positive_size), min_size=1, max_size=8),
)
def test_wh_iou_equals_iou_of_centred_boxes(wh1, wh2):
    wh1 = torch.tensor(wh1, dtype=torch.float64)
    wh2 = torch.tensor(wh2, dtype=torch.float64)
    centred = lambda wh: cxcywh_to_xyxy(torch.cat([torch.full_like(wh, 7.0), wh], dim=1))  # noqa: E731
    torch.testing.assert_close(wh_iou(wh1, wh2), box_iou(centred(wh1), centred(wh2)))


def test_wh_iou_hand_computed_and_shape_errors():
    torch.testing.assert_close(wh_iou(torch.tensor([[1.0, 2.0]]), torch.tensor([[2.0, 1.0], [1.0, 2.0]])),
                               torch.tensor([[1 / 3, 1.0]]))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        wh_iou(torch.ones(3, 4), torch.ones(2, 2))


def test_box_iou_rejects_1d():
    with pytest.raises(ValueError, match="N, 4"):
        box_iou(torch.zeros(4), torch.zeros(2, 4))


# ---------------------------------------------------------------- NMS


@SETTINGS
@given(box_sets(max_size=25), st.floats(0.05, 0.95), st.randoms(use_true_random=False), st.sampled_from([3, 128]))
def test_nms_matches_reference_greedy(boxes, threshold, rnd, block):
    scores = torch.tensor([rnd.random() for _ in range(len(boxes))], dtype=torch.float64)
    saved, boxes_module._NMS_BLOCK = boxes_module._NMS_BLOCK, block  # 3: many blocks, 128: one
    try:
        keep = nms(boxes, scores, threshold)
        first = nms(boxes, scores, threshold, max_kept=2)
    finally:
        boxes_module._NMS_BLOCK = saved
    assert keep.dtype == torch.int64
    assert keep.tolist() == reference_nms(boxes, scores, threshold)
    assert first.tolist() == keep[:2].tolist()


def test_nms_many_boxes_matches_reference():
    g = torch.Generator().manual_seed(1)
    boxes = torch.rand(400, 4, generator=g, dtype=torch.float64) * 100
    boxes[:, 2:] = boxes[:, :2] + torch.rand(400, 2, generator=g, dtype=torch.float64) * 30
    scores = torch.rand(400, generator=g, dtype=torch.float64)
    keep = nms(boxes, scores, 0.3)
    assert keep.tolist() == reference_nms(boxes, scores, 0.3)
    assert nms(boxes, scores, 0.3, max_kept=150).tolist() == keep[:150].tolist()


@SETTINGS
@given(box_sets(max_size=25), st.floats(0.05, 0.95), st.randoms(use_true_random=False))
def test_nms_properties(boxes, threshold, rnd):
    scores = torch.tensor([rnd.random() for _ in range(len(boxes))], dtype=torch.float64)
    keep = nms(boxes, scores, threshold)
    assert keep[0] == scores.argmax()  # the top box always survives
    kept_scores = scores[keep]
    assert bool((kept_scores[:-1] >= kept_scores[1:]).all())
    iou = box_iou(boxes[keep], boxes[keep])
    iou.fill_diagonal_(0)
    assert bool((iou <= threshold).all())


def test_nms_threshold_is_strict():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])  # IoU exactly 0.5
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.49).tolist() == [0]


def test_nms_empty_and_bad_inputs():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError, match="scores"):
        nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        nms(torch.zeros(2, 3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="max_kept"):
        nms(torch.zeros(2, 4), torch.zeros(2), 0.5, max_kept=-1)
    assert nms(torch.zeros(2, 4), torch.zeros(2), 0.5, max_kept=0).shape == (0,)


@SETTINGS
@given(box_sets(max_size=25), st.floats(0.05, 0.95), st.randoms(use_true_random=False), st.sampled_from([3, 128]),
       st.booleans())
def test_batched_nms_equals_per_class_reference(boxes, threshold, rnd, block, ties):
    # ties: scores from 3 values, so equal scores (lower index first) cross blocks and classes.
    scores = torch.tensor([rnd.randrange(3) / 3 if ties else rnd.random() for _ in range(len(boxes))],
                          dtype=torch.float64)
    classes = torch.tensor([rnd.randrange(3) for _ in range(len(boxes))])
    saved, boxes_module._NMS_BLOCK = boxes_module._NMS_BLOCK, block  # 3: many blocks, 128: one
    try:
        keep = batched_nms(boxes, scores, classes, threshold)
        first3 = batched_nms(boxes, scores, classes, threshold, max_kept=3)
    finally:
        boxes_module._NMS_BLOCK = saved
    expected = []
    for c in classes.unique().tolist():
        idx = (classes == c).nonzero().flatten()
        expected += idx[reference_nms(boxes[idx], scores[idx], threshold)].tolist()
    expected.sort(key=lambda i: (-float(scores[i]), i))
    assert keep.tolist() == expected
    assert first3.tolist() == expected[:3]
    for c in classes.unique():
        same = keep[classes[keep] == c]
        iou = box_iou(boxes[same], boxes[same])
        iou.fill_diagonal_(0)
        assert bool((iou <= threshold).all())


def test_batched_nms_never_suppresses_across_classes():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    scores = torch.tensor([0.5, 0.9, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 0, 1]), 0.5).tolist() == [1, 2]
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).numel() == 0


# ---------------------------------------------------------------- against torchvision


def test_against_torchvision():
    ops = pytest.importorskip("torchvision.ops")
    g = torch.Generator().manual_seed(0)
    boxes = torch.rand(200, 4, generator=g) * 100
    boxes[:, 2:] = boxes[:, :2] + torch.rand(200, 2, generator=g) * 40 + 1
    scores = torch.rand(200, generator=g)
    classes = torch.randint(0, 4, (200,), generator=g)
    torch.testing.assert_close(box_iou(boxes, boxes), ops.box_iou(boxes, boxes))
    assert nms(boxes, scores, 0.45).tolist() == ops.nms(boxes, scores, 0.45).tolist()
    assert (batched_nms(boxes, scores, classes, 0.45).tolist()
            == ops.batched_nms(boxes, scores, classes, 0.45).tolist())


# ---------------------------------------------------------------- nms_trace (the step-by-step NMS)

from yolov2_lib.boxes import nms_trace  # noqa: E402


def test_nms_trace_hand_computed():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 9.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    trace = nms_trace(boxes, scores, 0.5)
    assert trace.order.tolist() == [3, 0, 1, 2]
    assert trace.kept.tolist() == [3, 2]
    assert trace.suppressed_by.tolist() == [3, 3, -1, -1]
    assert trace.iou[0].item() == pytest.approx(0.9)
    assert trace.iou[3].item() == 0.0
    # another class is never removed
    other = nms_trace(boxes, scores, 0.5, classes=torch.tensor([0, 1, 0, 0]))
    assert other.kept.tolist() == [3, 1, 2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_trace_keeps_what_batched_nms_keeps(seed):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(150, 2, generator=gen) * 80
    boxes = torch.cat((xy, xy + 5 + torch.rand(150, 2, generator=gen) * 30), 1)
    scores = torch.rand(150, generator=gen)
    classes = torch.randint(0, 3, (150,), generator=gen)
    for threshold in (0.3, 0.45, 0.7):
        trace = nms_trace(boxes, scores, threshold, classes)
        assert trace.kept.tolist() == batched_nms(boxes, scores, classes, threshold).tolist()
        removed = trace.suppressed_by >= 0
        # every removed box was removed by a kept box of its class, scored higher, above the threshold
        by = trace.suppressed_by[removed]
        assert set(by.tolist()) <= set(trace.kept.tolist())
        assert (classes[by] == classes[removed]).all() and (scores[by] >= scores[removed]).all()
        assert (trace.iou[removed] > threshold).all()
        assert int((~removed).sum()) == len(trace.kept)
    assert nms_trace(boxes, scores, 0.45).kept.tolist() == nms(boxes, scores, 0.45).tolist()


def test_nms_trace_rejects_bad_classes():
    with pytest.raises(ValueError, match="classes"):
        nms_trace(torch.zeros(2, 4), torch.zeros(2), 0.5, classes=torch.zeros(3))
