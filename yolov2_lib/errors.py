"""The one family of user errors: :class:`YOLOv2Error`.

Every mistake a user can make -- a bad option, a damaged file, a box outside
its image, a dataset that cannot be found -- is raised as a ``YOLOv2Error``
(a :class:`ValueError`) whose message says what was wrong and where. The
``yolov2`` command catches this one family and prints the message as one line.
"""

from __future__ import annotations

__all__ = ["YOLOv2Error"]


class YOLOv2Error(ValueError):
    """A user error: the message names what was wrong and where (file, line, box, option)."""
