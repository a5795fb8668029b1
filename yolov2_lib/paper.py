"""What the YOLO v2 paper reports, as data the chapters and tests compare against.

Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger" (arXiv:1612.08242, CVPR 2017).
Every chapter that reproduces one of these numbers prints ours next to the
paper's; nothing here is computed, it is quoted.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Step", "TABLE2_PATH", "TABLE1_MEAN_IOU", "TABLE3_VOC2007", "DARKNET19"]


class Step(NamedTuple):
    """One column of Table 2: the change added and the VOC 2007 mAP with it."""

    change: str
    voc2007_map: float
    chapter: str


# Table 2, "The path from YOLO to YOLOv2": each column adds one change to the previous.
TABLE2_PATH: tuple[Step, ...] = (
    Step("YOLO (v1)", 63.4, "01_from_v1_to_v2"),
    Step("batch norm", 65.8, "02_darknet19"),
    Step("hi-res classifier", 69.5, "02_darknet19"),
    Step("convolutional, anchor boxes", 69.2, "04_output_feature_map"),
    Step("new network (Darknet-19)", 69.6, "02_darknet19"),
    Step("dimension priors, location prediction", 74.4, "03_anchor_boxes / 05_direct_location"),
    Step("passthrough", 75.4, "07_passthrough"),
    Step("multi-scale", 76.8, "08_multiscale"),
    Step("hi-res detector (544)", 78.6, "08_multiscale"),
)

# Table 1: mean IoU (%) of the closest prior to each VOC 2007 box.
TABLE1_MEAN_IOU: dict[str, tuple[int, float]] = {
    "Cluster SSE": (5, 58.7),
    "Cluster IOU": (5, 61.0),
    "Anchor Boxes (Faster R-CNN)": (9, 60.9),
    "Cluster IOU, k=9": (9, 67.2),
}

# Table 3: YOLOv2 on VOC 2007 test at each input size: (mAP, FPS on a Titan X).
TABLE3_VOC2007: dict[int, tuple[float, int]] = {
    288: (69.0, 91),
    352: (73.7, 81),
    416: (76.8, 67),
    480: (77.8, 59),
    544: (78.6, 40),
}

# Darknet-19 (section "Faster"): operations at 224x224 and ImageNet accuracy.
DARKNET19 = {"billion_ops_224": 5.58, "top1": 72.9, "top5": 91.2, "conv_layers": 19, "maxpool_layers": 5}
