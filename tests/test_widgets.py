"""The widget builders (their behaviour in a real browser is checked in test_book.py)."""

from __future__ import annotations

import ipywidgets as W
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from yolov2_lib import widgets  # noqa: E402


def _draw(k):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot(range(int(k) + 1))
    return fig


def test_figure_png_is_png_and_closes_the_figure():
    fig = _draw(2)
    png = widgets.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)


def test_kernel_free_slider_links_slider_and_stack_in_the_browser():
    box = widgets.kernel_free_slider([2, 3, 5], _draw, "k", value=3)
    slider, stack = box.children
    assert isinstance(stack, W.Stack) and len(stack.children) == 3
    assert slider.index == 1 and stack.selected_index == 1
    pngs = [img.value for img in stack.children]
    assert len(set(pngs)) == 3, "each position must hold its own picture"
    from ipywidgets.widgets import widget as widget_module
    from ipywidgets.widgets.widget_link import Link

    live = widget_module._instances  # every open widget by id (ipywidgets 8.1; _active_widgets is deprecated)
    links = [w for w in list(live.values()) if isinstance(w, Link)
             and w.source == (slider, "index") and w.target == (stack, "selected_index")]
    assert links, "no client-side jslink between the slider and the stack"
    assert "kernel-free-slider" in slider._dom_classes and "kernel-free-stack" in stack._dom_classes


def test_kernel_free_slider_needs_values():
    with pytest.raises(ValueError, match="at least one value"):
        widgets.kernel_free_slider([], _draw, "k")


def test_live_widget_redraws_on_change():
    calls = []
    slider = W.IntSlider(value=1, min=0, max=3)
    box = widgets.live({"k": slider}, lambda k: calls.append(k))
    slider.value = 2
    assert calls == [1, 2]
    assert isinstance(box.children[1], W.Output)


def test_live_widget_puts_its_figures_into_the_output_state():
    def draw(k):
        fig, ax = plt.subplots()
        ax.plot([0, k])
        print(f"k = {k}")

    slider = W.IntSlider(value=1, min=0, max=3)
    box = widgets.live({"k": slider}, draw)
    out = box.children[1]
    kinds = [o["output_type"] for o in out.outputs]
    assert kinds == ["stream", "display_data"] and out.outputs[0]["text"] == "k = 1\n"
    first = out.outputs[1]["data"]["image/png"]
    slider.value = 3
    assert len(out.outputs) == 2 and out.outputs[1]["data"]["image/png"] != first  # replaced, not appended
    assert out.outputs[0]["text"] == "k = 3\n"
    assert plt.get_fignums() == []  # the figures were closed


# ---------------------------------------------------------------- chapters 4 and 5

import re  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from yolov2_lib import layout  # noqa: E402
from yolov2_lib.anchors import VOC_ANCHORS  # noqa: E402


def printed(box) -> str:
    """The text a live widget's Output shows."""
    return "".join(o.get("text", "") for o in box.children[1].outputs)


def test_head_explorer_lists_the_chosen_anchors_channels():
    raw = torch.zeros(125, 13, 13)
    raw[layout.channel_index(3, "objectness", 20), 4, 9] = 2.5
    image = np.zeros((52, 52, 3), dtype=np.uint8)
    box = widgets.head_explorer(raw, VOC_ANCHORS, [f"c{k}" for k in range(20)], image, row=4, col=9, anchor=0)
    controls = box.children[0].children
    assert [c.description for c in controls] == ["row", "col", "anchor"]
    first = printed(box)
    assert "channel   0  x" in first and "channel  24  c19" in first
    controls[2].value = 3  # the live callback runs again
    again = printed(box)
    assert re.search(r"channel\s+79\s+objectness\s+\+2\.500", again) and "channel   0" not in again
    plt.close("all")
    with pytest.raises(ValueError, match="outside"):
        widgets.head_explorer(raw, VOC_ANCHORS, [f"c{k}" for k in range(20)], image, row=13)


def test_location_explorer_moves_the_box_with_its_sliders():
    image = np.zeros((130, 130, 3), dtype=np.uint8)
    box = widgets.location_explorer(image, VOC_ANCHORS, row=7, col=8, anchor=2, t=(0.0, 0.0, 0.0, 0.0))
    controls = box.children[0].children
    assert [c.description for c in controls] == ["t_x", "t_y", "t_w", "t_h", "row", "col", "anchor"]
    assert "yolo: centre (  8.50,   7.50)" in printed(box)
    controls[0].value = 4.0  # t_x: sigmoid(4) = 0.982 of the cell; RPN: 8.5 + 4 * 5.06 cells
    out = printed(box)
    assert "yolo: centre (  8.98,   7.50)" in out and " rpn: centre ( 28.72,   7.50)" in out
    plt.close("all")
    with pytest.raises(ValueError, match="t_x"):
        widgets.location_explorer(image, VOC_ANCHORS, t=(0.0,))
    with pytest.raises(ValueError, match="outside"):
        widgets.location_explorer(image, VOC_ANCHORS, anchor=5)


