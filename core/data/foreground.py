"""Foreground masks for object images: no synthetic anomaly pasted on the background.

An object photographed on a plain background (a nut on a black plate, a screw on white
paper) should learn what a defect *on the object* looks like; an anomaly pasted on the
empty background teaches the network nothing it needs and, at the borders of the
object, that the object's silhouette itself is suspicious.  Surfaces and textures fill
the whole image and have no background: there the mask must be all foreground.

The rule (the same for every data set, no tuning):

* **Per image:** the background is estimated from a ring along the image border
  (``RING`` of the shorter side).  If that ring is *plain* (the median colour distance of
  its pixels to their median colour is at most ``plain_spread`` grey levels), every
  pixel within ``tolerance`` of that colour (after a 5x5 median filter) and connected
  to the border is background; the rest, closed and with its holes filled, is the
  foreground.  Otherwise the whole image is foreground.
* **Per data set** (:func:`uses_foreground`): masks are used only if at least
  ``MIN_SHARE`` of the sampled good images have a plain border *and* a foreground of
  ``5-90 %`` of the image, so one odd photo never switches a texture data set to masks.

Arrays: images (H, W, 3) uint8 RGB; masks (H, W) uint8 in {0, 1} (1 = foreground).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "foreground_mask",
    "looks_like_object",
    "object_votes",
    "objects_by_votes",
    "uses_foreground",
]

RING = 0.03  # border ring width, fraction of the shorter side
PLAIN_SPREAD = 8.0  # grey levels: the border ring's median distance to its median colour
TOLERANCE = 30.0  # grey levels: how far from the border colour a background pixel may be
RING_COVER = 0.9  # share of the border pixels the background region must touch
MIN_SHARE = 0.75  # share of sampled images that must look like objects on a background
FG_RANGE = (0.05, 0.90)  # foreground share of an image that looks like an object


def _border_colour(img: np.ndarray) -> tuple[np.ndarray, float]:
    """Median RGB colour of the border ring and the ring's median distance to it."""
    h, w = img.shape[:2]
    r = max(2, int(round(RING * min(h, w))))
    ring = np.concatenate(
        [img[:r].reshape(-1, 3), img[-r:].reshape(-1, 3)]
        + [img[r:-r, :r].reshape(-1, 3), img[r:-r, -r:].reshape(-1, 3)]
    ).astype(np.float32)
    colour = np.median(ring, axis=0)
    return colour, float(np.median(np.linalg.norm(ring - colour, axis=1)))


def foreground_mask(image: np.ndarray) -> np.ndarray | None:
    """(H, W) uint8 {0, 1} foreground of an (H, W, 3) uint8 image, or None when the
    border is not plain (a surface or texture: everything is foreground)."""
    colour, spread = _border_colour(image)
    if spread > PLAIN_SPREAD:
        return None
    smooth = cv2.medianBlur(np.ascontiguousarray(image), 5).astype(np.float32)
    near = (np.linalg.norm(smooth - colour, axis=2) <= TOLERANCE).astype(np.uint8)
    # Background = one near-colour region that runs round (almost) the whole border.
    _, labels = cv2.connectedComponents(near, connectivity=4)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    ids, counts = np.unique(edge[edge > 0], return_counts=True)
    if len(ids) == 0 or counts.max() < RING_COVER * len(edge):
        return None  # e.g. bricks: mortar lines cut the border into many pieces
    fg = (labels != ids[np.argmax(counts)]).astype(np.uint8)
    k = max(3, int(round(0.02 * min(image.shape[:2]))) | 1)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    # Fill holes: what the flood from the border cannot reach is foreground.
    flood = np.pad(1 - fg, 1, constant_values=1)
    cv2.floodFill(flood, None, (0, 0), 2)
    return np.where(flood[1:-1, 1:-1] == 2, 0, 1).astype(np.uint8)


def looks_like_object(image: np.ndarray) -> bool:
    """One image's vote of the data-set rule: a plain border *and* a foreground covering
    ``FG_RANGE`` of an (H, W, 3) uint8 image (checked at most 256 px wide, about 1 ms)."""
    scale = 256 / max(image.shape[:2])  # the decision needs no detail: keep it cheap
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    fg = foreground_mask(image)
    return fg is not None and FG_RANGE[0] <= float(fg.mean()) <= FG_RANGE[1]


def object_votes(images: Sequence[np.ndarray], n: int = 16) -> tuple[int, int]:
    """``(hits, sampled)``: how many of the first ``n`` images :func:`looks_like_object`."""
    sample = list(images[:n])
    return sum(looks_like_object(img) for img in sample), len(sample)


def objects_by_votes(hits: int, sampled: int) -> bool:
    """The data-set rule on votes: at least ``MIN_SHARE`` of ``sampled`` images (> 0)
    looked like an object on a plain background (``hits`` of them)."""
    return sampled > 0 and hits >= MIN_SHARE * sampled


def uses_foreground(images: Sequence[np.ndarray], n: int = 16) -> bool:
    """True if the data look like objects on a plain background (see the module rule):
    at least ``MIN_SHARE`` of the first ``n`` images :func:`looks_like_object`."""
    return objects_by_votes(*object_votes(images, n))
