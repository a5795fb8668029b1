"""Tests for yolov2_lib.decode: direct location prediction and post-processing."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from yolov2_lib.boxes import box_iou, cxcywh_to_xyxy, xyxy_to_cxcywh
from yolov2_lib.decode import (
    decode,
    decode_boxes,
    encode_boxes,
    letterbox_params,
    letterbox_resized_size,
    postprocess,
)
from yolov2_lib.layout import head_view, split_fields

SETTINGS = settings(max_examples=50, deadline=None)
ANCHORS = torch.tensor([[1.0, 2.0], [3.0, 1.5]], dtype=torch.float64)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


# ---------------------------------------------------------------- decode / encode


def test_decode_boxes_hand_computed():
    H, W, A = 4, 5, 2
    t = torch.zeros(H, W, A, 4, dtype=torch.float64)
    t[2, 3, 1] = torch.tensor([0.0, logit(0.25), math.log(2.0), 0.0])
    boxes = decode_boxes(t, ANCHORS)
    # cell row 2, column 3, anchor 1 = (3, 1.5) cells
    torch.testing.assert_close(boxes[2, 3, 1], torch.tensor([(0.5 + 3) / 5, (0.25 + 2) / 4, 3 * 2 / 5, 1.5 / 4],
                                                            dtype=torch.float64))
    # t = 0 everywhere else: centre of the cell, anchor size
    torch.testing.assert_close(boxes[0, 0, 0], torch.tensor([0.5 / 5, 0.5 / 4, 1 / 5, 2 / 4], dtype=torch.float64))
    torch.testing.assert_close(boxes[3, 4, 0, :2], torch.tensor([4.5 / 5, 3.5 / 4], dtype=torch.float64))


def test_decode_boxes_batched_and_anchor_as_list():
    t = torch.randn(3, 2, 4, 5, 2, 4)
    boxes = decode_boxes(t, ANCHORS.tolist())
    assert boxes.shape == t.shape and boxes.dtype == t.dtype
    torch.testing.assert_close(boxes[1, 0], decode_boxes(t[1, 0], ANCHORS.float()))


grid_t = arrays("float64", (3, 4, 2, 4), elements=st.floats(-6, 6, allow_nan=False, allow_infinity=False))


@SETTINGS
@given(grid_t)
def test_decode_encode_round_trip(t):
    t = torch.from_numpy(t)
    boxes = decode_boxes(t, ANCHORS)
    torch.testing.assert_close(encode_boxes(boxes, ANCHORS), t, rtol=1e-7, atol=1e-7)


@SETTINGS
@given(arrays("float64", (3, 4, 2, 4), elements=st.floats(-30, 30, allow_nan=False, allow_infinity=False)))
def test_decoded_centre_stays_in_its_cell(t):
    t = torch.from_numpy(t)
    boxes = decode_boxes(t, ANCHORS)
    H, W = t.shape[0], t.shape[1]
    cols = (boxes[..., 0] * W).floor()
    rows = (boxes[..., 1] * H).floor()
    col_index = torch.arange(W, dtype=torch.float64).view(1, W, 1)
    row_index = torch.arange(H, dtype=torch.float64).view(H, 1, 1)
    # sigmoid may round to exactly 0 or 1 for |t| > ~37; within +-30 it stays inside
    assert bool(((cols == col_index) | (boxes[..., 0] * W == col_index + 1)).all())
    assert bool(((rows == row_index) | (boxes[..., 1] * H == row_index + 1)).all())
    assert bool((boxes[..., 2:] > 0).all())


@SETTINGS
@given(
    arrays("float64", (2, 3, 2, 2), elements=st.floats(0.01, 0.99)),
    arrays("float64", (2, 3, 2, 2), elements=st.floats(0.05, 3.0)),
)
def test_encode_decode_round_trip(offsets, sizes):
    H, W = 2, 3
    offsets, sizes = torch.from_numpy(offsets), torch.from_numpy(sizes)
    c_x = torch.arange(W, dtype=torch.float64).view(1, W, 1)
    c_y = torch.arange(H, dtype=torch.float64).view(H, 1, 1)
    boxes = torch.stack([(offsets[..., 0] + c_x) / W, (offsets[..., 1] + c_y) / H, sizes[..., 0], sizes[..., 1]], -1)
    torch.testing.assert_close(decode_boxes(encode_boxes(boxes, ANCHORS), ANCHORS), boxes)


def test_encode_hand_computed():
    boxes = torch.zeros(1, 2, 2, 4, dtype=torch.float64)
    boxes[..., :] = torch.tensor([0.25, 0.5, 0.5, 1.0], dtype=torch.float64)  # centre of cell (0, 0)
    boxes[0, 1] = torch.tensor([0.875, 0.5, 1.0, 0.5], dtype=torch.float64)  # column 1, offset 0.75
    t = encode_boxes(boxes, ANCHORS)
    torch.testing.assert_close(t[0, 0, 0], torch.tensor([0.0, 0.0, math.log(1.0), math.log(0.5)],
                                                        dtype=torch.float64))
    torch.testing.assert_close(t[0, 1, 1], torch.tensor([logit(0.75), 0.0, math.log(2 / 3), math.log(0.5 / 1.5)],
                                                        dtype=torch.float64))


def test_encode_errors_say_where():
    boxes = decode_boxes(torch.zeros(1, 2, 2, 4), ANCHORS.float())  # H=1, W=2, A=2; all valid
    bad = boxes.clone()
    bad[0, 1, 1, 0] = 0.25  # column 1 holds x in (0.5, 1); 0.25 is in column 0
    with pytest.raises(ValueError, match=r"outside its cell at index \[0, 1, 1\]"):
        encode_boxes(bad, ANCHORS.float())
    bad = boxes.clone()
    bad[0, 0, 0, 0] = 0.0  # on the cell border: logit would be -inf
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        encode_boxes(bad, ANCHORS.float())
    bad = boxes.clone()
    bad[0, 0, 1, 3] = 0.0
    with pytest.raises(ValueError, match=r"Non-positive box size at index \[0, 0, 1\]"):
        encode_boxes(bad, ANCHORS.float())


def test_anchor_checks():
    t = torch.zeros(2, 2, 2, 4)
    with pytest.raises(ValueError, match="2 anchors were given|anchors per cell"):
        decode_boxes(t, torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        decode_boxes(t, torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\(A, 2\)"):
        decode_boxes(t, torch.ones(2, 3))


# ---------------------------------------------------------------- decode the raw head


def test_decode_matches_layout_and_normalises():
    A, C, H, W = 2, 3, 4, 5
    raw = torch.randn(2, A * (5 + C), H, W, dtype=torch.float64)
    out = decode(raw, ANCHORS, C)
    fields = split_fields(head_view(raw, A))
    t = torch.stack([fields.tx, fields.ty, fields.tw, fields.th], dim=-1)
    torch.testing.assert_close(out.boxes, decode_boxes(t, ANCHORS))
    torch.testing.assert_close(out.objectness, torch.sigmoid(fields.to))
    torch.testing.assert_close(out.class_probs, torch.softmax(fields.class_logits, -1))
    torch.testing.assert_close(out.class_probs.sum(-1), torch.ones(2, H, W, A, dtype=torch.float64))
    assert out.class_probs.shape == (2, H, W, A, C)


def test_decode_channel_mismatch():
    with pytest.raises(ValueError, match=r"need A\*\(5\+C\) = 16"):
        decode(torch.zeros(1, 15, 2, 2), ANCHORS, 3)


# ---------------------------------------------------------------- postprocess


def strong_raw(H: int, W: int, C: int, detections, anchors=ANCHORS) -> torch.Tensor:
    """A raw head tensor with confident boxes at chosen places, everything else silent.

    ``detections``: list of (row, col, anchor, normalised cxcywh box, class, objectness logit).
    """
    A = anchors.shape[0]
    raw = torch.zeros(1, A * (5 + C), H, W, dtype=torch.float64)
    view = head_view(raw, A)
    view[..., 4] = -30.0  # objectness ~ 1e-13 everywhere
    for row, col, a, box, cls, obj in detections:
        boxes = decode_boxes(torch.zeros(H, W, A, 4, dtype=torch.float64), anchors)  # valid filler
        boxes[row, col, a] = torch.tensor(box, dtype=torch.float64)
        view[0, row, col, a, :4] = encode_boxes(boxes, anchors)[row, col, a]
        view[0, row, col, a, 4] = obj
        view[0, row, col, a, 5 + cls] = 20.0  # class probability ~ 1
    return raw


def test_postprocess_one_strong_box_in_pixels():
    H = W = 13
    box = (0.4, 0.3, 0.2, 0.1)  # cxcywh, centre in column 5, row 3
    raw = strong_raw(H, W, 4, [(3, 5, 1, box, 2, 20.0)])
    (det,) = postprocess(raw, ANCHORS, 4, image_sizes=[(500, 375)])
    assert det.shape == (1, 6)
    expected = cxcywh_to_xyxy(torch.tensor(box, dtype=torch.float64)) * torch.tensor([500, 375, 500, 375])
    torch.testing.assert_close(det[0, :4], expected.to(det.dtype))
    assert det[0, 5].item() == 2.0
    assert det[0, 4].item() == pytest.approx(1.0, abs=1e-6)
    (normalised,) = postprocess(raw, ANCHORS, 4)
    torch.testing.assert_close(normalised[0, :4], cxcywh_to_xyxy(torch.tensor(box, dtype=torch.float64)))


def test_postprocess_undoes_letterbox():
    H = W = 13
    image, net = (500, 250), (416, 416)
    scale, pad_x, pad_y = letterbox_params(image, net)
    new_w, new_h = letterbox_resized_size(image, net)
    assert (scale, pad_x, pad_y, new_w, new_h) == (0.832, 0, 104, 416, 208)
    original = torch.tensor([100.0, 50.0, 300.0, 200.0], dtype=torch.float64)  # xyxy in the image
    fx, fy = new_w / image[0], new_h / image[1]
    x1, y1, x2, y2 = original.tolist()
    in_net = torch.tensor([x1 * fx + pad_x, y1 * fy + pad_y, x2 * fx + pad_x, y2 * fy + pad_y],
                          dtype=torch.float64) / 416  # normalised xyxy in the network input
    cx, cy, w, h = xyxy_to_cxcywh(in_net).tolist()
    raw = strong_raw(H, W, 3, [(int(cy * H), int(cx * W), 0, (cx, cy, w, h), 1, 20.0)])
    (det,) = postprocess(raw, ANCHORS, 3, image_sizes=torch.tensor([image]), letterbox=True, input_size=net)
    assert det.shape == (1, 6)
    torch.testing.assert_close(det[0, :4], original, rtol=0, atol=1e-6)
    (stretched,) = postprocess(raw, ANCHORS, 3, image_sizes=[image])  # without undoing: a different box
    assert not torch.allclose(stretched[0, :4], original, atol=1.0)


def test_letterbox_params_darknet_example():
    assert letterbox_params((500, 333), (416, 416)) == (0.832, 0, 69)
    assert letterbox_resized_size((500, 333), (416, 416)) == (416, 277)
    assert letterbox_params((416, 416), (416, 416)) == (1.0, 0, 0)
    with pytest.raises(ValueError, match="positive image_size"):
        letterbox_params((0, 10), (416, 416))


def test_postprocess_threshold_top_k_and_nms():
    H = W = 13
    a = (0.2, 0.2, 0.2, 0.2)
    b = (0.7, 0.7, 0.2, 0.2)
    b_shifted = (0.71, 0.69, 0.2, 0.2)  # heavy overlap with b, other cell, same class
    dets = [
        (2, 2, 0, a, 0, logit(0.3)),
        (9, 9, 0, b, 1, logit(0.6)),
        (8, 9, 1, b_shifted, 1, logit(0.5)),
    ]
    raw = strong_raw(H, W, 2, dets)
    (all_det,) = postprocess(raw, ANCHORS, 2)
    assert all_det[:, 5].tolist() == [1.0, 0.0]  # b_shifted suppressed by b (same class)
    torch.testing.assert_close(all_det[:, 4], torch.tensor([0.6, 0.3], dtype=torch.float64), atol=1e-6, rtol=0)
    (high,) = postprocess(raw, ANCHORS, 2, conf_threshold=0.4)
    assert high.shape == (1, 6) and high[0, 5].item() == 1.0
    (top1,) = postprocess(raw, ANCHORS, 2, top_k=1)
    assert top1.shape == (1, 6) and top1[0, 4].item() == pytest.approx(0.6, abs=1e-6)
    (loose,) = postprocess(raw, ANCHORS, 2, nms_threshold=0.99)
    assert loose.shape[0] == 3
    iou = box_iou(loose[:2, :4], loose[:2, :4])[0, 1]
    assert iou > 0.45


def test_postprocess_every_class_above_threshold_is_a_candidate():
    H = W = 13
    raw = strong_raw(H, W, 3, [(6, 6, 0, (0.5, 0.5, 0.3, 0.3), 0, 20.0)])
    view = head_view(raw, 2)
    view[0, 6, 6, 0, 5:] = torch.tensor([0.0, 0.0, -50.0], dtype=torch.float64)  # two classes at 0.5
    (det,) = postprocess(raw, ANCHORS, 3)
    assert sorted(det[:, 5].tolist()) == [0.0, 1.0]
    torch.testing.assert_close(det[0, :4], det[1, :4])


def test_postprocess_batch_sizes_and_errors():
    raw = torch.cat([strong_raw(13, 13, 2, [(1, 1, 0, (0.1, 0.1, 0.1, 0.1), 0, 20.0)]),
                     strong_raw(13, 13, 2, [(6, 6, 1, (0.5, 0.5, 0.4, 0.4), 1, 20.0)])])
    dets = postprocess(raw, ANCHORS, 2, image_sizes=[(100, 100), (200, 50)])
    assert [d.shape[0] for d in dets] == [1, 1]
    torch.testing.assert_close(dets[1][0, :4], torch.tensor([60.0, 15.0, 140.0, 35.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="Expected 2 image_sizes"):
        postprocess(raw, ANCHORS, 2, image_sizes=[(100, 100)])
    with pytest.raises(ValueError, match="input_size"):
        postprocess(raw, ANCHORS, 2, image_sizes=[(100, 100)] * 2, letterbox=True)


def test_postprocess_clips_to_image():
    raw = strong_raw(13, 13, 2, [(0, 0, 0, (0.05, 0.05, 0.3, 0.3), 0, 20.0)])
    (det,) = postprocess(raw, ANCHORS, 2, image_sizes=[(200, 100)])
    torch.testing.assert_close(det[0, :4], torch.tensor([0.0, 0.0, 40.0, 20.0], dtype=torch.float64))
    (unclipped,) = postprocess(raw, ANCHORS, 2, image_sizes=[(200, 100)], clip=False)
    assert unclipped[0, 0].item() == pytest.approx(-20.0)


@pytest.mark.parametrize("seed", range(6))
def test_postprocess_early_stop_equals_the_full_nms_truncated(seed):
    """postprocess runs NMS on the best candidates first and stops at top_k: exact, ties included."""
    g = torch.Generator().manual_seed(seed)
    num_classes = 1 + seed % 4
    anchors = torch.tensor([[1.0, 1.5], [2.0, 2.0], [3.5, 2.5]])
    raw = torch.randn(2, 3 * (5 + num_classes), 7, 7, generator=g) * 3
    raw = (raw * 2).round() / 2  # many equal scores
    full = postprocess(raw, anchors, num_classes, conf_threshold=0.0, nms_threshold=0.5, top_k=None)
    assert max(len(d) for d in full) > 30
    for k in (1, 5, 30):
        short = postprocess(raw, anchors, num_classes, conf_threshold=0.0, nms_threshold=0.5, top_k=k)
        for s, f in zip(short, full):
            assert torch.equal(s, f[:k])


# ---------------------------------------------------------------- class scores and candidates

from yolov2_lib.boxes import batched_nms  # noqa: E402
from yolov2_lib.decode import Candidates, candidates, class_scores, decode, postprocess  # noqa: E402


def test_class_scores_are_objectness_times_class_probability():
    raw = torch.randn(2, 2 * 8, 3, 4, generator=torch.Generator().manual_seed(0))
    d = decode(raw, [[1.0, 1.0], [2.0, 3.0]], 3)
    s = class_scores(d)
    assert s.shape == (2, 3, 4, 2, 3)
    torch.testing.assert_close(s, d.objectness[..., None] * d.class_probs)
    torch.testing.assert_close(s.sum(-1), d.objectness)  # the class probabilities sum to 1


def test_candidates_then_nms_is_postprocess():
    gen = torch.Generator().manual_seed(1)
    anchors = [[1.0, 1.5], [2.0, 1.0], [3.0, 3.0]]
    raw = 2 * torch.randn(1, 3 * 9, 5, 5, generator=gen)
    cand = candidates(raw, anchors, 4, 0.1, image_size=(200, 100))
    assert isinstance(cand, Candidates)
    assert (cand.scores > 0.1).all() and cand.boxes.shape == (len(cand.scores), 4)
    expected = class_scores(decode(raw, anchors, 4))[0].reshape(-1, 4)
    torch.testing.assert_close(cand.scores, expected[cand.anchor_index, cand.classes])
    assert int((expected > 0.1).sum()) == len(cand.scores)
    keep = batched_nms(cand.boxes, cand.scores, cand.classes, 0.45)
    det = postprocess(raw, anchors, 4, conf_threshold=0.1, top_k=None, image_sizes=[(200, 100)], clip=False)[0]
    torch.testing.assert_close(det[:, :4], cand.boxes[keep])
    torch.testing.assert_close(det[:, 4], cand.scores[keep])
    normalised = candidates(raw, anchors, 4, 0.1)
    torch.testing.assert_close(normalised.boxes * torch.tensor([200.0, 100, 200, 100]), cand.boxes)
    with pytest.raises(ValueError, match="index"):
        candidates(raw, anchors, 4, 0.1, index=1)
