"""Datasets: the registry of real data, readers, augmentation and multi-scale batches.

Explained in chapter 1 (the data behind the book) and chapter 8 (multi-scale training).
"""

from .registry import ChecksumError, DatasetError, DatasetUnavailableError, fetch

__all__ = ["fetch", "DatasetError", "ChecksumError", "DatasetUnavailableError"]
