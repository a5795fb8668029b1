"""VOC and boxes-CSV readers and DetectionDataset: a VOCdevkit made in the test,
every kind of bad input, and the real BCCD (and VOC boxes) from the shared data folder."""

from __future__ import annotations

import csv
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from yolov2_lib.data import voc
from yolov2_lib.data.transforms import Augment
from yolov2_lib.data.voc import (
    BCCD_CLASSES,
    BOXES_CSV_COLUMNS,
    VOC_CLASSES,
    AnnotationError,
    DataWarning,
    DetectionDataset,
    ImageLoadError,
)

# ---------------------------------------------------------------- a VOCdevkit made here


def _xml(image_id: str, size: tuple[int, int] | None, objects: list[dict]) -> str:
    parts = [f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"]
    if size is not None:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for obj in objects:
        parts.append("<object>")
        if "name" in obj:
            parts.append(f"<name>{obj['name']}</name>")
        parts.append(f"<difficult>{obj.get('difficult', 0)}</difficult>")
        if "box" in obj:
            parts.append("<bndbox>")
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj["box"]):
                if value is not None:
                    parts.append(f"<{tag}>{value}</{tag}>")
            parts.append("</bndbox>")
        parts.append("</object>")
    parts.append("</annotation>")
    return "".join(parts)


def _jpeg(path: Path, width: int, height: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path, quality=95)


