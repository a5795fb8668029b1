"""Darknet-style augmentation: hand-checked flips and crops, letterbox geometry,
clipping and dropping of boxes, HSV colour maths, seeded reproducibility."""

from __future__ import annotations

import colorsys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from yolov2_lib.data import transforms as T
from yolov2_lib.decode import letterbox_params


def _ramp(width: int, height: int) -> torch.Tensor:
    """(3, H, W) image whose red channel is the column index / W, green the row / H."""
    cols = torch.arange(width).float()[None, :].expand(height, width) / width
    rows = torch.arange(height).float()[:, None].expand(height, width) / height
    return torch.stack((cols, rows, torch.full((height, width), 0.5)))


# ---------------------------------------------------------------- flip


def test_flip_moves_image_and_boxes_together_hand_checked():
    image = torch.zeros(3, 8, 8)
    image[:, 2:6, 1:3] = 1.0  # a white patch over columns 1, 2 and rows 2..5
    boxes = torch.tensor([[1.0, 2.0, 3.0, 6.0]])  # the patch, in pixels
    out, unit, keep = T.apply_params(image, boxes, 8, T.AugmentParams(flip=True))
    # x -> 1 - x: (1/8, 3/8) becomes (5/8, 7/8); y unchanged.
    assert torch.allclose(unit, torch.tensor([[0.625, 0.25, 0.875, 0.75]]))
    assert keep.tolist() == [0]
    # The patch moved to columns 5, 6 (7 - 1 and 7 - 2), exactly under the flipped box.
    assert torch.equal(out[:, 2:6, 5:7], torch.ones(3, 4, 2))
    assert out.sum() == 3 * 4 * 2


def test_hflip_boxes_is_an_involution():
    boxes = torch.tensor([[0.1, 0.2, 0.4, 0.9], [0.0, 0.0, 1.0, 1.0]])
    assert torch.allclose(T.hflip_boxes(T.hflip_boxes(boxes)), boxes)
    assert torch.allclose(T.hflip_boxes(boxes)[0], torch.tensor([0.6, 0.2, 0.9, 0.9]))


# ---------------------------------------------------------------- crop


def test_crop_repeats_edge_pixels_like_darknet():
    image = _ramp(5, 4)
    out = T.crop(image, -2, 1, 9, 2)  # 2 columns left of the image, 2 right of it
    assert out.shape == (3, 2, 9)
    # Columns -2, -1 repeat column 0; columns 5, 6 repeat column 4.
    assert torch.equal(out[0, 0], torch.tensor([0, 0, 0, 0.2, 0.4, 0.6, 0.8, 0.8, 0.8]))
    assert torch.equal(out[1, :, 0], torch.tensor([0.25, 0.5]))


def test_jitter_crop_moves_boxes_hand_checked():
    image = _ramp(10, 10)
    boxes = torch.tensor([[3.0, 1.0, 5.0, 4.0]])
    # Cut 2 px on the left, add 2 px on the right: the crop is columns 2..11 (10 wide).
    params = T.AugmentParams(pleft=2, pright=-2)
    out, unit, keep = T.apply_params(image, boxes, 10, params)
    assert torch.allclose(unit, torch.tensor([[0.1, 0.1, 0.3, 0.4]]))
    assert torch.allclose(out[0, 0, :8], torch.arange(2, 10).float() / 10)
    assert torch.allclose(out[0, 0, 8:], torch.tensor([0.9, 0.9]))  # edge repeated


def test_crop_then_resize_scales_boxes():
    image = torch.rand(3, 40, 20)  # H=40, W=20
    boxes = torch.tensor([[5.0, 10.0, 15.0, 30.0]])
    params = T.AugmentParams(pleft=5, pright=5, ptop=10, pbot=10)  # crop 10 x 20 at (5, 10)
    out, unit, _ = T.apply_params(image, boxes, 32, params)
    assert out.shape == (3, 32, 32)
    assert torch.allclose(unit, torch.tensor([[0.0, 0.0, 1.0, 1.0]]))


# ---------------------------------------------------------------- boxes clipped / dropped


