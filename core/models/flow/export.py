"""The flow detector's deployment hooks (``MethodSpec.deploy``): its export graph and the
exported runtime's pre- and post-processing (see :mod:`core.deploy.export`).

Graph: (B, 3, H, W) float32 in [0, 1], the standardised image at its working size ->
``anomaly_map`` (B, H, W) float32, the per-position negative log-likelihood of each scale
(per dimension) upsampled bilinearly to the working size, standardised with the scale's
good-image statistics and averaged over the scales
(:func:`core.models.flow.detector.nll_map`, not yet smoothed), and ``score`` (B,) float32,
that map's maximum. The runtime smooths the map with ``sigma``, resizes it to the image
and scores it with the torch detector's own functions (``score`` rule ``max`` / ``topk``),
so its maps and scores are the torch detector's. The manifest's ``working_size`` spells
the config's sizing rule out for runtimes outside this project (``work_area``,
``enlarge``, sides multiples of ``stride``); ``feature_strides`` names the backbone stages
and ``backbone`` the network (its weights are in the graph; a local file's SHA-256 is in
the metadata).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.types import Prediction


class FlowGraph(nn.Module):
    """Frozen backbone -> per-scale flows -> the fused NLL map at the input's size."""

    def __init__(self, extractor: nn.Module, model: nn.Module) -> None:
        super().__init__()
        self.extractor, self.model = extractor, model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from core.models.flow.detector import nll_map

        maps = nll_map(self.model(self.extractor(x)), x.shape[-2:], self.model.map_norm())
        return maps, maps.flatten(1).amax(1)


def export_graph(detector):
    """``(graph, info, (h, w))`` of a :class:`FlowDetector` (fp32, on the CPU)."""
    from core.data.geometry import STD_MEAN, STD_SCALE
    from core.models.flow.config import flow_variant
    from core.models.flow.features import WORK_MULTIPLE

    cfg = detector.config
    extractor = detector.features.extractor
    graph = FlowGraph(extractor, detector.model).eval().float().cpu()
    info = {
        "working_size": {  # core.models.flow.features.flow_working_size, from the config
            "rule": "flow",  # aspect kept as DRAEM compact; resize by area
            "keep_aspect": True,
            "image_size": [cfg.work_area, cfg.work_area],
            "work_area": cfg.work_area,
            "enlarge": cfg.enlarge,
            "stride": WORK_MULTIPLE,
            "resize": "INTER_AREA when the area shrinks, else INTER_LINEAR",
        },
        "feature_strides": list(cfg.stages),
        "standardisation": {"enabled": True, "mean": STD_MEAN, "std": STD_SCALE},
        "flip_views": 1,
        "score_kernel": None,
        "in_channels": 3,
        "variant": flow_variant(cfg),
        "backbone": cfg.backbone,
        "sigma": cfg.sigma,
        "score_rule": {"rule": cfg.score, "topk_fraction": cfg.topk_fraction},
        "map": "working size, Gaussian sigma, bilinear to the original; score from that map",
    }
    return graph, info, (224, 320)


class Processing:
    """Pre/post-processing of an exported flow detector (the torch detector's functions)."""

    def __init__(self, manifest: dict) -> None:
        from core.models.flow.config import FlowConfig

        self.config = FlowConfig.from_dict(manifest["config"])

    def working_size(self, h: int, w: int) -> tuple[int, int]:
        from core.models.flow.features import flow_working_size

        return flow_working_size(h, w, self.config)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (h, w, 3) -> standardised (3, H, W) float32 in [0, 1] at the working size."""
        from core.models.flow.features import prepare

        small = prepare(image, self.config)
        return np.ascontiguousarray(small.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)

    def postprocess(self, amap: np.ndarray, score: float, image: np.ndarray) -> Prediction:
        """(H, W) raw NLL map -> :class:`Prediction` at the image's size, scored from it."""
        from core.data.geometry import to_original
        from core.models.flow.detector import image_score, smooth

        out = to_original(smooth(np.ascontiguousarray(amap), self.config.sigma), image.shape[:2])
        out = np.ascontiguousarray(out, dtype=np.float32)
        return Prediction(out, image_score(out, self.config), None)


__all__ = ["FlowGraph", "Processing", "export_graph"]
