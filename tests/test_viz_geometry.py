"""The drawings of direct location prediction and of non-maximum suppression (chapter 5)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib import patches  # noqa: E402

from yolov2_lib import viz  # noqa: E402
from yolov2_lib.boxes import nms_trace  # noqa: E402
from yolov2_lib.decode import decode_boxes  # noqa: E402


def test_draw_direct_location_labels_every_quantity_and_matches_decode_boxes():
    fig, ax = plt.subplots()
    t, cell, anchor = (0.5, -0.3, 0.4, 0.1), (1, 3), (2.0, 1.5)
    out = viz.draw_direct_location(ax, t, cell, anchor, cells=(4, 6))
    raw = torch.zeros(4, 6, 1, 4, dtype=torch.float64)
    raw[1, 3, 0] = torch.tensor(t, dtype=torch.float64)
    cx, cy, w, h = decode_boxes(raw, torch.tensor([anchor], dtype=torch.float64))[1, 3, 0].tolist()
    np.testing.assert_allclose(out["box"], [(cx - w / 2) * 6, (cy - h / 2) * 4, (cx + w / 2) * 6, (cy + h / 2) * 4])
    np.testing.assert_allclose(out["prior"], [3.5 - 1.0, 1.5 - 0.75, 3.5 + 1.0, 1.5 + 0.75])
    np.testing.assert_allclose(out["cell"], [3, 1, 4, 2])
    text = " ".join(x.get_text() for x in ax.texts)
    for label in ("c_x", "c_y", "p_w", "p_h", r"\sigma(t_x)", r"\sigma(t_y)", "b_w", "b_h", r"e^{t_w}"):
        assert label in text, label
    rects = [p for p in ax.patches if isinstance(p, patches.Rectangle)]
    assert len(rects) == 3  # the cell, the prior, the box
    with pytest.raises(ValueError, match="outside"):
        viz.draw_direct_location(ax, t, (4, 0), anchor, cells=(4, 6))
    with pytest.raises(ValueError, match="t_x"):
        viz.draw_direct_location(ax, (0.0,), cell, anchor)
    plt.close(fig)


def _candidates():
    boxes = torch.tensor([[10, 10, 50, 50], [12, 10, 52, 50], [60, 60, 90, 95], [11, 11, 50, 52.0]])
    scores = torch.tensor([0.9, 0.6, 0.7, 0.5])
    classes = torch.tensor([0, 0, 1, 1])
    return boxes, scores, classes


def test_draw_nms_before_after_draws_every_candidate_then_the_kept_ones():
    image = np.zeros((100, 120, 3), dtype=np.uint8)
    boxes, scores, classes = _candidates()
    trace = nms_trace(boxes, scores, 0.45, classes)
    fig = viz.draw_nms_before_after(image, boxes, scores, classes, trace.kept, ["a", "b"], threshold=0.25,
                                    iou_threshold=0.45)
    before, after = fig.axes
    assert len(before.patches) == 4 and len(after.patches) == len(trace.kept) == 3
    assert "4 (box, class) pairs" in before.get_title() and "3 detections" in after.get_title()
    assert sorted(t.get_text().strip() for t in after.texts) == ["0.50", "0.70", "0.90"]
    assert [t.get_text() for t in after.get_legend().get_texts()] == ["a", "b"]
    plt.close(fig)
    with pytest.raises(ValueError, match="kept"):
        viz.draw_nms_before_after(image, boxes, scores, classes, [7], ["a", "b"])


def test_draw_nms_step_shows_a_kept_box_and_the_boxes_it_removed():
    image = np.zeros((100, 120, 3), dtype=np.uint8)
    boxes, scores, _ = _candidates()
    trace = nms_trace(boxes, scores, 0.45)  # one class: box 0 removes boxes 1 and 3
    fig, ax = plt.subplots()
    removed = viz.draw_nms_step(ax, image, boxes, scores, trace.suppressed_by, trace.iou, 0)
    assert removed == [1, 3]
    assert [t.get_text().strip() for t in ax.texts] == ["kept 0.90"]
    lo, hi = sorted(trace.iou[[1, 3]].tolist())
    assert ax.get_title() == f"kept 0.90, removes 2 (IoU {lo:.2f} to {hi:.2f})"
    assert len(ax.patches) == 3
    assert ax.get_xlim()[0] >= 0 and ax.get_xlim()[1] <= 120
    with pytest.raises(ValueError, match="not a kept box"):
        viz.draw_nms_step(ax, image, boxes, scores, trace.suppressed_by, trace.iou, 1)
    plt.close(fig)


def test_draw_anchor_labels_draws_the_objects_and_the_positives_with_counts():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    anchors = np.array([[10, 10, 40, 40], [12, 10, 42, 40], [60, 60, 90, 90], [0, 0, 5, 5.0]])
    truths = np.array([[11, 11, 41, 41], [61, 61, 90, 92.0]])
    fig, ax = plt.subplots()
    viz.draw_anchor_labels(ax, image, anchors, torch.tensor([1, 1, 1, -1]),
                           truths, title="rule")
    assert len(ax.patches) == 2 + 3  # the objects, then the positives
    colors = [p.get_edgecolor() for p in ax.patches[2:]]
    assert colors[0] == colors[1] != colors[2], "a positive takes the colour of the object it overlaps most"
    assert ax.get_title() == "rule\n3 positive, 1 ignored, 0 negative"
    with pytest.raises(ValueError, match="one label per anchor"):
        viz.draw_anchor_labels(ax, image, anchors, [1, 0], truths)
    plt.close(fig)
