"""The fast inference path: a trained YOLOv2 turned into a detector (chapter 9).

Chapter 9 (detections on real images) runs a trained network on images;
:class:`Detector` wraps the three things that make that fast without
changing the answer:

- batch norm folded into the convolutions (:func:`~yolov2_lib.model.fuse_bn`),
- channels-last memory layout, which oneDNN and cuDNN convolutions prefer,
- reduced precision where the hardware computes it natively, through
  ``torch.autocast``: the weights stay float32 and each convolution runs in
  bf16/fp16 (about twice as fast as float32 where it is native); autocast
  leaves the model untouched and numerically unsafe ops in float32.

``precision="auto"`` picks what the hardware computes natively, by the one
rule of :mod:`yolov2_lib.precision` (bf16 on CPUs with AVX512-BF16 or AMX and
on GPUs of compute capability 8.0+, fp16 on older GPUs, fp32 elsewhere). An
explicit request the device cannot serve (fp16 on a CPU, bf16 on a GPU or CPU
without it) warns and falls back to what ``"auto"`` picks there.
The head output is cast to float32 before decoding, so the boxes, scores
and NMS of :func:`~yolov2_lib.decode.postprocess` always run in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .decode import postprocess
from .errors import YOLOv2Error
from .model import _check_image_batch, fuse_bn
from .precision import PRECISIONS, autocast, cpu_supports_bf16, cuda_supports_bf16, dtype_of, for_inference

resolve_precision = for_inference  # the name this module has always offered

__all__ = ["PRECISIONS", "Detector", "box_agreement", "cpu_supports_bf16", "cuda_supports_bf16", "resolve_precision"]

class Detector:
    """A YOLOv2 made ready for fast inference: fused, channels-last, reduced precision.

    The model is not changed: the detector holds a fused copy (in eval mode)
    on the model's own device. Images must already be on that device.

    Args:
        model: a :class:`~yolov2_lib.model.YOLOv2` (anything with ``anchors``,
            ``num_classes`` and a raw-head ``forward``); boxes are decoded the way its
            ``config.location`` says (``"direct"`` when it has none).
        precision: ``"auto"`` (the fastest the device computes natively),
            ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        channels_last: run in channels-last memory layout.
        fuse: fold batch norm into a copy of the model (the fast path); ``False`` runs the
            model itself, unchanged but for the memory layout (the caller sets eval mode).
        conf_threshold, nms_threshold, top_k, letterbox: see
            :func:`~yolov2_lib.decode.postprocess`.

    Example::

        detector = Detector(model)                      # bf16 on a BF16 CPU, fp16 on CUDA
        detections = detector(images, image_sizes=[(500, 375)] * len(images))
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        precision: str = "auto",
        channels_last: bool = True,
        fuse: bool = True,
        conf_threshold: float = 0.005,
        nms_threshold: float = 0.45,
        top_k: int | None = 100,
        letterbox: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module) or not hasattr(model, "anchors") or not hasattr(model, "num_classes"):
            raise YOLOv2Error(
                f"Detector expects a YOLOv2-like nn.Module with anchors and num_classes, got {type(model).__name__}."
            )
        param = next(model.parameters(), None)
        if param is None:
            raise YOLOv2Error("Detector expects a model with parameters, got one with none.")
        if top_k is not None and top_k < 0:
            raise YOLOv2Error(f"top_k must be >= 0 or None, got {top_k}.")
        self._device = param.device
        self._precision = for_inference(precision, self._device)
        self._autocast_dtype = dtype_of(self._precision)
        self.channels_last = channels_last
        self.conf_threshold = conf_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self.letterbox = letterbox
        net = fuse_bn(model) if fuse else model  # fuse_bn: a fused deep copy in eval mode
        self.model = net.to(memory_format=torch.channels_last) if channels_last else net
        self.anchors: Tensor = model.anchors
        self.num_classes: int = model.num_classes
        self.in_channels: int = getattr(getattr(model, "config", None), "in_channels", 3)
        self.location: str = getattr(getattr(model, "config", None), "location", "direct")

    @property
    def precision(self) -> str:
        """``"fp32"``, ``"bf16"`` or ``"fp16"``: what the convolutions run in."""
        return self._precision

    @property
    def device(self) -> torch.device:
        """The model's device; images must be there."""
        return self._device

    def _check(self, images: Tensor) -> None:
        _check_image_batch(images, self.in_channels, "Detector")
        if not images.is_floating_point():
            raise YOLOv2Error(f"Detector expects float images in [0, 1], got dtype {images.dtype}.")
        if images.device != self._device:
            raise YOLOv2Error(
                f"images are on {images.device} but the detector's model is on {self._device}; "
                f"move them with images.to({str(self._device)!r})."
            )

    def raw(self, images: Tensor) -> Tensor:
        """The head output, computed on the fast path.

        Args:
            images: (B, 3, H, W) float images in [0, 1], H and W multiples of 32,
                on :attr:`device`.

        Returns:
            (B, A*(5+C), H/32, W/32) float32, contiguous.
        """
        self._check(images)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self._device, self._autocast_dtype):
            out = self.model(images)  # (B, A*(5+C), H/32, W/32), in the autocast dtype
        return out.float().contiguous()  # decode views it as (B, A, 5+C, H, W)

    def __call__(
        self, images: Tensor, image_sizes: Sequence[Sequence[float]] | Tensor | None = None
    ) -> list[Tensor]:
        """Detections for a batch of images.

        Args:
            images: see :meth:`raw`.
            image_sizes: (width, height) of each original image; ``None`` gives
                boxes in normalised [0, 1] input units.

        Returns:
            One (N_i, 6) float32 tensor per image, rows ``(x1, y1, x2, y2, score, class)``
            sorted by decreasing score, on :attr:`device`.
        """
        raw = self.raw(images)
        h, w = images.shape[-2:]
        with torch.inference_mode():
            return postprocess(
                raw, self.anchors, self.num_classes, conf_threshold=self.conf_threshold,
                nms_threshold=self.nms_threshold, top_k=self.top_k, input_size=(w, h),
                image_sizes=image_sizes, letterbox=self.letterbox, location=self.location,
            )

    def __repr__(self) -> str:
        return (f"Detector(precision={self._precision!r}, channels_last={self.channels_last}, "
                f"device={str(self._device)!r}, num_classes={self.num_classes})")


