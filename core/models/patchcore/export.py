"""PatchCore's deployment hooks (``MethodSpec.deploy``): its export graph and the exported
runtime's pre- and post-processing (see :mod:`core.deploy.export`).

Graph: (B, 3, H, W) float32 in [0, 1] at the working size -> ``anomaly_map``
(B, H/s, W/s) float32 patch distances on the finest stage's grid (s its stride; the
runtime smooths and resizes them like the torch detector) and ``score`` (B,) float32,
the reweighted largest patch distance. The nearest-neighbour search is a matrix product
and a top-1 with the memory bank inside the graph; each bank item's ``n_neighbors``
nearest bank items (for the score reweighting) are precomputed into a table.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.errors import ExportError
from core.types import Prediction


class PatchCoreGraph(nn.Module):
    """``bank`` (M, D) float32 memory bank; ``support`` (M, b) int64: row m holds m and its
    b - 1 nearest other bank items ([paper] Eq. 7's N_b(m*)); b < 2 scores the plain
    maximum distance."""

    def __init__(self, extractor: nn.Module, bank: torch.Tensor, support: torch.Tensor, cfg):
        super().__init__()
        self.extractor = extractor
        self.patch_size, self.embed_dim = cfg.patch_size, cfg.embed_dim
        self.register_buffer("bank", bank.float().contiguous())
        self.register_buffer("bank_t", bank.float().T.contiguous())
        self.register_buffer("norms", (bank.float() ** 2).sum(1))
        self.register_buffer("support", support.long())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from core.models.backbone import patch_features

        e = patch_features(self.extractor(x), self.patch_size, self.embed_dim)  # (B, h, w, D)
        b, h, w, d = e.shape
        q = e.reshape(b, h * w, d)
        d2 = self.norms - 2.0 * torch.matmul(q, self.bank_t)  # (B, N, M) minus |q|^2
        best, idx = torch.topk(d2, 1, dim=2, largest=False)
        dist = (best[..., 0] + (q * q).sum(2)).clamp(min=0).sqrt()  # (B, N)
        top, j = dist.max(1)  # (B,), the most anomalous patch
        nearest = torch.gather(idx[..., 0], 1, j[:, None])[:, 0]  # (B,)
        if self.support.shape[1] < 2:
            return dist.reshape(b, h, w), top
        qj = torch.gather(q, 1, j[:, None, None].expand(b, 1, d))  # (B, 1, D)
        neigh = self.bank[self.support[nearest]]  # (B, b, D)
        dn = ((neigh - qj) ** 2).sum(2).clamp(min=0).sqrt()  # (B, b)
        score = (1.0 - torch.softmax(dn, dim=1)[:, 0]) * top
        return dist.reshape(b, h, w), score


def bank_support(bank: torch.Tensor, b: int) -> torch.Tensor:
    """(M, D) bank -> (M, b') int64: each item then its b' - 1 nearest other items."""
    m = bank.shape[0]
    b = min(int(b), m)
    norms = (bank * bank).sum(1)
    rows = []
    for start in range(0, m, 1024):
        blk = bank[start : start + 1024]
        d2 = torch.addmm(norms, blk, bank.T, alpha=-2.0)
        ids = torch.arange(start, start + blk.shape[0])
        d2[torch.arange(blk.shape[0]), ids] = -float("inf")  # the item itself first
        rows.append(d2.topk(b, dim=1, largest=False).indices)
    return torch.cat(rows)


def export_graph(detector):
    """``(graph, info, (h, w))`` of an exact-search :class:`PatchCoreDetector`;
    :class:`ExportError` for an inverted-file (approximate) search."""
    cfg = detector.config
    if detector.index.n_lists:
        raise ExportError(
            "this PatchCore model searches its memory bank with an inverted-file index "
            "(approximate); the exported graph searches exactly and would score differently. "
            "Refit with search='exact' to export it"
        )
    bank = detector.index.bank
    support = bank_support(bank, cfg.n_neighbors)
    info = {
        "working_size": {
            "rule": "patchcore",
            "resolution": cfg.resolution,
            "stride": max(cfg.stages),
            "resize": "INTER_AREA when the area shrinks, else INTER_LINEAR",
        },
        "standardisation": {"enabled": False},
        "flip_views": 1,
        "score_kernel": None,
        "in_channels": 3,
        "variant": cfg.backbone,
        "feature_stride": min(cfg.stages),
        "sigma": cfg.sigma,
        "bank_size": int(bank.shape[0]),
        "map": "patch grid, bilinear to the working size, Gaussian sigma, bilinear to the original",
    }
    s = max(cfg.stages)
    graph = PatchCoreGraph(detector.embedder.extractor, bank, support, cfg).eval()
    return graph, info, (4 * s, 6 * s)


class Processing:
    """Pre/post-processing of an exported PatchCore (the torch detector's own functions)."""

    def __init__(self, manifest: dict) -> None:
        from core.models.patchcore.detector import PatchCoreConfig

        self.config = PatchCoreConfig.from_dict(manifest["config"])

    def working_size(self, h: int, w: int) -> tuple[int, int]:
        from core.models.patchcore.detector import working_size

        return working_size(h, w, self.config)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (h, w, 3) -> (3, H, W) float32 in [0, 1] at the working size."""
        from core.models.patchcore.detector import PatchEmbedder

        small = PatchEmbedder.resize(self, image)  # uses only self.config
        return np.ascontiguousarray(small.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)

    def postprocess(self, amap: np.ndarray, score: float, image: np.ndarray) -> Prediction:
        """(h, w) patch distances -> smoothed :class:`Prediction` at the image's size."""
        from core.models.patchcore.detector import _smooth_map

        shape = image.shape[:2]
        out = _smooth_map(amap, self.working_size(*shape), shape, self.config.sigma)
        return Prediction(np.ascontiguousarray(out, dtype=np.float32), float(score), None)


__all__ = ["PatchCoreGraph", "Processing", "bank_support", "export_graph"]
