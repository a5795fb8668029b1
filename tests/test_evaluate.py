"""Tests for yolov2_lib.evaluate: PASCAL VOC AP as the official code computes it.

Hand-worked cases check each rule of the devkit; an independent reference, a
transcription of py-faster-rcnn's ``voc_eval.py`` (one class at a time, a loop
over detections), checks random problems. The transcription differs from the
original only where the library documents it: a stable sort on tied scores, a
precision guarded against 0 / 0, and optional ``>=`` / exclusive-pixel modes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from yolov2_lib.evaluate import (
    AP_RULES,
    VOCEvaluator,
    VOCResult,
    average_precision,
    evaluate_voc,
    match_detections,
    precision_envelope,
    recall_levels,
    sampled_precision,
    voc_ap,
)

# ---------------------------------------------------------------- the voc_eval.py reference


def ref_voc_ap(rec, prec, use_07_metric=False):
    """voc_eval.py's voc_ap, verbatim."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            if np.sum(rec >= t) == 0:
                p = 0
            else:
                p = np.max(prec[rec >= t])
            ap = ap + p / 11.0
    else:
        mrec = np.concatenate(([0.0], rec, [1.0]))
        mpre = np.concatenate(([0.0], prec, [0.0]))
        for i in range(mpre.size - 1, 0, -1):
            mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
        i = np.where(mrec[1:] != mrec[:-1])[0]
        ap = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
    return ap


def ref_voc_eval(dets, gts, classname, ovthresh=0.5, use_07_metric=False, inclusive=True, strict=True):
    """voc_eval.py's voc_eval on in-memory arrays: (rec, prec, ap) of one class."""
    one = 1.0 if inclusive else 0.0
    class_recs = {}
    npos = 0
    for image, g in enumerate(gts):
        R = g[g[:, 4] == classname]
        difficult = R[:, 5].astype(bool)
        npos = npos + sum(~difficult)
        class_recs[image] = {"bbox": R[:, :4], "difficult": difficult, "det": [False] * len(R)}
    image_ids, confidence, BB = [], [], []
    for image, d in enumerate(dets):
        for row in d[d[:, 5] == classname]:
            image_ids.append(image)
            confidence.append(row[4])
            BB.append(row[:4])
    confidence = np.array(confidence)
    BB = np.array(BB).reshape(-1, 4)
    sorted_ind = np.argsort(-confidence, kind="stable")
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp = np.zeros(nd)
    fp = np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :].astype(float)
        ovmax = -np.inf
        BBGT = R["bbox"].astype(float)
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + one, 0.0)
            ih = np.maximum(iymax - iymin + one, 0.0)
            inters = iw * ih
            uni = ((bb[2] - bb[0] + one) * (bb[3] - bb[1] + one)
                   + (BBGT[:, 2] - BBGT[:, 0] + one) * (BBGT[:, 3] - BBGT[:, 1] + one) - inters)
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if (ovmax > ovthresh) if strict else (ovmax >= ovthresh):
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp = np.cumsum(fp)
    tp = np.cumsum(tp)
    rec = tp / float(npos) if npos > 0 else None
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    ap = ref_voc_ap(rec, prec, use_07_metric) if npos > 0 else float("nan")
    return rec, prec, ap


def random_problem(rng: np.random.Generator, num_images: int, num_classes: int, integer: bool):
    """Detections near (and far from) ground truths, with tied scores and difficult objects."""
    dets, gts = [], []
    for _ in range(num_images):
        m = int(rng.integers(0, 5))
        xy = rng.uniform(0, 60, (m, 2))
        wh = rng.uniform(2, 40, (m, 2))
        g = np.c_[xy, xy + wh, rng.integers(0, num_classes, m), rng.random(m) < 0.25]
        if integer:
            g[:, :4] = np.round(g[:, :4])
        gts.append(g)
        n = int(rng.integers(0, 9))
        if m > 0:
            base = g[rng.integers(0, m, n), :4]
            cls = np.where(rng.random(n) < 0.75, g[rng.integers(0, m, n), 4], rng.integers(0, num_classes, n))
        else:
            base = np.c_[rng.uniform(0, 60, (n, 2)), rng.uniform(60, 100, (n, 2))]
            cls = rng.integers(0, num_classes, n)
        b = base + rng.normal(0, 4, (n, 4))
        if integer:
            b = np.round(b)
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2])
        scores = np.round(rng.random(n), 1)  # few distinct values: many ties
        dets.append(np.c_[b, scores, cls].reshape(n, 6))
    return dets, gts


