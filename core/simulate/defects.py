"""Surface-defect anomalies for the ``compact`` preset's simulator.

[paper]'s anomalies are Perlin-shaped patches of a foreign texture.  Real surface
defects are often subtler: thin scratches and cracks, small pits, dents and
intensity-only changes of the surface itself.  :class:`SurfaceSimulator` mixes
[official]-style texture anomalies (from :class:`core.simulate.simulator.AnomalySimulator`)
with three generated kinds that change only the image itself:

* ``intensity``: a Perlin region (the [official] mask) made darker/brighter by a
  gain and offset, optionally smoothed (worn, polished, uneven areas), soft edges;
* ``line``: 1-2 random polylines, 1-4 px wide, darker or brighter (scratches, cracks);
* ``spot``: 1-4 small ellipses, radius 2-12 px, darker or brighter (pits, blowholes).

All operate on (H, W, 3) uint8 RGB and keep grey images grey (one gain for all
channels).  Deterministic in ``(seed, index, image)`` like the base simulator.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import cv2
import numpy as np

from core.config import ModelConfig, SimulatorConfig, model_preset
from core.data.foreground import foreground_mask, uses_foreground
from core.data.geometry import random_crop, standardise, to_working
from core.simulate.simulator import AnomalySimulator, as_rgb_uint8
from core.types import SyntheticSample

__all__ = [
    "KINDS",
    "SIM_MIX",
    "CompactSimulator",
    "compact_simulator",
    "intensity_defect",
    "is_grey",
    "line_defect",
    "spot_defect",
]

KINDS = ("texture", "intensity", "line", "spot")
#: Weights of the anomaly kinds the compact preset trains on, in ``KINDS`` order.
SIM_MIX = (1.0, 1.0, 1.0, 1.0)


def _blend(img: np.ndarray, alt: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = img.astype(np.float32) * (1.0 - alpha[..., None]) + alt * alpha[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def intensity_defect(
    img: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Gain/offset (and maybe blur) inside ``mask`` ((H, W) {0,1}) with soft edges."""
    m = mask.astype(np.float32)
    sigma = float(rng.choice([0.0, 1.5, 4.0]))
    soft = cv2.GaussianBlur(m, (0, 0), sigma) if sigma > 0 else m
    gain = rng.uniform(0.4, 0.8) if rng.random() < 0.5 else rng.uniform(1.25, 1.8)
    alt = img.astype(np.float32) * gain + rng.uniform(-25.0, 25.0)
    if rng.random() < 0.4:  # the surface texture smoothed away
        alt = cv2.GaussianBlur(alt, (0, 0), rng.uniform(1.5, 4.0))
    return _blend(img, alt, soft), (soft > 0.5).astype(np.uint8)


def line_defect(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """1-2 random polylines (curving random walks), width 1-4 px, darker or brighter."""
    h, w = img.shape[:2]
    m = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 3))):
        n = int(rng.integers(2, 7))
        p = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        ang, length = rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.6) * max(h, w)
        pts = [p.copy()]
        for _ in range(n):
            ang += rng.normal(0.0, 0.5)
            p = p + length / n * np.array([math.cos(ang), math.sin(ang)])
            pts.append(p.copy())
        cv2.polylines(m, [np.array(pts, np.int32)], False, 1.0, int(rng.integers(1, 5)))
    soft = cv2.GaussianBlur(m, (0, 0), 0.7)
    if rng.random() < 0.5:
        alt = img.astype(np.float32) * rng.uniform(0.3, 0.7)
    else:
        alt = np.full(
            img.shape,
            rng.uniform(0, 60) if rng.random() < 0.5 else rng.uniform(180, 255),
            np.float32,
        )
    return _blend(img, alt, soft * rng.uniform(0.5, 1.0)), (m > 0.5).astype(np.uint8)


def spot_defect(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """1-4 small filled ellipses (radius 2-12 px), mostly darker."""
    h, w = img.shape[:2]
    m = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        axes = (int(rng.uniform(2, 12)), int(rng.uniform(2, 12)))
        cv2.ellipse(m, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    soft = cv2.GaussianBlur(m, (0, 0), 1.0)
    gain = rng.uniform(0.2, 0.7) if rng.random() < 0.7 else rng.uniform(1.4, 2.0)
    return _blend(img, img.astype(np.float32) * gain, soft), (m > 0.5).astype(np.uint8)


def is_grey(images: list[np.ndarray], n: int = 16) -> bool:
    """True if the first ``n`` (H, W, 3) images have identical R, G and B channels."""
    for img in images[:n]:
        if not (
            np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])
        ):
            return False
    return True


