"""The trained DRAEM detector: numpy images in, typed numpy predictions out.

Inference ([paper] Sec. 3.4, [official] ``test_DRAEM.py``):

1. each RGB uint8 image (any size) is resized to its working size
   (``core.data.geometry.working_size``: the model's ``image_size``, or with
   ``ModelConfig.keep_aspect`` the aspect ratio kept, at most ``work_area``^2 pixels;
   a batch holds consecutive images of one working size) with
   the same rule as the training simulator (``AnomalySimulator.prepare``: INTER_AREA
   when shrinking both axes, else INTER_LINEAR) and scaled to [0, 1];
2. batched forward pass in eval mode; the anomaly map is ``softmax(logits)[:, 1]``;
   with ``ModelConfig.flip_views`` > 1 (the compact preset) it is averaged with the
   maps of the left-right (and up-down) mirrored image, mirrored back;
3. image score = max of the 21x21 (``ModelConfig.score_kernel``) mean-filtered map, at the *model*
   resolution exactly as [official] (``avg_pool2d(21, stride 1, padding 10)``, zero
   padding counted), so scores do not depend on the original image size;
4. the map (cv2 INTER_LINEAR, clipped to [0, 1]) and the reconstruction (uint8 RGB)
   are resized back to the original size.

For speed the forward pass uses a private copy of the network with every
Conv2d+BatchNorm2d pair folded into one convolution and channels-last memory
(mathematically the same eval-mode function; measured in benchmarks/bench_paper.py).
"""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from core.config import ModelConfig, Thresholds
from core.data.geometry import standardise, working_size
from core.errors import CheckpointError, ConfigError
from core.io.checkpoint import load_checkpoint
from core.io.files import utc_timestamp
from core.models.batching import BatchedDetector
from core.models.draem.network import build_model
from core.models.draem.train_parts import resolve_device
from core.types import (
    Prediction,
)

SCORE_KERNEL = 21  # [paper]/[official] mean-filter size for the image score


def anomaly_score(anomaly_map: np.ndarray, kernel: int = SCORE_KERNEL) -> float:
    """Image score of one (H, W) float map: max of its ``kernel``x``kernel`` mean filter.

    Zero padding with the full window as divisor, identical to [official]
    ``avg_pool2d(kernel, stride=1, padding=kernel // 2)`` (count_include_pad).
    """
    a = np.asarray(anomaly_map, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"anomaly_map must be (H, W), got shape {a.shape}")
    k = int(kernel)
    if k < 1 or k % 2 == 0:
        raise ValueError(f"kernel must be a positive odd number, got {kernel}")
    filt = cv2.boxFilter(a, -1, (k, k), normalize=True, borderType=cv2.BORDER_CONSTANT)
    return float(filt.max())


def resize_like_simulator(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (h, w, C) to ``size`` (H, W) with the training simulator's rule."""
    from core.data.geometry import resize_to

    return resize_to(image, size, both_sides=True)


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """Eval-mode copy of ``model`` with Conv2d+BatchNorm2d pairs (inside nn.Sequential) folded."""
    fused = copy.deepcopy(model).eval()
    for mod in fused.modules():
        if isinstance(mod, nn.Sequential):
            for i in range(len(mod) - 1):
                if isinstance(mod[i], nn.Conv2d) and isinstance(mod[i + 1], nn.BatchNorm2d):
                    mod[i] = fuse_conv_bn_eval(mod[i], mod[i + 1])
                    mod[i + 1] = nn.Identity()
    return fused


def network_input(image: np.ndarray, size: tuple[int, int], config: ModelConfig) -> np.ndarray:
    """An RGB uint8 (h, w, 3) image as the network sees it: (H, W, C) uint8 at the working
    ``size`` (the simulator's resize rule), standardised when the preset is, grey (C = 1)
    for single-channel networks, else RGB."""
    small = resize_like_simulator(image, size)
    if config.standardise:  # as the training images were
        small = standardise(small)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)[..., None] if config.in_channels == 1 else small


