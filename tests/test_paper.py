"""The paper's numbers in ``yolov2_lib.paper``: consistent with each other and with the abstract."""

from __future__ import annotations

from yolov2_lib import paper


def _by_name(rows):
    return {r.detector: r for r in rows}


def test_table3_yolov2_rows_are_table3_voc2007():
    yolo = [r for r in paper.TABLE3_DETECTORS if r.detector.startswith("YOLOv2")]
    assert [(r.map, r.fps) for r in yolo] == list(paper.TABLE3_VOC2007.values())
    assert all(r.table == "Table 3" and r.train == "2007+2012" for r in paper.TABLE3_DETECTORS)


def test_table3_matches_the_abstract_and_table2():
    rows = _by_name(paper.TABLE3_DETECTORS)
    # abstract: "At 67 FPS, YOLOv2 gets 76.8 mAP on VOC 2007. At 40 FPS, YOLOv2 gets 78.6 mAP"
    assert (rows["YOLOv2 416x416"].map, rows["YOLOv2 416x416"].fps) == (76.8, 67)
    assert (rows["YOLOv2 544x544"].map, rows["YOLOv2 544x544"].fps) == (78.6, 40)
    # "outperforming ... Faster R-CNN with ResNet and SSD while still running significantly faster"
    best = rows["YOLOv2 544x544"]
    for other in ("Faster R-CNN ResNet", "SSD500"):
        assert best.map > rows[other].map and best.fps > rows[other].fps
    # v1 is the first column of Table 2
    assert rows["YOLO"].map == paper.TABLE2_PATH[0].voc2007_map
    assert paper.TABLE2_PATH[-1].voc2007_map == best.map


def test_table4_and_table5_rows():
    voc12 = _by_name(paper.TABLE4_VOC2012)
    assert voc12["YOLOv2 544"].map == 73.4 and all(r.fps is None for r in paper.TABLE4_VOC2012)
    coco = _by_name(paper.TABLE5_COCO)
    assert (coco["YOLOv2"].ap, coco["YOLOv2"].ap50, coco["YOLOv2"].ap75) == (21.6, 44.0, 19.2)
    for r in paper.TABLE5_COCO:  # AP over IoU 0.5:0.95 is below AP at 0.5, and AP75 in between
        assert r.ap < r.ap50 and (r.ap75 is None or r.ap75 < r.ap50)
    assert len({r.detector for r in paper.TABLE5_COCO}) == len(paper.TABLE5_COCO)


def test_yolo9000_numbers_add_up():
    y = paper.YOLO9000
    assert y["wordtree1k_nodes"] == 1000 + 369
    assert y["imagenet_det_classes"] - y["classes_with_detection_data"] == y["unseen_classes"]
    assert y["wordtree1k_top1"] < paper.DARKNET19["top1"] and y["wordtree1k_top5"] < paper.DARKNET19["top5"]


def test_backbones_and_the_448_fine_tune():
    ops = {name: v[0] for name, v in paper.BACKBONES_224.items()}
    assert min(ops, key=ops.get) == "Darknet-19" and ops["Darknet-19"] == paper.DARKNET19["billion_ops_224"]
    assert paper.DARKNET19_448["top1"] > paper.DARKNET19["top1"]


def test_ssd300_predicts_8732_boxes():
    # SSD's paper: "8732 detections per class" for SSD300
    assert sum(side * side * k for _, side, k in paper.SSD300_MAPS) == 8732
    sides = [side for _, side, _ in paper.SSD300_MAPS]
    assert sides == sorted(sides, reverse=True)


def test_table5_is_whole_and_shows_who_leads_on_coco():
    coco = _by_name(paper.TABLE5_COCO)
    assert len(coco) == 8  # the paper's eight rows
    yolo, resnet = coco["YOLOv2"], coco["Faster R-CNN ResNet"]
    assert resnet.ap > yolo.ap and resnet.ap50 > yolo.ap50 and resnet.ap75 > yolo.ap75
    assert (coco["Fast R-CNN (ION)"].ap, coco["Fast R-CNN (ION)"].ap50, coco["Fast R-CNN (ION)"].ap75) == (20.5, 39.9, 19.4)
