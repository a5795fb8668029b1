"""The colours of classes and anchors, shared by the book's pictures and the command line's.

A colour-blind friendly cycle (Okabe-Ito): class or anchor ``k`` gets colour
``k`` modulo its length. Plain Python: pictures drawn with PIL use it as they are.
"""

from __future__ import annotations

__all__ = ["CLASS_COLORS", "class_color", "class_rgb"]

#: The Okabe-Ito cycle as hex strings, used for classes and anchors alike.
CLASS_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")


def class_color(index: int) -> str:
    """The hex colour of class (or anchor) ``index``, cycling through :data:`CLASS_COLORS`."""
    return CLASS_COLORS[int(index) % len(CLASS_COLORS)]


def class_rgb(index: int) -> tuple[int, int, int]:
    """The colour of class (or anchor) ``index`` as 0-255 ``(red, green, blue)``, cycling."""
    hex_ = class_color(index).lstrip("#")
    return int(hex_[0:2], 16), int(hex_[2:4], 16), int(hex_[4:6], 16)
