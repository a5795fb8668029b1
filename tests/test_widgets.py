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
    from ipywidgets.widgets.widget_link import Link

    links = [w for w in list(W.widgets.Widget._active_widgets.values()) if isinstance(w, Link)
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
