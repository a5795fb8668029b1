"""Building the derived box CSVs: each builder on real upstream files (BCCD fixtures, real
COCO annotations) or hand-made VOC folders, the canonical content hash, and the streamed,
MD5-checked downloads. Sources are served through file:// URLs: no network."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from yolov2_lib.data import build
from yolov2_lib.data import registry as reg
from yolov2_lib.data.voc import DataWarning

FIXTURES = Path(__file__).parent / "fixtures" / "bccd"
BCCD_IDS = ("BloodImage_00007", "BloodImage_00014", "BloodImage_00171", "BloodImage_00343")


def lines(path: Path) -> list[str]:
    text = path.read_bytes().decode()
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "expected csv's \\r\\n line ends"
    return text.split("\r\n")[:-1]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------- BCCD, on real upstream files


def test_bccd_builder_on_real_upstream_annotations(tmp_path):
    out = tmp_path / "bccd_boxes.csv"
    n = build.bccd_boxes_csv(FIXTURES / "Annotations", FIXTURES / "ImageSets" / "Main", out)
    rows = lines(out)
    assert rows[0] == "split,image_id,width,height,class,xmin,ymin,xmax,ymax,difficult"
    assert n == len(rows) - 1 == 18 + 19 + 13 + 12
    images = list(dict.fromkeys(r.split(",")[1] for r in rows[1:]))
    assert images == list(BCCD_IDS)  # sorted by image id, whatever the list
    assert rows[1] == "test,BloodImage_00007,640,480,WBC,193,92,387,285,0"  # first object of the file
    assert rows[19] == "val,BloodImage_00014,640,480,WBC,236,211,379,353,0"
    assert rows[38] == "test,BloodImage_00171,640,480,RBC,16,195,119,303,0"
    # the zero-area box of BloodImage_00343 is kept as upstream has it, in its place
    assert rows[51 + 3] == "train,BloodImage_00343,640,480,RBC,181,329,181,329,0"
    assert rows[-1] == "train,BloodImage_00343,640,480,WBC,183,1,425,153,0"


def test_bccd_builder_gives_the_registered_rows_for_these_images(shared_data, tmp_path):
    out = tmp_path / "bccd_boxes.csv"
    build.bccd_boxes_csv(FIXTURES / "Annotations", FIXTURES / "ImageSets" / "Main", out)
    mirror = lines(shared_data / "bccd" / "bccd_boxes.csv")
    expected = [r for r in mirror[1:] if r.split(",")[1] in BCCD_IDS]
    assert len(expected) == 62
    assert lines(out)[1:] == expected  # same rows, same order, same formatting


def test_bccd_image_in_two_lists_stays_in_the_first_and_missing_files_are_skipped(tmp_path):
    sets = tmp_path / "sets"
    sets.mkdir()
    (sets / "train.txt").write_text("BloodImage_00343\nBloodImage_99999\n")
    (sets / "val.txt").write_text("BloodImage_00343\n")
    out = tmp_path / "out.csv"
    with pytest.warns(DataWarning) as record:
        n = build.bccd_boxes_csv(FIXTURES / "Annotations", sets, out, splits=("train", "val"))
    messages = " ".join(str(w.message) for w in record)
    assert "already in train.txt" in messages and "BloodImage_99999.xml" in messages
    assert n == 12 and {r.split(",")[0] for r in lines(out)[1:]} == {"train"}
    with pytest.raises(ValueError, match="already in train.txt"):
        build.bccd_boxes_csv(FIXTURES / "Annotations", sets, out, splits=("train", "val"), strict=True)


# ---------------------------------------------------------------- VOC, from hand-made archives


def voc_xml(width: int, height: int, objects: list[tuple]) -> str:
    """objects: (name, xmin, ymin, xmax, ymax, difficult or None, with_part)."""
    body = ""
    for name, x1, y1, x2, y2, difficult, part in objects:
        flag = "" if difficult is None else f"<difficult>{difficult}</difficult>"
        parts = ("<part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
                 "</bndbox></part>") if part else ""  # fmt: skip
        body += (f"<object><name>{name}</name><pose>Left</pose>{flag}<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                 f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>{parts}</object>")  # fmt: skip
    return (f"<annotation><folder>VOC</folder><size><width>{width}</width><height>{height}</height>"
            f"<depth>3</depth></size>{body}</annotation>")  # fmt: skip


VOC2007 = {
    "000005": voc_xml(500, 375, [("chair", 263, 211, 324, 339, 0, False), ("chair", 5, 244, 67, 374, 1, False)]),
    "000007": voc_xml(500, 333, [("car", 141, 50, 500, 330, 0, False)]),
    "000001": voc_xml(353, 500, [("dog", 48, 240, 195, 371, 0, False), ("person", 8, 12, 352, 498, 0, True)]),
}
VOC2012 = {
    "2008_000008": voc_xml(500, 442, [("horse", 53, 87, 471, 420, None, False)]),
    "2011_003353": voc_xml(500, 375, [("person", 10, "45.70000076293945", 100, 200, 0, False)]),
}


def voc_tar(path: Path, year: str, xmls: dict[str, str], lists: dict[str, list[str]], gz: bool = False) -> bytes:
    """A VOC-like archive (with a JPEG and a segmentation list that must be skipped); returns its bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"VOCdevkit/VOC{year}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for image_id, text in xmls.items():
            add(f"Annotations/{image_id}.xml", text.encode())
            add(f"JPEGImages/{image_id}.jpg", b"\xff\xd8 not needed")
        for name, ids in lists.items():
            add(f"ImageSets/Main/{name}.txt", "".join(f"{i}\n" for i in ids).encode())
        add("ImageSets/Segmentation/train.txt", b"000001\n")
    data = gzip.compress(buf.getvalue()) if gz else buf.getvalue()
    path.write_bytes(data)
    return data


