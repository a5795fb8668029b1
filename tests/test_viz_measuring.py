"""The drawings of the section "Measuring a detector" (``yolov2_lib.viz``): IoU, matching, PR curves, AP rules."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402

from yolov2_lib import viz  # noqa: E402
from yolov2_lib.evaluate import average_precision, evaluate_voc, match_detections  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def toy():
    """Three objects (one difficult) and four detections: TP, duplicate, ignored, low IoU."""
    gt = np.array([[10, 10, 40, 40, 0, 0], [55, 15, 85, 45, 0, 0], [20, 55, 50, 85, 0, 1]], dtype=float)
    det = np.array([[12, 8, 42, 38, 0.9, 0], [14, 16, 44, 44, 0.8, 0], [22, 57, 52, 83, 0.7, 0],
                    [75, 30, 98, 60, 0.6, 0]], dtype=float)
    return det, gt


def test_draw_iou_fills_the_intersection_and_titles_the_ratio():
    fig, ax = plt.subplots()
    # 6 x 6 boxes, the second slid by a third of the side: 24 shared of 48 covered
    iou = viz.draw_iou(ax, (0, 0, 6, 6), (2, 0, 8, 6))
    assert iou == pytest.approx(0.5)
    assert ax.get_title() == "IoU = 24 / 48 = 0.50"
    assert len(ax.patches) == 3  # two boxes and their intersection
    inter = ax.patches[2]
    assert (inter.get_x(), inter.get_y(), inter.get_width(), inter.get_height()) == (2, 0, 4, 6)
    assert [t.get_text().strip() for t in ax.texts] == ["A", "B"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # y grows downwards, as in an image


def test_draw_iou_of_disjoint_boxes_draws_no_intersection():
    fig, ax = plt.subplots()
    assert viz.draw_iou(ax, (0, 0, 2, 2), (5, 5, 7, 7), labels=("truth", "detection")) == 0.0
    assert len(ax.patches) == 2 and ax.get_title() == "IoU = 0 / 8 = 0.00"
    with pytest.raises(ValueError, match="x2 >= x1"):
        viz.draw_iou(ax, (3, 0, 2, 2), (0, 0, 1, 1))


def test_draw_matching_colours_each_verdict():
    det, gt = toy()
    m = match_detections(det, gt, inclusive=False)
    assert m.outcomes == ("TP", "FP: duplicate", "ignored: difficult", "FP: low IoU")
    fig, ax = plt.subplots()
    viz.draw_matching(ax, det, gt, m)
    assert len(ax.patches) == len(gt) + len(det)
    boxes = ax.patches[len(gt):]
    colors = [matplotlib.colors.to_hex(p.get_edgecolor()) for p in boxes]
    expected = [viz.OUTCOME_COLORS[k] for k in ("TP", "FP", "ignored", "FP")]
    assert colors == [c.lower() for c in expected]
    assert ax.patches[2].get_hatch() == "///" and ax.patches[0].get_hatch() is None  # the difficult object
    texts = [t.get_text() for t in ax.texts]
    assert texts[:3] == ["object 0", "object 1", "difficult"] and texts[3:] == ["1", "2", "3", "4"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["TP", "FP", "ignored"]


def test_draw_matching_ranks_by_score_and_checks_the_match():
    det, gt = toy()
    det = det[::-1].copy()  # input order is not score order
    m = match_detections(det, gt, inclusive=False)
    fig, ax = plt.subplots()
    viz.draw_matching(ax, det, gt, m, image=np.zeros((100, 100, 3), dtype=np.uint8))
    assert [t.get_text() for t in ax.texts][3:] == ["4", "3", "2", "1"]
    assert len(ax.images) == 1
    with pytest.raises(ValueError, match="match is for"):
        viz.draw_matching(ax, det[:2], gt, m)


def _bccd_like_result():
    rng = np.random.default_rng(0)
    dets, gts = [], []
    for _ in range(12):
        g = np.c_[rng.uniform(0, 50, (4, 2)), rng.uniform(60, 100, (4, 2)), [0, 0, 1, 2], np.zeros(4)]
        noisy = g[:, :4] + rng.normal(0, 6, (4, 4))
        noisy[:, 2:] = np.maximum(noisy[:, 2:], noisy[:, :2] + 1)
        dets.append(np.c_[noisy, rng.random(4), [0, 0, 1, 1]])
        gts.append(g)
    return evaluate_voc(dets, gts, class_names=["RBC", "WBC", "Platelets", "none"])


def test_plot_pr_curves_one_panel_per_class_with_ground_truth():
    r = _bccd_like_result()
    fig = viz.plot_pr_curves(r, mark_score=0.5)
    axes = fig.axes
    assert len(axes) == 3  # "none" has no ground truth
    assert axes[0].get_title() == f"RBC: 24 objects, {r.num_detections[0]} detections"
    for ax, c in zip(axes, range(3)):
        raw, envelope = ax.lines[0], ax.lines[1]
        np.testing.assert_array_equal(raw.get_xdata(), r.recall[c])
        x, y = envelope.get_xdata(), envelope.get_ydata()
        assert x[0] == 0 and x[-1] == 1 and y[-1] == 0  # from recall 0 to 1, zero past the last recall
        assert np.all(np.diff(y[1:]) <= 0)  # the envelope never rises
    # the dot sits where the detections scoring >= 0.5 end
    c = 0
    last = int(np.sum(r.scores[c] >= 0.5)) - 1
    dot = axes[c].lines[2]
    assert (dot.get_xdata()[0], dot.get_ydata()[0]) == (r.recall[c][last], r.precision[c][last])


def test_plot_pr_curves_needs_ground_truth():
    r = evaluate_voc([np.zeros((0, 6))], [np.zeros((0, 6))], num_classes=2)
    with pytest.raises(ValueError, match="No class has ground truth"):
        viz.plot_pr_curves(r)


def test_draw_ap_rules_draws_what_each_rule_measures():
    # half the objects found with precision 1, then a false positive
    rec = np.array([0.25, 0.5, 0.5])
    prec = np.array([1.0, 1.0, 2 / 3])
    fig = viz.draw_ap_rules(rec, prec, title="toy")
    area, eleven, hundred = fig.axes
    assert fig._suptitle.get_text() == "toy"
    assert area.get_title() == f"area (VOC 2010+): AP = {average_precision(rec, prec, 'area'):.3f}"
    assert eleven.get_title() == "11 points (VOC 2007): AP = 0.545"  # 6 / 11
    assert hundred.get_title() == "101 points (COCO): AP = 0.505"  # 51 / 101
    assert any(isinstance(c, PolyCollection) for c in area.collections)  # the shaded area
    stems = [c for c in eleven.collections if isinstance(c, LineCollection)]
    assert len(stems) == 1 and len(stems[0].get_segments()) == 11
    heights = [seg[1][1] for seg in stems[0].get_segments()]
    assert heights == [1.0] * 6 + [0.0] * 5  # past recall .5 the envelope is 0
    stems = [c for c in hundred.collections if isinstance(c, LineCollection)]
    assert len(stems[0].get_segments()) == 101
