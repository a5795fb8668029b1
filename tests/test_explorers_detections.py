"""Chapter 8's detections explorer in the page (yolov2_lib/explorers/detections.py and detections.js).

A tiny detector on two small made-up images keeps the precomputation to a second; the
page must show exactly the detections the library's Detector reported.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nettools import spread_head
from yolov2_lib.data import DetectionDataset
from yolov2_lib.data.voc import ImageRecord
from yolov2_lib.detect import Detector
from yolov2_lib.explorers import PageWidget, detections_explorer
from yolov2_lib.viz import CLASS_COLORS

CLASSES = ("RBC", "WBC", "Platelets")
SIZES = (64, 96, 128)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> DetectionDataset:
    folder = tmp_path_factory.mktemp("explorer-images")
    rng = np.random.RandomState(0)
    records = []
    for k, (w, h) in enumerate(((80, 60), (64, 64))):
        path = folder / f"img{k}.jpg"
        Image.fromarray(rng.randint(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(f"img{k}", path, w, h, torch.tensor([[5.0, 6.0, 30.0, 40.0], [40.0, 10.0, 60.0, 30.0]]),
                                   torch.tensor([0, 2]), torch.tensor([False, True])))
    return DetectionDataset(records, CLASSES)


@pytest.fixture(scope="module")
def detector() -> Detector:
    """A tiny YOLOv2 whose head is rescaled so that its scores spread (nettools.spread_head)."""
    net = spread_head(width=1 / 16, side=64)
    return Detector(net, precision="fp32")


@pytest.fixture(scope="module")
def library(detector, dataset) -> dict[tuple[str, int], torch.Tensor]:
    """(image id, size) -> the detector's detections, run here image by image."""
    out = {}
    for k, rec in enumerate(dataset.records):
        for s in SIZES:
            image, _, meta = dataset[(k, s)]
            out[rec.image_id, s] = detector(image[None], image_sizes=[(meta["width"], meta["height"])])[0]
    return out


@pytest.fixture(scope="module")
def widget(detector, dataset) -> PageWidget:
    return detections_explorer(detector, dataset, ["img1", "img0"], sizes=SIZES, size=96, score=0.25)


def test_detections_explorer_keeps_the_detectors_boxes_above_min_score(widget, library, dataset):
    data = widget.data
    assert data["sizes"] == list(SIZES) and data["class_names"] == list(CLASSES)
    assert data["colors"] == list(CLASS_COLORS[:3]) and (data["image"], data["size"], data["score"]) == (0, 96, 0.25)
    assert [im["id"] for im in data["images"]] == ["img1", "img0"]
    for im in data["images"]:
        rec = next(r for r in dataset.records if r.image_id == im["id"])
        assert (im["width"], im["height"]) == (rec.width, rec.height) and im["photo"].startswith("data:image/jpeg")
        assert im["gt"] == [[5.0, 6.0, 30.0, 40.0, 0, 0], [40.0, 10.0, 60.0, 30.0, 2, 1]]
        assert sorted(im["detections"]) == sorted(str(s) for s in SIZES)
        for s in SIZES:
            expected = library[im["id"], s]
            expected = expected[expected[:, 4] >= 0.05].double().numpy()
            got = np.array(im["detections"][str(s)]).reshape(-1, 6)
            assert len(got) == len(expected) > 0
            np.testing.assert_allclose(got[:, :4], expected[:, :4], atol=0.051)  # boxes to 0.1 pixel
            np.testing.assert_allclose(got[:, 4], expected[:, 4], atol=1e-5)  # batched here, one by one there
            np.testing.assert_array_equal(got[:, 5], expected[:, 5])