VOC_EXPECTED = [
    "split,year,image_id,width,height,class,xmin,ymin,xmax,ymax,difficult",
    "train,2007,000005,500,375,chair,263,211,324,339,0",
    "train,2007,000005,500,375,chair,5,244,67,374,1",
    "val,2007,000007,500,333,car,141,50,500,330,0",
    "test,2007,000001,353,500,dog,48,240,195,371,0",
    "test,2007,000001,353,500,person,8,12,352,498,0",  # its <part> boxes are not objects
    "train,2012,2011_003353,500,375,person,10,45.70000076293945,100,200,0",  # a float stays a float
    "val,2012,2008_000008,500,442,horse,53,87,471,420,0",  # no <difficult>: 0
]


@pytest.fixture
def voc_archives(tmp_path):
    """Three archives as the official ones are split: 2007 trainval, 2007 test, 2012 trainval."""
    d = tmp_path / "served"
    d.mkdir()
    trainval07 = {k: VOC2007[k] for k in ("000005", "000007")}
    sources = [
        build.Source((d / "t07.tar").as_uri(), md5(voc_tar(d / "t07.tar", "2007", trainval07, {
            "train": ["000005"], "val": ["000007"], "trainval": ["000005", "000007"]}))),
        build.Source((d / "e07.tar.gz").as_uri(), md5(voc_tar(d / "e07.tar.gz", "2007", {"000001": VOC2007["000001"]},
                                                              {"test": ["000001"]}, gz=True))),
        build.Source((d / "t12.tar").as_uri(), md5(voc_tar(d / "t12.tar", "2012", VOC2012, {
            "train": ["2011_003353"], "val": ["2008_000008"]}))),
    ]  # fmt: skip
    return sources


def test_voc_recipe_streams_the_archives_and_writes_the_mirror_layout(voc_archives, tmp_path):
    recipe = build.BuildRecipe("voc_boxes", tuple(voc_archives), "toy VOC", "research use")
    out = tmp_path / "voc_boxes.csv"
    assert build.run_recipe(recipe, tmp_path / "work", out) == len(VOC_EXPECTED) - 1
    assert lines(out) == VOC_EXPECTED
    kept = sorted(p.relative_to(tmp_path / "work").as_posix() for p in (tmp_path / "work").rglob("*") if p.is_file())
    assert not [p for p in kept if "JPEGImages" in p or "Segmentation" in p], kept


def test_extract_keeps_nothing_when_the_md5_is_wrong(voc_archives, tmp_path):
    bad = build.Source(voc_archives[0].url, md5="0" * 32)
    with pytest.raises(build.SourceChecksumError, match=r"MD5 is [0-9a-f]{32} .* the published sum is 0{32}"):
        build.extract_tar_members(bad, tmp_path / "out", build._voc_member)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_extract_falls_back_to_a_mirror(voc_archives, tmp_path):
    src = voc_archives[1]
    with_mirror = build.Source((tmp_path / "gone.tar").as_uri(), src.md5, mirrors=(src.url,))
    written = build.extract_tar_members(with_mirror, tmp_path / "out", build._voc_member)
    assert sorted(p.name for p in written) == ["000001.xml", "test.txt"]
    with pytest.raises(build.SourceUnavailableError, match="gone.tar"):
        build.extract_tar_members(build.Source(with_mirror.url), tmp_path / "out2", build._voc_member)


def test_a_file_that_is_not_a_tar_is_refused(tmp_path):
    page = tmp_path / "page.html"
    page.write_bytes(b"<html>moved</html>")
    with pytest.raises(build.SourceChecksumError, match="not a readable tar archive"):
        build.extract_tar_members(build.Source(page.as_uri()), tmp_path / "out", build._voc_member)


