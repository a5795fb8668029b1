"""Tests for yolov2_lib.loss: the gradient is darknet's region-layer delta.

The reference below is a loop-by-loop Python transcription of darknet's
``forward_region_layer`` (src/region_layer.c, YOLO v2 era, ``bias_match=1``,
softmax classes): it fills ``delta`` for every raw output number exactly as the C
code does, including the order in which later writes overwrite earlier ones.
The loss must satisfy ``d total / d output = -delta / B``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from yolov2_lib.loss import LossOutput, RegionStats, YOLOv2Loss

VOC_ANCHORS = [(1.3221, 1.73145), (3.19275, 4.00944), (5.05587, 8.09892), (9.47112, 4.84053), (11.2364, 10.0071)]


# ---------------------------------------------------------------- the darknet reference


def _logistic(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _overlap(x1: float, w1: float, x2: float, w2: float) -> float:
    left = max(x1 - w1 / 2, x2 - w2 / 2)
    right = min(x1 + w1 / 2, x2 + w2 / 2)
    return right - left


def _box_iou(a: tuple, b: tuple) -> float:
    """darknet's box_iou on (x, y, w, h) boxes."""
    w = _overlap(a[0], a[2], b[0], b[2])
    h = _overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if (w < 0 or h < 0) else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union


def darknet_region_delta(output, targets, anchors, num_classes, seen, *, object_scale=5.0,
                         noobject_scale=1.0, class_scale=1.0, coord_scale=1.0, thresh=0.6,
                         rescore=True, warmup=12800, prior_scale=0.01):
    """(delta of the same shape as output, stats dict), darknet's forward_region_layer in float64."""
    x = output.detach().double().numpy()  # (B, A*(5+C), H, W)
    B, _, H, W = x.shape
    A, C = len(anchors), num_classes
    S = 5 + C
    delta = np.zeros_like(x)
    truths = [t.detach().double().numpy().reshape(-1, 5) for t in targets]

    def ch(a, e):
        return a * S + e

    def region_box(b, a, j, i):  # get_region_box with DOABS
        return ((i + _logistic(x[b, ch(a, 0), j, i])) / W,
                (j + _logistic(x[b, ch(a, 1), j, i])) / H,
                math.exp(x[b, ch(a, 2), j, i]) * anchors[a][0] / W,
                math.exp(x[b, ch(a, 3), j, i]) * anchors[a][1] / H)

    def delta_region_box(truth, b, a, j, i, scale):
        pred = region_box(b, a, j, i)
        iou = _box_iou(pred, truth)
        tx = truth[0] * W - i
        ty = truth[1] * H - j
        tw = math.log(truth[2] * W / anchors[a][0])
        th = math.log(truth[3] * H / anchors[a][1])
        sx = _logistic(x[b, ch(a, 0), j, i])
        sy = _logistic(x[b, ch(a, 1), j, i])
        delta[b, ch(a, 0), j, i] = scale * (tx - sx) * (1 - sx) * sx
        delta[b, ch(a, 1), j, i] = scale * (ty - sy) * (1 - sy) * sy
        delta[b, ch(a, 2), j, i] = scale * (tw - x[b, ch(a, 2), j, i])
        delta[b, ch(a, 3), j, i] = scale * (th - x[b, ch(a, 3), j, i])
        return iou

    stats = dict(iou=0.0, cat=0.0, obj=0.0, anyobj=0.0, recall=0.0, count=0, masked=0)
    for b in range(B):
        for j in range(H):
            for i in range(W):
                for a in range(A):
                    pred = region_box(b, a, j, i)
                    best_iou = 0.0
                    for t in truths[b]:
                        iou = _box_iou(pred, tuple(t[1:]))
                        if iou > best_iou:
                            best_iou = iou
                    so = _logistic(x[b, ch(a, 4), j, i])
                    stats["anyobj"] += so
                    delta[b, ch(a, 4), j, i] = noobject_scale * (0 - so) * (1 - so) * so
                    if best_iou > thresh:
                        delta[b, ch(a, 4), j, i] = 0
                        stats["masked"] += 1
                    if seen < warmup:
                        prior = ((i + .5) / W, (j + .5) / H, anchors[a][0] / W, anchors[a][1] / H)
                        delta_region_box(prior, b, a, j, i, prior_scale)
        for t in truths[b]:
            cls, truth = int(t[0]), tuple(t[1:])
            i = min(int(truth[0] * W), W - 1)  # the library's documented clamp for a centre at 1.0
            j = min(int(truth[1] * H), H - 1)
            best_iou, best_n = 0.0, 0
            for n in range(A):
                iou = _box_iou((0, 0, anchors[n][0] / W, anchors[n][1] / H), (0, 0, truth[2], truth[3]))
                if iou > best_iou:
                    best_iou, best_n = iou, n
            iou = delta_region_box(truth, b, best_n, j, i, coord_scale * (2 - truth[2] * truth[3]))
            stats["recall"] += iou > .5
            stats["iou"] += iou
            so = _logistic(x[b, ch(best_n, 4), j, i])
            stats["obj"] += so
            delta[b, ch(best_n, 4), j, i] = object_scale * ((iou if rescore else 1.0) - so) * (1 - so) * so
            logits = x[b, ch(best_n, 5):ch(best_n, 5) + C, j, i]
            p = np.exp(logits - logits.max())
            p /= p.sum()
            for k in range(C):
                delta[b, ch(best_n, 5 + k), j, i] = class_scale * ((k == cls) - p[k])
            stats["cat"] += p[cls]
            stats["count"] += 1
    return delta, stats