def box(x1, y1, x2, y2):
    return [float(x1), float(y1), float(x2), float(y2)]


# ---------------------------------------------------------------- hand-worked cases


def test_hand_worked_tp_duplicate_difficult_miss():
    # GT: A (0,0,9,9) and B (50,50,59,59); D (20,20,29,29) is difficult. npos = 2.
    # Detections by score: .9 on A -> TP; .8 on A -> duplicate FP; .7 on D -> ignored;
    # .6 far away -> FP; .5 on B -> TP.
    #   tp 1 1 1 1 2, fp 0 1 1 2 2 -> recall .5 .5 .5 .5 1, precision 1 .5 .5 1/3 .5
    #   11-point: t = 0 .. .5 -> 1 (six levels); t = .6 .. 1 -> .5 (five): 8.5 / 11
    #   area: .5 * 1 + .5 * .5 = .75
    gts = [np.array([box(0, 0, 9, 9) + [0, 0], box(50, 50, 59, 59) + [0, 0], box(20, 20, 29, 29) + [0, 1]])]
    dets = [np.array([
        box(0, 0, 9, 9) + [0.9, 0],
        box(0, 0, 9, 9) + [0.8, 0],
        box(20, 20, 29, 29) + [0.7, 0],
        box(80, 80, 90, 90) + [0.6, 0],
        box(50, 50, 59, 59) + [0.5, 0],
    ])]
    r = evaluate_voc(dets, gts, num_classes=1)
    assert r.ap_11point[0] == pytest.approx(8.5 / 11)
    assert r.ap_area[0] == pytest.approx(0.75)
    assert r.map_11point == pytest.approx(8.5 / 11) and r.map_area == pytest.approx(0.75)
    np.testing.assert_allclose(r.recall[0], [0.5, 0.5, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(r.precision[0], [1, 0.5, 0.5, 1 / 3, 0.5])
    assert r.tp[0].tolist() == [True, False, False, False, True]
    assert r.num_positives.tolist() == [2] and r.num_detections.tolist() == [5]


def test_threshold_exactly_half_strict_and_devkit():
    # Inclusive pixels: GT (0,0,9,9) is 10 x 10 = 100, detection (0,0,9,4) is 10 x 5 = 50,
    # intersection 50, union 100: IoU = 0.5 exactly.
    gts = [np.array([box(0, 0, 9, 9) + [0, 0]])]
    dets = [np.array([box(0, 0, 9, 4) + [0.9, 0]])]
    assert evaluate_voc(dets, gts, 1, strict=True).ap_11point[0] == 0.0  # voc_eval: IoU > 0.5
    # (11 sums of 1/11 give 1.0000000000000002 in voc_eval.py too, hence approx)
    assert evaluate_voc(dets, gts, 1, strict=False).ap_11point[0] == pytest.approx(1.0)  # devkit: IoU >= 0.5
    # Continuous boxes: 9 x 9 = 81 and 9 x 4 = 36, IoU = 36 / 81 < 0.5 either way.
    assert evaluate_voc(dets, gts, 1, inclusive=False, strict=False).ap_11point[0] == 0.0


def test_inclusive_pixels_change_the_overlap():
    # GT (0,0,1,1) and detection (1,0,2,1): inclusive, each is 2 x 2 = 4 pixels, they share
    # the column x = 1: 1 x 2 = 2, IoU = 2 / 6 = 1/3 -> FP. Continuous: they only touch -> FP.
    # GT (0,0,3,3), det (0,0,3,2): inclusive 4x3 / 4x4 = 0.75 -> TP; continuous 3x2 / 3x3 = 0.667 -> TP.
    # GT (0,0,2,2), det (0,0,2,1): inclusive 3x2 / 3x3 = 0.667 -> TP; continuous 2x1 / 2x2 = 0.5 -> FP.
    gts = [np.array([box(0, 0, 2, 2) + [0, 0]])]
    dets = [np.array([box(0, 0, 2, 1) + [0.9, 0]])]
    assert evaluate_voc(dets, gts, 1, inclusive=True).ap_area[0] == 1.0
    assert evaluate_voc(dets, gts, 1, inclusive=False).ap_area[0] == 0.0


def test_a_detection_whose_best_match_is_taken_is_a_false_positive():
    # GT1 (0,0,9,9), GT2 (0,0,9,7). det1 = GT1 -> TP (takes GT1).
    # det2 (0,0,9,8): IoU with GT1 = 90/100 = .9, with GT2 = 80/90 = .89 > .5; voc_eval
    # only looks at its best, GT1, which is taken: a duplicate, FP (GT2 stays unmatched).
    #   recall .5 .5, precision 1 .5 -> 11-point: 6 levels of 1 -> 6/11; area .5
    gts = [np.array([box(0, 0, 9, 9) + [0, 0], box(0, 0, 9, 7) + [0, 0]])]
    dets = [np.array([box(0, 0, 9, 9) + [0.9, 0], box(0, 0, 9, 8) + [0.8, 0]])]
    r = evaluate_voc(dets, gts, 1)
    assert r.tp[0].tolist() == [True, False]
    assert r.ap_11point[0] == pytest.approx(6 / 11)
    assert r.ap_area[0] == pytest.approx(0.5)


def test_ties_keep_the_input_order():
    # One GT in image 1. Two detections with the same score: a miss in image 0 and a hit
    # in image 1. Stable order puts the miss first: precision 0 then .5, recall 0 then 1,
    # so AP = .5 (11-point and area). Swapping the images' order gives AP = 1.
    miss = np.array([box(50, 50, 60, 60) + [0.7, 0]])
    hit = np.array([box(0, 0, 9, 9) + [0.7, 0]])
    gt = np.array([box(0, 0, 9, 9) + [0, 0]])
    none = np.zeros((0, 6))
    r = evaluate_voc([miss, hit], [none, gt], 1)
    assert r.ap_11point[0] == pytest.approx(0.5) and r.ap_area[0] == pytest.approx(0.5)
    r = evaluate_voc([hit, miss], [gt, none], 1)
    assert r.ap_11point[0] == pytest.approx(1.0) and r.ap_area[0] == pytest.approx(1.0)


def test_first_detection_on_a_difficult_object_is_not_nan():
    # voc_eval.py computes 0 / 0 here and its 11-point AP becomes NaN; the devkit (MATLAB's
    # max skips NaN) and this library give the AP of the remaining curve: recall 1 at
    # precision 1 -> AP 1.
    gts = [np.array([box(0, 0, 9, 9) + [0, 1], box(30, 30, 39, 39) + [0, 0]])]
    dets = [np.array([box(0, 0, 9, 9) + [0.9, 0], box(30, 30, 39, 39) + [0.8, 0]])]
    r = evaluate_voc(dets, gts, 1)
    assert r.ap_11point[0] == pytest.approx(1.0) and r.ap_area[0] == 1.0


def test_eleven_levels_are_numpy_arange():
    # 5 positives, 3 found with precision 1: recall .2 .4 .6. np.arange(0, 1.1, .1)[6] is
    # 0.6000000000000001 > 0.6, so only the six levels 0 .. .5 are reached: 6/11 (not 7/11).
    gts = [np.array([box(20 * k, 0, 20 * k + 9, 9) + [0, 0] for k in range(5)])]
    dets = [np.array([box(20 * k, 0, 20 * k + 9, 9) + [1 - 0.1 * k, 0] for k in range(3)])]
    r = evaluate_voc(dets, gts, 1)
    assert r.ap_11point[0] == pytest.approx(6 / 11)
    assert r.ap_area[0] == pytest.approx(0.6)


def test_classes_without_positives_are_nan_and_left_out_of_the_map():
    # class 0: perfect (AP 1); class 1: only a difficult GT (NaN); class 2: nothing at all
    # (NaN, even with a detection); class 3: a GT and no detection (AP 0). mAP = (1 + 0) / 2.
    gts = [np.array([box(0, 0, 9, 9) + [0, 0], box(20, 20, 29, 29) + [1, 1], box(40, 40, 49, 49) + [3, 0]])]
    dets = [np.array([box(0, 0, 9, 9) + [0.9, 0], box(20, 20, 29, 29) + [0.5, 1], box(5, 5, 8, 8) + [0.3, 2]])]
    r = evaluate_voc(dets, gts, class_names=["a", "b", "c", "d"])
    assert r.class_names == ("a", "b", "c", "d")
    assert r.ap_11point[0] == pytest.approx(1.0) and r.ap_11point[3] == 0.0
    assert math.isnan(r.ap_11point[1]) and math.isnan(r.ap_area[2])
    assert r.map_11point == pytest.approx(0.5) and r.map_area == pytest.approx(0.5)
    assert r.map() == r.map_11point and r.map(use_07_metric=False) == r.map_area
    d = r.to_dict()
    assert d["per_class"]["b"]["ap_11point"] is None and d["map_area"] == pytest.approx(0.5)
    assert "mAP" in r.table() and "d" in r.table()


def test_empty_evaluation():
    r = evaluate_voc([np.zeros((0, 6))], [np.zeros((0, 6))], num_classes=2)
    assert math.isnan(r.map_11point) and r.num_detections.tolist() == [0, 0]
    r = evaluate_voc([], [], num_classes=3)
    assert r.ap_area.shape == (3,)


def test_torch_and_numpy_inputs_agree_and_num_classes_is_inferred():
    rng = np.random.default_rng(1)
    dets, gts = random_problem(rng, 20, 3, integer=True)
    a = evaluate_voc(dets, gts, num_classes=3)
    b = evaluate_voc([torch.from_numpy(d).float() for d in dets], [torch.from_numpy(g) for g in gts])
    largest = max(max(d[:, 5].max(initial=0) for d in dets), max(g[:, 4].max(initial=0) for g in gts))
    assert len(b.class_names) == int(largest) + 1 == 3
    np.testing.assert_array_equal(a.ap_11point, b.ap_11point)
    np.testing.assert_array_equal(a.ap_area, b.ap_area)


def test_evaluator_accumulates_batches():
    rng = np.random.default_rng(2)
    dets, gts = random_problem(rng, 30, 4, integer=True)
    evaluator = VOCEvaluator(num_classes=4)
    for start in range(0, 30, 7):
        evaluator.update(dets[start:start + 7], gts[start:start + 7])
    assert len(evaluator) == 30
    r = evaluator.compute()
    assert isinstance(r, VOCResult)
    expected = evaluate_voc(dets, gts, num_classes=4)
    np.testing.assert_array_equal(r.ap_11point, expected.ap_11point)
    np.testing.assert_array_equal(r.ap_area, expected.ap_area)
    evaluator.reset()
    assert len(evaluator) == 0


# ---------------------------------------------------------------- against the reference


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("strict", [True, False])
def test_matches_voc_eval_on_random_problems(integer, strict):
    C = 4
    for seed in range(6):
        rng = np.random.default_rng(100 * seed + 10 * integer + strict)
        dets, gts = random_problem(rng, 40, C, integer)
        inclusive = integer
        r = evaluate_voc(dets, gts, num_classes=C, inclusive=inclusive, strict=strict)
        for c in range(C):
            for use_07 in (True, False):
                rec, prec, ap = ref_voc_eval(dets, gts, c, use_07_metric=use_07, inclusive=inclusive, strict=strict)
                got = r.ap_11point[c] if use_07 else r.ap_area[c]
                if rec is None:
                    assert math.isnan(got)
                    continue
                assert got == pytest.approx(ap, abs=1e-12)
                np.testing.assert_allclose(r.recall[c], rec, rtol=0, atol=1e-15)
                np.testing.assert_allclose(r.precision[c], prec, rtol=0, atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), images=st.integers(1, 25), classes=st.integers(1, 3),
       threshold=st.sampled_from([0.3, 0.5, 0.7]))
def test_matches_voc_eval_property(seed, images, classes, threshold):
    rng = np.random.default_rng(seed)
    dets, gts = random_problem(rng, images, classes, integer=True)
    r = evaluate_voc(dets, gts, num_classes=classes, iou_threshold=threshold)
    for c in range(classes):
        _, _, ap07 = ref_voc_eval(dets, gts, c, ovthresh=threshold, use_07_metric=True)
        _, _, ap = ref_voc_eval(dets, gts, c, ovthresh=threshold, use_07_metric=False)
        if math.isnan(ap):
            assert math.isnan(r.ap_area[c]) and math.isnan(r.ap_11point[c])
        else:
            assert r.ap_11point[c] == pytest.approx(ap07, abs=1e-12)
            assert r.ap_area[c] == pytest.approx(ap, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=30), st.integers(1, 12))