def test_download_checks_the_md5_and_leaves_nothing_on_a_mismatch(tmp_path):
    src = tmp_path / "list.txt"
    src.write_bytes(b"a\nb\n")
    build.download(build.Source(src.as_uri(), md5(b"a\nb\n")), tmp_path / "got" / "list.txt")
    assert (tmp_path / "got" / "list.txt").read_bytes() == b"a\nb\n"
    with pytest.raises(build.SourceChecksumError, match="MD5"):
        build.download(build.Source(src.as_uri(), "f" * 32), tmp_path / "bad" / "list.txt")
    assert not list((tmp_path / "bad").iterdir())


# ---------------------------------------------------------------- COCO, on real annotations


def coco_zip(path: Path) -> bytes:
    """A COCO-style archive; the annotations of images 289343, 61471 and 250282 are the real ones."""
    instances = {
        "images": [{"id": 289343, "width": 529, "height": 640}, {"id": 61471, "width": 640, "height": 480},
                   {"id": 250282, "width": 640, "height": 426}, {"id": 1, "width": 10, "height": 10}],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 67, "name": "dining table"}],
        "annotations": [
            {"id": 1768, "image_id": 289343, "category_id": 18, "iscrowd": 0, "bbox": [473.07, 395.93, 38.65, 28.67]},
            {"id": 1773, "image_id": 61471, "category_id": 18, "iscrowd": 0, "bbox": [272.1, 200.23, 151.97, 279.77]},
            {"id": 5, "image_id": 289343, "category_id": 67, "iscrowd": 0, "bbox": [0.5, 1.0, 10.99, 3.0]},
            {"id": 900100250282, "image_id": 250282, "category_id": 1, "iscrowd": 1, "bbox": [0, 34, 639, 388]},
        ],
    }  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("annotations/instances_val2017.json", json.dumps(instances))
        zf.writestr("annotations/captions_val2017.json", "{}")
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


COCO_EXPECTED = [
    "image_id,width,height,class,xmin,ymin,xmax,ymax",
    "289343,529,640,dog,473,395,511,423",  # int(x) + int(w): 511, not int(x + w) = 511; 423, not 424
    "289343,529,640,dining table,0,1,10,4",
    "61471,640,480,dog,272,200,423,479",
    "250282,640,426,person,0,34,639,422",  # the crowd box is a row like any other
]


def test_coco_recipe_builds_from_the_zip(tmp_path):
    archive = tmp_path / "annotations_trainval2017.zip"
    source = build.Source(archive.as_uri(), md5(coco_zip(archive)), member="annotations/instances_val2017.json")
    out = tmp_path / "coco.csv"
    recipe = build.BuildRecipe("coco_boxes", (source,), "toy COCO", "CC BY 4.0")
    assert build.run_recipe(recipe, tmp_path / "work", out) == 4
    assert lines(out) == COCO_EXPECTED
    assert not (tmp_path / "work" / archive.name).exists(), "the archive should not be kept"


def test_coco_rows_of_real_annotations_are_the_registered_ones(shared_data):
    mirror = set(lines(shared_data / "coco" / "coco_val2017_boxes.csv"))
    real = [COCO_EXPECTED[i] for i in (1, 3, 4)]
    assert all(row in mirror for row in real), [r for r in real if r not in mirror]


def test_coco_annotation_with_an_unknown_category_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"id": 1, "width": 5, "height": 5}], "categories": [],
                               "annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1]}]}))
    with pytest.raises(ValueError, match=r"annotation 0 \(id 7\)"):
        build.coco_boxes_csv(bad, tmp_path / "out.csv")
    bad.write_text("{}")
    with pytest.raises(ValueError, match="no images, annotations, categories"):
        build.coco_boxes_csv(bad, tmp_path / "out.csv")


# ---------------------------------------------------------------- the demo boxes


def test_demo_boxes_are_rows_of_voc_boxes(tmp_path):
    voc = tmp_path / "voc.csv"
    voc.write_text("\n".join(VOC_EXPECTED) + "\n")
    out = tmp_path / "demo.csv"
    assert build.voc_demo_boxes_csv(voc, out, image_ids=("000001",)) == 2
    assert lines(out) == [VOC_EXPECTED[0], VOC_EXPECTED[4], VOC_EXPECTED[5]]
    with pytest.raises(ValueError, match="no test 2007 rows for image"):
        build.voc_demo_boxes_csv(voc, out, image_ids=("000001", "000456"))


