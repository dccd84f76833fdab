"""Training of the flow: NLL on clean crops plus a bounded term on synthetic anomalies.

Per step, ``batch_size`` square crops are cut from the good images at their working size
(standardised, :mod:`core.models.flow.features`).  With ``ssl_weight > 0`` half of them
get a synthetic anomaly (:mod:`core.models.flow.synthetic`).  The loss is

* ``nll_normal``: the mean per-dimension NLL of every position of the clean crops
  (maximum likelihood of good features, as [anomalib] FastFlow);
* ``nll_synthetic``: over positions of the anomalous crops whose feature cell is at least
  half covered by the mask, ``softplus(mean_normal + ssl_margin - nll)``, with
  ``mean_normal`` the (detached) batch mean of ``nll_normal``: it pushes the likelihood
  of anomalous features down until they are ``ssl_margin`` nats per dimension less likely
  than good ones, then fades out (bounded, in the spirit of SANFlow's ``-log sigma`` term);
* ``total = nll_normal + ssl_weight * nll_synthetic``.

Progress and the result report only the terms trained with (:func:`loss_names`): no
``nll_synthetic`` when ``ssl_weight == 0``.

Adam with a short linear warm-up then cosine decay to a tenth over the budget; gradient
norm clipped at 1.  Thresholds come from held-out good images (``core.evaluate.thresholds``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.config import Thresholds
from core.data.geometry import random_crop
from core.errors import ConfigError, DatasetError, TrainingError
from core.io.files import utc_timestamp
from core.models.backbone import check_recorded, weights_record
from core.models.batching import check_image as _check_image
from core.models.flow.config import FlowConfig, flow_variant
from core.models.flow.detector import FlowDetector, image_score, nll_map, scale_maps, smooth
from core.models.flow.features import Features, prepare
from core.models.flow.network import FlowModel
from core.models.flow.synthetic import anomalous_cells, anomalous_crop, feature_mask
from core.progress import RateGate
from core.types import TrainPreview, TrainProgress, TrainResult

#: budget when the request gives none
DEFAULT_BUDGET = {"minutes": 5.0}
WARMUP_STEPS = 20
SAVE_EVERY_S = 120.0
PREVIEW_EVERY_S = 5.0
STAT_CROPS = 32


def _budget(budget: dict) -> tuple[int | None, float | None]:
    budget = dict(budget) or DEFAULT_BUDGET
    steps, minutes = budget.get("steps"), budget.get("minutes")
    unknown = set(budget) - {"steps", "minutes"}
    if unknown or (steps is None and minutes is None):
        raise ConfigError(f"flow training budget must be steps and/or minutes, got {budget}")
    if steps is not None and int(steps) < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if minutes is not None and not float(minutes) > 0:
        raise ConfigError(f"minutes must be > 0, got {minutes}")
    return (None if steps is None else int(steps)), (None if minutes is None else float(minutes))


class _Batches:
    """Seeded training crops: ``draw(n_clean, n_syn)`` -> (crops (n, S, S, 3) uint8 list,
    masks (n_syn, S, S) float32 list); the synthetic crops come last."""

    def __init__(self, prepared, config: FlowConfig, rng: np.random.Generator, source=None):
        self.prepared, self.rng, self.source = prepared, rng, source
        self.size = (config.crop_size, config.crop_size)
        self.kinds = config.anomalies

    def crop(self) -> tuple[int, np.ndarray]:
        i = int(self.rng.integers(len(self.prepared)))
        return i, random_crop(self.prepared[i], self.size, self.rng)

    def draw(self, n_clean: int, n_syn: int):
        crops = [self.crop()[1] for _ in range(n_clean)]
        masks = []
        for _ in range(n_syn):
            i, c = self.crop()
            aug, m = anomalous_crop(self.prepared, i, c, self.rng, self.source, self.kinds)
            crops.append(aug)
            masks.append(m)
        return crops, masks


def loss_names(config: FlowConfig) -> tuple[str, ...]:
    """The loss terms the flow trains with, in display order: ``nll_synthetic`` only with
    ``ssl_weight > 0`` (at 0 that term is off and ``total`` is ``nll_normal``)."""
    if config.ssl_weight > 0:
        return ("nll_normal", "nll_synthetic", "total")
    return ("nll_normal", "total")


def flow_losses(out, n_clean: int, masks: Sequence[np.ndarray], config: FlowConfig) -> dict:
    """Loss terms (scalar tensors) of one batch, those of :func:`loss_names`; see the
    module docstring.

    ``out``: :class:`FlowModel` output for ``n_clean`` clean then ``len(masks)`` synthetic
    crops; ``masks``: (S, S) float32 {0, 1} masks of the synthetic crops.
    """
    normal, synthetic = [], []
    for s, (_z, nll) in out.items():
        clean = nll[:n_clean]
        normal.append(clean.mean())
        if masks:
            cover = np.stack([feature_mask(m, s) for m in masks])
            anom = torch.from_numpy(anomalous_cells(cover)).to(nll.device)
            if bool(anom.any()):
                ref = clean.mean().detach() + config.ssl_margin
                synthetic.append(F.softplus(ref - nll[n_clean:][anom]).mean())
    loss_n = torch.stack(normal).mean()
    loss_s = torch.stack(synthetic).mean() if synthetic else loss_n.new_zeros(())
    parts = {
        "nll_normal": loss_n,
        "nll_synthetic": loss_s,
        "total": loss_n + config.ssl_weight * loss_s,
    }
    return {k: parts[k] for k in loss_names(config)}


@torch.no_grad()
def set_map_statistics(det: FlowDetector, good: Sequence[np.ndarray]) -> None:
    """Standardise each scale's map on good images: location = median of their smoothed
    per-scale NLL pixels, scale = 99th percentile minus median (:meth:`FlowModel.map_norm`)."""
    model = det.model.eval()
    pixels: dict[int, list[np.ndarray]] = {s: [] for s in model.stages}
    for img in good:
        p = prepare(img, det.config)
        for s, m in scale_maps(model(det.features([p])), p.shape[:2]).items():
            pixels[s].append(smooth(m[0].float().cpu().numpy(), det.config.sigma).ravel())
    loc, scale = {}, {}
    for s, parts in pixels.items():
        v = np.concatenate(parts)
        loc[s] = float(np.median(v))
        scale[s] = float(np.percentile(v, 99)) - loc[s]
    model.set_map_statistics(loc, scale)


def calibrate(det: FlowDetector, good: Sequence[np.ndarray], note: str) -> Thresholds:
    """Standardise the scales' maps on the good images (:func:`set_map_statistics`), then
    the image threshold from their scores (``core.evaluate.thresholds.calibrate_from_good``)
    and the pixel threshold = 99.9th percentile of their map pixels."""
    from core.evaluate.thresholds import calibrate_from_good, pixel_from_good_maps

    set_map_statistics(det, good)
    preds = det.predict(list(good))
    img = calibrate_from_good([p.score for p in preds])
    px = pixel_from_good_maps([p.anomaly_map for p in preds], 99.9)
    return Thresholds(
        img.value, px.value, f"{note}, {len(preds)} good: image {img.detail}; pixel {px.detail}"
    )


def _preview(
    crop: np.ndarray, mask: np.ndarray, nll: np.ndarray, config: FlowConfig
) -> TrainPreview:
    m = smooth(nll.astype(np.float32), config.sigma * 0.5)
    lo, hi = float(m.min()), float(m.max())
    pred = ((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)).astype(np.float32)
    return TrainPreview(
        image=crop, reconstruction=None, mask=mask.astype(np.float32), prediction=pred
    )


def fit_flow(
    images: Sequence[np.ndarray], config: FlowConfig, request
) -> tuple[FlowDetector, TrainResult]:
    """Train the flow on good RGB uint8 (H, W, 3) images and save it to ``request.out_path``.

    ``request`` is a :class:`core.registry.FitRequest` (budget, seed, device, held_out,
    ``options["anomaly_source"]``: a texture folder instead of patches of other good
    images, callbacks).  Cancelling still saves a loadable checkpoint (status
    ``cancelled``).  Raises :class:`DatasetError` for no/invalid images and
    :class:`TrainingError` when the loss stops being finite.
    """
    from core.data.images import split_held_out
    from core.device import resolve_device
    from core.io.checkpoint import load_checkpoint

    images = list(images)
    if not images:
        raise DatasetError("the flow needs at least one good image")
    for i, img in enumerate(images):
        _check_image(img, i)
    max_steps, minutes = _budget(request.budget)
    device = resolve_device(request.device)
    torch.manual_seed(request.seed)
    rng = np.random.default_rng(request.seed)
    held_out = list(request.held_out)
    if not held_out:
        images, held_out = split_held_out(images)
    prepared = [prepare(im, config) for im in images]
    source = None
    if request.options.get("anomaly_source"):
        from core.simulate.textures import FolderSource

        source = FolderSource(request.options["anomaly_source"])
    features = Features(config, device)
    model = FlowModel(config, features.channels, request.seed).to(device)
    batches = _Batches(prepared, config, rng, source)
    stat_crops = [batches.crop()[1] for _ in range(STAT_CROPS)]
    stats = [features(stat_crops[k : k + 8]) for k in range(0, STAT_CROPS, 8)]
    model.set_statistics({s: torch.cat([f[s] for f in stats]) for s in model.stages})
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step = 0
    if request.resume:
        state = load_checkpoint(request.out_path)
        check_recorded(config.backbone_weights, state.get("metadata") or {})
        model.load_weights(state["state_dict"])
        if state.get("optimizer"):
            opt.load_state_dict(state["optimizer"])
        step = int(state.get("step", 0))
    import core

    meta = {
        "preset": flow_variant(config),
        "image_size": [config.work_area, config.work_area],
        "created": utc_timestamp(),
        "app_version": str(core.__version__),
        "data_summary": request.data_summary or {"n_images": len(images)},
        "seed": int(request.seed),
        "ssl_weight": config.ssl_weight,
        "backbone": config.backbone,
        **weights_record(config.backbone_weights),
    }
    det = FlowDetector(config, model, Thresholds(), meta, device, features)

    def save(status: str) -> None:
        det._metadata.update(steps=step, status=status)
        det.model.eval()
        from core.io.checkpoint import save_checkpoint

        save_checkpoint(request.out_path, det.payload(step, opt.state_dict()))

    n_syn = config.batch_size // 2 if config.ssl_weight > 0 else 0
    n_clean = config.batch_size - n_syn
    t0 = time.monotonic()
    report, preview_due, save_due = RateGate(), RateGate(PREVIEW_EVERY_S), RateGate(SAVE_EVERY_S)
    save_due.restart(t0)
    start_step, status = step, "finished"
    running: dict[str, list[float]] = {k: [] for k in loss_names(config)}
    history: dict[str, list[float]] = {k: [] for k in running}
    final: dict[str, float] = {}
    while True:
        elapsed = time.monotonic() - t0
        fraction = max(
            (step - start_step) / max_steps if max_steps else 0.0,
            elapsed / (60 * minutes) if minutes else 0.0,
        )
        if fraction >= 1.0:
            break
        if request.should_stop():
            status = "cancelled"
            break
        lr = (
            config.lr
            * min(1.0, (step + 1) / WARMUP_STEPS)
            * (0.55 + 0.45 * math.cos(math.pi * fraction))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        crops, masks = batches.draw(n_clean, n_syn)
        model.train()
        out = model(features(crops))
        losses = flow_losses(out, n_clean, masks, config)
        if not torch.isfinite(losses["total"]):
            raise TrainingError(f"the flow's loss is not finite at step {step}; try a lower lr")
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        for k, v in losses.items():
            running[k].append(float(v.detach()))
        now = time.monotonic()
        if report(now=now):
            preview = None
            if n_syn and preview_due(now=now):
                with torch.no_grad():
                    nll = nll_map(
                        {s: (z[n_clean:][:1], v[n_clean:][:1]) for s, (z, v) in out.items()},
                        crops[0].shape[:2],
                    )
                preview = _preview(crops[n_clean], masks[0], nll[0].detach().cpu().numpy(), config)
            final = {k: float(np.mean(v)) for k, v in running.items()}
            for k, v in final.items():
                history[k].append(v)
            running = {k: [] for k in running}
            done = step - start_step
            eta = (now - t0) * (1 - fraction) / fraction if fraction > 0 else None
            request.on_progress(
                TrainProgress(
                    step=step,
                    total_steps=(start_step + max_steps) if max_steps else None,
                    epoch=step * config.batch_size / len(prepared),
                    elapsed_s=now - t0,
                    eta_s=eta,
                    lr=lr,
                    losses=final,
                    samples_per_s=done * config.batch_size / max(now - t0, 1e-9),
                    preview=preview,
                    message="training the flow",
                )
            )
        if save_due(now=now):
            save("running")
    if any(running.values()):
        final = {k: float(np.mean(v)) for k, v in running.items() if v}
    good = held_out or images
    note = "held-out good images" if held_out else "training images (none held out)"
    det.thresholds = calibrate(det, good, note)
    save(status)
    elapsed = time.monotonic() - t0
    result = TrainResult(
        checkpoint_path=str(request.out_path),
        status=status,
        steps=step,
        elapsed_s=elapsed,
        final_losses=final,
        message=f"flow trained {step - start_step} steps in {elapsed:.0f} s ({status})",
        loss_history=history,
    )
    return det, result


__all__ = ["DEFAULT_BUDGET", "calibrate", "fit_flow", "flow_losses", "image_score", "loss_names"]