# ---------------------------------------------------------------- helpers


def random_targets(gen: torch.Generator, counts: list[int], num_classes: int) -> list[torch.Tensor]:
    out = []
    for n in counts:
        cls = torch.randint(0, num_classes, (n, 1), generator=gen).double()
        centre = torch.rand(n, 2, generator=gen, dtype=torch.float64)
        size = 0.02 + 0.9 * torch.rand(n, 2, generator=gen, dtype=torch.float64)
        out.append(torch.cat((cls, centre, size), dim=1))
    return out


def check_against_darknet(output, targets, anchors, num_classes, seen, **kwargs):
    loss_fn = YOLOv2Loss(anchors, num_classes, **kwargs)
    output = output.detach().clone().double().requires_grad_(True)
    result = loss_fn(output, targets, seen)
    result.total.backward()
    rename = {"prior_scale": "prior_scale", "warmup_images": "warmup"}
    ref_kwargs = {rename.get(k, k): v for k, v in kwargs.items()}
    delta, stats = darknet_region_delta(output, targets, anchors, num_classes, seen, **ref_kwargs)
    B = output.shape[0]
    np.testing.assert_allclose(output.grad.numpy(), -delta / B, rtol=0, atol=1e-9)
    # darknet's diagnostics
    count = stats["count"]
    assert result.stats.count == count
    A, H, W = len(anchors), output.shape[2], output.shape[3]
    assert float(result.stats.avg_noobj) == pytest.approx(stats["anyobj"] / (B * H * W * A), abs=1e-12)
    if count:
        assert float(result.stats.avg_iou) == pytest.approx(stats["iou"] / count, abs=1e-12)
        assert float(result.stats.avg_class) == pytest.approx(stats["cat"] / count, abs=1e-12)
        assert float(result.stats.avg_obj) == pytest.approx(stats["obj"] / count, abs=1e-12)
        assert float(result.stats.recall) == pytest.approx(stats["recall"] / count, abs=1e-12)
    else:
        assert math.isnan(float(result.stats.avg_iou))
    return result, stats


# ---------------------------------------------------------------- gradient == darknet delta


@pytest.mark.parametrize("seen", [0, 12799, 12800, 50000])
@pytest.mark.parametrize("rescore", [True, False])
def test_gradient_matches_darknet_random(seen, rescore):
    gen = torch.Generator().manual_seed(seen + rescore)
    anchors = [(0.8, 1.1), (2.0, 1.5), (3.5, 4.0)]
    B, A, C, H, W = 4, 3, 4, 5, 7  # a non-square grid
    output = torch.randn(B, A * (5 + C), H, W, generator=gen, dtype=torch.float64)
    targets = random_targets(gen, [0, 1, 3, 25], C)  # an empty image and a crowded one
    result, stats = check_against_darknet(output, targets, anchors, C, seen, rescore=rescore)
    if seen >= 12800:
        assert float(result.prior.detach()) == 0.0
    else:
        assert float(result.prior.detach()) > 0.0


