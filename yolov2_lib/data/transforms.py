"""Data augmentation as darknet does it, in torch, seeded per sample.

Chapter 8 (multi-scale training) shows these pictures; chapter 9 (training
end to end) trains with them.

YOLO v2 was trained with darknet's ``load_data_region`` (``data.c``, the
``jitter``, ``hue``, ``saturation``, ``exposure`` keys of ``yolov2-voc.cfg``).
For each image it

1. moves each side of the image by up to ``jitter`` of the image size, in or
   out (``pleft, pright, ptop, pbot`` drawn uniformly in ``[-dw, dw]``,
   truncated to whole pixels) and crops that rectangle; pixels outside the
   image repeat the nearest edge pixel (darknet's ``crop_image`` clamps);
2. resizes the crop to the network input ``size x size`` (bilinear), so the
   aspect ratio changes too;
3. flips left-right with probability 1/2;
4. distorts colour in HSV (``random_distort_image``): hue shifted by
   ``U(-hue, hue)`` (wrapping around the colour circle), saturation and value
   scaled by ``s ~ U(1, saturation)`` resp. ``U(1, exposure)``, inverted with
   probability 1/2 (``rand_scale``); the result is clipped to [0, 1];
5. moves the boxes with the image (``correct_boxes``), clips them to the image
   and drops those narrower or shorter than ``min_size`` (darknet: 0.01 of the
   image) -- so boxes that leave the image disappear.

Optionally the crop is *letterboxed* instead of stretched (aspect kept, the
rest filled with grey 0.5, as darknet's ``letterbox_image``), with the
geometry of :func:`yolov2_lib.decode.letterbox_params`.

Every random number comes from a ``torch.Generator`` built from
``(seed, epoch, index)`` (:func:`sample_generator`), so a sample is the same
whichever DataLoader worker makes it and however many workers there are.

Images are float tensors ``(3, H, W)`` in [0, 1], RGB. Boxes in pixels are
``(x1, y1, x2, y2)``, continuous and 0-based (a box from x1 to x2 is
``x2 - x1`` wide); boxes in "image units" are the same divided by the width
and height, in [0, 1].
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..decode import letterbox_params, letterbox_resized_size
from ..errors import YOLOv2Error

__all__ = [
    "Augment",
    "AugmentParams",
    "derive_seed",
    "sample_generator",
    "sample_params",
    "crop",
    "resize",
    "letterbox",
    "hflip",
    "hflip_boxes",
    "to_float",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "distort",
    "clip_boxes",
    "apply_params",
    "transform",
]


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths, named and defaulted as in ``yolov2-voc.cfg``.

    Args:
        jitter: each side of the image moves by up to ``jitter`` of the image
            width (left, right) or height (top, bottom), in or out.
        hue: hue shift drawn from ``U(-hue, hue)``, in turns of the colour circle.
        saturation: saturation scale ``s ~ U(1, saturation)``, ``1/s`` with probability 1/2.
        exposure: value (brightness) scale, drawn like ``saturation``.
        flip: flip left-right with probability 1/2.
    """

    jitter: float = 0.2
    hue: float = 0.1
    saturation: float = 1.5
    exposure: float = 1.5
    flip: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.jitter < 0.5:
            raise YOLOv2Error(f"Expected jitter in [0, 0.5), got {self.jitter}.")
        if not 0 <= self.hue <= 0.5:
            raise YOLOv2Error(f"Expected hue in [0, 0.5], got {self.hue}.")
        for name in ("saturation", "exposure"):
            if getattr(self, name) < 1:
                raise YOLOv2Error(f"Expected {name} >= 1 (1 means no change), got {getattr(self, name)}.")


@dataclass(frozen=True)
class AugmentParams:
    """One draw of the random augmentation for one image.

    ``pleft, pright, ptop, pbot`` are the pixels cut from each side (negative:
    the crop reaches outside the image). ``dhue`` is added to the hue,
    ``dsat`` and ``dexp`` multiply saturation and value.
    """

    pleft: int = 0
    pright: int = 0
    ptop: int = 0
    pbot: int = 0
    flip: bool = False
    dhue: float = 0.0
    dsat: float = 1.0
    dexp: float = 1.0