def test_reorg_explorer_has_one_picture_per_output_channel():
    box = widgets.reorg_explorer(4, 2, 2)
    slider, stack = box.children
    assert len(stack.children) == 16 and len(slider.options) == 16
    assert len({img.value for img in stack.children}) == 16
    assert "kernel-free-slider" in slider._dom_classes
    with pytest.raises(ValueError, match="C\\*H\\*W"):
        widgets.reorg_explorer(64, 26, 26)


# ---------------------------------------------------------------- chapter 3 (anchor boxes by k-means)


def test_anchor_editor_resets_on_k_and_recomputes_the_mean_iou():
    import numpy as np

    wh = np.array([[0.1, 0.1], [0.1, 0.2], [0.5, 0.5], [0.6, 0.4]])
    centers = {1: np.array([[0.3, 0.3]]), 2: np.array([[0.1, 0.1], [0.5, 0.5]])}
    box = widgets.anchor_editor(wh, centers, k=2, grid=10)
    (k_slider, score), rows, _ = box.children[0].children, box.children[1], box.children[2]
    assert len(rows.children) == 2
    assert [s.value for s in rows.children[1].children] == [5.0, 5.0]  # grid cells
    assert "79.7 %</b>" in score.value and score.value.endswith("79.7 % with the k-means centres")
    rows.children[1].children[1].value = 4.0  # anchor 1 becomes 0.5 x 0.4
    # best IoUs by hand: 1, 0.5, 0.2 / 0.25, 0.2 / 0.24
    assert f"{100 * (1.5 + 0.8 + 0.2 / 0.24) / 4:.1f} %</b>" in score.value
    rows.children[0].children[1].value = 1.5  # anchor 0 becomes 0.1 x 0.15: 0.01 / 0.015 and 0.015 / 0.02
    assert f"{100 * (2 / 3 + 0.75 + 0.8 + 0.2 / 0.24) / 4:.1f} %</b>" in score.value
    assert score.value.endswith("79.7 % with the k-means centres")
    k_slider.value = 1
    assert len(rows.children) == 1 and [s.value for s in rows.children[0].children] == [3.0, 3.0]
    plt.close("all")


def test_anchor_editor_rejects_bad_inputs():
    import numpy as np

    wh = np.array([[0.1, 0.1], [0.5, 0.5]])
    with pytest.raises(ValueError, match="k=3 is not a key"):
        widgets.anchor_editor(wh, {2: np.ones((2, 2)) / 4}, k=3)
    with pytest.raises(ValueError, match=r"centers_by_k\[2\] must have shape \(2, 2\)"):
        widgets.anchor_editor(wh, {2: np.ones((3, 2)) / 4}, k=2)
    with pytest.raises(ValueError, match="wh of shape"):
        widgets.anchor_editor(np.zeros((2, 2)), {1: np.ones((1, 2))}, k=1)


# ---------------------------------------------------------------- two sliders over a grid of settings (chapter 5)


def _draw2(r, c):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, float(r)], [0, float(c)])
    return fig


def test_kernel_free_grid_links_both_sliders_to_the_stacks_in_the_browser():
    from ipywidgets.widgets import widget as widget_module
    from ipywidgets.widgets.widget_link import Link

    box = widgets.kernel_free_grid([0.1, 0.5], [0.3, 0.45, 0.6], _draw2, ("score", "IoU"), value=(0.5, 0.45))
    first, second, outer = box.children
    assert isinstance(outer, W.Stack) and len(outer.children) == 2
    assert all(isinstance(s, W.Stack) and len(s.children) == 3 for s in outer.children)
    assert first.index == 1 and outer.selected_index == 1
    assert second.index == 1 and all(s.selected_index == 1 for s in outer.children)
    pngs = [img.value for s in outer.children for img in s.children]
    assert len(set(pngs)) == 6, "each pair of settings must hold its own picture"
    links = [w for w in list(widget_module._instances.values()) if isinstance(w, Link)]
    assert any(w.source == (first, "index") and w.target == (outer, "selected_index") for w in links)
    for stack in outer.children:
        assert any(w.source == (second, "index") and w.target == (stack, "selected_index") for w in links)
    assert "kernel-free-slider" in first._dom_classes and "kernel-free-slider" in second._dom_classes
    assert "kernel-free-stack" in outer._dom_classes


def test_kernel_free_grid_needs_values():
    with pytest.raises(ValueError, match="at least one value"):
        widgets.kernel_free_grid([1], [], _draw2, ("a", "b"))