def test_gradient_matches_darknet_voc_head_13x13():
    gen = torch.Generator().manual_seed(7)
    B, C, H = 2, 20, 13
    output = 0.5 * torch.randn(B, 5 * (5 + C), H, H, generator=gen, dtype=torch.float64)
    targets = random_targets(gen, [4, 9], C)
    check_against_darknet(output, targets, VOC_ANCHORS, C, seen=640)


def test_gradient_matches_darknet_with_custom_scales():
    gen = torch.Generator().manual_seed(3)
    anchors = [(1.0, 1.0), (2.5, 1.2)]
    output = torch.randn(3, 2 * (5 + 3), 4, 6, generator=gen, dtype=torch.float64)
    targets = random_targets(gen, [2, 5, 0], 3)
    check_against_darknet(output, targets, anchors, 3, seen=0, object_scale=2.5, noobject_scale=0.7,
                          class_scale=1.3, coord_scale=1.9, thresh=0.4, prior_scale=0.05,
                          warmup_images=100)


def test_two_truths_on_one_anchor_the_later_wins():
    anchors = [(1.0, 1.0), (3.0, 3.0)]
    C, H, W = 3, 4, 4
    gen = torch.Generator().manual_seed(11)
    output = torch.randn(1, 2 * (5 + C), H, W, generator=gen, dtype=torch.float64)
    # Both centres in cell (i=1, j=2), both small: both pick anchor 0 there.
    first = [0.0, 0.30, 0.55, 0.20, 0.25]
    second = [2.0, 0.45, 0.70, 0.25, 0.22]
    other = [1.0, 0.9, 0.1, 0.8, 0.7]
    targets = [torch.tensor([first, other, second], dtype=torch.float64)]
    result, _ = check_against_darknet(output, targets, anchors, C, seen=0)
    # And the loss's class term is the later truth's class only.
    swapped = [torch.tensor([second, other, first], dtype=torch.float64)]
    loss_fn = YOLOv2Loss(anchors, C)
    assert not torch.allclose(loss_fn(output, swapped, 0).cls, result.cls)
    check_against_darknet(output, swapped, anchors, C, seen=0)


def test_anchors_overlapping_a_truth_above_thresh_get_no_noobject_penalty():
    anchors = [(1.0, 1.0), (1.2, 0.9), (1.1, 1.3)]
    C, H, W = 2, 3, 3
    gen = torch.Generator().manual_seed(5)
    output = torch.randn(2, 3 * (5 + C), H, W, generator=gen, dtype=torch.float64)
    # In cell (i=1, j=1) of image 0, make every anchor predict the same box, the truth.
    box = (0.47, 0.52, 0.36, 0.40)  # cx, cy, w, h
    view = output.view(2, 3, 5 + C, H, W)
    for a, (pw, ph) in enumerate(anchors):
        view[0, a, 0, 1, 1] = math.log((box[0] * W - 1) / (1 - (box[0] * W - 1)))
        view[0, a, 1, 1, 1] = math.log((box[1] * H - 1) / (1 - (box[1] * H - 1)))
        view[0, a, 2, 1, 1] = math.log(box[2] * W / pw)
        view[0, a, 3, 1, 1] = math.log(box[3] * H / ph)
    targets = [torch.tensor([[1.0, *box]], dtype=torch.float64), torch.zeros(0, 5, dtype=torch.float64)]
    for seen in (0, 20000):
        result, stats = check_against_darknet(output, targets, anchors, C, seen=seen)
        assert stats["masked"] == 3  # the responsible anchor and the two others
        assert float(result.stats.avg_iou) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    B=st.integers(1, 3),
    A=st.integers(1, 3),
    C=st.integers(1, 4),
    H=st.integers(1, 4),
    W=st.integers(1, 4),
    seen=st.sampled_from([0, 20000]),
    rescore=st.booleans(),
)
def test_gradient_matches_darknet_property(seed, B, A, C, H, W, seen, rescore):
    gen = torch.Generator().manual_seed(seed)
    anchors = (0.3 + 3 * torch.rand(A, 2, generator=gen, dtype=torch.float64)).tolist()
    output = torch.randn(B, A * (5 + C), H, W, generator=gen, dtype=torch.float64)
    counts = torch.randint(0, 6, (B,), generator=gen).tolist()
    check_against_darknet(output, random_targets(gen, counts, C), anchors, C, seen, rescore=rescore)