# ---------------------------------------------------------------- seeding


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every integer of ``parts`` (order matters).

    Used to give each (seed, epoch, index) its own random stream, independent
    of the process or worker that draws it.
    """
    digest = hashlib.blake2b(repr(tuple(int(p) for p in parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The CPU generator of sample ``index`` in ``epoch`` of a run seeded with ``seed``."""
    return torch.Generator().manual_seed(derive_seed(seed, epoch, index))


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    # darknet's rand_uniform: equal bounds give the bound, swapped bounds are reordered.
    if low == high:
        return float(low)
    low, high = min(low, high), max(low, high)
    u = torch.rand((), generator=generator).item()
    return low + (high - low) * u


def _rand_scale(s: float, generator: torch.Generator) -> float:
    # darknet's rand_scale: U(1, s), inverted with probability 1/2.
    scale = _uniform(1.0, s, generator)
    invert = torch.randint(2, (), generator=generator).item() == 0
    return 1.0 / scale if invert else scale


def sample_params(width: int, height: int, augment: Augment, generator: torch.Generator) -> AugmentParams:
    """Draw one augmentation for an image of ``width x height`` pixels.

    The order of the draws is fixed (crop sides, flip, hue, saturation,
    exposure), so a generator in a given state always gives the same result.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        augment: the strengths.
        generator: the sample's generator (see :func:`sample_generator`).

    Returns:
        The drawn :class:`AugmentParams`.
    """
    if width <= 0 or height <= 0:
        raise YOLOv2Error(f"Expected a positive image size, got {width}x{height}.")
    dw = int(width * augment.jitter)
    dh = int(height * augment.jitter)
    # int() truncates towards zero, as darknet's float -> int assignment does.
    pleft = int(_uniform(-dw, dw, generator))
    pright = int(_uniform(-dw, dw, generator))
    ptop = int(_uniform(-dh, dh, generator))
    pbot = int(_uniform(-dh, dh, generator))
    flip = augment.flip and torch.randint(2, (), generator=generator).item() == 1
    dhue = _uniform(-augment.hue, augment.hue, generator)
    dsat = _rand_scale(augment.saturation, generator)
    dexp = _rand_scale(augment.exposure, generator)
    return AugmentParams(pleft, pright, ptop, pbot, bool(flip), dhue, dsat, dexp)


# ---------------------------------------------------------------- geometry


def _check_image(image: Tensor, allow_uint8: bool = False) -> None:
    if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
        got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise YOLOv2Error(f"Expected an image tensor of shape (3, H, W), got {got}.")
    if not (image.is_floating_point() or (allow_uint8 and image.dtype == torch.uint8)):
        wanted = "a floating point image in [0, 1]" + (" or a uint8 image" if allow_uint8 else "")
        raise YOLOv2Error(f"Expected {wanted}, got dtype {image.dtype}.")


def to_float(image: Tensor) -> Tensor:
    """A uint8 image (any memory layout) as a contiguous float32 image in [0, 1]; floats pass through."""
    if image.dtype == torch.uint8:
        return image.to(torch.float32, memory_format=torch.contiguous_format).div_(255)
    return image


def crop(image: Tensor, left: int, top: int, width: int, height: int) -> Tensor:
    """Cut ``width x height`` pixels starting at ``(left, top)``; outside pixels repeat the edge.

    Args:
        image: (3, H, W).
        left: x of the crop's first column (may be negative).
        top: y of the crop's first row (may be negative).
        width: crop width in pixels (> 0).
        height: crop height in pixels (> 0).

    Returns:
        (3, height, width), same dtype (float, or uint8).
    """
    _check_image(image, allow_uint8=True)
    if width <= 0 or height <= 0:
        raise YOLOv2Error(f"Expected a positive crop size, got {width}x{height}.")
    _, h, w = image.shape
    # The part inside the image is a view; the rest repeats the edge (replicate padding),
    # the same pixels as indexing with clamped coordinates, without gathering them.
    x0, y0 = min(max(left, 0), w - 1), min(max(top, 0), h - 1)
    x1, y1 = max(min(left + width, w), x0 + 1), max(min(top + height, h), y0 + 1)
    inside = image[:, y0:y1, x0:x1]
    pad = (x0 - left, left + width - x1, y0 - top, top + height - y1)  # left, right, top, bottom
    if not any(pad):
        return inside
    if all(p >= 0 for p in pad):
        return F.pad(inside[None], pad, mode="replicate")[0]  # (3, height, width)
    cols = (torch.arange(width, device=image.device) + left).clamp(0, w - 1)  # (width,)
    rows = (torch.arange(height, device=image.device) + top).clamp(0, h - 1)  # (height,)
    return image.index_select(1, rows).index_select(2, cols)  # (3, height, width)