def box_agreement(reference: Sequence[Tensor], other: Sequence[Tensor], *, score: float = 0.25,
                  iou: float = 0.95) -> tuple[int, int, int]:
    """How many shown boxes of one detector another detector finds again (chapter 8: fp32 vs bf16).

    Among the detections scoring at least ``score`` in each image, a reference box counts as
    found when a box of ``other`` of the same class overlaps it at IoU >= ``iou`` (each box of
    ``other`` used once, highest score first, as the VOC matching does).

    Args:
        reference, other: one (N_i, 6) tensor per image, rows ``(x1, y1, x2, y2, score, class)``.
        score: the threshold of the boxes one would show.
        iou: the overlap that counts as the same box.

    Returns:
        ``(found, shown_reference, shown_other)``.
    """
    from .evaluate import match_detections

    if len(reference) != len(other):
        raise YOLOv2Error(f"box_agreement needs the same images on both sides, got {len(reference)} and {len(other)}.")
    found = n_ref = n_other = 0
    for a, b in zip(reference, other):
        a, b = a[a[:, 4] >= score], b[b[:, 4] >= score]
        truth = torch.cat([a[:, :4], a[:, 5:6], torch.zeros(len(a), 1, dtype=a.dtype)], dim=1)  # as ground truth
        found += int(match_detections(b, truth, iou_threshold=iou, inclusive=False, strict=False).tp.sum())
        n_ref, n_other = n_ref + len(a), n_other + len(b)
    return found, n_ref, n_other
