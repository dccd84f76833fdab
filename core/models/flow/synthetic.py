"""Synthetic anomalies for the flow's self-supervised term.

A patch of another good image (or of a texture from an :class:`core.simulate.textures.AnomalySource`)
is blended into a crop inside a rectangle, ellipse or Perlin-noise mask:
``out = (1 - b * m) * crop + b * m * patch`` with ``b`` uniform in [0.3, 1].  The patch is
randomly mirrored, rotated by a multiple of 90 degrees and brightness-shifted, so it is
never an exact copy of the surface around it.  Everything is drawn from a caller's
:class:`numpy.random.Generator` (seeded, reproducible).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from core.data.geometry import random_crop
from core.simulate.perlin import rand_perlin_2d

SHAPES = ("rectangle", "ellipse", "perlin")


def shape_mask(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random anomaly mask (H, W) float32 in {0, 1}, never empty: a rectangle, an
    ellipse (both 4-40 % of a side, at a random place and angle) or thresholded Perlin noise."""
    h, w = size
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    m = np.zeros((h, w), np.float32)
    if kind == "perlin":
        res = 2 ** rng.integers(1, 4, size=2)
        noise = rand_perlin_2d((h, w), (int(res[0]), int(res[1])), rng)
        m = (noise > 0.5).astype(np.float32)
    else:
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        ay, ax = (rng.uniform(0.04, 0.4, 2) * (h, w) / 2).astype(int) + 1
        angle = float(rng.uniform(0, 180))
        if kind == "ellipse":
            cv2.ellipse(m, (int(cx), int(cy)), (int(ax), int(ay)), angle, 0, 360, 1.0, -1)
        else:
            box = cv2.boxPoints(((float(cx), float(cy)), (2.0 * ax, 2.0 * ay), angle))
            cv2.fillPoly(m, [box.astype(np.int32)], 1.0)
    if m.sum() < 4:  # too small to matter: a small square in the middle
        m[h // 2 - 2 : h // 2 + 2, w // 2 - 2 : w // 2 + 2] = 1.0
    return m


def foreign_patch(
    images: Sequence[np.ndarray], exclude: int, size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """A (H, W, 3) uint8 crop of a good image other than ``exclude`` (mirrored, rotated by
    k * 90 degrees, brightness-shifted by up to +-60 grey levels)."""
    n = len(images)
    j = int(rng.integers(n - 1)) if n > 1 else 0
    j = j + 1 if n > 1 and j >= exclude else j
    patch = random_crop(images[j], size, rng)
    k = int(rng.integers(4))
    if size[0] != size[1]:
        k = 2 * (k // 2)
    patch = np.rot90(patch, k)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    shift = rng.uniform(-60, 60)
    return np.clip(patch.astype(np.float32) + shift, 0, 255).astype(np.uint8)


def synthesize(
    crop: np.ndarray, patch: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Blend ``patch`` into ``crop`` (both (H, W, 3) uint8) inside a random mask.

    Returns (augmented (H, W, 3) uint8, mask (H, W) float32 in {0, 1}).
    """
    mask = shape_mask(crop.shape[:2], rng)
    beta = float(rng.uniform(0.3, 1.0))
    m = (beta * mask)[..., None]
    out = (1.0 - m) * crop.astype(np.float32) + m * patch.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask


def make_anomaly(
    crop: np.ndarray, patch: np.ndarray | None, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic anomaly of ``kind`` in a (H, W, 3) uint8 crop.

    ``patch``: a blend of ``patch`` (a crop of another good image or a texture, needed) in
    a rectangle / ellipse / Perlin mask (:func:`synthesize`); ``intensity``: the surface
    itself darker / brighter (maybe smoothed) in such a mask; ``line``: thin polylines
    (scratches, cracks); ``spot``: small ellipses (pits, blowholes) — the last three from
    :mod:`core.simulate.defects`.  Returns (augmented (H, W, 3) uint8, mask (H, W)
    float32 in {0, 1}, never empty).
    """
    from core.simulate.defects import intensity_defect, line_defect, spot_defect

    if kind == "patch":
        return synthesize(crop, patch, rng)
    if kind == "intensity":
        out, m = intensity_defect(crop, shape_mask(crop.shape[:2], rng), rng)
    elif kind == "line":
        out, m = line_defect(crop, rng)
    elif kind == "spot":
        out, m = spot_defect(crop, rng)
    else:
        raise ValueError(f"unknown anomaly kind {kind!r}")
    m = m.astype(np.float32)
    if m.sum() < 1:  # drawn outside the crop: fall back to a patch blend
        return synthesize(crop, patch, rng) if patch is not None else (crop, m)
    return out, m


def anomalous_cells(cover: np.ndarray) -> np.ndarray:
    """(N, h, w) mask coverage per feature cell -> (N, h, w) bool: cells at least half
    covered, or for thin anomalies (no cell half covered) at least half as covered as the
    sample's most covered cell."""
    top = cover.reshape(len(cover), -1).max(1)[:, None, None]
    return (cover > 0) & (cover >= np.minimum(0.5, 0.5 * top))


def anomalous_crop(
    prepared: Sequence[np.ndarray],
    i: int,
    crop: np.ndarray,
    rng: np.random.Generator,
    source=None,
    kinds: Sequence[str] = ("patch",),
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic anomaly in ``crop`` (a (S, S, 3) uint8 crop of ``prepared[i]``) of a kind
    drawn uniformly from ``kinds`` (:func:`make_anomaly`); the ``patch`` kind blends in a
    patch of another good image, or a texture of ``source`` (an ``AnomalySource``) when
    given.  Returns (augmented, mask (S, S) float32 {0, 1})."""
    size = crop.shape[:2]
    if source is not None:
        patch = source.sample(rng, size)
    else:
        patch = foreign_patch(prepared, i, size, rng)
    kind = kinds[int(rng.integers(len(kinds)))]
    return make_anomaly(crop, patch, kind, rng)


def feature_mask(mask: np.ndarray, stride: int) -> np.ndarray:
    """(H, W) float32 {0, 1} mask -> (H / stride, W / stride) float32 coverage in [0, 1]
    (area average)."""
    h, w = mask.shape
    return cv2.resize(mask, (w // stride, h // stride), interpolation=cv2.INTER_AREA)
