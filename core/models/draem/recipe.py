"""DRAEM's two variants as recipes: the one switch ``ModelConfig.preset`` picks them.

A :class:`Recipe` bundles what differs between the ``paper`` variant (the paper's two
sub-networks trained from scratch on [official]'s simulator, L2 + SSIM + focal loss,
MultiStepLR) and the ``compact`` variant (a frozen ImageNet encoder with a trained
head, the surface-defect simulator, focal + BCE loss, warm-up then cosine).  The
trainer (:mod:`core.models.draem.train`) and the GUI's simulator preview both ask :func:`recipe`;
the ``nn.Module`` s hold only ``forward``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.config import ModelConfig, SimulatorConfig, TrainConfig

if TYPE_CHECKING:  # torch is imported only when a network is built (the GUI previews without it)
    import numpy as np
    from torch import nn


@dataclass(frozen=True)
class Recipe:
    """What one DRAEM variant trains with.

    Attributes:
        network: ``network(model_config) -> nn.Module`` (randomly initialised head/weights;
            seed torch first).  ``forward(x (B, 3, H, W) float32 in [0, 1]) ->
            (reconstruction (B, 3, H, W) or None, logits (B, 2, H, W))``.
        loss: ``loss() -> nn.Module``; ``forward(reconstruction, good, logits, mask) ->
            dict of named scalar tensors with a ``total````.
        simulator: ``simulator(sim_config, images, seed, model_config)``: the sample
            maker (``sample(image, index) -> SyntheticSample``).
        lr_at: ``lr_at(train_config, fraction_of_budget) -> learning rate``.
        loss_names: the loss parts it reports, in display order.
    """

    network: Callable[[ModelConfig], nn.Module]
    loss: Callable[[], nn.Module]
    simulator: Callable[[SimulatorConfig, Sequence[np.ndarray], int, ModelConfig], object]
    lr_at: Callable[[TrainConfig, float], float]
    loss_names: tuple[str, ...]


def _paper_network(cfg: ModelConfig) -> nn.Module:
    from core.models.draem.network import DraemNet, init_weights

    model = DraemNet(cfg)
    init_weights(model)
    return model


def _paper_loss() -> nn.Module:
    from core.models.draem.loss import DraemLoss

    return DraemLoss()


def _paper_simulator(sc: SimulatorConfig, images, seed: int, mc: ModelConfig):
    from core.simulate.simulator import AnomalySimulator

    return AnomalySimulator(sc, seed=seed)


def _paper_lr(tc: TrainConfig, fraction: float) -> float:
    from core.models.draem.train_parts import lr_at

    return lr_at(tc, fraction)


def _compact_network(cfg: ModelConfig) -> nn.Module:
    from core.models.draem.compact import CompactDraem

    return CompactDraem(cfg)


def _compact_loss() -> nn.Module:
    from core.models.draem.compact import CompactLoss

    return CompactLoss()


def _compact_simulator(sc: SimulatorConfig, images, seed: int, mc: ModelConfig):
    from core.simulate.defects import compact_simulator

    return compact_simulator(sc, images, seed, mc)


def warmup_cosine_lr(tc: TrainConfig, fraction: float) -> float:
    """The compact head's schedule: linear warm-up, then cosine to 0 (peak ``LR_SCALE`` x lr)."""
    from core.models.draem.compact import LR_SCALE, WARMUP

    peak = LR_SCALE * tc.lr
    if fraction < WARMUP:
        return peak * max(fraction, 0.01) / WARMUP
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (fraction - WARMUP) / (1.0 - WARMUP))))


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        _paper_network, _paper_loss, _paper_simulator, _paper_lr, ("l2", "ssim", "focal")
    ),
    "compact": Recipe(
        _compact_network, _compact_loss, _compact_simulator, warmup_cosine_lr, ("focal", "bce")
    ),
}


def recipe(config: ModelConfig) -> Recipe:
    """The recipe of ``config.preset`` (``paper`` or ``compact``; validated by ModelConfig)."""
    return RECIPES[config.preset]


__all__ = ["RECIPES", "Recipe", "recipe", "warmup_cosine_lr"]