def test_voc_ap_matches_reference(outcomes, npos):
    # outcomes: (is tp, is ignored) per detection in score order.
    tp = np.array([t and not i for t, i in outcomes], dtype=float)
    fp = np.array([not t and not i for t, i in outcomes], dtype=float)
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(fp)
    rec = tp_cum / max(npos, int(tp.sum()))
    prec = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    for use_07 in (True, False):
        assert voc_ap(rec, prec, use_07) == ref_voc_ap(rec, prec, use_07)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "dets, gts, message",
    [
        ([np.zeros((0, 6)), np.array([[5, 0, 4, 9, 0.5, 0]])], [np.zeros((0, 6))] * 2,
         r"detections of image 1, row 0: expected x2 >= x1"),
        ([np.zeros((0, 6))], [np.array([[0, 0, 9, 9, 0, 0], [0, 0, 9, 9, 7, 0]])],
         r"ground truths of image 0, row 1: class must be an integer in \[0, 3\)"),
        ([np.zeros((0, 6))], [np.array([[0, 0, 9, 9, 0, 2]])], r"row 0: difficult must be 0 or 1"),
        ([np.array([[0, 0, 9, 9, np.nan, 0]])], [np.zeros((0, 6))], r"detections of image 0, row 0: values must be finite"),
        ([np.zeros((2, 5))], [np.zeros((0, 6))], r"detections of image 0 to have shape \(N, 6\)"),
        ([np.zeros((0, 6))], [], r"one detection array per image"),
    ],
)
def test_bad_input_names_image_and_row(dets, gts, message):
    with pytest.raises(ValueError, match=message):
        evaluate_voc(dets, gts, num_classes=3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        VOCEvaluator(0)
    with pytest.raises(ValueError, match="class names"):
        VOCEvaluator(2, class_names=["a"])
    with pytest.raises(ValueError, match="iou_threshold"):
        VOCEvaluator(2, iou_threshold=0.0)
    with pytest.raises(ValueError, match="non-decreasing"):
        voc_ap(np.array([0.5, 0.2]), np.array([1.0, 1.0]))


# ---------------------------------------------------------------- one image's matches


def test_match_detections_hand_worked():
    gt = np.array([box(0, 0, 9, 9) + [0, 0], box(50, 50, 59, 59) + [0, 0], box(20, 20, 29, 29) + [0, 1],
                   box(70, 70, 79, 79) + [1, 0]])
    det = np.array([
        box(0, 0, 9, 9) + [0.8, 0],      # duplicate of the next (lower score): FP
        box(0, 0, 9, 9) + [0.9, 0],      # TP on gt 0
        box(20, 20, 29, 29) + [0.7, 0],  # difficult: ignored
        box(80, 80, 90, 90) + [0.6, 0],  # nothing there: FP
        box(70, 70, 79, 79) + [0.5, 0],  # right place, wrong class: FP; gt 3 (class 1) missed
    ])
    m = match_detections(det, gt)
    assert m.tp.tolist() == [False, True, False, False, False]
    assert m.fp.tolist() == [True, False, False, True, True]
    assert m.gt_index.tolist() == [-1, 0, -1, -1, -1]
    assert m.missed.tolist() == [False, True, False, True]  # gt 1 and gt 3 missed, difficult never
    assert m.errors == 5
    empty = match_detections(np.zeros((0, 6)), gt)
    assert empty.missed.tolist() == [True, True, False, True] and empty.tp.shape == (0,)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_match_detections_counts_what_the_evaluator_counts(seed):
    rng = np.random.default_rng(seed)
    dets, gts = random_problem(rng, num_images=4, num_classes=3, integer=bool(seed % 2))
    r = evaluate_voc(dets, gts, num_classes=3)
    matches = [match_detections(d, g) for d, g in zip(dets, gts)]
    assert sum(int(m.tp.sum()) for m in matches) == sum(int(t.sum()) for t in r.tp)
    fp_total = sum(int(m.fp.sum()) for m in matches)
    assert fp_total == sum(len(t) - int(t.sum()) for t in r.tp) - _ignored(dets, gts)
    for m, g in zip(matches, gts):
        taken = set(m.gt_index[m.tp].tolist())
        assert len(taken) == int(m.tp.sum())  # each ground truth taken once
        assert all(not m.missed[i] for i in taken) and not m.missed[g[:, 5] == 1].any()


def _ignored(dets, gts) -> int:
    """Detections the VOC rule ignores (best overlap on a difficult object), counted independently."""
    n = 0
    for d, g in zip(dets, gts):
        for row in d:
            cand = g[g[:, 4] == row[5]]
            if len(cand) == 0:
                continue
            x1 = np.maximum(row[0], cand[:, 0]); y1 = np.maximum(row[1], cand[:, 1])
            x2 = np.minimum(row[2], cand[:, 2]); y2 = np.minimum(row[3], cand[:, 3])
            inter = np.clip(x2 - x1 + 1, 0, None) * np.clip(y2 - y1 + 1, 0, None)
            area = lambda b: (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
            iou = inter / (area(row) + area(cand) - inter)
            k = int(np.argmax(iou))
            n += bool(iou[k] > 0.5 and cand[k, 5] == 1)
    return n


# ---------------------------------------------------------------- the three AP rules


def ref_coco_ap(rec, prec):
    """pycocotools' COCOeval.accumulate for one class, IoU and area: the 101-point AP."""
    rec_thrs = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
    nd = len(rec)
    pr = np.asarray(prec, dtype=np.float64).tolist()
    q = np.zeros((len(rec_thrs),))
    for i in range(nd - 1, 0, -1):
        if pr[i] > pr[i - 1]:
            pr[i - 1] = pr[i]
    inds = np.searchsorted(rec, rec_thrs, side="left")
    try:
        for ri, pi in enumerate(inds):
            q[ri] = pr[pi]
    except IndexError:
        pass
    return float(np.mean(q))


def toy_scene():
    """Four cells (one difficult) and six detections, the example of the section on measuring.

    Continuous boxes. By score: .95 on A (IoU .77) TP; .90 on B (.68) TP; .80 on A again
    (.56, A taken) duplicate FP; .70 on the difficult C (.76) ignored; .60 near D (.24) FP;
    .40 on D (.77) TP. Three positives (A, B, D):
      precision 1 1 2/3 2/3 1/2 3/5, recall 1/3 2/3 2/3 2/3 2/3 1.
      envelope: 1 up to recall 2/3, then 3/5 up to 1.
      area = 2/3 * 1 + 1/3 * 3/5 = 13/15
      11-point: levels 0 .. .6 (seven) read 1, .7 .. 1 (four) read .6: 9.4 / 11
      101-point: levels 0 .. .66 (67) read 1, .67 .. 1 (34) read .6: 87.4 / 101
    """
    gt = np.array([box(10, 10, 40, 40) + [0, 0], box(55, 15, 85, 45) + [0, 0],
                   box(20, 55, 50, 85) + [0, 1], box(60, 60, 90, 90) + [0, 0]])
    det = np.array([box(12, 8, 42, 38) + [0.95, 0], box(58, 18, 88, 48) + [0.90, 0],
                    box(14, 16, 44, 44) + [0.80, 0], box(22, 57, 52, 83) + [0.70, 0],
                    box(75, 70, 98, 98) + [0.60, 0], box(62, 62, 92, 92) + [0.40, 0]])
    return det, gt


def test_toy_scene_by_hand():
    det, gt = toy_scene()
    r = evaluate_voc([det], [gt], num_classes=1, inclusive=False)
    np.testing.assert_allclose(r.precision[0], [1, 1, 2 / 3, 2 / 3, 1 / 2, 3 / 5])
    np.testing.assert_allclose(r.recall[0], [1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 1])
    assert r.ap_area[0] == pytest.approx(13 / 15)
    assert r.ap_11point[0] == pytest.approx(9.4 / 11)
    assert r.ap_101point[0] == pytest.approx(87.4 / 101)
    assert r.map_101point == pytest.approx(87.4 / 101)
    for rule in ("11point", "area", "101point"):
        assert r.map_by(rule) == pytest.approx(r.ap_by(rule)[0])
    m = match_detections(det, gt, inclusive=False)
    assert m.outcomes == ("TP", "TP", "FP: duplicate", "ignored: difficult", "FP: low IoU", "TP")
    np.testing.assert_allclose(m.best_iou, [784 / 1016, 729 / 1071, 624 / 1116, 728 / 952, 300 / 1244, 784 / 1016])
    assert m.ignored.tolist() == [False, False, False, True, False, False]
    assert m.duplicate.tolist() == [False, False, True, False, False, False]


def test_half_the_objects_found_perfectly():
    # 10 objects, 5 found first with precision 1, nothing else: the envelope is 1 up to
    # recall .5 and 0 after. Area .5; 11-point: six of eleven levels (0 .. .5) read 1;
    # 101-point: 51 of 101 (0 .. .50).
    rec = np.arange(1, 6) / 10
    prec = np.ones(5)
    assert average_precision(rec, prec, "area") == pytest.approx(0.5)
    assert average_precision(rec, prec, "11point") == pytest.approx(6 / 11)
    assert average_precision(rec, prec, "101point") == pytest.approx(51 / 101)
    np.testing.assert_array_equal(sampled_precision(rec, prec, [0.0, 0.5, 0.51, 1.0]), [1, 1, 0, 0])


def test_perfect_and_hopeless_detectors():
    rec, prec = np.array([0.5, 1.0]), np.array([1.0, 1.0])
    for rule in AP_RULES:
        assert average_precision(rec, prec, rule) == pytest.approx(1.0)
        assert average_precision(np.zeros(3), np.zeros(3), rule) == 0.0
        assert average_precision(np.zeros(0), np.zeros(0), rule) == 0.0


def test_envelope_and_levels():
    np.testing.assert_array_equal(precision_envelope([1.0, 0.5, 0.8, 0.2]), [1.0, 0.8, 0.8, 0.2])
    assert precision_envelope(np.zeros(0)).shape == (0,)
    assert recall_levels("11point")[6] == 0.6000000000000001  # voc_eval.py's np.arange, bit for bit
    assert len(recall_levels("101point")) == 101 and recall_levels("101point")[-1] == 1.0
    with pytest.raises(ValueError, match="area rule"):
        recall_levels("area")
    with pytest.raises(ValueError, match="rule"):
        average_precision(np.ones(1), np.ones(1), "coco")
    r = evaluate_voc([np.zeros((0, 6))], [np.zeros((0, 6))], num_classes=1)
    with pytest.raises(ValueError, match="rule"):
        r.ap_by("all")
    assert math.isnan(r.map_101point) and math.isnan(r.ap_101point[0])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=40), st.integers(1, 15))
