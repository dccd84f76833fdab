"""Normalizing-flow detector ("flow"), trained on good images with a self-supervised term.

Features of a frozen ImageNet backbone (strides 8 and 16; default EfficientNet-Lite0 with
its shipped weights, or any :func:`core.models.backbone.load_backbone` network from a local
weights file: ``FlowConfig.backbone`` / ``backbone_weights``) of each standardised image
at its aspect-keeping working size are mapped by one normalizing flow per scale (FrEIA
``SequenceINN`` of ``AllInOneBlock`` s, as [anomalib] FastFlow) to a standard normal.
Training maximises the likelihood of good features and, with ``ssl_weight > 0``, pushes
the likelihood of synthetic-anomaly positions down (a bounded softplus term).
The anomaly map is the per-position negative log-likelihood, upsampled and smoothed.

Modules: ``config`` (:class:`FlowConfig`), ``network`` (flows), ``features`` (backbone and
geometry), ``synthetic`` (anomalies), ``detector`` (:class:`FlowDetector`), ``train``
(:func:`fit_flow`).  This module holds the registry's ``SPEC``.
"""

from __future__ import annotations

from core.models.flow.config import FlowConfig, default_backbone, flow_variant
from core.registry import FitRequest, MethodSpec


def fit(images, config: FlowConfig, request: FitRequest):
    """Train the flow; returns ``(FlowDetector, TrainResult)`` (saved to ``request.out_path``)."""
    from core.models.flow.train import fit_flow

    return fit_flow(images, config, request)


def from_checkpoint(payload: dict, device: str = "auto"):
    from core.models.flow.detector import FlowDetector

    return FlowDetector.from_checkpoint(payload, device)


def simulator(config: FlowConfig, sim_config, images, seed: int):
    """The flow's synthetic anomalies as samples, for previews."""
    from core.models.flow.samples import FlowSamples

    return FlowSamples(config, sim_config, images, seed)


def samples_note(config: FlowConfig) -> str:
    from core.models.flow.samples import samples_note as note

    return note(config)


def make_config(options: dict, kind: str) -> FlowConfig:
    """A FlowConfig from the run options; the backbone must load here
    (:func:`core.models.backbone_choice.check_backbone`: a named network needs an
    existing local weights file, a shipped one its package)."""
    from core.models.backbone_choice import check_backbone

    config = FlowConfig(**options)
    check_backbone(config.backbone, config.backbone_weights)
    return config


def describe(config: FlowConfig) -> str:
    backbone = "" if default_backbone(config) else f", {config.backbone} backbone"
    return f"normalizing flow ({config.subnet} subnet, ssl weight {config.ssl_weight:g}{backbone})"


SPEC = MethodSpec(
    name="flow",
    label="Normalizing flow (self-supervised)",
    config_cls=FlowConfig,
    fit=fit,
    from_checkpoint=from_checkpoint,
    default_config=lambda kind: FlowConfig(),
    title="Flow",
    options=("backbone", "backbone_weights", "ssl_weight", "subnet", "work_area"),
    make_config=make_config,
    describe=describe,
    variant=flow_variant,
    default_budget=lambda config: {"minutes": 5.0},
    trains=True,
    loss_names=("nll_normal", "nll_synthetic", "total"),  # all; a run: train.loss_names
    simulator=simulator,
    samples_note=samples_note,
    simulator_fields=("source", "source_dir"),
)

__all__ = ["SPEC", "FlowConfig", "fit", "from_checkpoint"]