def test_centre_on_the_far_edge_belongs_to_the_last_cell():
    anchors = [(1.0, 1.0), (2.0, 2.0)]
    output = torch.randn(1, 2 * 7, 3, 5, dtype=torch.float64)
    targets = [torch.tensor([[1.0, 1.0, 1.0, 0.3, 0.3], [0.0, 0.0, 0.0, 0.2, 0.1]], dtype=torch.float64)]
    check_against_darknet(output, targets, anchors, 2, seen=0)


# ---------------------------------------------------------------- values by hand


def test_hand_computed_value():
    # One cell, one anchor (1 x 1 cell), two classes, every raw output 0:
    # sigmoid = 0.5, predicted box = the whole image, softmax = (0.5, 0.5).
    # Truth: class 0, centred, 0.5 x 0.5.
    #   coord: weight 2 - 0.25 = 1.75; t_x = t_y = 0.5 (no error); t_w = t_h = log(0.5):
    #          0.5 * 1.75 * 2 * log(2)^2 = 1.75 log(2)^2
    #   obj:   IoU(pred, truth) = 0.25 / 1 -> 0.5 * 5 * (0.25 - 0.5)^2 = 0.15625
    #   cls:   cross-entropy of (0.5, 0.5) = log 2
    #   no-object and prior: the only anchor is responsible -> 0
    loss_fn = YOLOv2Loss([[1.0, 1.0]], 2)
    output = torch.zeros(1, 7, 1, 1, dtype=torch.float64)
    r = loss_fn(output, [torch.tensor([[0.0, 0.5, 0.5, 0.5, 0.5]], dtype=torch.float64)], seen=0)
    assert isinstance(r, LossOutput) and isinstance(r.stats, RegionStats)
    assert float(r.coord.detach()) == pytest.approx(1.75 * math.log(2) ** 2, abs=1e-12)
    assert float(r.obj.detach()) == pytest.approx(0.15625, abs=1e-12)
    assert float(r.cls.detach()) == pytest.approx(math.log(2), abs=1e-12)
    assert float(r.noobj.detach()) == 0.0 and float(r.prior.detach()) == 0.0
    assert float(r.total.detach()) == pytest.approx(1.75 * math.log(2) ** 2 + 0.15625 + math.log(2), abs=1e-12)
    assert float(r.stats.avg_iou) == pytest.approx(0.25)
    assert float(r.stats.recall) == 0.0
    assert str(r.stats).startswith("Region Avg IOU: 0.250000, Class: 0.500000, Obj: 0.500000")


def test_hand_computed_empty_image_value():
    # No truths: every anchor is free. Raw 0 -> sigmoid 0.5:
    #   noobj = 0.5 * 1 * 0.25 per anchor; prior: (0.5-0.5)^2 * 2 + 0 + 0 = 0.
    # Batch of 2 images, 2x3 grid, 2 anchors: 12 anchors per image, total / B.
    loss_fn = YOLOv2Loss([[1.0, 1.0], [2.0, 3.0]], 3)
    output = torch.zeros(2, 2 * 8, 2, 3, dtype=torch.float64)
    r = loss_fn(output, [torch.zeros(0, 5, dtype=torch.float64)] * 2, seen=0)
    assert float(r.noobj.detach()) == pytest.approx(0.5 * 0.25 * 12, abs=1e-12)
    assert float(r.prior.detach()) == 0.0 and float(r.coord.detach()) == 0.0 and float(r.obj.detach()) == 0.0 and float(r.cls.detach()) == 0.0
    assert r.stats.count == 0 and math.isnan(float(r.stats.recall))
    # With t_w = 1 everywhere the prior pulls with 0.5 * 0.01 * 1 per anchor.
    output[:, 2::8] = 1.0
    r = loss_fn(output, [torch.zeros(0, 5, dtype=torch.float64)] * 2, seen=0)
    assert float(r.prior.detach()) == pytest.approx(0.5 * 0.01 * 12, abs=1e-12)


