"""DRAEM training loop (Qt-free): budgets, LR schedule, AMP, checkpoints, resume, cancel.

Choices and their references:

* Adam, lr 1e-4, one parameter group per sub-network [official] ``train_DRAEM.py``.
* LR schedule: [official] MultiStepLR (x ``lr_gamma`` = 0.2 at 80 % and 90 % of the
  epochs), scaled to the budget: the LR is set every step from the fraction of the
  budget used (steps done / step budget, or elapsed / minutes budget, whichever is
  further).  ([paper] states x0.1 at 400/600 of 700 epochs; anomalib follows
  [official].)
* Loss: ``core.loss.DraemLoss`` (L2 + SSIM + focal, [official]); a model may bring its
  own via a ``make_loss()`` method (e.g. the ``compact`` preset).
* Mixed precision only on CUDA: bf16 autocast where supported (no loss scaling
  needed), else fp16 with ``GradScaler``.  CPU trains in float32, channels-last.
* Data: ``core.dataset.make_loader`` streams batches from background workers; sample
  ``i`` is fully determined by ``(seed, i)``, so resume restarts the stream at
  ``step * batch_size`` and reproduces an uninterrupted run.
* NaN guard: a non-finite loss (or weights) raises :class:`TrainingError` naming the
  step; the file at ``out_path`` then still holds the last good checkpoint (or none
  was written yet).  Raising (not returning ``status="failed"``) makes the failure
  impossible to overlook; the message is meant for the user as is.
* Default thresholds stored at the end: if ``held_out`` good images are given, the
  image threshold is the 99th percentile of their scores (``core.thresholds.
  from_good_scores``) and the pixel threshold the same value (mean <= max, so every
  NG image shows a marked region); otherwise both are 0.5, the discriminative
  network's own class boundary (softmax probability of "anomaly").
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import random
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import ModelConfig, SimulatorConfig, Thresholds, TrainConfig
from core.errors import ConfigError, DatasetError, TrainingError
from core.loss import DraemLoss
from core.model import build_model
from core.types import (
    StopCallback,
    TrainPreview,
    TrainProgress,
    TrainResult,
    ignore_progress,
    never_stop,
)

#: TrainConfig fields that may differ on resume (they do not change the result)
RUNTIME_FIELDS = ("device", "num_workers", "checkpoint_every_s", "preview_every_s")
REPORT_INTERVAL_S = 0.1  # progress at most 10 Hz
_GRAY = torch.tensor([0.299, 0.587, 0.114])  # cv2 RGB2GRAY weights (as DraemDetector)


def resolve_device(name: str = "auto") -> str:
    """``auto`` -> ``cuda`` if a CUDA GPU is usable, else ``cpu``; ``cuda`` must exist."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "device 'cuda' was requested but no CUDA GPU is available "
                f"(torch {torch.__version__}); choose 'cpu' or 'auto'"
            )
        return "cuda"
    raise ConfigError(f"device must be auto|cpu|cuda, got {name!r}")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclasses.dataclass(frozen=True)
class _Budget:
    step_limit: int | None
    time_limit_s: float | None

    @classmethod
    def of(cls, tc: TrainConfig, n_images: int) -> _Budget:
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


def _param_groups(model: nn.Module, lr: float) -> list[dict]:
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


def _default_summary(images: Sequence[np.ndarray]) -> dict:
    sizes = sorted({(int(a.shape[0]), int(a.shape[1])) for a in images})
    return {
        "n_images": len(images),
        "sizes": [list(s) for s in sizes[:20]],
        "channels": 3,
        "source": "images in memory",
    }


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    a = (t.detach().float().clamp(0, 1) * 255).round().byte().cpu().permute(1, 2, 0).numpy()
    return np.ascontiguousarray(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)


def _preview(aug, rec, logits, mask) -> TrainPreview:
    has = (mask.flatten(1).sum(1) > 0).nonzero()
    i = int(has[0, 0]) if len(has) else 0
    pred = torch.softmax(logits[i].detach().float(), dim=0)[1]
    return TrainPreview(
        image=_to_uint8(aug[i]),
        reconstruction=None if rec is None else _to_uint8(rec[i]),
        mask=mask[i, 0].detach().float().cpu().numpy(),
        prediction=pred.cpu().numpy().astype(np.float32),
    )