def test_boxes_leaving_the_image_are_clipped_or_dropped():
    image = torch.rand(3, 20, 20)
    boxes = torch.tensor(
        [
            [0.0, 0.0, 4.0, 4.0],  # entirely in the 5 cut columns: dropped
            [3.0, 3.0, 10.0, 10.0],  # half cut: clipped at the new left edge
            [6.0, 6.0, 6.1, 12.0],  # 0.1 px wide = 0.0067 of the crop < 0.01: dropped
            [8.0, 8.0, 12.0, 12.0],  # inside: kept as is
        ]
    )
    out, unit, keep = T.apply_params(image, boxes, 15, T.AugmentParams(pleft=5))
    assert keep.tolist() == [1, 3]
    assert torch.allclose(unit[0], torch.tensor([0.0, 3 / 20, 5 / 15, 10 / 20]))
    assert torch.allclose(unit[1], torch.tensor([3 / 15, 8 / 20, 7 / 15, 12 / 20]))


def test_clip_boxes_threshold_is_darknets():
    boxes = torch.tensor([[0.5, 0.5, 0.509, 0.9], [0.5, 0.5, 0.511, 0.9], [-0.5, 0.2, 1.5, 0.4]])
    kept, keep = T.clip_boxes(boxes, 0.01)
    assert keep.tolist() == [1, 2]
    assert torch.allclose(kept[1], torch.tensor([0.0, 0.2, 1.0, 0.4]))


# ---------------------------------------------------------------- letterbox


def test_letterbox_geometry_wide_image():
    image = torch.rand(3, 50, 100)  # W=100, H=50
    out = T.letterbox(image, 64)
    # Scaled by 0.64 to 64 x 32, centred: rows 16..47 hold the image, the rest is grey.
    assert out.shape == (3, 64, 64)
    assert torch.all(out[:, :16] == 0.5) and torch.all(out[:, 48:] == 0.5)
    assert torch.allclose(out[:, 16:48], T.resize(image, 64, 32))
    scale, pad_x, pad_y = letterbox_params((100, 50), (64, 64))
    assert (scale, pad_x, pad_y) == (0.64, 0, 16)


def test_letterbox_boxes_match_decode_geometry():
    image = torch.rand(3, 33, 100)  # W=100, H=33: scale 0.64, 64 x 21 rounded
    boxes = torch.tensor([[0.0, 0.0, 100.0, 33.0], [10.0, 5.0, 60.0, 30.0]])
    out, unit, keep = T.apply_params(image, boxes, 64, T.AugmentParams(), letterbox=True)
    scale, pad_x, pad_y = letterbox_params((100, 33), (64, 64))
    assert (pad_x, pad_y) == (0, 21)
    # The whole image box covers exactly the pasted rows 21..41.
    assert torch.allclose(unit[0] * 64, torch.tensor([0.0, 21.0, 64.0, 42.0]))
    assert torch.all(out[:, :21] == 0.5) and torch.all(out[:, 42:] == 0.5)
    # Any point maps to x * scale + pad, to within the rounding of the resized size.
    expected = boxes[1] * scale + torch.tensor([pad_x, pad_y, pad_x, pad_y])
    assert torch.allclose(unit[1] * 64, expected, atol=0.5)


def test_letterbox_tall_image_and_flip():
    image = torch.zeros(3, 100, 50)
    image[:, :, :10] = 1.0  # a white band on the left
    boxes = torch.tensor([[0.0, 0.0, 10.0, 100.0]])
    out, unit, _ = T.apply_params(image, boxes, 64, T.AugmentParams(flip=True), letterbox=True)
    # 32 x 64 pasted at x = 16; after the flip the band is on the right: columns 16+32-6.4.. 48.
    assert torch.allclose(unit[0] * 64, torch.tensor([48 - 6.4, 0.0, 48.0, 64.0]))
    assert torch.all(out[:, :, :16] == 0.5) and torch.all(out[:, :, 48:] == 0.5)
    assert out[0, 32, 47] == 1.0 and out[0, 32, 20] == 0.0


