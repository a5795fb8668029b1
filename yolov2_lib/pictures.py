"""Detections drawn into a picture: what ``yolov2 detect`` writes beside your images (chapter 9).

The drawing works on the image as the detector saw it (decoded by
:func:`~yolov2_lib.data.voc.load_image`), so a 16-bit or palette image is
drawn as it was seen. Each class has its colour of :mod:`yolov2_lib.colors`,
the same as in the book's figures.
"""

from __future__ import annotations

from PIL import Image, ImageDraw
from torch import Tensor

from .colors import class_rgb

__all__ = ["to_picture", "annotate"]


def to_picture(image: Tensor) -> Image.Image:
    """An 8-bit RGB PIL image of a (3, H, W) float tensor in [0, 1]."""
    pixels = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).contiguous().numpy()  # (H, W, 3)
    return Image.fromarray(pixels, "RGB")


def annotate(picture: Image.Image, detections: Tensor, class_names: list[str]) -> Image.Image:
    """A copy of ``picture`` with each detection drawn as a box and a "class score" label.

    Args:
        picture: the image.
        detections: (N, 6) rows ``(x1, y1, x2, y2, score, class)`` in its pixels.
        class_names: the names of the class indices.
    """
    out = picture.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    line = max(1, round(min(out.size) / 250))
    for x1, y1, x2, y2, score, cls in detections.tolist():
        colour = class_rgb(int(cls))
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=line)
        label = f"{class_names[int(cls)]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), label)
        lift = bottom - top + 2
        y = y1 - lift if y1 - lift >= 0 else y1  # above the box, or inside it at the top edge
        draw.rectangle([x1, y, x1 + right - left + 4, y + lift], fill=colour)
        draw.text((x1 + 2, y), label, fill=(255, 255, 255))
    return out