def _finite_params(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _config_mismatch(payload: dict, current: dict[str, str | None]) -> list[str]:
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


def train(
    images: Sequence[np.ndarray],
    *,
    model_config: ModelConfig,
    sim_config: SimulatorConfig,
    train_config: TrainConfig,
    out_path: str | Path,
    on_progress=ignore_progress,
    should_stop: StopCallback = never_stop,
    resume: bool = False,
    data_summary: dict | None = None,
    held_out: Sequence[np.ndarray] | None = None,
) -> TrainResult:
    """Train DRAEM on good images; write a checkpoint to ``out_path``.

    Args:
        images: good training images, RGB uint8 (h, w, 3) of any size (resized once to
            ``model_config.image_size``, which also overrides ``sim_config.image_size``).
        model_config / sim_config / train_config: the configuration (stored in the
            checkpoint; ``resume`` requires the same, except ``RUNTIME_FIELDS``).
        out_path: checkpoint file, rewritten atomically every ``checkpoint_every_s``,
            on cancel and at the end (the final one has no optimizer state).
        on_progress: receives :class:`TrainProgress` at most 10 Hz (from this thread).
        should_stop: polled before every step; True -> save and return ``cancelled``.
        resume: continue the run saved at ``out_path`` (steps, optimizer, data stream,
            elapsed time for a minutes budget).
        data_summary: stored in the checkpoint metadata (default: counts and sizes).
        held_out: optional good images not trained on, used for the stored thresholds.

    Returns:
        :class:`TrainResult` with status ``finished`` or ``cancelled``.

    Raises:
        TrainingError: NaN/inf loss (the last good checkpoint is kept), or a resume
            that does not match. ConfigError / DatasetError: bad settings or images.
    """
    from core.dataset import make_loader
    from core.simulator import AnomalySimulator

    if len(images) == 0:
        raise DatasetError("no good images to train on")
    out_path = Path(out_path)
    tc, mc = train_config, model_config
    if sim_config.image_size != mc.image_size:  # the model's input size wins
        sim_config = dataclasses.replace(sim_config, image_size=tuple(mc.image_size))
    device = resolve_device(tc.device)
    seed_everything(tc.seed)
    model = build_model(mc).to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(_param_groups(model, tc.lr), lr=tc.lr)
    loss_fn = model.make_loss() if hasattr(model, "make_loss") else DraemLoss()
    amp_dtype = (
        torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    )
    use_amp = tc.amp and device == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    budget = _Budget.of(tc, len(images))
    summary = {**_default_summary(images), **(data_summary or {})}
    configs = {
        "model_config": mc.to_json(),
        "sim_config": sim_config.to_json(),
        "train_config": tc.to_json(),
    }
    step, elapsed0, wait0, created = 0, 0.0, 0.0, _now()

    if resume:
        payload = load_checkpoint(out_path)
        bad = _config_mismatch(payload, configs)
        if bad:
            raise TrainingError(
                f"cannot resume {out_path}: its settings differ ({'; '.join(bad)}); start a new training instead"
            )
        state = payload.get("train_state") or {}
        model.load_state_dict(payload["state_dict"])
        step, elapsed0 = int(payload.get("step", 0)), float(state.get("elapsed_s", 0.0))
        wait0, created = (
            float(state.get("data_wait_s", 0.0)),
            (payload.get("metadata") or {}).get("created", created),
        )
        if state.get("finished"):
            return TrainResult(
                str(out_path),
                "finished",
                step,
                elapsed0,
                {},
                "training had already finished",
                {},
                wait0,
            )
        if payload.get("optimizer") is None:
            raise TrainingError(f"cannot resume {out_path}: it has no optimizer state")
        optimizer.load_state_dict(payload["optimizer"])
        if state.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])

    def save(status: str, thresholds: Thresholds | None = None) -> None:
        final = status == "finished"
        meta = {
            "preset": mc.preset,
            "image_size": list(mc.image_size),
            "created": created,
            "saved": _now(),
            "app_version": _app_version(),
            "data_summary": summary,
            "device": device,
        }
        save_checkpoint(out_path, {
            "method": "draem",
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            **configs,
            "thresholds": (thresholds or Thresholds(0.5, 0.5, "default (softmax 0.5; training unfinished)")).to_json(),
            "metadata": meta,
            "step": step,
            "optimizer": None if final else optimizer.state_dict(),
            "train_state": {"elapsed_s": elapsed, "sample_index": step * tc.batch_size, "data_wait_s": wait_s,
                            "finished": final, "status": status,
                            "scaler": scaler.state_dict() if scaler.is_enabled() else None},
        })  # fmt: skip

    simulator = AnomalySimulator(sim_config, seed=tc.seed)
    stream = make_loader(images, simulator, tc.batch_size, tc.num_workers, tc.seed,
                         start_index=step * tc.batch_size, pin_memory=device == "cuda")  # fmt: skip
    step0, t_start = step, time.perf_counter()
    last_report = last_preview = -math.inf
    last_ckpt, saved_step = t_start, (step if resume else None)
    sums: dict[str, float] = {}
    n_sum, recent = 0, deque(maxlen=50)
    history: dict[str, list[float]] = {k: [] for k in ("step", "l2", "ssim", "focal", "total")}
    elapsed, wait_s, status = elapsed0, wait0, "finished"
    model.train()
    try:
        while True:
            now = time.perf_counter()
            elapsed = elapsed0 + now - t_start
            if budget.fraction(step, elapsed) >= 1.0:
                break
            if should_stop():
                status = "cancelled"
                break
            lr = lr_at(tc, budget.fraction(step, elapsed))
            for g in optimizer.param_groups:
                g["lr"] = lr
            batch = next(stream)
            wait_s = wait0 + stream.wait_s
            good, aug, mask = (
                batch[k].to(device, non_blocking=True) for k in ("image", "augmented", "mask")
            )
            if mc.in_channels == 1:
                w = _GRAY.to(device).view(1, 3, 1, 1)
                good, aug = (t.mul(w).sum(1, keepdim=True) for t in (good, aug))
            aug = aug.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=use_amp):
                rec, logits = model(aug)
            parts = loss_fn(rec, good, logits, mask)
            values = {k: v.detach().item() for k, v in parts.items()}
            if not all(math.isfinite(v) for v in values.values()):
                raise TrainingError(_nan_message(step + 1, out_path, saved_step))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            n_sum += 1
            recent.append(values)
            now = time.perf_counter()
            elapsed = elapsed0 + now - t_start
            if now - last_ckpt >= tc.checkpoint_every_s:
                if not _finite_params(model):
                    raise TrainingError(_nan_message(step, out_path, saved_step, "weights"))
                save("running")
                saved_step, last_ckpt = step, time.perf_counter()
            done = budget.fraction(step, elapsed) >= 1.0
            if now - last_report >= REPORT_INTERVAL_S or done:
                prev = None
                if now - last_preview >= tc.preview_every_s:
                    prev, last_preview = _preview(aug, rec, logits, mask), now
                means = {k: v / n_sum for k, v in sums.items()}
                history["step"].append(float(step))
                for k in ("l2", "ssim", "focal", "total"):
                    history[k].append(means.get(k, 0.0))
                rate = (step - step0) / max(now - t_start, 1e-9)
                on_progress(TrainProgress(
                    step=step, total_steps=budget.step_limit, epoch=step * tc.batch_size / len(images),
                    elapsed_s=elapsed, eta_s=budget.eta(step, elapsed, rate), lr=lr, losses=means,
                    samples_per_s=rate * tc.batch_size, preview=prev, data_wait_s=wait_s,
                    message=f"step {step}" + (f"/{budget.step_limit}" if budget.step_limit else ""),
                ))  # fmt: skip
                sums, n_sum, last_report = {}, 0, now
    finally:
        stream.close()
    if not _finite_params(model):
        raise TrainingError(_nan_message(step, out_path, saved_step, "weights"))
    final = {k: float(np.mean([r[k] for r in recent])) for k in recent[0]} if recent else {}
    if status == "cancelled":
        save("cancelled")
        msg = f"cancelled at step {step}; the checkpoint {out_path} can be resumed"
        return TrainResult(str(out_path), status, step, elapsed, final, msg, history, wait_s)
    thresholds = _thresholds(model, mc, device, held_out)
    save("finished", thresholds)
    msg = f"finished after {step} steps; thresholds: {thresholds.source}"
    return TrainResult(str(out_path), status, step, elapsed, final, msg, history, wait_s)


