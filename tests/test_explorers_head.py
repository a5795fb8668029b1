"""Chapter 4's head explorer in the page (yolov2_lib/explorers/head.py and head.js)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from yolov2_lib import decode, layout, viz
from yolov2_lib.explorers import PageWidget, head_explorer

ANCHORS = torch.tensor([[1.0, 1.5], [2.5, 2.0]])  # A = 2
NAMES = ["cat", "dog", "horse"]  # C = 3: 2 x (5 + 3) = 16 channels
H, W = 3, 4


@pytest.fixture(scope="module")
def raw() -> torch.Tensor:
    return 2 * torch.randn(layout.num_channels(2, 3), H, W, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.RandomState(0).randint(0, 256, (60, 80, 3), dtype=np.uint8)


def _expected_rows(raw, row, col, anchor):
    """The table as the page prints it, from the library's describe_anchor."""
    return [[str(ch), name, f"{value:+.3f}", f"{decoded:.4f}", meaning]
            for ch, name, value, decoded, meaning in viz.describe_anchor(raw, ANCHORS, row, col, anchor, NAMES)]


def _expected_box(raw, row, col, anchor, image):
    """The decoded box in image pixels, as viz.draw_head_cell computes it."""
    box = decode.decode(raw[None].double(), ANCHORS.double(), len(NAMES)).boxes[0, row, col, anchor]
    cx, cy, w, h = box.tolist()
    height, width = image.shape[:2]
    return [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]


def test_head_explorer_embeds_the_tensor_in_head_view_order(raw, image):
    widget = head_explorer(raw, ANCHORS, NAMES, image, row=2, col=1, anchor=1)
    assert isinstance(widget, PageWidget) and widget.kind == "head"
    data = widget.data
    assert data["grid"] == [H, W] and data["anchors"] == ANCHORS.tolist() and data["num_classes"] == 3
    assert (data["width"], data["height"]) == (80, 60) and data["photo"].startswith("data:image/jpeg;base64,")
    view = layout.head_view(raw[None], 2)[0]  # (H, W, A, 5+C)
    assert len(data["raw"]) == H * W * 2 * 8
    np.testing.assert_allclose(data["raw"], view.reshape(-1).double().numpy(), atol=1e-5)
    k = ((2 * W + 1) * 2 + 1) * 8  # cell (2, 1), anchor 1
    assert data["raw"][k + 4] == pytest.approx(float(raw[layout.channel_index(1, "objectness", 3), 2, 1]), abs=1e-5)
    assert data["names"] == ["x", "y", "w", "h", "objectness", *NAMES]
    assert data["meanings"] == [m for *_, m in viz.describe_anchor(raw, ANCHORS, 0, 0, 0, NAMES)]
    assert (data["row"], data["col"], data["anchor"]) == (2, 1, 1)


def test_head_explorer_refuses_bad_input(raw, image):
    with pytest.raises(ValueError, match=r"\(A\*\(5\+C\), H, W\)"):
        head_explorer(raw[None], ANCHORS, NAMES, image)
    with pytest.raises(ValueError, match="channels"):
        head_explorer(raw[:-1], ANCHORS, NAMES, image)
    with pytest.raises(ValueError, match="channels"):
        head_explorer(raw, ANCHORS, NAMES[:2], image)
    for where in ({"row": H}, {"col": -1}, {"anchor": 2}):
        with pytest.raises(ValueError, match="outside"):
            head_explorer(raw, ANCHORS, NAMES, image, **where)
    with pytest.raises(ValueError, match=r"\(h, w, 3\)"):
        head_explorer(raw, ANCHORS, NAMES, image[..., 0])
    with pytest.raises(ValueError, match=r"anchors of shape \(A, 2\)"):
        head_explorer(raw, ANCHORS[:, :1], NAMES, image)
    with pytest.raises(ValueError, match="NaN"):
        head_explorer(torch.full_like(raw, float("nan")), ANCHORS, NAMES, image)


def _table(page):
    return page.eval_on_selector_all(
        "table.yx-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def _state(page):
    return page.eval_on_selector(".yolov2-explorer", "e => ({...e.dataset})")


def test_head_explorer_in_the_page_shows_the_librarys_numbers(open_explorer, raw, image):
    page, errors = open_explorer(head_explorer(raw, ANCHORS, NAMES, image, row=1, col=2, anchor=0))
    state = _state(page)
    assert state["state"] == "ready" and errors == []
    assert _table(page) == _expected_rows(raw, 1, 2, 0)
    np.testing.assert_allclose(json.loads(state["box"]), _expected_box(raw, 1, 2, 0, image), atol=1e-3)
    assert page.locator("svg rect.yx-box").count() == 1 and page.locator("svg rect.yx-prior").count() == 1

    # every select drives the cell or the anchor: the table, the box and the data follow
    seen = {json.dumps(_table(page))}
    for selector, value, (row, col, anchor) in (("select.yx-row", "2", (2, 2, 0)), ("select.yx-col", "0", (2, 0, 0)),
                                                 ("select.yx-anchor", "1", (2, 0, 1))):
        page.select_option(selector, value)  # sets the value and dispatches input and change
        state = _state(page)
        assert (int(state["row"]), int(state["col"]), int(state["anchor"])) == (row, col, anchor)
        table = _table(page)
        assert table == _expected_rows(raw, row, col, anchor)
        np.testing.assert_allclose(json.loads(state["box"]), _expected_box(raw, row, col, anchor, image), atol=1e-3)
        assert json.dumps(table) not in seen
        seen.add(json.dumps(table))
    assert page.text_content(".yx-caption").startswith("cell (row 2, col 0), anchor 1: channels 8 to 15 of the 16")
    assert errors == []