def test_detections_explorer_refuses_bad_input(detector, dataset):
    ids = ["img0"]
    with pytest.raises(ValueError, match="multiples of 32"):
        detections_explorer(detector, dataset, ids, sizes=(64, 100), size=64)
    with pytest.raises(ValueError, match="at least one input size"):
        detections_explorer(detector, dataset, ids, sizes=())
    with pytest.raises(ValueError, match="distinct input sizes"):
        detections_explorer(detector, dataset, ids, sizes=(64, 64), size=64)
    with pytest.raises(ValueError, match="initial size 416"):
        detections_explorer(detector, dataset, ids, sizes=SIZES)
    with pytest.raises(ValueError, match=r"\['nope'\] are not in the dataset"):
        detections_explorer(detector, dataset, ["img0", "nope"], sizes=SIZES, size=64)
    with pytest.raises(ValueError, match="distinct image ids"):
        detections_explorer(detector, dataset, ["img0", "img0"], sizes=SIZES, size=64)
    with pytest.raises(ValueError, match="initial image"):
        detections_explorer(detector, dataset, ids, sizes=SIZES, size=64, image_id="img1")
    with pytest.raises(ValueError, match="min_score <= score"):
        detections_explorer(detector, dataset, ids, sizes=SIZES, size=64, score=0.01)
    with pytest.raises(ValueError, match="Detector"):
        detections_explorer(detector.model, dataset, ids, sizes=SIZES, size=64)
    with pytest.raises(ValueError, match="2 classes"):
        detections_explorer(detector, _two_classes(dataset), ids, sizes=SIZES, size=64)


def _two_classes(dataset: DetectionDataset) -> DetectionDataset:
    rec = dataset.records[0]
    one = ImageRecord(rec.image_id, rec.path, rec.width, rec.height, rec.boxes[:1], rec.labels[:1], rec.difficult[:1])
    return DetectionDataset([one], ("RBC", "WBC"))


def _state(page):
    return page.eval_on_selector(".yolov2-explorer", "e => ({...e.dataset})")


def _slide(page, name, value):
    page.eval_on_selector(f"input.yx-{name}", "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }",
                          str(value))


def _count(library, image_id, size, score):
    scores = library[image_id, size][:, 4]
    assert not ((scores - score).abs() < 1e-4).any(), "a score too close to the threshold to compare counts"
    return int((scores >= score).sum())


def test_detections_explorer_in_the_page_counts_the_librarys_detections(open_explorer, widget, library):
    page, errors = open_explorer(widget)
    state = _state(page)
    assert state["state"] == "ready" and errors == []

    def check(image_id, size, score):
        state = _state(page)
        assert (state["image"], int(state["size"]), float(state["score"])) == (image_id, size, score)
        n = _count(library, image_id, size, score)
        embedded = next(im for im in widget.data["images"] if im["id"] == image_id)["detections"][str(size)]
        assert int(state["count"]) == n == sum(d[4] >= score for d in embedded) == page.locator("svg rect.yx-det").count()
        assert page.locator("svg rect.yx-truth").count() == 2
        assert page.locator("svg g.yx-grid line").count() == 2 * (size // 32 - 1)
        assert page.text_content(".yx-count").startswith(f"{image_id} at {size} x {size} ({size // 32} x {size // 32} "
                                                         f"cells): {n} boxes with a score of at least {score:.2f}")
        return n

    counts = [check("img1", 96, 0.25)]
    _slide(page, "score", 0.05)  # the lowest threshold: every box kept
    counts.append(check("img1", 96, 0.05))
    _slide(page, "score", 0.5)
    counts.append(check("img1", 96, 0.5))
    _slide(page, "size", 2)  # the slider walks the sizes: 64, 96, 128
    counts.append(check("img1", 128, 0.5))
    page.select_option("select.yx-image", "1")
    counts.append(check("img0", 128, 0.5))
    _slide(page, "size", 0)
    counts.append(check("img0", 64, 0.5))
    assert counts[1] > counts[0] > counts[2], counts  # the score slider filters
    assert len(set(counts)) > 2, counts  # and image and size change what is shown
    assert page.text_content(".yx-size ~ .yx-readout") == "64 (2 x 2 cells)"
    assert errors == []


def test_detections_explorer_fragment_is_small(widget):
    assert len(widget.html().encode()) < 100_000
