"""The flow's synthetic anomalies as :class:`core.types.SyntheticSample` s, for the GUI's
Synthetic anomalies page: the same crops and blends the trainer draws
(:func:`core.models.flow.synthetic.anomalous_crop`), one reproducible sample per index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.config import SimulatorConfig
from core.data.geometry import random_crop
from core.models.flow.config import FlowConfig
from core.models.flow.features import prepare
from core.models.flow.synthetic import anomalous_crop
from core.types import SyntheticSample


class FlowSamples:
    """``sample(prepared_image, index)`` -> a training crop of the image with a synthetic
    anomaly (every other index: a clean crop, as half of each training batch is).

    Args:
        config: the flow's settings (working area, crop size).
        sim_config: the page's simulator settings; a texture folder there is used as the
            patch source (as ``--anomaly-source`` is in training), else other good images.
        images: the good RGB uint8 images the patches are cut from.
        seed: with the index, determines each sample.
    """

    def __init__(
        self,
        config: FlowConfig,
        sim_config: SimulatorConfig | None,
        images: Sequence[np.ndarray],
        seed: int,
    ) -> None:
        self.config, self.seed = config, int(seed)
        self.prepared = [prepare(im, config) for im in images]
        self.source = None
        if sim_config is not None and sim_config.source == "folder" and sim_config.source_dir:
            from core.simulate.textures import FolderSource

            self.source = FolderSource(sim_config.source_dir)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 -> standardised at the working size, as the flow sees it."""
        return prepare(image, self.config)

    def sample(self, image: np.ndarray, index: int) -> SyntheticSample:
        rng = np.random.default_rng([self.seed, int(index)])
        size = (self.config.crop_size, self.config.crop_size)
        crop = random_crop(image, size, rng)
        if index % 2 or not self.prepared:
            zero = np.zeros(size, np.uint8)
            return SyntheticSample(crop, crop, zero, False, 0.0, int(index), "clean")
        others = [*self.prepared, image]  # patches come from the other good images
        aug, mask = anomalous_crop(
            others, len(others) - 1, crop, rng, self.source, self.config.anomalies
        )
        kind = "synthetic: " + ", ".join(self.config.anomalies)
        # the surface kinds blend with soft edges: show every pixel the anomaly changed
        mask = np.maximum(mask, np.any(aug != crop, axis=2).astype(mask.dtype))
        return SyntheticSample(crop, aug, (mask > 0).astype(np.uint8), True, 1.0, int(index), kind)


def samples_note(config: FlowConfig) -> str:
    """What the Synthetic anomalies page says about these samples."""
    return (
        f"Samples as the <b>normalizing flow</b> trains on them: {config.crop_size}² crops of "
        "the standardised image; every other crop gets a synthetic anomaly of one of the "
        f"kinds {', '.join(config.anomalies)}: a patch of another good image (or of a texture "
        "from the anomaly source) blended in inside a rectangle, ellipse or Perlin-shaped "
        "mask, or a darker / brighter region, thin line or small pit of the surface itself. "
        "Its loss keeps the clean crops likely and pushes these down."
    )


__all__ = ["FlowSamples", "samples_note"]
