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


# ---------------------------------------------------------------- chapter 7


def test_reorg_explorer_has_one_picture_per_output_channel():
    box = widgets.reorg_explorer(4, 2, 2)
    slider, stack = box.children
    assert len(stack.children) == 16 and len(slider.options) == 16
    assert len({img.value for img in stack.children}) == 16
    assert "kernel-free-slider" in slider._dom_classes
    with pytest.raises(ValueError, match="C\\*H\\*W"):
        widgets.reorg_explorer(64, 26, 26)


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