def test_total_is_the_sum_of_its_terms():
    gen = torch.Generator().manual_seed(0)
    output = torch.randn(2, 5 * 25, 13, 13, generator=gen)
    targets = [t.float() for t in random_targets(gen, [3, 2], 20)]
    r = YOLOv2Loss(VOC_ANCHORS, 20)(output, targets, 0)
    assert torch.allclose(r.total, r.coord + r.obj + r.noobj + r.prior + r.cls)
    assert all(t.dim() == 0 for t in r[:6])


# ---------------------------------------------------------------- shapes, dtypes, devices


@pytest.mark.parametrize("size", [320, 416, 608])
def test_multi_scale_grids(size):
    H = size // 32
    gen = torch.Generator().manual_seed(size)
    output = torch.randn(2, 125, H, H, generator=gen, requires_grad=True)
    targets = [t.float() for t in random_targets(gen, [3, 0], 20)]
    r = YOLOv2Loss(VOC_ANCHORS, 20)(output, targets, 0)
    r.total.backward()
    assert torch.isfinite(r.total) and output.grad.shape == output.shape


def test_float32_agrees_with_float64():
    gen = torch.Generator().manual_seed(1)
    output = torch.randn(2, 125, 13, 13, generator=gen, dtype=torch.float64)
    targets = random_targets(gen, [5, 2], 20)
    loss_fn = YOLOv2Loss(VOC_ANCHORS, 20)
    r64 = loss_fn(output, targets, 0)
    r32 = loss_fn(output.float(), [t.float() for t in targets], 0)
    assert r32.total.dtype == torch.float32
    assert float(r32.total.detach()) == pytest.approx(float(r64.total.detach()), rel=1e-5)


def test_bfloat16_under_autocast_computes_in_float32():
    gen = torch.Generator().manual_seed(2)
    output = torch.randn(2, 125, 13, 13, generator=gen).bfloat16().requires_grad_(True)
    targets = [t.float() for t in random_targets(gen, [3, 1], 20)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = YOLOv2Loss(VOC_ANCHORS, 20)(output, targets, 0)
    r.total.backward()
    assert r.total.dtype == torch.float32 and torch.isfinite(r.total)
    assert output.grad.dtype == torch.bfloat16 and bool(torch.isfinite(output.grad).all())


def test_many_boxes_and_all_empty_batches():
    gen = torch.Generator().manual_seed(4)
    loss_fn = YOLOv2Loss(VOC_ANCHORS, 20)
    output = torch.randn(2, 125, 13, 13, generator=gen, requires_grad=True)
    crowded = [t.float() for t in random_targets(gen, [300, 150], 20)]
    r = loss_fn(output, crowded, 0)
    r.total.backward()
    assert r.stats.count == 450 and torch.isfinite(r.total)
    empty = loss_fn(output, [torch.zeros(0, 5), torch.zeros(0)], 0)
    assert float(empty.coord.detach()) == 0.0 and float(empty.cls.detach()) == 0.0 and float(empty.noobj.detach()) > 0


def test_module_moves_with_to_and_refuses_other_devices():
    loss_fn = YOLOv2Loss(VOC_ANCHORS, 20)
    assert loss_fn.anchors.shape == (5, 2) and loss_fn.num_anchors == 5
    meta = torch.empty(1, 125, 13, 13, device="meta")
    with pytest.raises(ValueError, match="loss.to"):
        loss_fn(meta, [torch.zeros(0, 5, device="meta")], 0)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "row, message",
    [
        ([0.0, 0.5, 0.5, 0.0, 0.2], "width and height must be positive"),
        ([0.0, 0.5, 0.5, 0.2, -0.1], "width and height must be positive"),
        ([0.0, 1.2, 0.5, 0.2, 0.2], r"centre must lie in \[0, 1\]"),
        ([0.0, 0.5, -0.01, 0.2, 0.2], r"centre must lie in \[0, 1\]"),
        ([20.0, 0.5, 0.5, 0.2, 0.2], "class must be an integer"),
        ([1.5, 0.5, 0.5, 0.2, 0.2], "class must be an integer"),
        ([1.0, float("nan"), 0.5, 0.2, 0.2], "values must be finite"),
    ],
)
def test_bad_targets_name_the_image_and_row(row, message):
    loss_fn = YOLOv2Loss(VOC_ANCHORS, 20)
    output = torch.zeros(2, 125, 13, 13)
    good = torch.tensor([[1.0, 0.5, 0.5, 0.2, 0.2]] * 3)
    bad = torch.tensor([[1.0, 0.5, 0.5, 0.2, 0.2], [1.0, 0.5, 0.5, 0.2, 0.2], row])
    with pytest.raises(ValueError, match=rf"targets\[1\] row 2: {message}"):
        loss_fn(output, [good, bad], 0)


