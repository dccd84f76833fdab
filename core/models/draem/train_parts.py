"""Training helpers (no Qt): device choice, seeding, budget and LR schedule, previews.

Used by :mod:`core.models.draem.train` (which re-exports ``resolve_device``, ``seed_everything``
and ``lr_at``); split out only to keep modules short.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random

import numpy as np
import torch
from torch import nn

from core.config import TrainConfig
from core.device import resolve_device  # noqa: F401  (re-exported)
from core.errors import TrainingError
from core.types import TrainPreview

#: TrainConfig fields that may differ on resume (they do not change the result)
RUNTIME_FIELDS = ("device", "num_workers", "checkpoint_every_s", "preview_every_s")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclasses.dataclass(frozen=True)
class Budget:
    step_limit: int | None
    time_limit_s: float | None

    @classmethod
    def of(cls, tc: TrainConfig, n_images: int) -> Budget:
        limits = [s for s in (tc.steps, _epoch_steps(tc, n_images)) if s is not None]
        return cls(min(limits) if limits else None, None if tc.minutes is None else tc.minutes * 60)

    def fraction(self, step: int, elapsed: float) -> float:
        f = 0.0
        if self.step_limit:
            f = max(f, step / self.step_limit)
        if self.time_limit_s:
            f = max(f, elapsed / self.time_limit_s)
        return min(f, 1.0)

    def eta(self, step: int, elapsed: float, steps_per_s: float) -> float | None:
        etas = []
        if self.step_limit and steps_per_s > 0:
            etas.append(max(0, self.step_limit - step) / steps_per_s)
        if self.time_limit_s:
            etas.append(max(0.0, self.time_limit_s - elapsed))
        return min(etas) if etas else None


def _epoch_steps(tc: TrainConfig, n_images: int) -> int | None:
    return None if tc.epochs is None else math.ceil(tc.epochs * n_images / tc.batch_size)


def lr_at(tc: TrainConfig, fraction: float) -> float:
    """Learning rate after ``fraction`` of the budget ([official] MultiStepLR, scaled)."""
    return tc.lr * tc.lr_gamma ** sum(fraction >= m for m in tc.lr_milestones)


def param_groups(model: nn.Module, lr: float) -> list[dict]:
    """[official]: one Adam group per sub-network; anything else trainable in a last group."""
    groups, seen = [], set()
    for name in ("reconstructive", "discriminative"):
        sub = getattr(model, name, None)
        if isinstance(sub, nn.Module):
            ps = [p for p in sub.parameters() if p.requires_grad]
            seen.update(id(p) for p in ps)
            groups.append(ps)
    groups.append([p for p in model.parameters() if p.requires_grad and id(p) not in seen])
    groups = [{"params": g, "lr": lr} for g in groups if g]
    if not groups:
        raise TrainingError("the model has no trainable parameters")
    return groups


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    a = (t.detach().float().clamp(0, 1) * 255).round().byte().cpu().permute(1, 2, 0).numpy()
    return np.ascontiguousarray(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)


def make_preview(aug, rec, logits, mask) -> TrainPreview:
    has = (mask.flatten(1).sum(1) > 0).nonzero()
    i = int(has[0, 0]) if len(has) else 0
    pred = torch.softmax(logits[i].detach().float(), dim=0)[1]
    return TrainPreview(
        image=_to_uint8(aug[i]),
        reconstruction=None if rec is None else _to_uint8(rec[i]),
        mask=mask[i, 0].detach().float().cpu().numpy(),
        prediction=pred.cpu().numpy().astype(np.float32),
    )


def config_mismatch(payload: dict, current: dict[str, str | None]) -> list[str]:
    bad = []
    for key, now in current.items():
        old = payload.get(key)
        a = json.loads(old) if old else None
        b = json.loads(now) if now else None
        if key == "train_config" and a and b:
            for f in RUNTIME_FIELDS:
                a.pop(f, None)
                b.pop(f, None)
        if a != b:
            diff = sorted(
                k for k in set(a or {}) | set(b or {}) if (a or {}).get(k) != (b or {}).get(k)
            )
            bad.append(f"{key}: {', '.join(diff) or 'missing'}")
    return bad