def _devkit(root: Path, images: dict[str, tuple[tuple[int, int], list[dict]]], sets: dict[str, list[str]],
            year: str = "2007") -> Path:  # fmt: skip
    voc_root = root / "VOCdevkit" / f"VOC{year}"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc_root / sub).mkdir(parents=True, exist_ok=True)
    for i, (image_id, (size, objects)) in enumerate(images.items()):
        (voc_root / "Annotations" / f"{image_id}.xml").write_text(_xml(image_id, size, objects))
        _jpeg(voc_root / "JPEGImages" / f"{image_id}.jpg", *size, seed=i)
    for name, ids in sets.items():
        (voc_root / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    return voc_root


GOOD = {
    "000001": ((100, 80), [{"name": "dog", "box": (11, 21, 51, 61)}]),
    "000002": ((60, 40), [{"name": "person", "box": (1, 1, 30, 40)},
                          {"name": "cat", "box": (31, 5, 60, 35), "difficult": 1}]),  # fmt: skip
    "000003": ((50, 50), [{"name": "car", "box": (5, 5, 45, 25)}]),
}
SETS = {"train": ["000001", "000002"], "val": ["000003"], "trainval": ["000001", "000002", "000003"]}


@pytest.fixture
def voc_root(tmp_path) -> Path:
    return _devkit(tmp_path, GOOD, SETS)


def _quiet(fn, *args, **kwargs):
    """Call fn and return (result, list of DataWarning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


# ---------------------------------------------------------------- the good path


def test_read_voc_fixture(voc_root):
    records, messages = _quiet(voc.read_voc, voc_root, "trainval")
    assert messages == []
    assert [r.image_id for r in records] == ["000001", "000002", "000003"]
    first, second = records[0], records[1]
    assert (first.width, first.height, first.year, first.split) == (100, 80, "2007", "trainval")
    assert first.path == voc_root / "JPEGImages" / "000001.jpg"
    # 1-based VOC pixels become 0-based corners (darknet's voc_label.py subtracts 1).
    assert torch.equal(first.boxes, torch.tensor([[10.0, 20.0, 50.0, 60.0]]))
    assert first.labels.tolist() == [VOC_CLASSES.index("dog")]
    assert second.difficult.tolist() == [False, True]
    assert torch.equal(second.gt()[1], torch.tensor([30.0, 4.0, 59.0, 34.0, 7.0, 1.0]))


def test_dataset_sample_targets_hand_checked(voc_root):
    ds = DetectionDataset.from_voc(voc_root, "trainval", input_size=64)
    assert len(ds) == 3 and ds.num_classes == 20 and ds.num_objects == 4
    image, target, meta = ds[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    # Box (10, 20, 50, 60) of a 100 x 80 image: centre (0.3, 0.5), size (0.4, 0.5).
    assert torch.allclose(target, torch.tensor([[11.0, 0.3, 0.5, 0.4, 0.5]]))
    assert meta["image_id"] == "000001" and (meta["width"], meta["height"]) == (100, 80)
    assert meta["path"].endswith("000001.jpg") and meta["input_size"] == 64
    # The difficult cat is in the ground truth for evaluation, not in the training target.
    _, target, meta = ds[(1, 96)]
    assert target[:, 0].tolist() == [VOC_CLASSES.index("person")]
    assert meta["gt"].shape == (2, 6) and meta["gt"][:, 5].tolist() == [0.0, 1.0]
    _, target, _ = DetectionDataset.from_voc(voc_root, "trainval", train_difficult=True)[1]
    assert len(target) == 2


def test_dataset_item_forms_and_augmentation(voc_root):
    ds = DetectionDataset.from_voc(voc_root, "train", augment=Augment(), seed=3)
    a = ds[(0, 96, 0)]
    assert a[0].shape == (3, 96, 96)
    assert torch.equal(a[0], ds[(0, 96, 0)][0])  # the same (seed, epoch, index): the same sample
    assert not torch.equal(a[0], ds[(0, 96, 1)][0])  # another epoch: another draw
    ds.set_epoch(1)
    assert torch.equal(ds[(0, 96)][0], ds[(0, 96, 1)][0])
    assert ds[-1][2]["image_id"] == "000002"
    with pytest.raises(IndexError, match="out of range"):
        ds[5]
    with pytest.raises(ValueError, match="positive input size"):
        ds[(0, 0)]
    with pytest.raises(ValueError, match="Expected an index"):
        ds[(0, 32, 0, 1)]


def test_write_boxes_csv_round_trip(voc_root, tmp_path):
    devkit = voc_root.parent
    out = tmp_path / "boxes.csv"
    n = voc.write_boxes_csv(devkit, out)
    assert n == 4  # train (3 objects) + val (1); trainval is not an exported split
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == BOXES_CSV_COLUMNS
    assert rows[1] == ["train", "2007", "000001", "100", "80", "dog", "11", "21", "51", "61", "0"]
    assert rows[3][-1] == "1"  # the difficult cat
    from_csv = voc.read_boxes_csv(out, devkit / "VOC{year}" / "JPEGImages", class_names=VOC_CLASSES)
    from_xml = voc.read_voc(voc_root, "trainval")
    assert [r.image_id for r in from_csv] == [r.image_id for r in from_xml]
    for a, b in zip(from_csv, from_xml):
        assert a.path == b.path and (a.width, a.height) == (b.width, b.height)
        assert torch.equal(a.boxes, b.boxes) and torch.equal(a.labels, b.labels)
        assert torch.equal(a.difficult, b.difficult)
    assert [r.split for r in from_csv] == ["train", "train", "val"]


# ---------------------------------------------------------------- bad annotations


def test_xml_that_does_not_parse(tmp_path):
    root = _devkit(tmp_path, GOOD, SETS)
    (root / "Annotations" / "000002.xml").write_text("<annotation><size><width>60</wid")
    records, messages = _quiet(voc.read_voc, root, "trainval")
    assert [r.image_id for r in records] == ["000001", "000003"]
    assert len(messages) == 1 and "000002.xml" in messages[0] and "does not parse" in messages[0]
    with pytest.raises(AnnotationError, match=r"000002\.xml.*does not parse"):
        voc.read_voc(root, "trainval", strict=True)


def test_missing_fields(tmp_path):
    images = {
        "000001": ((100, 80), [{"name": "dog", "box": (11, 21, None, 61)},  # no xmax
                               {"box": (1, 1, 9, 9)},  # no name
                               {"name": "cat"},  # no bndbox
                               {"name": "cat", "box": (2, 2, 20, "abc")},  # not a number
                               {"name": "bird", "box": (1, 1, 50, 50)}]),  # fmt: skip
        "000002": (None, [{"name": "dog", "box": (1, 1, 10, 10)}]),  # no <size>
    }
    root = _devkit(tmp_path, {"000001": images["000001"], "000002": ((30, 20), images["000002"][1])},
                   {"trainval": ["000001", "000002"]})  # fmt: skip
    (root / "Annotations" / "000002.xml").write_text(_xml("000002", None, images["000002"][1]))
    records, messages = _quiet(voc.read_voc, root, "trainval")
    assert records[0].labels.tolist() == [VOC_CLASSES.index("bird")]
    assert len(messages) == 5
    assert all("000001.xml: object" in m for m in messages[:4])
    assert "xmax" in messages[0] and "<name>" in messages[1] and "<bndbox>" in messages[2]
    assert "ymax" in messages[3]
    # Missing <size> is taken from the image itself, with a warning.
    assert "000002.xml" in messages[4] and "<size>" in messages[4]
    assert (records[1].width, records[1].height) == (30, 20)
    with pytest.raises(AnnotationError, match=r"000001\.xml: object 0 lacks xmax"):
        voc.read_voc(root, "trainval", strict=True)


def test_missing_annotation_file_and_list(voc_root):
    (voc_root / "Annotations" / "000003.xml").unlink()
    records, messages = _quiet(voc.read_voc, voc_root, "trainval")
    assert len(records) == 2 and "000003.xml" in messages[0] and "missing" in messages[0]
    with pytest.raises(FileNotFoundError, match="nosuchset.txt"):
        voc.read_voc(voc_root, "nosuchset")


@pytest.mark.parametrize(
    "box, problem",
    [
        ((20, 20, 20, 50), "zero area"),  # xmax == xmin
        ((30, 20, 10, 50), "is inverted"),  # xmax < xmin: not called zero area
        ((10, 50, 30, 20), "is inverted"),  # ymax < ymin
        ((120, 10, 150, 40), "outside"),  # right of a 100-wide image
        ((-20, -30, 0, 0), "outside"),
    ],
)
def test_bad_boxes_are_skipped_or_raise(tmp_path, box, problem):
    objects = [{"name": "dog", "box": box}, {"name": "cat", "box": (1, 1, 10, 10)}]
    root = _devkit(tmp_path, {"000001": ((100, 80), objects)}, {"trainval": ["000001"]})
    records, messages = _quiet(voc.read_voc, root, "trainval")
    assert records[0].labels.tolist() == [VOC_CLASSES.index("cat")]
    assert len(messages) == 1 and "000001.xml: object 0 ('dog')" in messages[0] and problem in messages[0]
    with pytest.raises(AnnotationError, match=problem):
        voc.read_voc(root, "trainval", strict=True)


def test_box_reaching_outside_is_clipped(tmp_path):
    root = _devkit(tmp_path, {"000001": ((100, 80), [{"name": "dog", "box": (-9, 11, 121, 71)}])},
                   {"trainval": ["000001"]})  # fmt: skip
    records, messages = _quiet(voc.read_voc, root, "trainval")
    assert torch.equal(records[0].boxes, torch.tensor([[0.0, 10.0, 100.0, 70.0]]))
    assert "reaches outside" in messages[0] and "clipped" in messages[0]


def test_unknown_class(tmp_path):
    objects = [{"name": "unicorn", "box": (1, 1, 10, 10)}, {"name": "dog", "box": (1, 1, 10, 10)}]
    root = _devkit(tmp_path, {"000001": ((100, 80), objects)}, {"trainval": ["000001"]})
    records, messages = _quiet(voc.read_voc, root, "trainval")
    assert records[0].labels.tolist() == [VOC_CLASSES.index("dog")]
    assert "unknown class name 'unicorn'" in messages[0] and "000001.xml" in messages[0]
    with pytest.raises(AnnotationError, match="unicorn"):
        voc.read_voc(root, "trainval", strict=True)


def test_boxes_csv_bad_rows(tmp_path):
    (tmp_path / "img").mkdir()
    _jpeg(tmp_path / "img" / "a.jpg", 40, 30)
    path = tmp_path / "boxes.csv"
    path.write_text(
        "split,image_id,width,height,class,xmin,ymin,xmax,ymax,difficult\n"
        "train,a,40,30,RBC,1,1,20,20,0\n"
        "train,a,40,30,RBC,1,1,x,20,0\n"  # line 3: not a number
        "train,a,40,30,Bogus,1,1,20,20,0\n"  # line 4: unknown class
        "train,a,41,30,WBC,1,1,20,20,0\n"  # line 5: size disagrees with line 2
        "val,a,40,30,WBC,1,1,20,20,0\n"
    )
    records, messages = _quiet(voc.read_boxes_csv, path, tmp_path / "img", splits="train", class_names=BCCD_CLASSES)
    assert len(records) == 1 and records[0].num_objects == 1
    assert [m.split(",")[1].strip()[:6] for m in messages] == ["line 3", "line 4", "line 5"]
    with pytest.raises(AnnotationError, match="line 3"):
        voc.read_boxes_csv(path, tmp_path / "img", class_names=BCCD_CLASSES, strict=True)
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,width,class,xmin,ymin,xmax,ymax\n")
    with pytest.raises(ValueError, match="missing column.*height"):
        voc.read_boxes_csv(bad, tmp_path)
    with pytest.raises(ValueError, match="no 'year' column"):
        voc.read_boxes_csv(path, tmp_path, years="2007")
    with pytest.raises(ValueError, match="no rows"):
        voc.read_boxes_csv(path, tmp_path, splits="test")


def test_boxes_csv_with_a_byte_order_mark_is_read(tmp_path):
    """Spreadsheet programs save "CSV UTF-8" with a BOM before the first column's name."""
    (tmp_path / "img").mkdir()
    _jpeg(tmp_path / "img" / "a.jpg", 40, 30)
    path = tmp_path / "boxes.csv"
    path.write_bytes(b"\xef\xbb\xbfsplit,image_id,width,height,class,xmin,ymin,xmax,ymax\r\n"
                     b"train,a,40,30,RBC,1,1,20,20\r\n")
    records = voc.read_boxes_csv(path, tmp_path / "img", splits="train")
    assert len(records) == 1 and records[0].split == "train" and records[0].num_objects == 1
    assert voc.csv_class_names(path) == ["RBC"]


def test_binary_file_as_csv_names_the_file(tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" * 20)
    for read in (lambda: voc.read_boxes_csv(path, tmp_path), lambda: voc.csv_class_names(path)):
        with pytest.raises(ValueError, match=r"photo\.csv: not a UTF-8 text CSV"):
            read()


# ---------------------------------------------------------------- bad images


def test_unreadable_image_skipped_at_construction(voc_root):
    (voc_root / "JPEGImages" / "000002.jpg").write_bytes(b"this is not a JPEG")
    (voc_root / "JPEGImages" / "000003.jpg").unlink()
    ds, messages = _quiet(DetectionDataset.from_voc, voc_root, "trainval")
    assert [r.image_id for r in ds.records] == ["000001"]
    assert len(messages) == 2 and "000002.jpg" in messages[0] and "000003.jpg" in messages[1]
    with pytest.raises(ImageLoadError, match="000002.jpg"):
        DetectionDataset.from_voc(voc_root, "trainval", strict=True)


def test_image_size_disagreeing_with_annotation(voc_root):
    _jpeg(voc_root / "JPEGImages" / "000001.jpg", 90, 80)
    ds, messages = _quiet(DetectionDataset.from_voc, voc_root, "trainval")
    assert len(ds) == 2 and "000001.jpg" in messages[0] and "90x80" in messages[0]


def test_corrupt_image_substituted_deterministically(voc_root):
    path = voc_root / "JPEGImages" / "000002.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # header intact, pixel data truncated
    ds = DetectionDataset.from_voc(voc_root, "trainval", input_size=32)
    assert len(ds) == 3  # the header check cannot see it
    (image, target, meta), messages = _quiet(ds.__getitem__, 1)
    assert meta["index"] == 2 and meta["requested_index"] == 1 and meta["image_id"] == "000003"
    assert len(messages) == 1 and "000002.jpg" in messages[0] and "next image" in messages[0]
    again, messages = _quiet(ds.__getitem__, 1)
    assert torch.equal(again[0], image) and messages == []  # known bad: no second warning
    strict = DetectionDataset.from_voc(voc_root, "trainval", strict=True)
    with pytest.raises(ImageLoadError, match=r"000002\.jpg: cannot decode"):
        strict[1]


def _png16_rgb(path: Path, array: np.ndarray) -> None:
    """Write a 16-bit RGB PNG by hand (PIL cannot write one)."""
    h, w, _ = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))  # fmt: skip


