"""Chapter 5's location explorer in the page (yolov2_lib/explorers/location.py and location.js)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from yolov2_lib import decode, viz  # noqa: E402
from yolov2_lib.anchors import VOC_ANCHORS  # noqa: E402
from yolov2_lib.explorers import PageWidget, location_explorer  # noqa: E402

IMAGE = np.random.RandomState(0).randint(0, 256, (75, 100, 3), dtype=np.uint8)
HORSE = (-0.814182, 0.747651, 0.100429, 0.27314)  # chapter 5's horse: anchor 2 of cell (7, 8)


def _library(t, row, col, anchor, grid=13):
    """viz.draw_location's boxes (YOLO v2's from decode.decode_boxes, and the RPN reading), in pixels."""
    _, ax = plt.subplots()
    boxes = viz.draw_location(ax, IMAGE, t, (row, col), VOC_ANCHORS[anchor].tolist(), grid=grid, unconstrained=True)
    plt.close("all")
    return boxes


def _lines(boxes, grid=13):
    """The lines the kernel-backed widget printed (widgets.location_explorer)."""
    height, width = IMAGE.shape[:2]
    out = []
    for name in ("yolo", "rpn"):
        x1, y1, x2, y2 = boxes[name]
        out.append(f"{name:>4}: centre ({(x1 + x2) / 2 / width * grid:6.2f}, {(y1 + y2) / 2 / height * grid:6.2f}) "
                   f"size {(x2 - x1) / width * grid:5.2f} x {(y2 - y1) / height * grid:5.2f} (grid cells)")
    return "\n".join(out)


def test_location_explorer_embeds_its_settings():
    widget = location_explorer(IMAGE, VOC_ANCHORS, row=7, col=8, anchor=2, t=HORSE)
    assert isinstance(widget, PageWidget) and widget.kind == "location"
    data = widget.data
    assert data["t"] == list(HORSE) and (data["row"], data["col"], data["anchor"], data["grid"]) == (7, 8, 2, 13)
    np.testing.assert_allclose(data["anchors"], VOC_ANCHORS.numpy(), rtol=1e-6)
    assert (data["width"], data["height"]) == (100, 75) and data["photo"].startswith("data:image/jpeg;base64,")
    assert data["colors"]["yolo"] == viz.CLASS_COLORS[1] and data["colors"]["rpn"] == viz.CLASS_COLORS[5]


def test_location_explorer_refuses_bad_input():
    with pytest.raises(ValueError, match="t_x, t_y, t_w, t_h"):
        location_explorer(IMAGE, VOC_ANCHORS, t=(0.0,))
    with pytest.raises(ValueError, match=r"\[-4.0, 4.0\]"):
        location_explorer(IMAGE, VOC_ANCHORS, t=(0.0, 0.0, 5.0, 0.0))
    for where in ({"row": 13}, {"col": -1}, {"anchor": 5}):
        with pytest.raises(ValueError, match="outside"):
            location_explorer(IMAGE, VOC_ANCHORS, **where)
    with pytest.raises(ValueError, match="grid"):
        location_explorer(IMAGE, VOC_ANCHORS, grid=0)
    with pytest.raises(ValueError, match=r"\(h, w, 3\)"):
        location_explorer(IMAGE[..., 0], VOC_ANCHORS)
    with pytest.raises(ValueError, match=r"anchors of shape \(A, 2\)"):
        location_explorer(IMAGE, -VOC_ANCHORS)
    with pytest.raises(ValueError, match="t_range"):
        location_explorer(IMAGE, VOC_ANCHORS, t_range=0.0)


def _state(page):
    return page.eval_on_selector(".yolov2-explorer", "e => ({...e.dataset})")


def _check_against_library(page, t, row, col, anchor):
    state = _state(page)
    np.testing.assert_allclose(json.loads(state["t"]), t, atol=1e-9)
    assert (int(state["row"]), int(state["col"]), int(state["anchor"])) == (row, col, anchor)
    boxes = _library(t, row, col, anchor)
    for key, name in (("box", "yolo"), ("rpn", "rpn"), ("prior", "prior")):
        np.testing.assert_allclose(json.loads(state[key]), boxes[name], atol=1e-4, err_msg=name)
    assert page.text_content("pre.yx-lines") == _lines(boxes)
    return state


def _slide(page, name, value):
    page.eval_on_selector(f"input.yx-{name}", "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }",
                          str(value))


def test_location_explorer_in_the_page_draws_the_librarys_boxes(open_explorer):
    page, errors = open_explorer(location_explorer(IMAGE, VOC_ANCHORS, row=7, col=8, anchor=2, t=HORSE))
    state = _check_against_library(page, HORSE, 7, 8, 2)
    assert state["state"] == "ready" and errors == []
    for shape in ("yx-prior", "yx-yolo", "yx-rpn", "yx-cell"):
        assert page.locator(f"svg rect.{shape}").count() == 1
    # the decoder itself agrees: YOLO v2's centre stays in the cell
    t = torch.zeros(13, 13, 5, 4, dtype=torch.float64)
    t[7, 8, 2] = torch.tensor(HORSE, dtype=torch.float64)
    cx, cy, w, h = decode.decode_boxes(t, VOC_ANCHORS.double())[7, 8, 2].tolist()
    np.testing.assert_allclose(json.loads(state["box"]), [(cx - w / 2) * 100, (cy - h / 2) * 75,
                                                          (cx + w / 2) * 100, (cy + h / 2) * 75], atol=1e-4)

    # every control drives its number, and the boxes follow the library
    t, cell = list(HORSE), [7, 8, 2]
    before = page.text_content("pre.yx-lines")
    for k, (name, value) in enumerate((("t_x", 4.0), ("t_y", -2.5), ("t_w", 0.5), ("t_h", -1.0))):
        _slide(page, name, value)
        t[k] = value
        _check_against_library(page, t, *cell)
        assert page.text_content("pre.yx-lines") != before
        before = page.text_content("pre.yx-lines")
    assert "yolo: centre (  8.98," in before and " rpn: centre ( 28.72," in before  # as the old widget's test
    for k, (name, value) in enumerate((("row", "0"), ("col", "12"), ("anchor", "4"))):
        page.select_option(f"select.yx-{name}", value)
        cell[k] = int(value)
        _check_against_library(page, t, *cell)
        assert page.text_content("pre.yx-lines") != before
        before = page.text_content("pre.yx-lines")
    page.click("button.yx-reset")
    state = _check_against_library(page, [0.0, 0.0, 0.0, 0.0], *cell)
    assert state["box"] == state["rpn"] == state["prior"]  # t = 0: every reading is the anchor
    assert errors == []


def test_photo_url_is_a_small_jpeg_of_the_image():
    import base64
    import io

    from PIL import Image

    from yolov2_lib.explorers import photo_url

    url = photo_url(IMAGE, max_side=40)
    assert url.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        assert im.format == "JPEG" and im.size == (40, 30)
    with pytest.raises(ValueError, match=r"\(h, w, 3\) uint8"):
        photo_url(IMAGE.astype(np.float32))