def test_demo_recipe_uses_a_local_voc_boxes_or_else_the_test_archive(tmp_path):
    ids = build.VOC2007_DEMO_IDS
    served = tmp_path / "test.tar"
    xmls = {i: voc_xml(500, 375, [("cat", 1, 2, 3 + k, 4, 0, False)]) for k, i in enumerate(ids)}
    xmls["000002"] = voc_xml(500, 375, [("dog", 1, 1, 9, 9, 0, False)])  # not a demo image
    source = build.Source(served.as_uri(), md5(voc_tar(served, "2007", xmls, {"test": ["000002", *ids]})))
    recipe = build.BuildRecipe("voc2007_demo_boxes", (source,), "demo rows", "research use", requires="voc_boxes")
    from_archive = tmp_path / "a.csv"
    assert build.run_recipe(recipe, tmp_path / "w1", from_archive, local=lambda name: None) == 5
    assert [r.split(",")[2] for r in lines(from_archive)[1:]] == list(ids)
    # with voc_boxes local, nothing is downloaded (the archive is gone)
    served.unlink()
    from_local = tmp_path / "b.csv"
    assert build.run_recipe(recipe, tmp_path / "w2", from_local, local=lambda name: from_archive) == 5
    assert from_local.read_bytes() == from_archive.read_bytes()


def test_demo_boxes_from_the_mirror_are_the_registered_file(shared_data, tmp_path):
    out = tmp_path / "boxes.csv"
    build.voc_demo_boxes_csv(shared_data / "voc_boxes.csv", out)
    registered = reg.default_registry().dataset("demo_images")
    (entry,) = [f for f in registered.files if f.path == "voc2007_demo/boxes.csv"]
    assert reg.sha256_file(out) == entry.sha256


# ---------------------------------------------------------------- recipes end to end (BCCD, file:// URLs)


def test_bccd_recipe_downloads_file_by_file(tmp_path):
    base = FIXTURES.as_uri()
    sources = tuple(build.Source(f"{base}/ImageSets/Main/{s}.txt") for s in ("train", "val", "test"))
    recipe = build.BuildRecipe("bccd_boxes", (*sources, build.Source(base + "/Annotations/{image_id}.xml")),
                               "BCCD fixtures", "MIT")  # fmt: skip
    out = tmp_path / "bccd.csv"
    assert build.run_recipe(recipe, tmp_path / "work", out) == 62
    direct = tmp_path / "direct.csv"
    build.bccd_boxes_csv(FIXTURES / "Annotations", FIXTURES / "ImageSets" / "Main", direct)
    assert out.read_bytes() == direct.read_bytes()


def test_bccd_recipe_with_an_unreachable_annotation_says_which(tmp_path):
    base = FIXTURES.as_uri()
    sources = tuple(build.Source(f"{base}/ImageSets/Main/{s}.txt") for s in ("train", "val", "test"))
    recipe = build.BuildRecipe("bccd_boxes", (*sources, build.Source(base + "/nowhere/{image_id}.xml")), "x", "MIT")
    with pytest.raises(build.SourceUnavailableError, match=r"could not get BloodImage_00007\.xml"):
        build.run_recipe(recipe, tmp_path / "work", tmp_path / "out.csv")


def test_unknown_builder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown builder 'nope'; known: bccd_boxes"):
        build.run_recipe(build.BuildRecipe("nope", (), "x", "y"), tmp_path, tmp_path / "out.csv")


# ---------------------------------------------------------------- content hash


def test_content_hash_ignores_layout_and_sees_every_value(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_bytes("\r\n".join(VOC_EXPECTED).encode() + b"\r\n")
    # other column order, other row order, LF, "263.0" for 263, spaces, quotes
    with open(b, "w", newline="\n") as f:
        rows = list(csv.DictReader(io.StringIO("\n".join(VOC_EXPECTED))))
        cols = list(reversed(rows[0].keys()))
        w = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
        w.writerow(cols)
        for r in reversed(rows):
            w.writerow([(r[k] + ".0" if k == "xmin" and r[k].isdigit() else f" {r[k]} ") for k in cols])
    assert build.content_digest(a) == build.content_digest(b)
    assert reg.sha256_file(a) != reg.sha256_file(b)
    c.write_text("\n".join(VOC_EXPECTED).replace("141,50,500,330", "141,50,500,331") + "\n")
    assert build.content_sha256(c) != build.content_sha256(a)
    expected = build.content_digest(a)
    message = build.describe_mismatch(c, expected.rows, expected.groups)
    assert "7 data rows built, 7 registered" in message
    assert "the rows of 1 of 16 groups of images differ" in message
    assert "a built row of that group: val,2007,000007,500,333,car,141,50,500,331,0" in message


def test_content_hash_of_every_mirror_file_is_the_registered_one(shared_data):
    checked = 0
    for name in reg.default_registry().names():
        ds = reg.default_registry().dataset(name)
        for f in ds.files:
            if f.build is None:
                continue
            digest = build.content_digest(shared_data / ds.root / f.path)
            assert (digest.sha256, digest.rows, digest.groups) == (f.content_sha256, f.rows, f.content_groups), f.path
            checked += 1
    assert checked == 4
