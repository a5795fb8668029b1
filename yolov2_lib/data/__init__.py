"""Datasets: the registry of real data, readers, augmentation and multi-scale batches.

Explained in chapter 1 (the data behind the book) and the multi-scale
training chapter.
"""

from .registry import ChecksumError, DatasetError, DatasetUnavailableError, fetch
from .sampler import MultiScaleBatchSampler, MultiScaleItem, detection_collate, fixed_size_loader
from .transforms import Augment
from .voc import (
    BCCD_CLASSES,
    VOC_CLASSES,
    AnnotationError,
    DataWarning,
    DetectionDataset,
    ImageLoadError,
    read_boxes_csv,
    read_voc,
    write_boxes_csv,
)

__all__ = [
    "fetch",
    "DatasetError",
    "ChecksumError",
    "DatasetUnavailableError",
    "DetectionDataset",
    "read_voc",
    "read_boxes_csv",
    "write_boxes_csv",
    "VOC_CLASSES",
    "BCCD_CLASSES",
    "DataWarning",
    "AnnotationError",
    "ImageLoadError",
    "Augment",
    "MultiScaleBatchSampler",
    "MultiScaleItem",
    "detection_collate",
    "fixed_size_loader",
]
