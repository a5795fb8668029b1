"""yolov2_lib: YOLO v2 (YOLO9000, Redmon & Farhadi 2016) in PyTorch.

One module per idea of the book; each module's docstring names the chapter
that explains it.
"""

__version__ = "0.1.0"
