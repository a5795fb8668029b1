"""Interactive explorers for the chapters (ipywidgets).

Two kinds of interaction live here:

- **kernel-free** widgets, whose pictures are computed in advance and
  switched in the browser by a client-side link (``jslink``) between a
  slider and a :class:`ipywidgets.Stack`. They keep working in the static
  HTML book, where no Python runs;
- **live** widgets, whose callbacks recompute in Python (in Jupyter or
  Colab). In the static book they show the state they were saved with.

Only this module and ``viz`` import ipywidgets and matplotlib.
"""

from __future__ import annotations

import io
from typing import Callable, Mapping, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt

__all__ = ["figure_png", "png_image", "kernel_free_slider", "live"]


def figure_png(fig: plt.Figure, dpi: int = 80) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def png_image(png: bytes, width: str | None = None) -> W.Image:
    """An Image widget holding PNG bytes (embedded in the page's widget state)."""
    layout = W.Layout(width=width) if width else W.Layout()
    return W.Image(value=png, format="png", layout=layout)


def kernel_free_slider(
    values: Sequence[int | float | str],
    draw: Callable[[int | float | str], plt.Figure],
    description: str,
    value: int | float | str | None = None,
    dpi: int = 80,
) -> W.VBox:
    """A slider over ``values`` that switches between figures drawn in advance.

    ``draw(v)`` makes the figure for each value once; the slider and a Stack of
    images are linked in the browser, so the widget works in the static HTML.

    Args:
        values: the slider's positions, in order.
        draw: makes the figure for one value.
        description: the slider's label.
        value: the initial value (default: the first).
        dpi: resolution of the stored pictures.

    Returns:
        A VBox(slider, stack); ``box.children[0]`` is the slider (its value is an index
        into ``values`` when they are not integers 0..n-1) and ``box.children[1]`` the stack.
    """
    values = list(values)
    if not values:
        raise ValueError("kernel_free_slider needs at least one value")
    start = values.index(value) if value is not None else 0
    images = [png_image(figure_png(draw(v), dpi=dpi)) for v in values]
    stack = W.Stack(images, selected_index=start)
    slider = W.SelectionSlider(options=[(str(v), i) for i, v in enumerate(values)], value=start,
                               description=description, continuous_update=True,
                               layout=W.Layout(width="420px"))
    W.jslink((slider, "index"), (stack, "selected_index"))
    return W.VBox([slider, stack])


def live(controls: Mapping[str, W.ValueWidget], update: Callable[..., None]) -> W.VBox:
    """Controls that re-run ``update(**values)`` in the kernel, drawing into an Output."""
    out = W.Output()

    def refresh(_=None):
        with out:
            out.clear_output(wait=True)
            update(**{k: c.value for k, c in controls.items()})
            plt.show()

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    return W.VBox([W.HBox(list(controls.values())), out])
