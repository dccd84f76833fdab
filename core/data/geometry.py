"""Working geometry: at which size the network sees an image.

The [paper] preset squashes every image to ``ModelConfig.image_size`` (256x256).
That distorts non-square images (magnetic tiles up to 1:2.6) and thins or fattens
thin defects.  The ``compact`` preset (``ModelConfig.keep_aspect``) instead:

* **keeps the aspect ratio**: an (h, w) image is scaled by one factor ``s`` so that
  ``H * W <= work_area ** 2``, never enlarged (``s <= 1``: small images are used at
  their native resolution, where thin defects are sharpest), each side rounded to a
  multiple of 16 (the encoder's stride) and at least 32;
* **trains on square crops** of ``ModelConfig.image_size`` cut from the images at
  their working size (reflect-padded where an image is smaller than the crop);
  the network is fully convolutional, so it then runs on whole working-size images;
* **returns maps at the original size** (bilinear).

All functions are pure numpy/cv2; images are (h, w, 3) uint8 RGB, maps float32 (h, w).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from core.config import ModelConfig

__all__ = [
    "data_work_area",
    "random_crop",
    "standardise",
    "to_original",
    "to_working",
    "working_size",
]

#: :func:`standardise` target: mean and standard deviation in grey levels
STD_MEAN, STD_SCALE = 128.0, 40.0

STRIDE = 16  # the compact encoder's coarsest stride: working sides are multiples of it

#: :func:`data_work_area`: the smallest scale a method's default working area may bring
#: the good images to.  Below it a defect a few pixels wide loses a third of its contrast
#: and both methods lose 0.05-0.11 image AUROC on 1-2 px cracks (docs/experiments.md,
#: working area and thin defects).
MIN_SCALE = 0.5
#: the largest working area :func:`data_work_area` sets (inference time grows with it)
MAX_WORK_AREA = 640


def working_size(h: int, w: int, config: ModelConfig) -> tuple[int, int]:
    """(H, W) at which an (h, w) image is processed.

    ``keep_aspect=False`` ([paper]): ``config.image_size``.  Otherwise one scale
    ``s = min(1, work_area / sqrt(h * w))`` for both axes, sides rounded to multiples
    of 16, minimum 32.  Examples with ``work_area=320``: 300x250 -> 304x256 (native),
    1024x1024 -> 320x320, 200x600 -> 192x544 (aspect 1:3 kept).
    """
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    if not config.keep_aspect:
        return tuple(config.image_size)  # type: ignore[return-value]
    return scaled_size(h, w, config.work_area, STRIDE, enlarge=False)


def scaled_size(h: int, w: int, side: float, multiple: int, *, enlarge: bool) -> tuple[int, int]:
    """(H, W) of an (h, w) image scaled to an area of about ``side**2``, aspect kept.

    One scale ``s = side / sqrt(h * w)`` (at most 1 unless ``enlarge``) for both axes;
    each side rounded to a multiple of ``multiple`` (a network's coarsest stride) and
    at least two of them.  The one rule behind every method's working size.
    """
    s = side / math.sqrt(h * w)
    if not enlarge:
        s = min(1.0, s)
    return (
        max(2 * multiple, int(round(h * s / multiple)) * multiple),
        max(2 * multiple, int(round(w * s / multiple)) * multiple),
    )


def data_work_area(sizes, default: int) -> int:
    """The working area for good images of ``sizes`` ((h, w) pairs) when none is set.

    ``default`` (the method's) unless it scales the median image below ``MIN_SCALE``;
    then the area that keeps ``MIN_SCALE``, rounded up to a multiple of 32, at most
    ``MAX_WORK_AREA`` and never below ``default``.  Small images (used at their native
    size) keep the default.  Examples with ``default=320``: 300x250 images -> 320,
    1250x500 -> 416, 1024x1024 -> 512, 4096x4096 -> 640.
    """
    sides = [math.sqrt(int(h) * int(w)) for h, w in sizes]
    if not sides:
        return int(default)
    needed = MIN_SCALE * float(np.median(sides))
    return int(max(default, min(MAX_WORK_AREA, math.ceil(needed / 32) * 32)))


def resize_to(image: np.ndarray, size: tuple[int, int], *, both_sides: bool = False) -> np.ndarray:
    """Resize an (h, w, C) image to ``size`` (H, W); unchanged when it is that size.

    INTER_AREA when shrinking, INTER_LINEAR otherwise.  Shrinking means the area
    shrinks, or with ``both_sides`` (the [official] DRAEM simulator's rule, which the
    paper preset's inference must repeat) that both sides shrink.
    """
    H, W = int(size[0]), int(size[1])
    h, w = image.shape[:2]
    if (h, w) == (H, W):
        return image
    shrink = (h > H and w > W) if both_sides else h * w > H * W
    return cv2.resize(image, (W, H), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def to_working(image: np.ndarray, config: ModelConfig) -> np.ndarray:
    """Resize an (h, w, 3) uint8 image to :func:`working_size` (INTER_AREA when shrinking)."""
    return resize_to(image, working_size(*image.shape[:2], config))


def to_original(amap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float32 (H, W) map back to the image's original (h, w) (bilinear)."""
    h, w = int(shape[0]), int(shape[1])
    if amap.shape == (h, w):
        return amap.astype(np.float32, copy=False)
    return cv2.resize(amap.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def standardise(image: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> the same image with mean ``STD_MEAN`` and standard deviation
    ``STD_SCALE`` (all channels together, so colours keep their relations), clipped to
    uint8.  A flat image becomes flat ``STD_MEAN`` grey."""
    g = image.astype(np.float32)
    out = (g - g.mean()) * (STD_SCALE / max(float(g.std()), 1.0)) + STD_MEAN
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def random_crop(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random (size[0], size[1]) crop of an (h, w, C) image, reflect-padded if it is smaller."""
    ch, cw = int(size[0]), int(size[1])
    h, w = image.shape[:2]
    if h < ch or w < cw:
        ph, pw = max(0, ch - h), max(0, cw - w)
        mode = cv2.BORDER_REFLECT_101 if h > ph and w > pw else cv2.BORDER_REPLICATE
        image = cv2.copyMakeBorder(image, 0, ph, 0, pw, mode)
        h, w = image.shape[:2]
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(image[y : y + ch, x : x + cw])
