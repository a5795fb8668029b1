"""A trained detector over many images: a dataset split scored (:func:`evaluate_model`) or a list
of pictures detected (:func:`detect_images`), both through :class:`~yolov2_lib.detect.Detector`.

Chapters 8, 9 and 9.1 use it.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .data.sampler import fixed_size_loader
from .data.transforms import transform
from .detect import Detector
from .errors import YOLOv2Error
from .evaluate import VOCEvaluator, VOCResult

__all__ = ["evaluate_model", "detect_images"]


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    input_size: int = 416,
    batch_size: int = 8,
    num_workers: int = 0,
    conf_threshold: float = 0.005,
    nms_threshold: float = 0.45,
    top_k: int | None = 100,
    amp: str = "fp32",
    class_names: Sequence[str] | None = None,
    inclusive: bool = True,
    progress: bool = False,
) -> VOCResult:
    """VOC AP per class and mAP of a detector on a dataset split.

    Each image is resized (or letterboxed, as the dataset does for training) to
    ``input_size``; the detections are mapped back to the image's original
    pixels and compared with every ground truth of the image (difficult ones
    are neither counted nor penalised) by :mod:`yolov2_lib.evaluate`.

    Args:
        model: a YOLO v2 detector (raw head output); it stays on its device and
            is put back in its previous train/eval mode.
        data: a :class:`~yolov2_lib.data.voc.DetectionDataset` (its augmentation is
            ignored), or a DataLoader of ``(images, targets, metas)`` batches whose
            metas carry ``width``, ``height``, ``letterbox`` and ``gt``.
        input_size: network input side for a dataset (a DataLoader brings its own).
        batch_size, num_workers: the loader built for a dataset.
        conf_threshold, nms_threshold, top_k: see :func:`~yolov2_lib.decode.postprocess`
            (VOC protocol: keep low-scoring detections).
        amp: the precision of the forward pass (:func:`~yolov2_lib.precision.for_inference`).
        class_names: names for the result (default: the dataset's).
        inclusive: VOC's +1 pixel convention in the IoU (the official protocol).
        progress: show a progress bar.

    Returns:
        :class:`~yolov2_lib.evaluate.VOCResult` (``map_11point`` is VOC 2007's mAP).
    """
    from tqdm.auto import tqdm

    if getattr(model, "anchors", None) is None or getattr(model, "num_classes", None) is None:
        raise YOLOv2Error("evaluate_model needs a model with `anchors` and `num_classes` (a YOLOv2).")
    if isinstance(data, DataLoader):
        loader = data
        class_names = class_names or getattr(data.dataset, "class_names", None)
    else:
        dataset = data
        if getattr(dataset, "augment", None) is not None:
            dataset = copy.copy(dataset)
            dataset.augment = None
        loader = fixed_size_loader(dataset, input_size, batch_size, num_workers)
        class_names = class_names or getattr(dataset, "class_names", None)
    detector = _unfused(model, amp, conf_threshold, nms_threshold, top_k)
    evaluator = VOCEvaluator(model.num_classes, class_names, inclusive=inclusive)
    was_training = model.training
    model.eval()
    try:
        for images, _, metas in tqdm(loader, desc="eval", disable=not progress, leave=False):
            detector.letterbox = bool(metas[0].get("letterbox", False))
            dets = detector(images.to(detector.device, non_blocking=True),
                            [(m["width"], m["height"]) for m in metas])  # B x (N, 6) in original pixels
            evaluator.update(dets, [m["gt"] for m in metas])
    finally:
        model.train(was_training)
    return evaluator.compute()


def _unfused(model: nn.Module, precision: str, conf_threshold: float, nms_threshold: float,
             top_k: int | None, letterbox: bool = False) -> Detector:
    """A :class:`Detector` that runs ``model`` itself, as it is (unfused, in its own memory layout):
    evaluation during training scores the very weights being trained."""
    param = next(model.parameters())
    channels_last = param.dim() == 4 and param.is_contiguous(memory_format=torch.channels_last)
    return Detector(model, precision=precision, fuse=False, channels_last=channels_last,
                    conf_threshold=conf_threshold, nms_threshold=nms_threshold, top_k=top_k, letterbox=letterbox)


@torch.no_grad()
def detect_images(
    model: nn.Module,
    images: Sequence[Tensor],
    *,
    input_size: int = 416,
    letterbox: bool = False,
    conf_threshold: float = 0.25,
    nms_threshold: float = 0.45,
    top_k: int | None = 100,
    amp: str = "fp32",
) -> list[Tensor]:
    """Detections on images of any size, in their own pixels.

    Args:
        model: a YOLO v2 detector; it stays on its device.
        images: (3, H, W) float RGB tensors in [0, 1] (e.g. from
            :func:`~yolov2_lib.data.voc.load_image`); they are resized on the CPU, as the
            dataset does, and the batch is sent to the model's device.
        input_size: network input side (a multiple of 32).
        letterbox: keep the aspect ratio (as the model was trained), else stretch.
        conf_threshold, nms_threshold, top_k: see :func:`~yolov2_lib.decode.postprocess`.
        amp: the precision (:func:`~yolov2_lib.precision.for_inference`).

    Returns:
        One (N_i, 6) tensor per image, rows ``(x1, y1, x2, y2, score, class)`` in
        the image's pixels, on the model's device.
    """
    if input_size % 32:
        raise YOLOv2Error(f"input_size must be a multiple of 32, got {input_size}.")
    detector = _unfused(model, amp, conf_threshold, nms_threshold, top_k, letterbox)
    results: list[Tensor] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), 8):
            chunk = images[start:start + 8]
            inputs = []
            for k, image in enumerate(chunk):
                if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
                    shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
                    raise YOLOv2Error(f"images[{start + k}] must be a (3, H, W) tensor, got {shape}.")
                x, _, _ = transform(image.float().cpu(), torch.zeros(0, 4), input_size, letterbox=letterbox)
                inputs.append(x)
            batch = torch.stack(inputs).to(detector.device)  # (b, 3, S, S)
            found = detector(batch, [(im.shape[2], im.shape[1]) for im in chunk])
            results += [d.clone() for d in found]  # ordinary tensors, free to edit in place
    finally:
        model.train(was_training)
    return results
