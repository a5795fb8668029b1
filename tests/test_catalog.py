"""One call gives a split: records, classes and dataset, from a registered name or your own files."""

from __future__ import annotations

import pytest
import torch

import _train_worker as worker
from yolov2_lib.data.catalog import NAMED, DataSource, split, split_names
from yolov2_lib.data.voc import BCCD_CLASSES, DetectionDataset, read_boxes_csv
from yolov2_lib.errors import YOLOv2Error


def test_a_boxes_csv_split_is_what_the_reader_gives(tiny_data):
    csv_path, images = tiny_data
    source = DataSource.boxes_csv(csv_path, images, image_ext=".png")
    train = source.split("train")
    direct = read_boxes_csv(csv_path, images, splits="train", image_ext=".png")
    assert [r.image_id for r in train.records] == [r.image_id for r in direct] == ["train0", "train1", "train2"]
    assert train.class_names == sorted(worker.CLASSES)  # a CSV's classes: its sorted names
    assert all(torch.equal(a.boxes, b.boxes) for a, b in zip(train.records, direct))
    both = source.split("train,val", class_names=worker.CLASSES)
    assert len(both) == 6 and both.class_names == list(worker.CLASSES)
    dataset = both.dataset(input_size=64)
    assert isinstance(dataset, DetectionDataset) and len(dataset) == 6 and dataset[0][0].shape == (3, 64, 64)


def test_mistakes_are_named(tiny_data, tmp_path):
    csv_path, images = tiny_data
    source = DataSource.boxes_csv(csv_path, images, image_ext=".png")
    with pytest.raises(YOLOv2Error, match="'vall' of 'train,vall' have no images"):
        source.split("train,vall")
    with pytest.raises(YOLOv2Error, match="an empty name"):
        split_names("train,")
    with pytest.raises(YOLOv2Error, match="only 'bccd'"):
        DataSource.named("voc_boxes")
    with pytest.raises(YOLOv2Error, match="no Annotations folder"):
        DataSource.voc(tmp_path)
    with pytest.raises(YOLOv2Error, match="missing.csv does not exist"):
        DataSource.boxes_csv(tmp_path / "missing.csv", tmp_path)
    with pytest.raises(YOLOv2Error, match="is not a folder"):
        DataSource.boxes_csv(csv_path, tmp_path / "nowhere")
    assert DataSource.boxes_csv(csv_path, images_required=False).images == csv_path.parent


def test_bccd_by_name(shared_data, monkeypatch):
    monkeypatch.setenv("YOLOV2_DATA", str(shared_data))
    test = split("bccd", "test")
    assert test.class_names == list(BCCD_CLASSES) and len(test) == 72
    assert set(NAMED) == {"bccd", "voc2007_demo"}