def test_three_rules_property(outcomes, npos):
    # (is tp, is ignored) per detection in score order.
    tp = np.array([t and not i for t, i in outcomes], dtype=float)
    fp = np.array([not t and not i for t, i in outcomes], dtype=float)
    tp_cum, fp_cum = np.cumsum(tp), np.cumsum(fp)
    rec = tp_cum / max(npos, int(tp.sum()))
    prec = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    ap = {rule: average_precision(rec, prec, rule) for rule in AP_RULES}
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in ap.values())
    assert ap["101point"] == pytest.approx(ref_coco_ap(rec, prec), abs=1e-12)
    # The envelope never rises, so N equally spaced samples (first at 0, last at 1) bound
    # the area A as Riemann sums do: (N-1)/N * A <= AP_N <= ((N-1) * A + 1) / N.
    area = ap["area"]
    for rule, n in (("11point", 11), ("101point", 101)):
        assert (n - 1) / n * area - 1e-12 <= ap[rule] <= ((n - 1) * area + 1) / n + 1e-12
    # A class that reaches recall 1 loses nothing at the last level; one that does not reads 0 there.
    last = sampled_precision(rec, prec, [1.0])[0]
    reached = rec.size > 0 and rec[-1] >= 1.0
    assert last == (prec[rec >= 1.0].max() if reached else 0.0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), images=st.integers(1, 20), classes=st.integers(1, 3))