def resize(image: Tensor, width: int, height: int) -> Tensor:
    """Bilinear resize to ``width x height`` (aspect ratio not kept).

    A uint8 image is resized in uint8 (torch's vectorised channels-last kernel,
    several times faster than float; each pixel within one level of the float
    result, which is darknet's).

    Args:
        image: (3, H, W), float or uint8.
        width: output width.
        height: output height.

    Returns:
        (3, height, width), same dtype and device.
    """
    _check_image(image, allow_uint8=True)
    if width <= 0 or height <= 0:
        raise YOLOv2Error(f"Expected a positive size, got {width}x{height}.")
    if image.shape[1:] == (height, width):
        return image
    batch = image[None]
    if image.dtype == torch.uint8:
        batch = batch.contiguous(memory_format=torch.channels_last)
    out = F.interpolate(batch, size=(height, width), mode="bilinear", align_corners=False)
    return out[0]  # (3, height, width)


def _letterbox_placement(image_size: tuple[int, int], input_size: int) -> tuple[int, int, int, int]:
    """``(new_w, new_h, pad_x, pad_y)`` of an image letterboxed into an ``input_size`` square.

    The geometry is :func:`yolov2_lib.decode.letterbox_params`'s, the single
    source that :func:`~yolov2_lib.decode.postprocess` also uses to undo it.
    """
    square = (input_size, input_size)
    new_w, new_h = letterbox_resized_size(image_size, square)
    _, pad_x, pad_y = letterbox_params(image_size, square)
    return new_w, new_h, pad_x, pad_y


def letterbox(image: Tensor, input_size: int, fill: float = 0.5) -> Tensor:
    """Resize keeping the aspect ratio and centre on a ``fill``-grey square (darknet's letterbox).

    Args:
        image: (3, H, W), float or uint8.
        input_size: side ``S`` of the output.
        fill: value of the border.

    Returns:
        (3, S, S) float; the geometry is :func:`yolov2_lib.decode.letterbox_params`'s.
    """
    _check_image(image, allow_uint8=True)
    new_w, new_h, pad_x, pad_y = _letterbox_placement((image.shape[2], image.shape[1]), input_size)
    placed = to_float(resize(image, new_w, new_h))
    out = placed.new_full((3, input_size, input_size), fill)
    out[:, pad_y : pad_y + new_h, pad_x : pad_x + new_w] = placed
    return out


def hflip(image: Tensor) -> Tensor:
    """Mirror an image left-right: (3, H, W) -> (3, H, W), any dtype."""
    _check_image(image, allow_uint8=True)
    return image.flip(-1)


def hflip_boxes(boxes: Tensor) -> Tensor:
    """Mirror ``(x1, y1, x2, y2)`` boxes in image units left-right: x -> 1 - x.

    Args:
        boxes: (N, 4) in [0, 1].

    Returns:
        (N, 4) with ``x1 = 1 - old x2`` and ``x2 = 1 - old x1``.
    """
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack((1 - x2, y1, 1 - x1, y2), dim=-1)


# ---------------------------------------------------------------- colour


def rgb_to_hsv(image: Tensor) -> Tensor:
    """RGB in [0, 1] to HSV with hue in turns [0, 1) (darknet's convention).

    Args:
        image: (3, H, W) RGB.

    Returns:
        (3, H, W) hue, saturation, value; grey pixels get hue 0, black saturation 0.
    """
    _check_image(image)
    r, g, b = image.unbind(0)
    value, argmax = image.max(0)  # (H, W)
    delta = value - image.min(0).values
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    sat = torch.where(value > 0, delta / torch.where(value > 0, value, torch.ones_like(value)), 0.0)
    hue = torch.where(
        argmax == 0, (g - b) / safe, torch.where(argmax == 1, 2 + (b - r) / safe, 4 + (r - g) / safe)
    )
    hue = torch.where(delta > 0, (hue / 6) % 1.0, 0.0)
    return torch.stack((hue, sat, value))


