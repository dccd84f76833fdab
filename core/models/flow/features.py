"""Images -> frozen backbone features at the configured strides, at the working size.

Each image is scaled to its working size (aspect ratio kept, area at most
``work_area**2``, enlarged to it only with ``enlarge``, sides multiples of 16 whatever the
``stages``: :func:`flow_working_size`), standardised (:func:`core.data.geometry.standardise`: mean 128, std 40
grey levels), then fed to the frozen ImageNet backbone ``config.backbone`` with
``config.backbone_weights`` (:func:`core.models.backbone.load_backbone`, offline).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.data.geometry import resize_to, scaled_size, standardise
from core.models.flow.config import FlowConfig

#: working sides are multiples of this (for every ``stages``: a coarser stage's map is
#: computed from the padded image and upsampled to the working size like the others)
WORK_MULTIPLE = 16


def flow_working_size(h: int, w: int, config: FlowConfig) -> tuple[int, int]:
    """(H, W) at which an (h, w) image is processed (multiples of :data:`WORK_MULTIPLE`,
    at least two of them): one scale for both axes so that ``H * W`` is about
    ``work_area**2`` (never enlarged unless ``config.enlarge``)."""
    return scaled_size(h, w, config.work_area, WORK_MULTIPLE, enlarge=config.enlarge)


def prepare(image: np.ndarray, config: FlowConfig) -> np.ndarray:
    """(h, w, 3) uint8 -> standardised (H, W, 3) uint8 at the working size."""
    return standardise(resize_to(image, flow_working_size(*image.shape[:2], config)))


class Features:
    """The frozen backbone: ``__call__(images)`` same-size prepared (H, W, 3) uint8 images
    -> ``{stride: (B, C_s, H / stride, W / stride) float32}`` on ``device``."""

    def __init__(self, config: FlowConfig, device: str = "cpu") -> None:
        from core.models.backbone import FeatureExtractor, load_backbone

        self.device = device
        backbone = load_backbone(config.backbone, config.backbone_weights)
        self.extractor = FeatureExtractor(backbone, config.stages)
        self.extractor.to(device)
        self.channels = dict(self.extractor.channels)

    def __call__(self, images: Sequence[np.ndarray]) -> dict[int, torch.Tensor]:
        from core.models.backbone import to_tensor

        return self.extractor(to_tensor(images).to(self.device))
