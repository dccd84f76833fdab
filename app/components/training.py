"""Qt-free training job for the GUI: load the good images, then train DRAEM or fit PatchCore.

:func:`run_training` is what the training page runs in a background
:class:`app._qt.workers.Task`.  It reports :class:`core.types.Progress` while images
load (and while PatchCore fits) and :class:`core.types.TrainProgress` while
DRAEM trains.  Heavy modules (``core.models.draem.train``, ``core.models.patchcore.detector``) are imported
lazily so that the window opens fast.

It also holds the small decisions the page shows before starting: which devices
exist, which preset is the default on them, and how long a run is expected to
take (:func:`estimate_seconds`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.config import SimulatorConfig, TrainConfig
from core.data.images import data_summary, load_images
from core.errors import CoreError, DatasetError
from core.registry import FitRequest, fit_detector, get_method, make_config
from core.types import (
    FailedImage,
    Progress,
    ProgressCallback,
    StopCallback,
    TrainResult,
    ignore_progress,
    never_stop,
)

#: Seconds per batch-8 training step by (preset, device kind), used when the
#: project has no finished run to learn from.  CPU figures: docs/benchmarks.md on
#: this project's 2-core machine (compact 3.8-6.3 steps/s, paper 68 s/step; the flow
#: 0.108 s/step over a 15-minute run, docs/flow.md);
#: CUDA figures: rough, for a current data-centre GPU.
DEFAULT_S_PER_STEP = {
    ("compact", "cpu"): 0.2,
    ("flow-conv", "cpu"): 0.11,
    ("paper", "cpu"): 70.0,
    ("compact", "cuda"): 0.02,
    ("paper", "cuda"): 0.15,
}
#: Methods without a training loop: seconds per good image by (method, device kind)
#: (PatchCore: feature extraction + its share of the coreset).
DEFAULT_S_PER_IMAGE = {("patchcore", "cpu"): 0.35, ("patchcore", "cuda"): 0.03}

#: what a larger working area buys and costs, measured (docs/experiments.md)
WORK_AREA_TIP = (
    "Images are scaled, aspect ratio kept, to at most this area ({v} x {v} pixels); "
    "unset, it is {d} (the method's default, raised for large good images so that they "
    "keep at least half their scale). A larger area keeps hairline defects on large images: "
    "on 1250 x 500 parts with 1-2 px cracks the compact DRÆM reached 0.964 image AUROC at "
    "448 vs 0.915 at 320, but took 124 vs 81 ms per image (docs/experiments.md)."
)


@dataclass(frozen=True)
class TrainJob:
    """Everything one run needs; built on the GUI thread, read in the worker."""

    method: str
    paths: tuple[str, ...]
    #: the method's config (``core.registry``: ``MethodSpec.config_cls``)
    config: Any
    sim_config: SimulatorConfig
    train_config: TrainConfig
    out_path: str
    resume: bool = False


@dataclass(frozen=True)
class TrainOutcome:
    """What the page gets back (``status``: finished | cancelled | failed)."""

    method: str
    checkpoint_path: str
    status: str
    steps: int
    elapsed_s: float
    message: str
    n_images: int
    failures: tuple[FailedImage, ...] = ()
    result: TrainResult | None = None


def available_devices() -> dict[str, bool]:
    """``{"cpu": True, "cuda": <present>}`` via :func:`core.models.draem.train.resolve_device`."""
    from core.models.draem.train import resolve_device

    try:
        cuda = resolve_device("cuda") == "cuda"
    except CoreError:
        cuda = False
    return {"cpu": True, "cuda": cuda}


def device_labels(devices: dict[str, bool]) -> dict[str, str]:
    """What each device setting runs on, in words, for the device choice:
    ``{"cpu": "CPU, 16 cores", "cuda": "NVIDIA H200, 139.8 GiB", "auto": ...}``
    (:func:`core.device.describe_device`; ``cuda`` reads "not present" without a GPU)."""
    from core.device import available_devices as present
    from core.device import describe_device

    found = present()
    labels = {k: describe_device(k, found) for k in ("cpu", "cuda")}
    if not devices.get("cuda"):
        labels["cuda"] = "not present"
    labels["auto"] = labels[device_kind("auto", devices)]
    return labels


def device_kind(device: str, devices: dict[str, bool]) -> str:
    """The device a setting runs on: ``auto`` → cuda when present, else cpu."""
    if device == "auto":
        return "cuda" if devices.get("cuda") else "cpu"
    return device


def resolve_preset(preset: str, devices: dict[str, bool]) -> str:
    """The DRAEM variant a preset setting means here (``auto``: by the device present)."""
    kind = device_kind("auto", devices)
    options = {"preset": None if preset == "auto" else preset}
    return make_config("draem", options, kind).preset


def steps_for(train_config: TrainConfig, n_images: int) -> int | None:
    """Optimiser steps a steps/epochs budget means (one epoch = ceil(n / batch) steps)."""
    per_epoch = max(1, math.ceil(max(1, n_images) / train_config.batch_size))
    candidates = []
    if train_config.steps is not None:
        candidates.append(train_config.steps)
    if train_config.epochs is not None:
        candidates.append(train_config.epochs * per_epoch)
    return min(candidates) if candidates else None


def estimate_seconds(
    method: str,
    preset: str,
    device: str,
    train_config: TrainConfig,
    n_images: int,
    history: Sequence[tuple[float, int]] = (),
) -> float | None:
    """Expected wall time of a run, or None if unknown.

    ``history``: (elapsed_s, steps) of earlier DRAEM runs with the same preset and
    device on this project; when present their rate replaces the default table.
    For a minutes budget the answer is the budget itself.
    """
    if not get_method(method).trains:
        rate = DEFAULT_S_PER_IMAGE.get((method, device))
        return None if rate is None else rate * max(1, n_images) + 5.0
    steps = steps_for(train_config, n_images)
    minutes = None if train_config.minutes is None else 60.0 * train_config.minutes
    runs = [(e, s) for e, s in history if s > 0 and e > 0]
    rate = (
        sum(e for e, _ in runs) / sum(s for _, s in runs)
        if runs
        else DEFAULT_S_PER_STEP.get((preset, device))
    )
    rate = None if rate is None else rate * train_config.batch_size / 8.0
    by_steps = None if steps is None or rate is None else steps * rate
    options = [t for t in (by_steps, minutes) if t is not None]
    return min(options) if options else None


def format_duration(seconds: float | None) -> str:
    """``'1 h 05 min'``, ``'4 min 10 s'``, ``'12 s'``; ``'unknown'`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {(s % 3600) // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def run_training(
    job: TrainJob,
    *,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> TrainOutcome:
    """Load ``job.paths`` (corrupt files are skipped and listed) and train / fit.

    Raises:
        DatasetError: no readable image.
        core.errors.Cancelled: stopped while loading or fitting PatchCore
            (DRAEM training returns ``status == "cancelled"`` with its checkpoint).
        core.errors.CoreError: anything else core reports (readable message).
    """
    loaded, failures = load_images(job.paths, on_progress=on_progress, should_stop=should_stop)
    if not loaded:
        reason = f" (e.g. {failures[0].path}: {failures[0].reason})" if failures else ""
        raise DatasetError(f"no readable good image to train on{reason}")
    images = [img for _, img in loaded]
    summary = data_summary(
        [img for _, img in loaded], os.path.commonpath([p for p, _ in loaded]) if loaded else ""
    )
    os.makedirs(os.path.dirname(os.path.abspath(job.out_path)), exist_ok=True)
    spec = get_method(job.method)
    if not spec.trains:
        on_progress(Progress(0, len(images), f"fitting {spec.title}"))
    t0 = time.monotonic()
    request = FitRequest(
        out_path=job.out_path,
        seed=job.train_config.seed,
        device=job.train_config.device,
        data_summary=summary,
        budget={
            k: v
            for k in ("steps", "epochs", "minutes")
            if (v := getattr(job.train_config, k)) is not None
        },
        resume=job.resume,
        options={"sim_config": job.sim_config, "train_config": job.train_config},
        on_progress=on_progress,
        should_stop=should_stop,
    )
    _, result = fit_detector(job.method, images, job.config, request)
    if result is None:
        return TrainOutcome(
            job.method,
            job.out_path,
            "finished",
            0,
            time.monotonic() - t0,
            f"{spec.title} fitted on {len(images)} images",
            len(images),
            tuple(failures),
        )
    return TrainOutcome(
        job.method,
        result.checkpoint_path,
        result.status,
        result.steps,
        result.elapsed_s,
        result.message,
        len(images),
        tuple(failures),
        result,
    )