def test_grayscale_rgba_palette_and_16_bit_images_are_converted(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray).save(tmp_path / "gray.png")
    out = voc.load_image(tmp_path / "gray.png")
    assert out.shape == (3, 3, 4) and torch.allclose(out[1], torch.from_numpy(gray).float() / 255)

    rgba = np.zeros((3, 4, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    out = voc.load_image(tmp_path / "rgba.png")
    assert out.shape == (3, 3, 4) and torch.allclose(out[0], torch.full((3, 4), 200 / 255))

    Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "palette.png")
    assert torch.allclose(voc.load_image(tmp_path / "palette.png")[0], torch.full((3, 4), 200 / 255), atol=0.02)

    deep = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode == "I;16"
    out = voc.load_image(tmp_path / "gray16.png")
    assert torch.allclose(out[2], torch.from_numpy(deep.astype(np.float32)) / 65535)  # not clipped to 255

    deep_rgb = np.stack([deep, deep // 2, 65535 - deep], axis=-1)
    _png16_rgb(tmp_path / "rgb16.png", deep_rgb)
    out = voc.load_image(tmp_path / "rgb16.png")
    assert torch.allclose(out, torch.from_numpy(deep_rgb.astype(np.float32)).permute(2, 0, 1) / 65535, atol=1 / 255)

    # uint8 decoding (what the dataset uses) is the float image in 8 bits, 16-bit files included.
    for name in ("gray", "rgba", "palette", "gray16", "rgb16"):
        as_bytes = voc.load_image(tmp_path / f"{name}.png", torch.uint8)
        assert as_bytes.dtype == torch.uint8 and as_bytes.shape == (3, 3, 4), name
        assert torch.equal(as_bytes, (voc.load_image(tmp_path / f"{name}.png") * 255).round().to(torch.uint8)), name
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.uint8"):
        voc.load_image(tmp_path / "gray.png", torch.float16)

    # A dataset of such PNG files yields ordinary RGB samples.
    (tmp_path / "boxes.csv").write_text(
        "image_id,width,height,class,xmin,ymin,xmax,ymax\n"
        "gray,4,3,RBC,1,1,4,3\nrgba,4,3,WBC,1,1,4,3\ngray16,4,3,RBC,1,1,4,3\nrgb16,4,3,RBC,1,1,4,3\n"
    )
    ds = DetectionDataset.from_boxes_csv(tmp_path / "boxes.csv", tmp_path, image_ext=".png",
                                         class_names=BCCD_CLASSES, input_size=8)  # fmt: skip
    assert [ds[i][0].shape for i in range(4)] == [(3, 8, 8)] * 4


def test_float_images_are_rejected(tmp_path):
    Image.fromarray(np.zeros((3, 4), dtype=np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(ImageLoadError, match="f.tiff.*float"):
        voc.load_image(tmp_path / "f.tiff")


# ---------------------------------------------------------------- real data


def test_bccd_from_shared_folder(shared_data):
    csv_path = shared_data / "bccd" / "bccd_boxes.csv"
    images = shared_data / "bccd" / "JPEGImages"
    with open(csv_path, newline="") as f:
        assert sum(1 for _ in csv.DictReader(f)) == 4888
    records, messages = _quiet(voc.read_boxes_csv, csv_path, images, class_names=BCCD_CLASSES)
    assert sum(r.num_objects for r in records) == 4886
    # The two degenerate upstream boxes (xmin == xmax) are named and skipped.
    assert len(messages) == 2
    assert "BloodImage_00338" in messages[0] and "BloodImage_00343" in messages[1]
    assert all("zero area" in m for m in messages)
    labels = torch.cat([r.labels for r in records])
    assert torch.bincount(labels).tolist() == [4153, 372, 361]  # RBC, WBC, Platelets
    with pytest.raises(AnnotationError, match="BloodImage_00338"):
        voc.read_boxes_csv(csv_path, images, class_names=BCCD_CLASSES, strict=True)

    counts = {}
    for split in ("train", "val", "test"):
        ds, _ = _quiet(DetectionDataset.from_boxes_csv, csv_path, images, splits=split,
                       class_names=BCCD_CLASSES, augment=Augment(), input_size=320)  # fmt: skip
        counts[split] = len(ds)
    assert counts == {"train": 205, "val": 87, "test": 72}
    image, target, meta = ds[(0, 320, 0)]
    assert image.shape == (3, 320, 320) and (meta["width"], meta["height"]) == (640, 480)
    assert target.shape[1] == 5 and float(target[:, 1:].min()) >= 0 and float(target[:, 1:].max()) <= 1
    assert set(target[:, 0].long().tolist()) <= {0, 1, 2}


def test_voc_boxes_csv_from_shared_folder(shared_data):
    # Only the CSV: read_boxes_csv does not open images, so the VOC photos need not be here.
    records = voc.read_boxes_csv(shared_data / "voc_boxes.csv", "VOCdevkit/VOC{year}/JPEGImages",
                                 splits="test", years="2007", class_names=VOC_CLASSES)  # fmt: skip
    assert len(records) == 4952
    assert sum(r.num_objects for r in records) == 14976
    assert sum(int((~r.difficult).sum()) for r in records) == 12032  # the official count
    assert records[0].path == Path("VOCdevkit/VOC2007/JPEGImages") / f"{records[0].image_id}.jpg"
