"""Images -> frozen EfficientNet-Lite0 features at the configured strides, at the working size.

Each image is scaled to its working size (aspect ratio kept, area at most
``work_area**2``, never enlarged, sides multiples of 16: :func:`core.data.geometry.working_size`
with ``keep_aspect``), standardised (:func:`core.data.geometry.standardise`: mean 128, std 40
grey levels), then fed to the frozen ImageNet backbone (:mod:`core.models.backbone`, offline).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace

import cv2
import numpy as np
import torch

from core.data.geometry import standardise, working_size
from core.models.flow.config import FlowConfig


def flow_working_size(h: int, w: int, config: FlowConfig) -> tuple[int, int]:
    """(H, W) at which an (h, w) image is processed (multiples of 16, >= 32): one scale for
    both axes so that ``H * W`` is about ``work_area**2`` (never enlarged unless
    ``config.enlarge``)."""
    if not config.enlarge:
        return working_size(h, w, SimpleNamespace(keep_aspect=True, work_area=config.work_area))  # type: ignore[arg-type]
    s = config.work_area / math.sqrt(h * w)
    return (max(32, int(round(h * s / 16)) * 16), max(32, int(round(w * s / 16)) * 16))


def prepare(image: np.ndarray, config: FlowConfig) -> np.ndarray:
    """(h, w, 3) uint8 -> standardised (H, W, 3) uint8 at the working size."""
    h, w = image.shape[:2]
    H, W = flow_working_size(h, w, config)
    if (h, w) != (H, W):
        interp = cv2.INTER_AREA if h * w > H * W else cv2.INTER_LINEAR
        image = cv2.resize(image, (W, H), interpolation=interp)
    return standardise(image)


class Features:
    """The frozen backbone: ``__call__(images)`` same-size prepared (H, W, 3) uint8 images
    -> ``{stride: (B, C_s, H / stride, W / stride) float32}`` on ``device``."""

    def __init__(self, config: FlowConfig, device: str = "cpu") -> None:
        from core.models.backbone import FeatureExtractor, load_backbone

        self.device = device
        self.extractor = FeatureExtractor(load_backbone("efficientnet_lite0"), config.stages)
        self.extractor.to(device)
        self.channels = dict(self.extractor.channels)

    def __call__(self, images: Sequence[np.ndarray]) -> dict[int, torch.Tensor]:
        from core.models.backbone import to_tensor

        return self.extractor(to_tensor(images).to(self.device))
