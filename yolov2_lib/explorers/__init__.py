"""Explorers that run in the page: JavaScript widgets that need no Python kernel.

The book's interactive figures must work in three places: the static HTML
book (no Python behind the page), a Jupyter notebook and Colab. An ipywidgets
callback needs a kernel; these explorers do not. Each one is a small
JavaScript component (``<name>.js`` beside this file) and the data it needs,
computed here by the library and embedded in the output as JSON. The browser
recomputes what the reader changes (an IoU, a decoded box, a score filter)
with the same formulas as the library; the tests check the numbers the page
shows against the library's.

Every explorer returns a :class:`PageWidget`: a notebook shows it through its
``_repr_html_``, and ``.html()`` gives the self-contained HTML (component,
shared helpers and data in one fragment; no file or network access).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
from importlib import resources
from typing import Any

import numpy as np

from ..errors import YOLOv2Error

__all__ = ["PageWidget", "photo_url"]


def _script(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.js").read_text(encoding="utf-8")


def _finite(value: Any) -> Any:
    """``value`` with every float rounded to 6 significant digits; NaN and inf are refused (JSON has none)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise YOLOv2Error(f"an explorer's data must be finite, got {value!r}")
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def photo_url(image: np.ndarray, max_side: int = 480, quality: int = 80) -> str:
    """An (h, w, 3) uint8 RGB image as a JPEG ``data:`` URL, its longer side at most ``max_side``.

    An explorer draws over the photo in the image's own pixels (an SVG ``viewBox`` of
    ``w x h``), so the JPEG may be smaller than the image: it only has to look right.

    Args:
        image: (h, w, 3) uint8 RGB.
        max_side: longest side of the JPEG, in pixels.
        quality: JPEG quality (1-95).

    Returns:
        ``"data:image/jpeg;base64,..."``.
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or 0 in arr.shape:
        raise YOLOv2Error(f"Expected an (h, w, 3) uint8 RGB image, got shape {arr.shape} and dtype {arr.dtype}.")
    if max_side < 1:
        raise YOLOv2Error(f"max_side must be positive, got {max_side}.")
    picture = Image.fromarray(arr)
    scale = min(1.0, max_side / max(arr.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(arr.shape[1] * scale)), max(1, round(arr.shape[0] * scale)))
        picture = picture.resize(size, Image.LANCZOS)
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class PageWidget:
    """One in-page explorer: a component name and its JSON data.

    Args:
        kind: the component, a ``<kind>.js`` file of this package.
        data: what the component draws from (JSON-serialisable; floats are rounded to
            6 significant digits, which is what the page computes from).
    """

    def __init__(self, kind: str, data: dict[str, Any]):
        if not resources.files(__package__).joinpath(f"{kind}.js").is_file():
            raise YOLOv2Error(f"no in-page explorer named {kind!r}")
        self.kind = kind
        self.data = _finite(data)

    def html(self) -> str:
        """The self-contained HTML fragment: a mount point, the data and the scripts."""
        payload = json.dumps(self.data, separators=(",", ":"), allow_nan=False)
        digest = hashlib.sha256((self.kind + payload).encode()).hexdigest()[:12]
        uid = f"yolov2-{self.kind}-{digest}"
        payload = payload.replace("</", "<\\/")  # never closes the script element early
        return (
            f'<div class="yolov2-explorer yolov2-{self.kind}" id="{uid}" data-kind="{self.kind}"></div>\n'
            f'<script type="application/json" id="{uid}-data">{payload}</script>\n'
            f"<script>\n{_script('runtime')}\n{_script(self.kind)}\n"
            f"YOLOv2Explorers.mount({json.dumps(uid)});\n</script>\n"
        )

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return f"PageWidget({self.kind!r})"


# The explorers, each in the module of its chapter (imported last: they build on PageWidget).
from .anchors import anchor_editor  # noqa: E402  chapter 3
from .head import head_explorer  # noqa: E402  chapter 4
from .location import location_explorer  # noqa: E402  chapter 5
from .detections import detections_explorer  # noqa: E402  chapter 8

__all__ += ["anchor_editor", "head_explorer", "location_explorer", "detections_explorer"]