class DraemDetector(BatchedDetector):
    """A trained DRAEM network with its thresholds (implements ``core.types.Detector``).

    Args:
        model: the network (``forward(x) -> (reconstruction or None, logits (B, 2, H, W))``).
        model_config: its configuration (``image_size`` is the inference size).
        thresholds: image/pixel decision thresholds (same scale as the predictions).
        metadata: checkpoint metadata (preset, image_size, created, data_summary, ...).
        device: ``auto`` (CUDA if present), ``cpu`` or ``cuda``.
        extra: other checkpoint fields kept when saving again (sim_config, train_config, step).
    """

    method = "draem"
    work_label = "prediction"

    def __init__(
        self,
        model: nn.Module,
        model_config: ModelConfig,
        thresholds: Thresholds | None = None,
        metadata: dict | None = None,
        device: str = "auto",
        *,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.model_config = model_config
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self._metadata = dict(metadata or {})
        self._metadata.setdefault("preset", model_config.preset)
        self._metadata.setdefault("image_size", list(model_config.image_size))
        self._extra = dict(extra or {})
        self.device = resolve_device(device)
        self._fast: nn.Module | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, payload: dict, device: str = "auto") -> DraemDetector:
        """Build from a payload returned by :func:`core.io.checkpoint.load_checkpoint`."""
        if payload.get("method") != "draem":
            raise CheckpointError(f"not a DRAEM checkpoint (method {payload.get('method')!r})")
        try:
            cfg = ModelConfig.from_json(payload["model_config"])
            thr = (
                Thresholds.from_json(payload["thresholds"])
                if payload.get("thresholds")
                else Thresholds()
            )
        except (KeyError, TypeError, ValueError, ConfigError) as e:
            raise CheckpointError(f"damaged DRAEM checkpoint: bad configuration ({e})") from e
        model = build_model(cfg)
        try:
            model.load_state_dict(payload["state_dict"], strict=True)
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(
                f"the weights do not match the {cfg.preset!r} network: {str(e)[:300]}"
            ) from e
        extra = {k: payload.get(k) for k in ("sim_config", "train_config", "step")}
        return cls(model, cfg, thr, payload.get("metadata") or {}, device, extra=extra)

    @classmethod
    def load(cls, path: str, device: str = "auto") -> DraemDetector:
        """Load a DRAEM checkpoint file."""
        return cls.from_checkpoint(load_checkpoint(path), device)

    # ------------------------------------------------------------------ Detector API
    @property
    def config(self) -> ModelConfig:
        """The network's configuration (the registry's config for DRAEM)."""
        return self.model_config

    def payload(self) -> dict[str, Any]:
        """The checkpoint dict (see docs/ARCHITECTURE.md) for :func:`save_checkpoint`."""
        meta = dict(self._metadata)
        meta.setdefault("created", utc_timestamp())
        return {
            "method": self.method,
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "model_config": self.model_config.to_json(),
            "sim_config": self._extra.get("sim_config"),
            "train_config": self._extra.get("train_config"),
            "thresholds": self.thresholds.to_json(),
            "metadata": meta,
            "step": int(self._extra.get("step") or 0),
            "optimizer": None,
        }

    def _network(self) -> nn.Module:
        if self._fast is None:
            fast = fuse_for_inference(self.model).to(self.device)
            self._fast = fast.to(memory_format=torch.channels_last)
        return self._fast

    def working_size(self, h: int, w: int) -> tuple[int, int]:
        """(H, W) at which the network sees an (h, w) image (:func:`working_size`)."""
        return working_size(h, w, self.model_config)

    def predict_batch(self, images: list[np.ndarray], size: tuple[int, int]) -> list[Prediction]:
        """Images of one working ``size`` -> predictions: ``anomaly_map`` (h, w) float32 in
        [0, 1] at each image's size, ``score`` (float in [0, 1]) and ``reconstruction``
        (h, w, 3) uint8 (None if the network has none)."""
        arr = [network_input(img, size, self.model_config) for img in images]
        x = torch.from_numpy(np.stack(arr)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            net = self._network()
            rec, logits = net(x)
            probs = torch.softmax(logits.float(), dim=1)[:, 1]  # (B, H, W)
            views = self.model_config.flip_views
            for dims in ((-1,), (-2,))[: views - 1]:  # mirror W, then H; map mirrored back
                probs += torch.softmax(net(x.flip(dims))[1].float(), dim=1)[:, 1].flip(dims)
            maps = (probs / views).cpu().numpy()
            rec_np = None
            if rec is not None:
                rec_u8 = (rec.float().clamp(0, 1) * 255.0).round().byte()
                rec_np = rec_u8.permute(0, 2, 3, 1).cpu().numpy()
        preds = []
        for j, img in enumerate(images):
            h, w = img.shape[:2]
            amap = maps[j]
            # [paper] score at model resolution; the cv2 box filter equals [official]'s
            # avg_pool2d and is much faster than torch's on the CPU
            score = anomaly_score(amap, self.model_config.score_kernel)
            if amap.shape != (h, w):
                amap = np.clip(cv2.resize(amap, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
            recon = None
            if rec_np is not None:
                r = rec_np[j]
                if r.shape[2] == 1:
                    r = np.repeat(r, 3, axis=2)
                if r.shape[:2] != (h, w):
                    r = cv2.resize(r, (w, h), interpolation=cv2.INTER_LINEAR)
                recon = np.ascontiguousarray(r)
            amap = np.ascontiguousarray(amap, dtype=np.float32)
            preds.append(Prediction(amap, score, recon))
        return preds


__all__ = [
    "SCORE_KERNEL",
    "DraemDetector",
    "anomaly_score",
    "fuse_for_inference",
    "network_input",
    "resize_like_simulator",
]