def _thresholds(model: nn.Module, mc: ModelConfig, device: str, held_out) -> Thresholds:
    if not held_out:
        return Thresholds(0.5, 0.5, "default: softmax 0.5 (no held-out good images)")
    from core.draem import DraemDetector
    from core.thresholds import from_good_scores

    det = DraemDetector(model, mc, device=device)
    scores = [p.score for p in det.predict(list(held_out))]
    s = from_good_scores(scores, percentile=99.0)
    model.train()
    return Thresholds(s.value, s.value, f"{s.rule}: {s.detail} (pixel threshold = image threshold)")


def _nan_message(step: int, out_path: Path, saved_step: int | None, what: str = "loss") -> str:
    kept = (
        f"the last good checkpoint (step {saved_step}) is kept at {out_path}"
        if saved_step is not None
        else "no checkpoint had been written yet"
    )
    return f"{what} became NaN/inf at step {step}; {kept}. Try a lower learning rate."


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _app_version() -> str:
    with contextlib.suppress(Exception):
        import core

        return str(core.__version__)
    return "unknown"


def load_training_state(path: str | Path) -> dict[str, Any]:
    """The ``train_state`` of a checkpoint (step, elapsed_s, finished, ...) for display."""
    payload = load_checkpoint(path)
    return {"step": int(payload.get("step", 0)), **(payload.get("train_state") or {})}


__all__ = [
    "RUNTIME_FIELDS",
    "load_training_state",
    "lr_at",
    "resolve_device",
    "seed_everything",
    "train",
]
