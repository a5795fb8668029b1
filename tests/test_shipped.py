"""The tables that ship with the package: rebuilt from the data mirror they are the registered bytes,
the package's copies are those bytes, and the chapters' numbers do not depend on which file they read."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from yolov2_lib.data import build, shipped
from yolov2_lib.data.boxstats import box_sizes
from yolov2_lib.data.registry import default_registry, sha256_file


def _arrays(result) -> tuple:
    """box_sizes returns an array, or a tuple of two with return_image_size."""
    return result if isinstance(result, tuple) else (result,)


def _registered() -> dict[str, str]:
    """shipped name -> the SHA-256 the registry holds for the file it becomes."""
    r = default_registry()
    return {f.shipped: f.sha256 for n in r.names() for f in r.dataset(n).files if f.shipped}


def test_every_shipped_table_is_registered_and_made_by_the_builder():
    assert set(_registered()) == set(shipped.TABLES) == {p.name for p in shipped.SHIPPED_DIR.glob("*.gz")}


def test_the_package_copies_are_the_registered_bytes():
    for name, sha in _registered().items():
        assert hashlib.sha256(gzip.decompress((shipped.SHIPPED_DIR / name).read_bytes())).hexdigest() == sha, name


def test_rebuilding_from_the_mirror_gives_the_registered_digest(shared_data, tmp_path):
    written = shipped.rebuild(shared_data, tmp_path, compress=False)
    for name, sha in _registered().items():
        assert sha256_file(written[name]) == sha, f"{name} rebuilt from {shared_data} differs from the registry"
    # (the gzip bytes themselves may differ with another zlib; what the registry checks is the CSV)


def test_box_size_table_by_hand(tmp_path):
    src = tmp_path / "boxes.csv"
    src.write_text("split,year,image_id,width,height,class,xmin,ymin,xmax,ymax,difficult\n"
                   "train,2007,a,500,400,cat,1,1,100,200,0\ntest,2007,b,50,40,dog,1.5,2,3,4,1\n")
    assert build.box_size_table_csv(src, tmp_path / "t.csv") == 2
    assert (tmp_path / "t.csv").read_bytes() == (b"split,year,image_id,width,height,dx,dy,difficult\r\n"
                                                 b"train,2007,a,500,400,99,199,0\r\ntest,2007,b,50,40,1.5,2,1\r\n")
    (tmp_path / "bad.csv").write_text("width,height,xmin\n1,1,1\n")
    with pytest.raises(ValueError, match="missing column"):
        build.box_size_table_csv(tmp_path / "bad.csv", tmp_path / "t2.csv")


@pytest.mark.parametrize("full, table, kwargs", [
    ("voc_boxes.csv", "voc_box_sizes.csv.gz", {"inclusive": True, "splits": ("train", "val"),
                                               "return_image_size": True}),
    ("voc_boxes.csv", "voc_box_sizes.csv.gz", {"inclusive": False, "splits": ("train", "val")}),
    ("voc_boxes.csv", "voc_box_sizes.csv.gz", {"inclusive": True, "years": "2007", "splits": "test",
                                               "difficult": True}),
    ("coco/coco_val2017_boxes.csv", "coco_val2017_box_sizes.csv.gz", {"inclusive": False, "skip_empty": True}),
])  # fmt: skip
def test_the_chapters_read_the_same_numbers_from_the_table(shared_data, tmp_path, full, table, kwargs):
    """Chapter 3 and the Table 1 appendix read the shipped table: bit for bit what the full boxes give."""
    plain = tmp_path / "table.csv"
    shipped.gunzip_file(shipped.SHIPPED_DIR / table, plain)
    got, expected = box_sizes(plain, **kwargs), box_sizes(shared_data / full, **kwargs)
    assert len(_arrays(got)) == len(_arrays(expected))
    for a, b in zip(_arrays(got), _arrays(expected)):
        np.testing.assert_array_equal(a, b)