def test_result_101point_matches_pycocotools_reading(seed, images, classes):
    rng = np.random.default_rng(seed)
    dets, gts = random_problem(rng, images, classes, integer=True)
    r = evaluate_voc(dets, gts, num_classes=classes)
    for c in range(classes):
        if r.num_positives[c] == 0:
            assert math.isnan(r.ap_101point[c])
        else:
            assert r.ap_101point[c] == pytest.approx(ref_coco_ap(r.recall[c], r.precision[c]), abs=1e-12)
    np.testing.assert_array_equal(r.ap_by("11point"), r.ap_11point)
    np.testing.assert_array_equal(r.ap_by("area"), r.ap_area)
    for rule, expected in (("11point", r.map_11point), ("area", r.map_area)):
        got = r.map_by(rule)
        assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_false_positive_kinds_split_duplicates_poor_boxes_and_empty_places():
    from yolov2_lib.evaluate import match_detections

    truth = [[0, 0, 10, 10, 0, 0], [20, 20, 30, 30, 0, 0]]
    dets = [[0, 0, 10, 10, 0.9, 0],    # takes the first object
            [0, 0, 10, 9, 0.8, 0],     # the same object again: duplicate
            [20, 20, 26, 26, 0.7, 0],  # IoU 0.36 with the second: poor localisation
            [50, 50, 60, 60, 0.6, 0],  # nothing near
            [0, 0, 10, 10, 0.5, 1]]    # another class on the first object: nothing of its class near
    kinds = match_detections(dets, truth).false_positive_kinds()
    assert kinds == {"duplicate": 1, "poor localisation": 1, "no object near": 2}
    assert sum(kinds.values()) == int(match_detections(dets, truth).fp.sum())
