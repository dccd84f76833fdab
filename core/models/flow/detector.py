"""The trained flow as a :class:`core.types.Detector`.

Anomaly map: each scale's per-position NLL (per dimension, :class:`FlowModel`) upsampled
(bilinear) to the working size, standardised with that scale's good-image statistics
(:meth:`FlowModel.map_norm`, set at calibration), averaged over the scales,
Gaussian-smoothed with ``sigma`` and resized to the original image size; unbounded (0 is a
typical good pixel, 1 a good image's 99th percentile), higher is more anomalous.
Image score: the map's maximum (``score="max"``) or the mean of its top
``topk_fraction`` pixels (``score="topk"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.config import Thresholds
from core.data.geometry import to_original
from core.errors import CheckpointError
from core.models.batching import BatchedDetector
from core.models.flow.config import FlowConfig
from core.models.flow.features import Features, flow_working_size, prepare
from core.models.flow.network import FlowModel
from core.types import (
    Prediction,
)

METHOD = "flow"


def scale_maps(
    out: dict[int, tuple[torch.Tensor, torch.Tensor]], size: tuple[int, int]
) -> dict[int, torch.Tensor]:
    """Per-scale NLL maps ``{stride: (B, h, w)}`` -> ``{stride: (B, H, W)}`` upsampled
    (bilinear) to ``size``."""
    return {
        s: F.interpolate(nll[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        for s, (_z, nll) in out.items()
    }


def nll_map(
    out: dict[int, tuple[torch.Tensor, torch.Tensor]],
    size: tuple[int, int],
    norm: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Per-scale NLL maps ``{stride: (B, h, w)}`` -> (B, H, W) float32 at ``size``: the
    mean over scales of ``(nll - loc) / scale`` with ``norm = {stride: (loc, scale)}``
    (:meth:`FlowModel.map_norm`), or of the raw NLL when ``norm`` is None."""
    maps = scale_maps(out, size)
    if norm is not None:
        maps = {s: (m - norm[s][0]) / norm[s][1] for s, m in maps.items()}
    return torch.stack(list(maps.values())).mean(0)


def smooth(amap: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (H, W) float32 map (kernel 2 * round(4 sigma) + 1, [anomalib])."""
    if sigma <= 0:
        return amap
    k = 2 * int(4 * sigma + 0.5) + 1
    return cv2.GaussianBlur(amap, (k, k), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)


def image_score(amap: np.ndarray, config: FlowConfig) -> float:
    """The image score of an (H, W) map (see the module docstring)."""
    if config.score == "max":
        return float(amap.max())
    k = max(1, int(round(config.topk_fraction * amap.size)))
    return float(np.partition(amap.ravel(), amap.size - k)[-k:].mean())


class FlowDetector(BatchedDetector):
    """A trained normalizing-flow detector (implements :class:`core.types.Detector`).

    ``predict`` returns per RGB uint8 (H, W, 3) image a :class:`Prediction` with
    ``anomaly_map`` (H, W) float32 (NLL per dimension, unbounded) and ``score``.
    """

    method = METHOD
    work_label = "flow inference"

    def __init__(
        self,
        config: FlowConfig,
        model: FlowModel,
        thresholds: Thresholds,
        metadata: dict | None = None,
        device: str = "cpu",
        features: Features | None = None,
    ) -> None:
        self.config = config
        self.model = model.eval().to(device)
        self.thresholds = thresholds
        self.device = device
        self._metadata = dict(metadata or {})
        self._features = features

    @property
    def features(self) -> Features:
        if self._features is None:
            self._features = Features(self.config, self.device)
        return self._features

    @torch.no_grad()
    def maps(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Same-size prepared (H, W, 3) uint8 images -> (B, H, W) float32 raw NLL maps."""
        self.model.eval()
        out = self.model(self.features(prepared))
        return nll_map(out, prepared[0].shape[:2], self.model.map_norm()).float().cpu().numpy()

    def working_size(self, h: int, w: int) -> tuple[int, int]:
        """(H, W) at which the flow sees an (h, w) image (:func:`flow_working_size`)."""
        return flow_working_size(h, w, self.config)

    def predict_batch(self, images: list[np.ndarray], size: tuple[int, int]) -> list[Prediction]:
        """Images of one working ``size`` -> smoothed NLL maps at each image's size and scores."""
        raw = self.maps([prepare(img, self.config) for img in images])
        preds = []
        for img, m in zip(images, raw, strict=True):
            amap = to_original(smooth(m, self.config.sigma), img.shape[:2])
            preds.append(Prediction(anomaly_map=amap, score=image_score(amap, self.config)))
        return preds

    def payload(self, step: int | None = None, optimizer: dict | None = None) -> dict:
        """The checkpoint dict (docs/ARCHITECTURE.md); flow weights and feature statistics
        in ``state_dict`` (the frozen backbone is not stored).  ``step``: the training
        step (default: the steps the metadata records)."""
        if step is None:
            step = self._metadata.get("steps", 0)
        return {
            "method": self.method,
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "model_config": self.config.to_dict(),
            "sim_config": None,
            "train_config": None,
            "thresholds": self.thresholds.to_json(),
            "metadata": self._metadata,
            "step": int(step),
            "optimizer": optimizer,
        }

    @classmethod
    def from_checkpoint(cls, payload: dict, device: str = "auto") -> FlowDetector:
        """Rebuild from a payload of :func:`core.io.checkpoint.load_checkpoint`; raises
        :class:`CheckpointError` for another method's or a damaged payload and
        :class:`core.models.backbone.BackboneWeightsError` (a ``CheckpointError``) when the
        backbone weights file is missing, is not the file the model was trained with
        (SHA-256 in the metadata) or a shipped backbone's package is not installed."""
        from core.device import resolve_device

        if not isinstance(payload, dict) or payload.get("method") != METHOD:
            got = payload.get("method") if isinstance(payload, dict) else type(payload).__name__
            raise CheckpointError(f"not a flow checkpoint (method {got!r})")
        try:
            raw = payload["model_config"]
            config = (
                FlowConfig.from_json(raw) if isinstance(raw, str) else FlowConfig.from_dict(raw)
            )
            thresholds = Thresholds.from_json(payload["thresholds"])
            state = payload["state_dict"]
        except Exception as e:
            raise CheckpointError(f"not a valid flow checkpoint: {e}") from e
        from core.models.backbone import check_recorded

        metadata = payload.get("metadata") or {}
        check_recorded(config.backbone_weights, metadata)  # features of other weights: refused
        dev = resolve_device(device)
        features = Features(config, dev)
        model = FlowModel(config, features.channels)
        try:
            model.load_weights(state)
        except Exception as e:
            raise CheckpointError(f"flow checkpoint does not fit its configuration: {e}") from e
        return cls(config, model, thresholds, metadata, dev, features)

    @classmethod
    def load(cls, path: str, device: str = "auto") -> FlowDetector:
        from core.io.checkpoint import load_checkpoint

        return cls.from_checkpoint(load_checkpoint(path), device)
