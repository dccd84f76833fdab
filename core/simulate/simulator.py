"""The DRAEM synthetic anomaly simulator ([paper] Sec. 3.3, [official] ``data_loader.py``).

A sample is fully determined by ``(seed, index, image)``: its random generator is
``numpy.random.default_rng([seed, index])``.  Steps, each following [official]
``MVTecDRAEMTrainDataset.transform_image`` / ``augment_image``:

1. resize the good image to ``config.image_size`` (cv2, as [official]);
2. with probability ``rotate_image_prob`` (0.3) rotate it by U(-90, 90) degrees;
3. with probability ``1 - anomaly_probability`` (0.5) return it clean (empty mask);
4. Perlin noise with ``2**k`` cells per axis, ``k ~ U{min, max-1}`` per axis,
   rotated by U(-rotation_deg, rotation_deg) (zero fill), thresholded:
   ``mask = noise > threshold``;
5. a texture from the anomaly source after ``n_augmentations`` random ops;
6. ``augmented = image * (1 - m) + (1 - beta) * texture * m + beta * image * m``
   with ``beta ~ U(beta_min, beta_max)``.

Deviations (documented): the clean/anomalous decision is drawn before the anomaly
is built, so clean samples cost almost nothing ([official] builds it and then
throws it away -- same distribution); images stay uint8 (the blend rounds to the
nearest integer, an error <= 0.5/255 against [official]'s float32).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from core.config import SimulatorConfig
from core.data.geometry import resize_to
from core.errors import DatasetError
from core.simulate.perlin import rand_perlin_2d
from core.simulate.textures import AnomalySource, augment_texture, make_source, rotate_about_centre
from core.types import SyntheticSample

__all__ = ["AnomalySimulator", "as_rgb_uint8"]


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Check and normalise an input image to (H, W, 3) uint8 RGB.

    Accepts (H, W, 3) uint8 as is and grey (H, W) / (H, W, 1) uint8 (replicated).

    Raises:
        DatasetError: anything else (wrong dtype, rank, channel count, empty).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise DatasetError(
            f"simulator input must be a uint8 numpy array (H, W, 3), got "
            f"{type(image).__name__} {getattr(image, 'dtype', '')}"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise DatasetError(f"simulator input must have shape (H, W, 3), got {image.shape}")
    return image


class AnomalySimulator:
    """Makes DRAEM training samples from good images.

    Args:
        config: simulator settings (paper defaults).
        seed: base seed; sample ``index`` uses ``default_rng([seed, index])``.
        source: anomaly texture source; default :func:`core.simulate.textures.make_source` of
            ``config`` (a ``folder`` source raises :class:`DatasetError` if unusable).
    """

    def __init__(
        self, config: SimulatorConfig, seed: int = 0, source: AnomalySource | None = None
    ) -> None:
        if not isinstance(config, SimulatorConfig):
            raise TypeError(f"config must be a SimulatorConfig, got {type(config).__name__}")
        self.config = config
        self.seed = int(seed)
        if self.seed < 0:
            raise DatasetError(f"seed must be >= 0, got {seed}")
        self.source = source if source is not None else make_source(config)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every sample."""
        return self.config.image_size

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The good image at ``image_size``: (H, W, 3) uint8 RGB (resized only if needed)."""
        image = as_rgb_uint8(image)
        return resize_to(image, self.config.image_size, both_sides=True)

    def anomaly_mask(self, rng: np.random.Generator) -> np.ndarray:
        """A thresholded, rotated Perlin mask ([official] ``augment_image``): (H, W) uint8 in {0, 1}."""
        c = self.config
        ky, kx = rng.integers(c.perlin_scale_min, c.perlin_scale_max, size=2)
        noise = rand_perlin_2d(c.image_size, (2 ** int(ky), 2 ** int(kx)), rng)
        angle = rng.uniform(-c.rotation_deg, c.rotation_deg)
        noise = rotate_about_centre(
            noise, angle
        )  # [official] iaa.Affine(rotate=(-90, 90)): bilinear, zero fill
        return (noise > c.threshold).astype(np.uint8)

    def sample(self, image: np.ndarray, index: int) -> SyntheticSample:
        """One training sample from a good ``image`` ((H, W, 3) uint8 RGB, any size).

        Returns:
            :class:`SyntheticSample` at ``config.image_size``; deterministic in
            ``(seed, index, image)``.
        """
        index = int(index)
        if index < 0:
            raise DatasetError(f"sample index must be >= 0, got {index}")
        c = self.config
        rng = np.random.default_rng([self.seed, index])
        good = self.prepare(image)
        if rng.random() < c.rotate_image_prob:  # [official] do_aug_orig = rand > 0.7
            good = rotate_about_centre(good, rng.uniform(-90.0, 90.0))
        clean = SyntheticSample(
            good, good.copy(), np.zeros(c.image_size, np.uint8), False, 0.0, index
        )
        if rng.random() >= c.anomaly_probability:  # [official] no_anomaly > 0.5
            return clean
        mask = self.anomaly_mask(rng)
        if not mask.any():  # [official]: has_anomaly = 0 when the mask is empty
            return clean
        texture = self.source.sample(rng, c.image_size)
        texture = augment_texture(texture, rng, c.n_augmentations)
        beta = float(rng.uniform(c.beta_min, c.beta_max))  # [official] beta = rand * 0.8
        blended = cv2.addWeighted(
            texture, 1.0 - beta, good, beta, 0.0
        )  # (1-b)*tex + b*img, rounded
        augmented = np.where(mask[..., None].astype(bool), blended, good)
        return SyntheticSample(good, augmented, mask, True, beta, index)

    def batch(self, images: Sequence[np.ndarray], indices: Sequence[int]) -> list[SyntheticSample]:
        """``[sample(images[k], indices[k]) for k]`` -- e.g. for browsing samples in the GUI."""
        if len(images) != len(indices):
            raise DatasetError(
                f"batch needs as many indices as images, got {len(indices)} for {len(images)}"
            )
        return [self.sample(img, i) for img, i in zip(images, indices, strict=True)]
