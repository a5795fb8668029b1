"""Tests for yolov2_lib.explorers.anchors: chapter 3's anchor editor, computed in the page."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from yolov2_lib.anchors import AnchorKMeans, iou_distance, mean_iou
from yolov2_lib.explorers import PageWidget, anchor_editor

GRID = 13


def random_shapes(seed: int, n: int) -> np.ndarray:
    """Box shapes spread like real ones: log-normal sizes, varied aspect ratios."""
    rng = np.random.RandomState(seed)
    area = np.exp(rng.normal(-3.0, 1.0, n))
    aspect = np.exp(rng.normal(0.0, 0.5, n))
    return np.clip(np.stack([np.sqrt(area * aspect), np.sqrt(area / aspect)], axis=1), 1e-3, 1.0)


@pytest.fixture(scope="module")
def boxes_and_centres():
    wh = random_shapes(0, 5000)
    centres = {k: AnchorKMeans(k, n_init=1, random_state=0).fit(wh).cluster_centers_ for k in (2, 3, 5)}
    return wh, centres


def state(page) -> tuple[np.ndarray, float]:
    """The page's anchors (grid cells) and mean IoU, from the root's data attributes."""
    root = page.locator(".yolov2-anchors")
    return np.array(json.loads(root.get_attribute("data-anchors"))), float(root.get_attribute("data-mean-iou"))


def set_control(page, selector: str, index: int, value, event: str) -> None:
    page.evaluate(
        "([s, i, v, e]) => { const el = document.querySelectorAll(s)[i]; el.value = String(v);"
        " el.dispatchEvent(new Event(e, {bubbles: true})); }",
        [selector, index, value, event],
    )


def text(page, selector: str) -> str:
    return page.locator(f".yolov2-anchors {selector}").inner_text()


def svg(page) -> str:
    return page.locator(".yolov2-anchors svg").inner_html()


# ---------------------------------------------------------------- the Python side


def test_fragment_holds_the_sample_and_the_centres(boxes_and_centres):
    wh, centres = boxes_and_centres
    widget = anchor_editor(wh, centres, k=3, max_points=1200, seed=1)
    assert isinstance(widget, PageWidget) and widget.kind == "anchors"
    sample = np.array(widget.data["boxes"])
    expected = wh[np.random.RandomState(1).permutation(len(wh))[:1200]]
    np.testing.assert_allclose(sample, expected, rtol=1e-5)
    assert widget.data["total"] == 5000 and widget.data["k"] == 3 and widget.data["grid"] == GRID
    assert sorted(widget.data["centres"]) == ["2", "3", "5"]
    np.testing.assert_allclose(widget.data["centres"]["5"], centres[5], rtol=1e-5)
    html = widget.html()
    assert 'YOLOv2Explorers.define("anchors"' in html
    embedded = json.loads(re.search(r'<script type="application/json" id="[^"]+">(.*?)</script>', html).group(1))
    assert embedded["boxes"] == sample.tolist() and embedded["centres"]["3"] == widget.data["centres"]["3"]
    assert len(anchor_editor(wh, centres).html().encode()) < 300_000  # 4,000 boxes by default


def test_bad_inputs_are_refused_with_a_clear_message(boxes_and_centres):
    wh, centres = boxes_and_centres
    with pytest.raises(ValueError, match=r"k=4 is not a key of centers_by_k \(keys: \[2, 3, 5\]\)"):
        anchor_editor(wh, centres, k=4)
    with pytest.raises(ValueError, match=r"centers_by_k\[2\] of shape \(2, 2\), got \(3, 2\)"):
        anchor_editor(wh, {2: np.full((3, 2), 0.2)}, k=2)
    with pytest.raises(ValueError, match=r"wh of shape \(n, 2\), got \(5, 3\)"):
        anchor_editor(np.ones((5, 3)) / 2, centres)
    with pytest.raises(ValueError, match="wh to hold positive finite widths and heights"):
        anchor_editor(np.zeros((2, 2)), {1: np.ones((1, 2))}, k=1)
    with pytest.raises(ValueError, match=r"centers_by_k\[1\] to hold positive"):
        anchor_editor(wh, {1: -np.ones((1, 2))}, k=1)
    with pytest.raises(ValueError, match="max_points must be a positive integer"):
        anchor_editor(wh, centres, max_points=0)


# ---------------------------------------------------------------- in the browser


def test_every_control_drives_the_page_and_the_numbers_are_the_librarys(open_explorer, boxes_and_centres):
    wh, centres = boxes_and_centres
    widget = anchor_editor(wh, centres, k=3, max_points=3000)
    sample = np.array(widget.data["boxes"])
    page, errors = open_explorer(widget)
    assert page.locator(".yolov2-anchors").get_attribute("data-state") == "ready" and errors == []
    assert "3,000 of the 5,000 boxes" in text(page, ".anchor-sample")

    anchors, ours = state(page)
    k3 = np.array(widget.data["centres"]["3"])
    np.testing.assert_allclose(anchors, k3 * GRID, rtol=1e-12)
    assert ours == pytest.approx(mean_iou(sample, k3), abs=1e-12)
    assert f"{100 * ours:.1f} %" in text(page, ".anchor-score")

    # k: resets the anchors to that k's centres, one row of sliders per anchor
    before = svg(page)
    set_control(page, ".anchor-k", 0, 5, "change")
    anchors, ours = state(page)
    np.testing.assert_allclose(anchors, np.array(widget.data["centres"]["5"]) * GRID, rtol=1e-12)
    assert page.locator(".anchor-w").count() == page.locator(".anchor-h").count() == 5
    assert svg(page) != before
    assert ours == pytest.approx(mean_iou(sample, anchors / GRID), abs=1e-12)

    # every width and height slider moves its anchor, the picture and the mean IoU
    for j in range(5):
        for d, cls in enumerate(("anchor-w", "anchor-h")):
            svg_before, (old, iou_before) = svg(page), state(page)
            target = round(float(old[j, d]) * 1.2, 2)
            set_control(page, f".{cls}", j, target, "input")
            new, iou_after = state(page)
            others = np.ones(new.shape, dtype=bool)
            others[j, d] = False
            assert new[j, d] == target and (new[others] == old[others]).all()  # only that one moved
            assert page.locator(f".{cls} + .yx-readout").nth(j).inner_text() == f"{target:.2f}"
            assert iou_after != iou_before and svg(page) != svg_before
            assert iou_after == pytest.approx(mean_iou(sample, new / GRID), abs=1e-12)
            assert f"{100 * iou_after:.1f} %" in text(page, ".anchor-score b")
    assert errors == []

    # k-means from the edited anchors: the library's AnchorKMeans from the same start
    start, _ = state(page)
    svg_before = svg(page)
    page.locator(".anchor-kmeans").click()
    anchors, ours = state(page)
    km = AnchorKMeans(5, init=start / GRID).fit(sample)
    np.testing.assert_allclose(anchors, km.cluster_centers_ * GRID, atol=1e-3)
    assert ours == pytest.approx(km.score(sample), abs=1e-9)
    assert int(page.locator(".yolov2-anchors").get_attribute("data-kmeans-iterations")) == km.n_iter_
    assert f"{100 * ours:.1f} %" in text(page, ".anchor-kmeans-result") and svg(page) != svg_before

    # back to the k-means centres
    page.locator(".anchor-reset").click()
    anchors, _ = state(page)
    np.testing.assert_allclose(anchors, np.array(widget.data["centres"]["5"]) * GRID, rtol=1e-12)
    assert text(page, ".anchor-kmeans-result") == "" and errors == []


def test_kmeans_restarts_an_empty_cluster_as_the_library_does(open_explorer, boxes_and_centres):
    wh, centres = boxes_and_centres
    widget = anchor_editor(wh, centres, k=3, max_points=2000, seed=3)
    sample = np.array(widget.data["boxes"])
    page, errors = open_explorer(widget)
    # anchor 1 becomes a thin needle no box is closest to
    set_control(page, ".anchor-w", 1, GRID, "input")
    set_control(page, ".anchor-h", 1, 0.1, "input")
    start, ours = state(page)
    assert ours == pytest.approx(mean_iou(sample, start / GRID), abs=1e-12)
    assert not (iou_distance(sample, start / GRID).argmin(axis=1) == 1).any(), "the needle must start empty"
    page.locator(".anchor-kmeans").click()
    anchors, ours = state(page)
    km = AnchorKMeans(3, init=start / GRID).fit(sample)
    np.testing.assert_allclose(anchors, km.cluster_centers_ * GRID, atol=1e-3)
    assert ours == pytest.approx(km.score(sample), abs=1e-9) and errors == []