def hsv_to_rgb(image: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv` (hue in turns, taken modulo 1).

    Args:
        image: (3, H, W) hue, saturation, value.

    Returns:
        (3, H, W) RGB (not clipped: saturation > 1 can give values below 0).
    """
    _check_image(image)
    hue, sat, value = image.unbind(0)
    # Each channel is value - value * sat * ramp(k), with k the hue in sixths shifted
    # per channel (5: red, 3: green, 1: blue) and ramp the trapezoid min(k, 4 - k) in [0, 1].
    h6 = (hue % 1.0) * 6  # (H, W)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=image.dtype, device=image.device)[:, None, None]
    k = (n + h6) % 6  # (3, H, W)
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return value - value * sat * ramp  # (3, H, W)


def distort(image: Tensor, dhue: float, dsat: float, dexp: float) -> Tensor:
    """Darknet's ``distort_image``: shift hue, scale saturation and value, clip to [0, 1].

    Args:
        image: (3, H, W) RGB in [0, 1].
        dhue: added to the hue (turns), wrapping around.
        dsat: multiplies the saturation.
        dexp: multiplies the value.

    Returns:
        (3, H, W) RGB in [0, 1].
    """
    if dhue == 0 and dsat == 1 and dexp == 1:
        return image
    _check_image(image)
    # rgb_to_hsv, the shifts and hsv_to_rgb folded into one pass. With value v, chroma
    # d = v - min and s = d / v, each channel of hsv_to_rgb is v' - v' s' ramp(h') with
    # v' = v dexp and s' = s dsat, i.e. dexp v - dexp dsat d ramp(h'): no division by v.
    # This runs for every training image, so it is written in float arithmetic only:
    # on this project's CPU build, torch.where and remainder are 10-25x slower than a
    # subtraction of the same size (profiled; where alone took 42 % of the previous version).
    r, g, b = image.unbind(0)
    value = torch.maximum(torch.maximum(r, g), b)  # (H, W)
    delta = value - torch.minimum(torch.minimum(r, g), b)  # chroma
    # 1 where the channel is the first maximum (the one argmax picks), else 0.
    red = 1 - torch.sign(value - r)
    green = (1 - red).mul_(1 - torch.sign(value - g))
    blue = 1 - red - green
    sixths = (g - b).mul_(red)  # hue in sixths of a turn times d: the branch of the maximum
    sixths.addcmul_(torch.add(b - r, delta, alpha=2), green).addcmul_(torch.add(r - g, delta, alpha=4), blue)
    sixths.div_(delta.clamp_min(1e-12)).add_(6 * dhue)  # any value where d = 0
    sixths.sub_(torch.floor(sixths / 6), alpha=6)  # wrapped to [0, 6]
    # ramp(k) = clamp(min(k, 4 - k), 0, 1) at k = (h + 5, 3, 1) mod 6, written as
    # clamp(2 - |3 - |k - 5||, 0, 1), which needs no wrapping for k in [1, 11].
    # Channel by channel: broadcasting (H, W) against (3, H, W) is slower than three passes.
    value.mul_(dexp)
    delta.mul_(dexp * dsat)
    out = torch.empty_like(image)
    for c, shift in enumerate((0.0, -2.0, -4.0)):  # red, green, blue
        ramp = torch.add(sixths, shift, out=out[c]).abs_().sub_(3).abs_().neg_().add_(2).clamp_(0, 1)
        torch.addcmul(value, delta, ramp, value=-1, out=out[c])
    return out.clamp_(0, 1)  # (3, H, W)


# ---------------------------------------------------------------- boxes + the whole chain


def clip_boxes(boxes: Tensor, min_size: float = 0.01) -> tuple[Tensor, Tensor]:
    """Clip boxes in image units to [0, 1] and drop those left too thin.

    Args:
        boxes: (N, 4) ``(x1, y1, x2, y2)`` in image units (may reach outside).
        min_size: a box narrower or shorter than this after clipping is
            dropped (darknet's ``fill_truth_region`` uses 0.01).

    Returns:
        ``(boxes, keep)``: the (M, 4) clipped boxes that remain and the (M,)
        indices of them in the input.
    """
    clipped = boxes.clamp(0, 1)
    w = clipped[:, 2] - clipped[:, 0]
    h = clipped[:, 3] - clipped[:, 1]
    keep = torch.nonzero((w >= min_size) & (h >= min_size) & (w > 0) & (h > 0)).flatten()
    return clipped[keep], keep


def apply_params(
    image: Tensor,
    boxes: Tensor,
    input_size: int,
    params: AugmentParams,
    *,
    letterbox: bool = False,
    min_size: float = 0.01,
) -> tuple[Tensor, Tensor, Tensor]:
    """Crop, resize (or letterbox), flip and colour-distort an image and its boxes.

    A uint8 image (as decoded) stays uint8 until it has its final size: crop and
    resize cost a quarter of what they cost in float, and the colour distortion
    runs in float on the small image.

    Args:
        image: (3, H, W) RGB, float in [0, 1] or uint8.
        boxes: (N, 4) ``(x1, y1, x2, y2)`` in pixels of ``image``.
        input_size: side ``S`` of the output.
        params: what to do (:func:`sample_params`, or ``AugmentParams()`` for nothing).
        letterbox: keep the crop's aspect ratio inside a grey square instead of stretching.
        min_size: boxes thinner than this (image units) after clipping are dropped.

    Returns:
        ``(image, boxes, keep)``: the (3, S, S) float image, the (M, 4) boxes in
        image units of the output, and the (M,) indices of the kept input boxes.
    """
    _check_image(image, allow_uint8=True)
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise YOLOv2Error(f"Expected boxes of shape (N, 4), got {tuple(boxes.shape)}.")
    if input_size <= 0:
        raise YOLOv2Error(f"Expected a positive input_size, got {input_size}.")
    _, height, width = image.shape
    crop_w = width - params.pleft - params.pright
    crop_h = height - params.ptop - params.pbot
    cropped = crop(image, params.pleft, params.ptop, crop_w, crop_h)  # (3, crop_h, crop_w)

    # Boxes in image units of the crop (darknet's correct_boxes with dx, dy, 1/sx, 1/sy).
    offset = boxes.new_tensor([params.pleft, params.ptop, params.pleft, params.ptop])
    scale = boxes.new_tensor([crop_w, crop_h, crop_w, crop_h])
    unit = (boxes.float() - offset) / scale  # (N, 4)

    if letterbox:
        new_w, new_h, pad_x, pad_y = _letterbox_placement((crop_w, crop_h), input_size)
    else:
        new_w, new_h, pad_x, pad_y = input_size, input_size, 0, 0
    placed = to_float(resize(cropped, new_w, new_h))  # (3, new_h, new_w)
    if params.flip:
        placed = hflip(placed)
        unit = hflip_boxes(unit)
    placed = distort(placed, params.dhue, params.dsat, params.dexp)
    if letterbox:
        out = placed.new_full((3, input_size, input_size), 0.5)
        out[:, pad_y : pad_y + new_h, pad_x : pad_x + new_w] = placed
        # Clip inside the placed picture (its own [0, 1]) before moving onto the canvas.
        unit = unit.clamp(0, 1)
        place = unit.new_tensor([new_w, new_h, new_w, new_h])
        shift = unit.new_tensor([pad_x, pad_y, pad_x, pad_y])
        unit = (unit * place + shift) / input_size
    else:
        out = placed
    kept_boxes, keep = clip_boxes(unit, min_size)
    return out, kept_boxes, keep


def transform(
    image: Tensor,
    boxes: Tensor,
    input_size: int,
    *,
    augment: Augment | None = None,
    letterbox: bool = False,
    generator: torch.Generator | None = None,
    min_size: float = 0.01,
) -> tuple[Tensor, Tensor, Tensor]:
    """Draw an augmentation (if any) and apply it: the dataset's whole image pipeline.

    Args:
        image: (3, H, W) RGB, float in [0, 1] or uint8.
        boxes: (N, 4) pixel ``(x1, y1, x2, y2)``.
        input_size: side ``S`` of the output.
        augment: strengths, or ``None`` for a plain resize/letterbox (evaluation).
        letterbox: keep the aspect ratio (grey borders) instead of stretching.
        generator: the sample's generator; required when ``augment`` is given.
        min_size: see :func:`clip_boxes`.

    Returns:
        ``(image, boxes, keep)`` as :func:`apply_params`.
    """
    if augment is None:
        params = AugmentParams()
    else:
        if generator is None:
            raise YOLOv2Error("transform() with augment needs a generator (see sample_generator).")
        params = sample_params(image.shape[2], image.shape[1], augment, generator)
    return apply_params(image, boxes, input_size, params, letterbox=letterbox, min_size=min_size)