# ---------------------------------------------------------------- colour


def test_rgb_hsv_round_trip_and_colorsys_agreement():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 7, 9, generator=g)
    hsv = T.rgb_to_hsv(image)
    assert torch.allclose(T.hsv_to_rgb(hsv), image, atol=1e-6)
    for y, x in [(0, 0), (3, 4), (6, 8)]:
        expected = colorsys.rgb_to_hsv(*image[:, y, x].tolist())
        assert torch.allclose(hsv[:, y, x], torch.tensor(expected), atol=1e-6)


def test_distort_hue_saturation_exposure():
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 2, 2).contiguous()
    # A third of a turn of hue: red -> green; two thirds: blue; the shift wraps around.
    assert torch.allclose(T.distort(red, 1 / 3, 1, 1)[:, 0, 0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert torch.allclose(T.distort(red, -1 / 3, 1, 1)[:, 0, 0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)
    # Exposure scales the value; saturation 0 makes grey; > 1 is clipped to [0, 1].
    assert torch.allclose(T.distort(red, 0, 1, 0.5)[:, 0, 0], torch.tensor([0.5, 0.0, 0.0]))
    assert torch.allclose(T.distort(red, 0, 0, 1)[:, 0, 0], torch.tensor([1.0, 1.0, 1.0]))
    pink = torch.tensor([1.0, 0.5, 0.5])[:, None, None]
    assert torch.allclose(T.distort(pink, 0, 3, 1)[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert T.distort(red, 0, 1, 1) is red  # the identity does no work


def _distort_by_hsv(image, dhue, dsat, dexp):
    """The textbook chain distort() folds into one pass: to HSV, shift and scale, back, clip."""
    hue, sat, value = T.rgb_to_hsv(image).unbind(0)
    return T.hsv_to_rgb(torch.stack(((hue + dhue) % 1.0, sat * dsat, value * dexp))).clamp(0, 1)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    levels=st.sampled_from([0, 2, 4, 255]),  # 0: continuous values; else few levels, so ties and greys
    dhue=st.floats(-0.5, 0.5),
    dsat=st.floats(0.0, 2.0),
    dexp=st.floats(0.25, 2.0),
)
def test_distort_equals_the_hsv_round_trip(seed, levels, dhue, dsat, dexp):
    image = torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(seed))
    if levels:
        image = (image * levels).round() / levels
    out = T.distort(image, dhue, dsat, dexp)
    assert out.shape == image.shape and out.is_contiguous()
    assert torch.allclose(out, _distort_by_hsv(image, dhue, dsat, dexp), atol=1e-5)


def test_uint8_images_stay_uint8_until_resized_and_match_the_float_path():
    g = torch.Generator().manual_seed(0)
    image8 = torch.randint(0, 256, (60, 80, 3), dtype=torch.uint8, generator=g).permute(2, 0, 1)  # as decoded
    image = image8.float() / 255
    for w, h in ((40, 30), (97, 71), (64, 64)):
        assert (T.resize(image8, w, h).float() / 255 - T.resize(image, w, h)).abs().max() <= 1 / 255 + 1e-6
    assert T.resize(image8, 40, 30).dtype == torch.uint8 and T.crop(image8, -5, -5, 90, 70).dtype == torch.uint8
    boxes = torch.tensor([[10.0, 10.0, 50.0, 40.0], [0.0, 30.0, 20.0, 60.0]])
    aug = T.Augment()
    for index in range(20):
        params = T.sample_params(80, 60, aug, T.sample_generator(0, 0, index))
        for letterbox in (False, True):
            out8, unit8, keep8 = T.apply_params(image8, boxes, 64, params, letterbox=letterbox)
            out, unit, keep = T.apply_params(image, boxes, 64, params, letterbox=letterbox)
            assert out8.dtype == torch.float32 and out8.is_contiguous()
            assert torch.equal(unit8, unit) and torch.equal(keep8, keep)
            # Resized in 8 bits (within one level of the float resize), then the same colour maths,
            # which can stretch a difference up to ~3x (a hue turn near grey): 4 levels here.
            assert (out8 - out).abs().max() <= 4 * max(params.dexp, 1) * max(params.dsat, 1) / 255
    with pytest.raises(ValueError, match="floating point"):
        T.distort(image8, 0.1, 1.0, 1.0)


# ---------------------------------------------------------------- random draws


def test_sample_params_ranges_match_darknet():
    aug = T.Augment(jitter=0.2, hue=0.1, saturation=1.5, exposure=1.5)
    draws = [T.sample_params(500, 375, aug, T.sample_generator(0, 0, i)) for i in range(300)]
    assert all(-100 <= p.pleft <= 100 and -100 <= p.pright <= 100 for p in draws)  # int(500 * .2)
    assert all(-75 <= p.ptop <= 75 and -75 <= p.pbot <= 75 for p in draws)  # int(375 * .2)
    assert all(-0.1 <= p.dhue <= 0.1 for p in draws)
    assert all(1 / 1.5 <= p.dsat <= 1.5 and 1 / 1.5 <= p.dexp <= 1.5 for p in draws)
    inverted = sum(p.dsat < 1 for p in draws)
    flipped = sum(p.flip for p in draws)
    assert 100 < inverted < 200 and 100 < flipped < 200
    assert max(p.pleft for p in draws) > 80 and min(p.pleft for p in draws) < -80
    no_flip = T.Augment(flip=False)
    assert not any(T.sample_params(50, 50, no_flip, T.sample_generator(0, 0, i)).flip for i in range(20))


def test_seeded_reproducibility():
    image = torch.rand(3, 60, 80, generator=torch.Generator().manual_seed(1))
    boxes = torch.tensor([[10.0, 10.0, 50.0, 40.0], [0.0, 30.0, 20.0, 60.0]])
    aug = T.Augment()

    def run(seed, epoch, index):
        g = T.sample_generator(seed, epoch, index)
        return T.transform(image, boxes, 64, augment=aug, generator=g)

    a, b = run(0, 1, 5), run(0, 1, 5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    for other in (run(1, 1, 5), run(0, 2, 5), run(0, 1, 6)):
        assert not torch.equal(a[0], other[0])
    assert T.derive_seed(0, 1, 2) != T.derive_seed(0, 2, 1)


def test_errors_are_explicit():
    with pytest.raises(ValueError, match="jitter"):
        T.Augment(jitter=0.7)
    with pytest.raises(ValueError, match="saturation"):
        T.Augment(saturation=0.5)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        T.resize(torch.rand(4, 5, 5), 3, 3)
    with pytest.raises(ValueError, match="generator"):
        T.transform(torch.rand(3, 5, 5), torch.zeros(0, 4), 8, augment=T.Augment())
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        T.apply_params(torch.rand(3, 5, 5), torch.zeros(4), 8, T.AugmentParams())


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    letterbox=st.booleans(),
    w=st.integers(8, 40),
    h=st.integers(8, 40),
    data=st.data(),
)
def test_augmented_boxes_always_valid(seed, letterbox, w, h, data):
    n = data.draw(st.integers(0, 4))
    corners = [
        sorted(data.draw(st.lists(st.floats(-5, w + 5), min_size=2, max_size=2)))
        + sorted(data.draw(st.lists(st.floats(-5, h + 5), min_size=2, max_size=2)))
        for _ in range(n)
    ]
    boxes = torch.tensor([[c[0], c[2], c[1], c[3]] for c in corners]).reshape(-1, 4)
    image = torch.rand(3, h, w)
    out, unit, keep = T.transform(
        image, boxes, 32, augment=T.Augment(), letterbox=letterbox, generator=T.sample_generator(seed, 0, 0)
    )
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert unit.shape == (len(keep), 4)
    if len(keep):
        assert float(unit.min()) >= 0 and float(unit.max()) <= 1
        assert bool(((unit[:, 2] - unit[:, 0]) >= 0.01).all() and ((unit[:, 3] - unit[:, 1]) >= 0.01).all())
        assert len(set(keep.tolist())) == len(keep) and int(keep.max()) < n
