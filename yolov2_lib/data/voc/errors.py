"""What can go wrong in the data: a :class:`DataWarning` when it is worked around, an error when not.

Every reader reports a problem through :func:`_report`: with ``strict=True``
it raises (an :class:`AnnotationError` or an :class:`ImageLoadError`, both
:class:`~yolov2_lib.errors.YOLOv2Error` s), otherwise it warns and says what
was done instead (the box skipped, clipped, the image replaced).
"""

from __future__ import annotations

import warnings

from ...errors import YOLOv2Error


class DataWarning(UserWarning):
    """A problem in the data that was worked around: the item was converted, clipped or skipped."""


class AnnotationError(YOLOv2Error):
    """An annotation that cannot be used (raised when ``strict=True``, or when nothing can be saved)."""


class ImageLoadError(YOLOv2Error):
    """An image file that is missing, unreadable or cannot be decoded."""


def _report(message: str, strict: bool, action: str, error: type[ValueError] = AnnotationError) -> None:
    """Raise ``error(message)`` when strict, else warn ``message`` plus what was done about it."""
    if strict:
        raise error(message)
    warnings.warn(f"{message} {action}", DataWarning, stacklevel=3)
