"""The fast inference path gives the plain model's answer, faster precisions close to it."""

from __future__ import annotations

import warnings

import pytest
import torch

from yolov2_lib import precision as policy
from yolov2_lib.boxes import box_iou
from yolov2_lib.decode import postprocess
from yolov2_lib.detect import Detector, cpu_supports_bf16, resolve_precision
from nettools import spread_head
from yolov2_lib.model import YOLOv2

NATIVE_BF16 = cpu_supports_bf16()


@pytest.fixture(scope="module")
def model() -> YOLOv2:
    """A small YOLOv2 whose head is rescaled so its output means something (nettools.spread_head)."""
    return spread_head(width=0.125, side=96)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))


def _plain(model: YOLOv2, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(images)


def test_fp32_path_equals_plain_model(model, images):
    det = Detector(model, precision="fp32")
    assert det.precision == "fp32" and det.device == torch.device("cpu")
    ref = _plain(model, images)
    raw = det.raw(images)
    assert raw.dtype == torch.float32 and raw.shape == ref.shape == (2, 5 * 8, 3, 3)
    assert (raw - ref).abs().max() <= 1e-4 * ref.abs().max()
    expected = postprocess(ref, model.anchors, 3, conf_threshold=0.005, nms_threshold=0.45, top_k=100)
    got = det(images)
    assert len(got) == 2 and all(len(e) > 0 for e in expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-4)


def test_fp32_path_without_channels_last_and_with_image_sizes(model, images):
    det = Detector(model, precision="fp32", channels_last=False, conf_threshold=0.1, top_k=5)
    sizes = [(500, 375), (320, 640)]
    expected = postprocess(_plain(model, images), model.anchors, 3, conf_threshold=0.1, top_k=5,
                           image_sizes=sizes)
    got = det(images, image_sizes=sizes)
    for g, e in zip(got, expected):
        assert len(g) <= 5
        torch.testing.assert_close(g, e, atol=1e-3, rtol=1e-4)  # pixels


def test_model_left_untouched(model, images):
    model.train()
    try:
        before = {k: v.clone() for k, v in model.state_dict().items()}
        Detector(model, precision="fp32")
        assert model.training and not model.head.fused and isinstance(model.neck[0].bn, torch.nn.BatchNorm2d)
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
    finally:
        model.eval()


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bf16")
def test_bf16_path_close_to_fp32(model, images):
    det = Detector(model, precision="bf16")
    assert det.precision == "bf16"
    ref = _plain(model, images)
    raw = det.raw(images)
    assert raw.dtype == torch.float32
    rel = ((raw - ref).abs().max() / ref.abs().max()).item()
    assert 0 < rel < 5e-2  # not zero: bf16 really ran

    fp32 = Detector(model, precision="fp32", conf_threshold=0.05)(images)
    bf16 = Detector(model, precision="bf16", conf_threshold=0.05)(images)
    for f, b in zip(fp32, bf16):
        scores = f[:, 4]
        # the top detections whose score stands clear of its neighbours (by > 0.02)
        gaps = torch.cat((scores[:-1] - scores[1:], scores.new_tensor([1.0])))
        prev = torch.cat((scores.new_tensor([1.0]), gaps[:-1]))
        clear = ((gaps > 0.02) & (prev > 0.02)).nonzero().flatten()[:5]
        assert len(clear) >= 2
        for i in clear.tolist():
            same_class = b[b[:, 5] == f[i, 5]]
            iou = box_iou(f[i:i + 1, :4], same_class[:, :4])[0]
            j = iou.argmax()
            assert iou[j] >= 0.95 and abs(same_class[j, 4] - f[i, 4]) < 0.02
        torch.testing.assert_close(b[0], f[0], atol=2e-2, rtol=0)  # the best detection agrees


def test_auto_precision_on_cpu(model, monkeypatch):
    assert Detector(model).precision == ("bf16" if NATIVE_BF16 else "fp32")
    monkeypatch.setattr(policy, "cpu_supports_bf16", lambda: False)
    assert Detector(model).precision == "fp32"
    monkeypatch.setattr(policy, "cpu_supports_bf16", lambda: True)
    assert Detector(model).precision == "bf16"


def test_fp32_forced_gives_no_warning(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Detector(model, precision="fp32").precision == "fp32"


def test_fp16_on_cpu_falls_back_with_warning(model, images):
    with pytest.warns(UserWarning, match="fp16"):
        det = Detector(model, precision="fp16")
    assert det.precision == ("bf16" if NATIVE_BF16 else "fp32")
    assert det.raw(images).dtype == torch.float32


def test_bf16_without_native_support_falls_back(model, monkeypatch):
    monkeypatch.setattr(policy, "cpu_supports_bf16", lambda: False)
    with pytest.warns(UserWarning, match="bf16"):
        assert resolve_precision("bf16", "cpu") == "fp32"


def test_errors(model, images):
    with pytest.raises(ValueError, match="precision must be one of"):
        Detector(model, precision="int8")
    with pytest.raises(ValueError, match="YOLOv2-like"):
        Detector(torch.nn.Conv2d(3, 3, 1))
    det = Detector(model, precision="fp32")
    with pytest.raises(ValueError, match=r"multiples of 32.*96x100"):
        det(torch.rand(1, 3, 96, 100))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\), got \(3, 96, 96\)"):
        det.raw(images[0])
    with pytest.raises(ValueError, match=r"got \(1, 1, 96, 96\)"):
        det.raw(torch.rand(1, 1, 96, 96))
    with pytest.raises(ValueError, match="float images"):
        det.raw((images * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="images are on meta"):
        det.raw(torch.empty(1, 3, 96, 96, device="meta"))
    with pytest.raises(ValueError, match="2 image_sizes"):
        det(images, image_sizes=[(10, 10)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_auto_is_fp16_and_close(model, images):
    net = YOLOv2(num_classes=3, width=0.125).eval()
    net.load_state_dict(model.state_dict())
    net = net.cuda()
    det = Detector(net)
    assert det.precision == "fp16" and det.device.type == "cuda"
    x = images.cuda()
    ref = _plain(net, x)
    raw = det.raw(x)
    assert raw.dtype == torch.float32 and raw.device == x.device
    assert (raw - ref).abs().max() < 5e-2 * ref.abs().max()
    assert all(d.device == x.device for d in det(x))


# ---------------------------------------------------------------- a trained detector on real images


@pytest.fixture(scope="module")
def bccd_test(shared_data):
    from yolov2_lib.data.voc import BCCD_CLASSES, DetectionDataset

    root = shared_data / "bccd"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the two degenerate upstream boxes
        return DetectionDataset.from_boxes_csv(root / "bccd_boxes.csv", root / "JPEGImages", splits="test",
                                               class_names=BCCD_CLASSES)


@pytest.mark.skipif(not NATIVE_BF16, reason="bf16 is not native on this CPU")
def test_bf16_detections_match_fp32_on_real_test_images(bccd_test):
    """Issue 7: the same boxes after NMS on the shipped detector and real BCCD images.

    Each detection (score >= 0.25) of either precision looks for one of the same
    class in the other at IoU >= 0.95. NMS can keep a different one of two
    near-equal candidates of one object when bf16 swaps their order (on all 72
    test images: 0.5 % of 3,646 detections), so the rule is: at least 99 % match
    at 0.95, and every other one still finds the same object (IoU >= 0.5).
    """
    from yolov2_lib import pretrained
    from yolov2_lib.data.transforms import resize
    from yolov2_lib.data.voc import load_image

    model = pretrained.load("bccd").model
    records = bccd_test.records[:16]
    images = torch.stack([resize(load_image(r.path), 416, 416) for r in records])
    sizes = [(r.width, r.height) for r in records]
    fp32 = Detector(model, precision="fp32", conf_threshold=0.2)(images, sizes)
    bf16 = Detector(model, precision="bf16", conf_threshold=0.2)(images, sizes)
    best = []
    for a, b in ((fp32, bf16), (bf16, fp32)):
        for da, db in zip(a, b):
            for row in da[da[:, 4] >= 0.25]:  # clear of the threshold
                same = db[db[:, 5] == row[5]]
                best.append(box_iou(row[None, :4], same[:, :4]).max().item() if len(same) else 0.0)
    best = torch.tensor(best)
    assert len(best) >= 500  # real crowds of cells, not a handful of boxes
    assert (best >= 0.95).float().mean() >= 0.99, (best < 0.95).sum()
    assert best.min() >= 0.5


@pytest.mark.skipif(not NATIVE_BF16, reason="bf16 is not native on this CPU")
def test_bf16_map_within_half_a_point_of_fp32(bccd_test):
    """Issue 7: the BCCD test mAP of the shipped detector in bf16 is within 0.5 point of fp32."""
    from yolov2_lib import pretrained
    from yolov2_lib.train import evaluate_model

    model = pretrained.load("bccd").model
    fp32 = evaluate_model(model, bccd_test, input_size=416, amp="off").map_11point
    bf16 = evaluate_model(model, bccd_test, input_size=416, amp="bf16").map_11point
    assert fp32 > 0.8  # a trained detector, so the comparison means something
    assert abs(bf16 - fp32) <= 0.005, (fp32, bf16)
