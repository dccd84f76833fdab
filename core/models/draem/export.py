"""DRAEM's deployment hooks (``MethodSpec.deploy``): its export graph and the exported
runtime's pre- and post-processing (see :mod:`core.deploy.export`).

Graph: (B, C, H, W) float32 in [0, 1] at the working size (DRAEM *compact*: the
standardised image) -> ``anomaly_map`` (B, H, W) float32 in [0, 1], the view-averaged
``softmax(logits)[:, 1]``, and ``score`` (B,) float32, the maximum of the
``score_kernel`` mean filter (zero padding counted).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.config import ModelConfig
from core.types import Prediction


class DraemGraph(nn.Module):
    """DRAEM inference as one graph. ``net`` the fp32 network (Conv+BN folded); ``views``
    1-3 (image, left-right, up-down mirrors; maps mirrored back); ``kernel`` the odd score
    window (``avg_pool2d`` with zero padding counted = ``cv2.boxFilter`` BORDER_CONSTANT)."""

    def __init__(self, net: nn.Module, views: int, kernel: int) -> None:
        super().__init__()
        self.net, self.views, self.kernel = net, int(views), int(kernel)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the views go through the network as one batch (one call per layer, not three)
        flips = ((-1,), (-2,))[: self.views - 1]
        xs = torch.cat([x, *(x.flip(d) for d in flips)]) if flips else x
        probs = torch.softmax(self.net(xs)[1].float(), dim=1)[:, 1]
        parts = probs.reshape(self.views, -1, probs.shape[-2], probs.shape[-1])
        maps = parts[0]
        for i, dims in enumerate(flips, 1):
            maps = maps + parts[i].flip(dims)
        maps = maps / self.views
        k = self.kernel
        filt = F.avg_pool2d(maps[:, None], k, stride=1, padding=k // 2, count_include_pad=True)
        return maps, filt.flatten(1).amax(1)


def export_graph(detector):
    """``(graph, info, (h, w))``: the fp32 inference graph of a :class:`DraemDetector`, the
    manifest entries it needs and an example working size to trace at."""
    from core.data.geometry import STD_MEAN, STD_SCALE
    from core.models.draem.detector import fuse_for_inference

    cfg = detector.model_config
    net = fuse_for_inference(detector.model).float().cpu()
    if hasattr(net, "bf16"):  # the compact network's CPU autocast: export fp32
        net.bf16 = False
    h, w = tuple(cfg.image_size) if not cfg.keep_aspect else (224, 320)
    info = {
        "working_size": {
            "rule": "draem",
            "keep_aspect": cfg.keep_aspect,
            "image_size": list(cfg.image_size),
            "work_area": cfg.work_area,
            "stride": 16,
            "resize": "INTER_AREA when both sides shrink, else INTER_LINEAR",
        },
        "standardisation": {"enabled": bool(cfg.standardise), "mean": STD_MEAN, "std": STD_SCALE},
        "flip_views": cfg.flip_views,
        "score_kernel": cfg.score_kernel,
        "in_channels": cfg.in_channels,
        "variant": cfg.preset,
        "map": "working size, bilinear to the original size, clipped to [0, 1]",
    }
    graph = DraemGraph(net, cfg.flip_views, cfg.score_kernel).eval()
    return graph, info, (h, w)


class Processing:
    """Pre/post-processing of an exported DRAEM (the torch detector's own functions)."""

    def __init__(self, manifest: dict) -> None:
        self.config = ModelConfig.from_dict(manifest["config"])

    def working_size(self, h: int, w: int) -> tuple[int, int]:
        from core.data.geometry import working_size

        return working_size(h, w, self.config)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (h, w, 3) -> (C, H, W) float32 in [0, 1] at the working size."""
        from core.models.draem.detector import network_input

        small = network_input(image, self.working_size(*image.shape[:2]), self.config)
        return np.ascontiguousarray(small.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)

    def postprocess(self, amap: np.ndarray, score: float, image: np.ndarray) -> Prediction:
        """(H, W) graph map -> :class:`Prediction` at the image's size (no reconstruction)."""
        from core.data.geometry import to_original

        shape = image.shape[:2]
        out = amap if amap.shape == shape else np.clip(to_original(amap, shape), 0.0, 1.0)
        return Prediction(np.ascontiguousarray(out, dtype=np.float32), float(score), None)


__all__ = ["DraemGraph", "Processing", "export_graph"]