def test_bad_shapes_and_arguments():
    loss_fn = YOLOv2Loss(VOC_ANCHORS, 20)
    output = torch.zeros(2, 125, 13, 13)
    with pytest.raises(ValueError, match="list of 2 tensors"):
        loss_fn(output, [torch.zeros(0, 5)], 0)
    with pytest.raises(ValueError, match=r"targets\[1\] of shape \(N, 5\)"):
        loss_fn(output, [torch.zeros(0, 5), torch.zeros(3, 4)], 0)
    with pytest.raises(ValueError, match="A\\*\\(5\\+C\\)"):
        loss_fn(torch.zeros(2, 124, 13, 13), [torch.zeros(0, 5)] * 2, 0)
    with pytest.raises(ValueError, match="seen"):
        loss_fn(output, [torch.zeros(0, 5)] * 2, -1)
    with pytest.raises(ValueError, match="anchor"):
        YOLOv2Loss([[1.0, -1.0]], 20)
    with pytest.raises(ValueError, match="anchor"):
        YOLOv2Loss([1.0, 2.0], 20)
    with pytest.raises(ValueError, match="num_classes"):
        YOLOv2Loss(VOC_ANCHORS, 0)


# ---------------------------------------------------------------- the core shown in chapter 6

from yolov2_lib.boxes import cxcywh_to_xyxy as _to_xyxy  # noqa: E402
from yolov2_lib.decode import decode_boxes as _decode_boxes  # noqa: E402
from yolov2_lib.layout import head_view as _head_view, split_fields as _split_fields  # noqa: E402


def test_assign_labels_every_anchor_once_and_terms_sum_to_the_loss():
    gen = torch.Generator().manual_seed(3)
    anchors, C = [[1.0, 1.5], [2.5, 2.0], [0.6, 0.5]], 4
    output = 0.5 * torch.randn(2, 3 * (5 + C), 5, 5, generator=gen, dtype=torch.float64)
    targets = random_targets(gen, [3, 2], C)
    loss = YOLOv2Loss(anchors, C, thresh=0.3)
    out = loss(output, targets, seen=0)
    truth, image, counts = loss._targets(targets, 2, output)
    fields = _split_fields(_head_view(output, 3))
    pred = _to_xyxy(_decode_boxes(torch.stack(fields[:4], -1), loss.anchors))
    a = loss.assign(pred, truth, image, counts)
    total = a.responsible.long() + a.ignored.long() + a.negative.long()
    assert (total == 1).all(), "each anchor is responsible, ignored or negative, exactly one"
    assert int(a.responsible.sum()) == int(a.wins.sum()) <= truth.shape[0]
    assert a.responsible[a.at].all()
    terms = loss.terms(fields, truth, a, seen=0)
    for name, value in zip(("coord", "obj", "noobj", "prior", "cls"), terms):
        torch.testing.assert_close(value / 2, getattr(out, name))