class CompactSimulator:
    """The ``compact`` preset's training-sample maker (wraps [official]'s simulator).

    * ``prepare(image)``: the good image at its working size (aspect ratio kept,
      ``core.data.geometry.to_working``), done once per image by ``SyntheticDataset``;
    * ``sample(image, index)``: a random square crop of ``base.image_size`` from it
      (plus random flips), then an anomaly of a kind drawn with weights ``mix`` over
      (texture, intensity, line, spot); texture anomalies are [official]'s.  With
      ``grey=True`` the augmented image is converted to grey (the data's colour
      space: a grey surface never shows a coloured defect).  With ``foreground=True``
      (objects on a plain background, :func:`core.data.foreground.uses_foreground`) the
      anomaly is kept only on the object: ``prepare`` adds the image's foreground
      mask as a 4th channel, ``sample`` crops it with the image and cuts the anomaly
      and its mask to it (a sample whose anomaly falls on the background stays clean).

    Same interface as :class:`AnomalySimulator` (``config``, ``seed``, ``image_size``,
    ``prepare``, ``sample``), so :class:`core.simulate.dataset.SyntheticDataset` accepts it.
    Deterministic in ``(seed, index, image)``.
    """

    def __init__(
        self,
        base: AnomalySimulator,
        model_config: ModelConfig,
        mix: tuple[float, ...] = SIM_MIX,
        grey: bool = False,
        foreground: bool = False,
    ) -> None:
        w = np.asarray(mix, np.float64)
        if w.shape != (len(KINDS),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"mix must be {len(KINDS)} non-negative weights {KINDS}, got {mix}")
        self.base, self.model_config, self.mix, self.grey = (
            base,
            model_config,
            w / w.sum(),
            bool(grey),
        )
        self.config, self.seed = base.config, base.seed
        self.foreground = bool(foreground)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.base.image_size

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 -> the image at its working size (aspect ratio kept; standardised
        if ``model_config.standardise``); with ``foreground``, (H, W, 4): the foreground
        mask (0/1) is the 4th channel."""
        img = to_working(as_rgb_uint8(image), self.model_config)
        fg = foreground_mask(img) if self.foreground else None
        if self.model_config.standardise:
            img = standardise(img)
        if not self.foreground:
            return img
        fg = np.ones(img.shape[:2], np.uint8) if fg is None else fg
        return np.concatenate([img, fg[..., None]], axis=2)

    def sample(self, image: np.ndarray, index: int) -> SyntheticSample:
        """One sample from a prepared image; arrays at ``image_size``, see :class:`SyntheticSample`."""
        rng = np.random.default_rng([self.seed, int(index), 1])  # independent of the base stream
        crop = random_crop(image, self.image_size, rng)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
        kind = KINDS[int(rng.choice(len(KINDS), p=self.mix))]
        fg = crop[..., 3].astype(bool) if crop.shape[2] == 4 else None
        s = self.base.sample(np.ascontiguousarray(crop[..., :3]), index)
        if not s.has_anomaly:  # clean samples stay clean ([official] p = 0.5)
            return s
        good, aug, mask = s.good, s.augmented, s.mask
        if kind == "intensity":
            aug, mask = intensity_defect(good, s.mask, rng)
        elif kind == "line":
            aug, mask = line_defect(good, rng)
        elif kind == "spot":
            aug, mask = spot_defect(good, rng)
        if self.grey:
            aug = np.repeat(cv2.cvtColor(aug, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        if fg is not None:  # the anomaly only on the object
            aug = np.where(fg[..., None], aug, good)
            mask = mask * fg.astype(mask.dtype)
        if not mask.any():
            return SyntheticSample(good, good.copy(), mask, False, 0.0, s.index)
        beta = s.beta if kind == "texture" else 0.0
        return SyntheticSample(good, aug, mask, True, beta, s.index, kind)


def compact_simulator(
    sim_config: SimulatorConfig,
    images: Sequence[np.ndarray],
    seed: int,
    model_config: ModelConfig | None = None,
) -> CompactSimulator:
    """The simulator the ``compact`` preset trains with (also what the GUI previews).

    Crops of ``model_config.image_size`` (default: the compact preset's) at the working
    geometry; the good image is not rotated (``rotate_image_prob`` 0: zero-filled corners
    look like defects on a surface; random flips instead); grey ``images`` (RGB uint8)
    get grey anomalies; objects on a plain background get anomalies on the object only
    (:func:`core.data.foreground.uses_foreground`); kinds mixed by :data:`SIM_MIX`.
    """
    mc = model_config or model_preset("compact")
    sc = dataclasses.replace(sim_config, image_size=tuple(mc.image_size), rotate_image_prob=0.0)
    images = list(images)
    return CompactSimulator(
        AnomalySimulator(sc, seed=seed),
        mc,
        SIM_MIX,
        grey=is_grey(images),
        foreground=uses_foreground(images),
    )
