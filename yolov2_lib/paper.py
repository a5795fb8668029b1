"""What the YOLO v2 paper reports, as data the chapters and tests compare against.

Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger" (arXiv:1612.08242, CVPR 2017).
Every chapter that reproduces one of these numbers prints ours next to the
paper's; nothing here is computed, it is quoted.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "BACKBONES_224",
    "COCOResult",
    "DARKNET19",
    "DARKNET19_448",
    "Result",
    "SSD300_MAPS",
    "Step",
    "TABLE1_MEAN_IOU",
    "TABLE2_PATH",
    "TABLE3_DETECTORS",
    "TABLE3_VOC2007",
    "TABLE4_VOC2012",
    "TABLE5_COCO",
    "YOLO9000",
]


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

# Section "Faster": the backbones Darknet-19 replaces, as (billions of operations for
# one 224 x 224 image, single-crop ImageNet top-5 accuracy %).
BACKBONES_224 = {
    "VGG-16": (30.69, 90.0),
    "YOLO v1's network": (8.52, 88.0),  # GoogLeNet-based ("Extraction")
    "Darknet-19": (DARKNET19["billion_ops_224"], DARKNET19["top5"]),
}

# Section "Training for classification": Darknet-19 after 10 epochs of fine-tuning at 448 x 448.
DARKNET19_448 = {"epochs": 10, "top1": 76.5, "top5": 93.3}


class Result(NamedTuple):
    """One detector in the paper's comparison tables (3 and 4).

    Attributes:
        detector: the detector as the paper names it.
        train: the training data ("2007+2012": VOC 2007 trainval and 2012
            trainval; "07++12": those plus VOC 2007 test).
        map: mAP (%) at IoU 0.5 on the table's test set.
        fps: frames per second (Table 3: one image at a time on a GeForce GTX
            Titan X, the original Maxwell one), ``None`` where the table gives none.
        table: where in the paper the row is.
    """

    detector: str
    train: str
    map: float
    fps: float | None
    table: str


class COCOResult(NamedTuple):
    """One detector in the paper's Table 5 (COCO test-dev2015).

    Attributes:
        detector: the detector as the paper names it.
        train: the COCO training data.
        ap: COCO's AP (%), averaged over IoU 0.5:0.05:0.95.
        ap50: AP (%) at IoU 0.5, the VOC-style number.
        ap75: AP (%) at IoU 0.75, ``None`` where the table gives none.
        table: where in the paper the row is.
    """

    detector: str
    train: str
    ap: float
    ap50: float
    ap75: float | None
    table: str


# Table 3, "Detection frameworks on PASCAL VOC 2007" (VOC 2007 test, trained on
# 2007+2012). The YOLOv2 rows are one trained network evaluated at five sizes.
TABLE3_DETECTORS: tuple[Result, ...] = (
    Result("Fast R-CNN", "2007+2012", 70.0, 0.5, "Table 3"),
    Result("Faster R-CNN VGG-16", "2007+2012", 73.2, 7, "Table 3"),
    Result("Faster R-CNN ResNet", "2007+2012", 76.4, 5, "Table 3"),
    Result("YOLO", "2007+2012", 63.4, 45, "Table 3"),
    Result("SSD300", "2007+2012", 74.3, 46, "Table 3"),
    Result("SSD500", "2007+2012", 76.8, 19, "Table 3"),
) + tuple(
    Result(f"YOLOv2 {size}x{size}", "2007+2012", m, fps, "Table 3") for size, (m, fps) in TABLE3_VOC2007.items()
)

# Table 4, "PASCAL VOC2012 test detection results" (mAP column; the table also
# gives the AP of each of the 20 classes).
TABLE4_VOC2012: tuple[Result, ...] = (
    Result("Fast R-CNN", "07++12", 68.4, None, "Table 4"),
    Result("Faster R-CNN", "07++12", 70.4, None, "Table 4"),
    Result("YOLO", "07++12", 57.9, None, "Table 4"),
    Result("SSD300", "07++12", 72.4, None, "Table 4"),
    Result("SSD512", "07++12", 74.9, None, "Table 4"),
    Result("ResNet", "07++12", 73.8, None, "Table 4"),
    Result("YOLOv2 544", "07++12", 73.4, None, "Table 4"),
)

# Table 5, "Results on COCO test-dev2015" (the AP columns by IoU; the table
# also splits AP and AR by object area). The table has two more rows, Fast
# and Faster R-CNN as re-trained in other papers (20.5 and 24.2 AP).
TABLE5_COCO: tuple[COCOResult, ...] = (  # every row; the table's columns by object size and recall left out
    COCOResult("Fast R-CNN", "train", 19.7, 35.9, None, "Table 5"),
    COCOResult("Fast R-CNN (ION)", "train", 20.5, 39.9, 19.4, "Table 5"),  # as run in the ION paper
    COCOResult("Faster R-CNN", "trainval", 21.9, 42.7, None, "Table 5"),
    COCOResult("ION", "train", 23.6, 43.2, 23.6, "Table 5"),
    COCOResult("Faster R-CNN ResNet", "trainval", 24.2, 45.3, 23.5, "Table 5"),
    COCOResult("SSD300", "trainval35k", 23.2, 41.2, 23.4, "Table 5"),
    COCOResult("SSD512", "trainval35k", 26.8, 46.5, 27.8, "Table 5"),
    COCOResult("YOLOv2", "trainval35k", 21.6, 44.0, 19.2, "Table 5"),
)

# The paper's "Stronger" half: WordTree and joint training (section 4, "Stronger").
YOLO9000 = {
    "wordtree1k_nodes": 1369,  # ImageNet's 1000 classes plus the 369 intermediate WordNet nodes
    "wordtree1k_top1": 71.9,  # Darknet-19 trained on WordTree1k, ImageNet top-1 (%)
    "wordtree1k_top5": 90.4,
    "imagenet_classes": 9000,  # the top classes of the full ImageNet release
    "wordtree_classes": 9418,  # COCO + the top 9000 classes of the full ImageNet release
    "imagenet_to_coco": 4,  # COCO oversampled so ImageNet is only 4 times larger
    "anchors": 3,  # priors per cell instead of 5, to limit the output size
    "classification_iou": 0.3,  # a classification image's best box is assumed to overlap the object this much
    "imagenet_det_map": 19.7,  # mAP on the ImageNet detection validation set (200 classes)
    "imagenet_det_classes": 200,
    "classes_with_detection_data": 44,  # of the 200, the ones COCO also has
    "unseen_classes_map": 16.0,  # mAP on the 156 classes with no detection data at all
    "unseen_classes": 156,
}

# For chapter 7's comparison: the six feature maps SSD300 predicts from
# (Liu et al., "SSD: Single Shot MultiBox Detector", arXiv:1512.02325, Figure 2
# and section 3.1): (layer of VGG-16 or of SSD's extra layers, grid side,
# default boxes per cell). 38*38*4 + 19*19*6 + ... = 8732 boxes per image.
SSD300_MAPS: tuple[tuple[str, int, int], ...] = (
    ("conv4_3", 38, 4),
    ("fc7", 19, 6),
    ("conv8_2", 10, 6),
    ("conv9_2", 5, 6),
    ("conv10_2", 3, 4),
    ("conv11_2", 1, 4),
)
