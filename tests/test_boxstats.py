"""Tests for yolov2_lib.data.boxstats: box shapes read from boxes CSVs, Faster R-CNN's anchors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from yolov2_lib.data.boxstats import box_sizes, faster_rcnn_anchors, faster_rcnn_scale

DATA = Path(os.environ.get("YOLOV2_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
HEADER = "split,year,image_id,width,height,class,xmin,ymin,xmax,ymax,difficult\n"


def write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "boxes.csv"
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def test_box_sizes_by_hand_in_both_pixel_conventions(tmp_path):
    path = write(tmp_path, ["train,2007,a,500,400,cat,1,1,100,200,0",  # 100 x 200 inclusive pixels
                            "val,2012,b,200,100,dog,11,21,30,40,0"])  # 20 x 20
    np.testing.assert_allclose(box_sizes(path, inclusive=True), [[100 / 500, 200 / 400], [20 / 200, 20 / 100]])
    np.testing.assert_allclose(box_sizes(path, inclusive=False), [[99 / 500, 199 / 400], [19 / 200, 19 / 100]])
    wh, size = box_sizes(path, inclusive=True, return_image_size=True)
    np.testing.assert_array_equal(size, [[500, 400], [200, 100]])
    assert wh.shape == (2, 2) and wh.dtype == np.float64


def test_box_sizes_selects_splits_years_and_difficult(tmp_path):
    path = write(tmp_path, ["train,2007,a,100,100,cat,1,1,10,10,0",
                            "val,2007,a,100,100,cat,1,1,20,20,1",
                            "test,2007,c,100,100,cat,1,1,30,30,0",
                            "train,2012,d,100,100,cat,1,1,40,40,0"])
    width = lambda **kw: (box_sizes(path, inclusive=True, **kw)[:, 0] * 100).round().tolist()  # noqa: E731
    assert width() == [10, 30, 40]  # difficult left out by default
    assert width(difficult=True) == [10, 20, 30, 40]
    assert width(splits=("train", "val"), difficult=True) == [10, 20, 40]
    assert width(splits="train", years="2012") == [40]
    assert width(years=["2007"]) == [10, 30]


def test_box_sizes_without_optional_columns(tmp_path):
    path = write(tmp_path, ["1,640,480,dog,0,0,64,48"], header="image_id,width,height,class,xmin,ymin,xmax,ymax\n")
    np.testing.assert_allclose(box_sizes(path, inclusive=False), [[0.1, 0.1]])
    with pytest.raises(ValueError, match="cannot select by split"):
        box_sizes(path, inclusive=False, splits="train")


def test_box_sizes_empty_boxes_raise_or_are_skipped(tmp_path):
    path = write(tmp_path, ["train,2007,a,100,100,cat,5,5,5,50,0", "train,2007,b,100,100,cat,1,1,10,10,0"])
    with pytest.raises(ValueError, match="line 2.*width 0"):
        box_sizes(path, inclusive=False)
    np.testing.assert_allclose(box_sizes(path, inclusive=False, skip_empty=True), [[0.09, 0.09]])
    np.testing.assert_allclose(box_sizes(path, inclusive=True)[0], [0.01, 0.46])  # one pixel wide when inclusive


@pytest.mark.parametrize(
    "row, match",
    [
        ("train,2007,a,100,100,cat,1,1,x,10,0", "line 2: non-numeric"),
        ("train,2007,a,0,100,cat,1,1,10,10,0", "line 2: image size"),
        ("train,2007,a,100,100,cat,1,1,nan,10,0", "line 2: image size"),
        ("train,2007,a,100,50,cat,1,1,10,60,0", "line 2: box 10 x 60 is larger than its image"),
    ],
)
def test_box_sizes_bad_rows_name_their_line(tmp_path, row, match):
    with pytest.raises(ValueError, match=match):
        box_sizes(write(tmp_path, [row]), inclusive=True)


def test_box_sizes_missing_columns_and_no_rows(tmp_path):
    with pytest.raises(ValueError, match="missing column.*xmax"):
        box_sizes(write(tmp_path, ["a,1,1,0,0"], header="image_id,width,height,xmin,ymin\n"), inclusive=True)
    with pytest.raises(ValueError, match="no box left"):
        box_sizes(write(tmp_path, ["train,2007,a,100,100,cat,1,1,10,10,0"]), inclusive=True, years="2012")


def test_faster_rcnn_anchors_areas_and_ratios():
    anchors = faster_rcnn_anchors()
    assert anchors.shape == (9, 2)
    np.testing.assert_allclose(anchors.prod(axis=1), np.repeat([128.0**2, 256.0**2, 512.0**2], 3))
    np.testing.assert_allclose(anchors[:, 1] / anchors[:, 0], np.tile([0.5, 1.0, 2.0], 3))
    np.testing.assert_allclose(anchors[4], [256, 256])
    np.testing.assert_allclose(faster_rcnn_anchors([10], [4.0]), [[5.0, 20.0]])
    with pytest.raises(ValueError, match="positive scales and ratios"):
        faster_rcnn_anchors([128], [0.0])


def test_faster_rcnn_scale_short_side_then_cap():
    scale = faster_rcnn_scale(np.array([[500, 375], [375, 500], [2000, 500], [600, 600]]))
    np.testing.assert_allclose(scale, [600 / 375, 600 / 375, 1000 / 2000, 1.0])
    with pytest.raises(ValueError, match="image_size"):
        faster_rcnn_scale(np.array([500, 375]))


def test_box_sizes_on_the_real_voc_and_coco_files():
    voc, coco = DATA / "voc_boxes.csv", DATA / "coco" / "coco_val2017_boxes.csv"
    if not (voc.is_file() and coco.is_file()):
        pytest.skip(f"real data not found under {DATA}")
    # VOC's official counts of non-difficult objects: 2007 trainval 12,608, 2007 test 12,032
    assert len(box_sizes(voc, inclusive=True, splits=("train", "val"), years="2007")) == 12608
    assert len(box_sizes(voc, inclusive=True, splits="test")) == 12032
    wh = box_sizes(voc, inclusive=True, splits=("train", "val"))
    assert len(wh) == 40058 and (wh > 0).all() and (wh <= 1).all()
    assert len(box_sizes(coco, inclusive=False, skip_empty=True)) == 36780  # one box of zero height


def _arrays(result) -> tuple:
    """box_sizes returns an array, or a tuple of two with return_image_size."""
    return result if isinstance(result, tuple) else (result,)


def test_a_box_size_table_gives_what_the_corners_give(tmp_path):
    """dx, dy instead of the corners (the shipped tables): same sizes, same checks, either convention."""
    corners = write(tmp_path, ["train,2007,a,500,400,cat,1,1,100,200,0", "val,2012,b,200,100,dog,11,21,30,40,1",
                               "test,2007,c,100,100,cat,5,5,5,9,0"])
    table = tmp_path / "sizes.csv"
    table.write_text("split,year,image_id,width,height,dx,dy,difficult\n"
                     "train,2007,a,500,400,99,199,0\nval,2012,b,200,100,19,19,1\ntest,2007,c,100,100,0,4,0\n")
    for kw in ({"inclusive": True}, {"inclusive": True, "difficult": True, "return_image_size": True},
               {"inclusive": False, "skip_empty": True, "splits": ("train", "val"), "difficult": True}):
        got, expected = box_sizes(table, **kw), box_sizes(corners, **kw)
        assert len(_arrays(got)) == len(_arrays(expected))
        for a, b in zip(_arrays(got), _arrays(expected)):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="has width 0"):
        box_sizes(table, inclusive=False)
    (tmp_path / "half.csv").write_text("width,height,dx\n10,10,1\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) xmin, ymin, xmax, ymax \(or dx, dy"):
        box_sizes(tmp_path / "half.csv", inclusive=True)