# ---------------------------------------------------------------- checking and comparing the loss


def test_central_differences_match_a_known_gradient_and_the_plain_loss():
    from yolov2_lib.loss import central_differences

    x = torch.linspace(-1.5, 2.0, 6, dtype=torch.float64).view(2, 3)
    torch.testing.assert_close(central_differences(lambda v: (v ** 3).sum(), x), 3 * x ** 2, rtol=1e-8, atol=1e-8)
    assert torch.equal(x, torch.linspace(-1.5, 2.0, 6, dtype=torch.float64).view(2, 3))  # x is untouched

    loss = YOLOv2Loss([(1.0, 1.5), (2.5, 2.0)], num_classes=2, rescore=False)
    truth = [torch.tensor([[0, 0.30, 0.40, 0.25, 0.35], [1, 0.70, 0.80, 0.50, 0.40]], dtype=torch.float64)]
    out = 0.5 * torch.randn(1, 14, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    f = lambda o: loss(o, truth, seen=0).total
    o = out.clone().requires_grad_(True)
    analytic = torch.autograd.grad(f(o), o)[0]
    with torch.no_grad():
        torch.testing.assert_close(central_differences(f, out), analytic, rtol=1e-6, atol=1e-8)


def test_loss_with_size_on_exp_changes_only_the_size_gradient_of_the_responsible_anchors():
    from yolov2_lib.layout import head_view
    from yolov2_lib.loss import loss_with_size_on_exp

    anchors = [(1.0, 1.5), (2.5, 2.0)]
    right = YOLOv2Loss(anchors, num_classes=2, coord_scale=2.0)
    truth = [torch.tensor([[0, 0.30, 0.40, 0.25, 0.35], [1, 0.70, 0.80, 0.50, 0.40]], dtype=torch.float64),
             torch.zeros(0, 5, dtype=torch.float64)]
    out = 0.5 * torch.randn(2, 14, 3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grads = []
    for f in (lambda o: right(o, truth, seen=10**6).total,
              lambda o: loss_with_size_on_exp(right, o, truth, seen=10**6).total):
        o = out.clone().requires_grad_(True)
        grads.append(head_view(torch.autograd.grad(f(o), o)[0], 2))  # (B, H, W, A, 5+C)
    raw = head_view(out, 2)
    responsible = torch.zeros_like(grads[0], dtype=torch.bool)
    for _, cx, cy, w, h in truth[0].tolist():
        a = 0  # shape IoU with anchor 0 / 1: 0.53 / 0.16 (0.75 x 1.05 cells), 0.57 / 0.36 (1.5 x 1.2 cells)
        i, j = int(cy * 3), int(cx * 3)
        responsible[0, i, j, a, 2:4] = True
        b_w, b_h = (anchors[a][k] * raw[0, i, j, a, 2 + k].exp().item() / 3 for k in (0, 1))
        expected = [2.0 * (2 - w * h) * (b - g) * b / 2 for b, g in ((b_w, w), (b_h, h))]  # / B = 2
        torch.testing.assert_close(grads[1][0, i, j, a, 2:4], torch.tensor(expected, dtype=torch.float64))
    assert responsible.sum() == 4
    torch.testing.assert_close(grads[1][~responsible], grads[0][~responsible])
    assert not torch.allclose(grads[1][responsible], grads[0][responsible])


def test_responsible_anchors_put_a_far_edge_centre_in_the_last_cell():
    from yolov2_lib.loss import responsible_anchors

    anchors = torch.tensor([[1.0, 1.0], [4.0, 2.0]])
    boxes = torch.tensor([[1.0, 1.0, 0.1, 0.1], [0.5, 0.25, 0.3, 0.15], [0.0, 0.999, 0.05, 0.05]])  # cx, cy, w, h
    rows, cols, best = responsible_anchors(boxes, anchors, 13, 13)
    assert rows.tolist() == [12, 3, 12] and cols.tolist() == [12, 6, 0]  # cx == 1: the last cell, not a 14th
    assert best.tolist() == [0, 1, 0]
