"""DRAEM training loop (Qt-free): budgets, LR schedule, AMP, checkpoints, resume, cancel.

Choices and their references:

* Adam, lr 1e-4, one parameter group per sub-network [official] ``train_DRAEM.py``.
* LR schedule: [official] MultiStepLR (x ``lr_gamma`` = 0.2 at 80 % and 90 % of the
  epochs), scaled to the budget: the LR is set every step from the fraction of the
  budget used (steps done / step budget, or elapsed / minutes budget, whichever is
  further).  [paper] instead states x0.1 after epochs 400 and 600 of 700; set
  ``TrainConfig(lr_milestones=(4/7, 6/7), lr_gamma=0.1)`` to follow it.
* Network, loss, simulator and LR schedule come from the variant's recipe
  (:mod:`core.models.draem.recipe`): ``paper`` uses ``core.models.draem.loss.DraemLoss`` (L2 + SSIM + focal,
  [official]) and the MultiStepLR above; ``compact`` its own loss and schedule.
* Device and precision from ``core.device.policy``: on CUDA bf16 autocast where
  supported (no loss scaling needed), else fp16 with ``GradScaler``; CPU trains in
  float32; channels-last on both; ``cudnn.benchmark`` scoped to the run.
* Under ``torchrun`` (``core.distributed``): DistributedDataParallel, rank ``r``'s
  simulator and stream seeded ``seed + r``, the step budget counts global optimizer
  steps, rank 0 alone reports progress and writes checkpoints.
* Data: ``core.simulate.dataset.make_loader`` streams batches from background workers; sample
  ``i`` is fully determined by ``(seed, i)``, so resume restarts the stream at
  ``step * batch_size`` and reproduces an uninterrupted run.
* NaN guard: a non-finite loss (or weights) raises :class:`TrainingError` naming the
  step; the file at ``out_path`` then still holds the last good checkpoint (or none
  was written yet).  Raising (not returning ``status="failed"``) makes the failure
  impossible to overlook; the message is meant for the user as is.
* Default thresholds stored at the end: if ``held_out`` good images are given, the
  image threshold is calibrated on their scores (``core.evaluate.thresholds.
  calibrate_from_good``: highest score + 2 robust spreads, computed by
  ``DraemDetector.predict`` as at inspection) and the pixel threshold the same value (mean <= max, so every
  NG image shows a marked region); otherwise both are 0.5, the discriminative
  network's own class boundary (softmax probability of "anomaly").
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.config import ModelConfig, SimulatorConfig, Thresholds, TrainConfig
from core.data.images import data_summary
from core.device import device_kind
from core.device import policy as device_policy
from core.distributed import (
    SINGLE,
    DistEnv,
    agree,
    barrier,
    rank_device,
    session,
    sync_buffers,
    wrap,
)
from core.errors import DatasetError, TrainingError
from core.io.checkpoint import load_checkpoint, save_checkpoint
from core.io.files import utc_timestamp
from core.models.draem.network import build_model
from core.models.draem.recipe import recipe
from core.models.draem.train_parts import (
    RUNTIME_FIELDS,
    Budget,
    config_mismatch,
    lr_at,
    make_preview,
    param_groups,
    resolve_device,
    seed_everything,
)
from core.progress import REPORT_INTERVAL_S, RateGate
from core.types import (
    StopCallback,
    TrainProgress,
    TrainResult,
    ignore_progress,
    never_stop,
)

_GRAY = torch.tensor([0.299, 0.587, 0.114])  # cv2 RGB2GRAY weights (as DraemDetector)
_PARTS = ("l2", "ssim", "focal", "total")


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
    if len(images) == 0:
        raise DatasetError("no good images to train on")
    if sim_config.image_size != model_config.image_size:  # the model's input size wins
        sim_config = dataclasses.replace(sim_config, image_size=tuple(model_config.image_size))
    with session(device_kind(resolve_device(train_config.device))) as env:
        run = _Run(images, model_config, sim_config, train_config, Path(out_path), data_summary, env)  # fmt: skip
        on_progress = on_progress if env.is_main else ignore_progress
        if resume and run.resume():
            return run.result("finished", "training had already finished")
        with run.policy.scope():
            status = run.loop(on_progress, should_stop)
            sync_buffers(run.model, env)
            if status == "cancelled":
                run.save("cancelled")
                barrier(env)
                return run.result(status, f"cancelled at step {run.step}; {out_path} can be resumed")  # fmt: skip
            thresholds = _thresholds(run.model, model_config, run.device, held_out)
            run.save("finished", thresholds)
        barrier(env)  # every rank may load the checkpoint once rank 0 has written it
    return run.result(status, f"finished after {run.step} steps; thresholds: {thresholds.source}")


class _Run:
    """State of one training run (model, optimizer, counters) and its steps."""

    def __init__(
        self, images, mc: ModelConfig, sc: SimulatorConfig, tc: TrainConfig, out: Path, summary,
        env: DistEnv = SINGLE,
    ):  # fmt: skip
        self.images, self.mc, self.sc, self.tc, self.out = images, mc, sc, tc, out
        self.env = env
        pol = device_policy(tc.device, amp=tc.amp)
        self.policy = pol.on(rank_device(env, pol.device))
        self.device = self.policy.device
        seed_everything(tc.seed)
        self.recipe = recipe(mc)
        model = build_model(mc).to(self.device)
        self.model = model.to(memory_format=self.policy.memory_format())
        self.net = wrap(self.model, env, self.device)  # DDP in a distributed run
        self.optimizer = torch.optim.Adam(param_groups(self.model, tc.lr), lr=tc.lr)
        self.loss_fn = self.recipe.loss()
        self.scaler = self.policy.grad_scaler()
        self.budget = Budget.of(tc, len(images))
        self.summary = {**data_summary(images), **(summary or {})}
        self.configs = {
            "model_config": mc.to_json(),
            "sim_config": sc.to_json(),
            "train_config": tc.to_json(),
        }
        self.step, self.elapsed, self.wait_s, self.created = 0, 0.0, 0.0, _now()
        self.saved_step: int | None = None
        self.history: dict[str, list[float]] = {k: [] for k in ("step", *_PARTS)}
        self.recent: deque[dict[str, float]] = deque(maxlen=50)

    def resume(self) -> bool:
        """Load the run saved at ``out``; True if it had already finished."""
        payload = load_checkpoint(self.out)
        bad = config_mismatch(payload, self.configs)
        if bad:
            raise TrainingError(
                f"cannot resume {self.out}: its settings differ ({'; '.join(bad)}); "
                "start a new training instead"
            )
        state = payload.get("train_state") or {}
        self.model.load_state_dict(payload["state_dict"])
        self.step = self.saved_step = int(payload.get("step", 0))
        self.elapsed = float(state.get("elapsed_s", 0.0))
        self.wait_s = float(state.get("data_wait_s", 0.0))
        self.created = (payload.get("metadata") or {}).get("created", self.created)
        if state.get("finished"):
            return True
        if payload.get("optimizer") is None:
            raise TrainingError(f"cannot resume {self.out}: it has no optimizer state")
        self.optimizer.load_state_dict(payload["optimizer"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        return False

    def loop(self, on_progress, should_stop) -> str:
        from core.simulate.dataset import make_loader

        tc = self.tc
        seed = tc.seed + self.env.rank  # ranks train on different samples
        sim = self.recipe.simulator(self.sc, self.images, seed, self.mc)
        stream = make_loader(self.images, sim, tc.batch_size, tc.num_workers, seed,
                             start_index=self.step * tc.batch_size, pin_memory=self.device == "cuda")  # fmt: skip
        step0, elapsed0, wait0, t0 = self.step, self.elapsed, self.wait_s, time.perf_counter()
        report, preview_due = RateGate(REPORT_INTERVAL_S), RateGate(tc.preview_every_s)
        ckpt_due = RateGate(tc.checkpoint_every_s)
        ckpt_due.restart()
        sums, n_sum = {}, 0
        self.model.train()
        try:
            while True:
                self.elapsed = elapsed0 + time.perf_counter() - t0
                done, stop = agree(  # every rank stops at the same step
                    self.env, self.budget.fraction(self.step, self.elapsed) >= 1.0, should_stop(),
                    device=self.device,
                )  # fmt: skip
                if done:
                    return "finished"
                if stop:
                    return "cancelled"
                lr = self.recipe.lr_at(tc, self.budget.fraction(self.step, self.elapsed))
                batch = next(stream)
                self.wait_s = wait0 + stream.wait_s
                values, outputs = self._train_step(batch, lr)
                for k, v in values.items():  # whatever parts the loss reports
                    sums[k] = sums.get(k, 0.0) + v
                n_sum += 1
                now = time.perf_counter()
                self.elapsed = elapsed0 + now - t0
                if ckpt_due():
                    self.save("running")
                    ckpt_due.restart()  # the next one a full interval after this save
                done = self.budget.fraction(self.step, self.elapsed) >= 1.0
                if report(done):
                    preview = make_preview(*outputs) if preview_due() else None
                    means = {k: v / n_sum for k, v in sums.items()}
                    rate = (self.step - step0) / max(now - t0, 1e-9)
                    on_progress(self._progress(means, lr, rate, preview))
                    sums, n_sum = {}, 0
        finally:
            stream.close()

    def _train_step(self, batch: dict, lr: float):
        dev = self.device
        good, aug, mask = (
            batch[k].to(dev, non_blocking=True) for k in ("image", "augmented", "mask")
        )
        if self.mc.in_channels == 1:
            w = _GRAY.to(dev).view(1, 3, 1, 1)
            good, aug = (t.mul(w).sum(1, keepdim=True) for t in (good, aug))
        aug = aug.contiguous(memory_format=self.policy.memory_format())
        with self.policy.autocast():
            rec, logits = self.net(aug)
        parts = self.loss_fn(rec, good, logits, mask)
        values = {k: v.detach().item() for k, v in parts.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise TrainingError(self._nan_message(self.step + 1, "loss"))
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(parts["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        self.recent.append(values)
        return values, (aug, rec, logits, mask)

    def _progress(self, means: dict, lr: float, rate: float, preview) -> TrainProgress:
        self.history["step"].append(float(self.step))
        for k, v in means.items():
            self.history.setdefault(k, []).append(v)
        limit = self.budget.step_limit
        return TrainProgress(
            step=self.step, total_steps=limit, epoch=self.step * self.tc.batch_size / len(self.images),
            elapsed_s=self.elapsed, eta_s=self.budget.eta(self.step, self.elapsed, rate), lr=lr,
            losses=means, samples_per_s=rate * self.tc.batch_size, preview=preview,
            message=f"step {self.step}" + (f"/{limit}" if limit else ""), data_wait_s=self.wait_s,
        )  # fmt: skip

    def save(self, status: str, thresholds: Thresholds | None = None) -> None:
        """Atomically write the checkpoint (rank 0 only); refuses (TrainingError) if weights are not finite."""
        if not self.env.is_main:
            self.saved_step = self.step
            return
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise TrainingError(self._nan_message(self.step, "weights"))
        final = status == "finished"
        thr = thresholds or Thresholds(0.5, 0.5, "default (softmax 0.5; training unfinished)")
        meta = {"preset": self.mc.preset, "image_size": list(self.mc.image_size), "created": self.created,
                "saved": _now(), "app_version": _app_version(), "data_summary": self.summary,
                "device": self.device, "precision": self.policy.precision,
                "world_size": self.env.world_size, "backend": self.env.backend}  # fmt: skip
        save_checkpoint(self.out, {
            "method": "draem",
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            **self.configs,
            "thresholds": thr.to_json(),
            "metadata": meta,
            "step": self.step,
            "optimizer": None if final else self.optimizer.state_dict(),
            "train_state": {"elapsed_s": self.elapsed, "sample_index": self.step * self.tc.batch_size,
                            "data_wait_s": self.wait_s, "finished": final, "status": status,
                            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None},
        })  # fmt: skip
        self.saved_step = self.step

    def result(self, status: str, message: str) -> TrainResult:
        # only the terms the variant's loss has (the compact loss also returns l2 = ssim = 0)
        names = [
            k for k in (*self.recipe.loss_names, "total") if self.recent and k in self.recent[0]
        ]
        final = {k: float(np.mean([r[k] for r in self.recent])) for k in names}
        return TrainResult(
            str(self.out),
            status,
            self.step,
            self.elapsed,
            final,
            message,
            self.history,
            self.wait_s,
        )

    def _nan_message(self, step: int, what: str) -> str:
        kept = (
            f"the last good checkpoint (step {self.saved_step}) is kept at {self.out}"
            if self.saved_step is not None
            else "no checkpoint had been written yet"
        )
        return f"{what} became NaN/inf at step {step}; {kept}. Try a lower learning rate."


def _thresholds(model: nn.Module, mc: ModelConfig, device: str, held_out) -> Thresholds:
    if not held_out:
        return Thresholds(0.5, 0.5, "default: softmax 0.5 (no held-out good images)")
    from core.evaluate.thresholds import calibrate_from_good
    from core.models.draem.detector import DraemDetector

    det = DraemDetector(model, mc, device=device)  # inference's own path: views, size, standardise
    scores = [p.score for p in det.predict(list(held_out))]
    s = calibrate_from_good(scores)
    model.train()
    return Thresholds(s.value, s.value, f"{s.rule}: {s.detail} (pixel threshold = image threshold)")


def _now() -> str:
    return utc_timestamp()


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
