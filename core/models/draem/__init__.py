"""DRAEM as a registered method: trained on synthetic anomalies (``core.models.draem.train``).

Its config is :class:`core.config.ModelConfig` (the variant ``paper`` or
``compact``); the run's :class:`SimulatorConfig` and :class:`TrainConfig` come in
``FitRequest.options`` (``sim_config`` / ``train_config``) or are built from the
request's seed, device and budget.
"""

from __future__ import annotations

import dataclasses

from core.config import ModelConfig, SimulatorConfig, TrainConfig, model_preset
from core.errors import ConfigError
from core.registry import FitRequest, MethodSpec

#: the budget when none is given: the compact variant converges in minutes on a CPU,
#: the paper variant keeps the paper's 700 epochs
DEFAULT_BUDGET = {"compact": {"minutes": 30.0}, "paper": {"epochs": 700}}


def default_config(kind: str) -> ModelConfig:
    """The compact variant on a CPU, the paper's network on a GPU."""
    return model_preset("paper" if kind == "cuda" else "compact")


def make_config(options: dict, kind: str) -> ModelConfig:
    """The variant (``preset``, default by device kind) with the given overrides."""
    options = dict(options)
    preset = options.pop("preset", None) or default_config(kind).preset
    base = model_preset(preset)
    if "work_area" in options and not base.keep_aspect:
        raise ConfigError(
            f"--work-area: only with the compact preset (the {preset} preset scales every "
            f"image to {base.image_size[0]}x{base.image_size[1]})"
        )
    return dataclasses.replace(base, **options)


def describe(config: ModelConfig) -> str:
    h, w = config.image_size
    return f"DRAEM ({config.preset} preset, {h}x{w})"


def default_budget(config: ModelConfig) -> dict:
    return dict(DEFAULT_BUDGET[config.preset])


def train_config_for(config: ModelConfig, request: FitRequest) -> TrainConfig:
    """The run's TrainConfig: ``options['train_config']``, or seed/device/budget of the request."""
    given = request.options.get("train_config")
    if given is not None:
        return given
    budget = dict(request.budget) or default_budget(config)
    return TrainConfig(seed=request.seed, device=request.device, **budget)


def simulator_config_for(config: ModelConfig, request: FitRequest) -> SimulatorConfig:
    """The simulator for the run: texture photos from ``options['anomaly_source']`` if given."""
    source = request.options.get("anomaly_source")
    extra = {"source": "folder", "source_dir": source} if source else {}
    return SimulatorConfig(image_size=config.image_size, **extra)


def fit(images, config: ModelConfig, request: FitRequest):
    """Train DRAEM; returns ``(detector, TrainResult)`` (the detector is loaded back
    from the checkpoint just written, so it is exactly what a later load gives)."""
    from core.data.images import split_held_out
    from core.models.draem.train import train
    from core.registry import load_detector

    sim = request.options.get("sim_config") or simulator_config_for(config, request)
    sim = dataclasses.replace(sim, image_size=tuple(config.image_size))
    held_out = list(request.held_out)
    if not held_out:  # good images the network never sees set the thresholds
        images, held_out = split_held_out(images)
    result = train(
        images,
        held_out=held_out,
        model_config=config,
        sim_config=sim,
        train_config=train_config_for(config, request),
        out_path=request.out_path,
        on_progress=request.on_progress,
        should_stop=request.should_stop,
        resume=request.resume,
        data_summary=request.data_summary,
    )
    return load_detector(result.checkpoint_path, device=request.device), result


def simulator(config: ModelConfig, sim_config: SimulatorConfig | None, images, seed: int):
    """The variant's training simulator (its recipe's), for previews."""
    from core.models.draem.recipe import recipe

    sc = sim_config if sim_config is not None else SimulatorConfig(image_size=config.image_size)
    return recipe(config).simulator(sc, images, seed, config)


def samples_note(config: ModelConfig) -> str:
    if config.preset == "compact":
        return (
            "Samples as the <b>compact</b> preset trains on them: crops at the working size "
            "with texture patches and surface defects (intensity changes, thin lines, spots); "
            "grey images get grey anomalies."
        )
    return (
        "Samples as the <b>paper</b> preset trains on them ([official] DRÆM simulator: "
        "Perlin-shaped texture patches on the resized image)."
    )


def from_checkpoint(payload: dict, device: str = "auto"):
    from core.models.draem.detector import DraemDetector

    return DraemDetector.from_checkpoint(payload, device=device)


SPEC = MethodSpec(
    name="draem",
    label="DRÆM (trained on synthetic anomalies)",
    config_cls=ModelConfig,
    fit=fit,
    from_checkpoint=from_checkpoint,
    default_config=default_config,
    title="DRAEM",
    options=("preset", "score_kernel", "flip_views", "standardise", "work_area"),
    make_config=make_config,
    describe=describe,
    variant=lambda config: config.preset,
    default_budget=default_budget,
    trains=True,
    loss_names=("l2", "ssim", "focal", "total"),
    has_reconstruction=True,
    simulator=simulator,
    samples_note=samples_note,
    proposed_for={
        "surface": (
            "Measured best on grey surfaces: magnetic_tile 0.893 image AUROC after 15 min on "
            "a CPU (PatchCore 0.754, flow 0.81-0.84; docs/flow.md)"
        ),
    },
)
