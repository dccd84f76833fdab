"""Frozen, validated configuration dataclasses with the paper's defaults.

Every config is a frozen dataclass that validates itself in ``__post_init__`` and
raises :class:`ConfigError` with a message that names the field and the allowed
range.  Configs round-trip through plain dicts (``to_dict`` / ``from_dict``) so
they can be stored in checkpoints (JSON string) and HDF5 attributes.

References (abbreviations used throughout ``core``):
  * [paper]    Zavrtanik, Kristan, Skocaj, "DRAEM - A discriminatively trained
               reconstruction embedding for surface anomaly detection", ICCV 2021.
  * [official] github.com/VitjanZ/DRAEM (the authors' code).
  * [anomalib] openvinotoolkit/anomalib's DRAEM implementation.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from core.errors import ConfigError

T = TypeVar("T")

AnomalySourceKind = Literal["builtin", "colour", "folder"]
Preset = Literal["paper", "compact"]
Device = Literal["auto", "cpu", "cuda"]


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def check_stages(stages) -> None:
    """Backbone stages (output strides) a method reads features from: distinct values of
    (4, 8, 16, 32), at least one; :class:`ConfigError` otherwise."""
    _check(
        len(stages) >= 1
        and len(set(stages)) == len(stages)
        and all(s in (4, 8, 16, 32) for s in stages),
        f"stages must be distinct values from (4, 8, 16, 32), got {stages}",
    )


class _DictMixin:
    """``to_dict`` / ``from_dict`` / ``to_json`` helpers shared by all configs."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: type[T], d: dict[str, Any]) -> T:
        names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(d) - set(names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)

    @classmethod
    def from_json(cls: type[T], s: str) -> T:
        return cls.from_dict(json.loads(s))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SimulatorConfig(_DictMixin):
    """Synthetic anomaly simulator settings ([official] ``data_loader.py`` defaults).

    Attributes:
        perlin_scale_min / perlin_scale_max: Perlin scale exponents; the noise
            scale per axis is ``2**k`` with ``k`` drawn uniformly from
            ``[perlin_scale_min, perlin_scale_max)`` independently per axis
            ([official]: ``k in 0..5``).
        rotation_deg: the noise is rotated by a uniform angle in ``±rotation_deg``.
        threshold: Perlin noise > threshold becomes the anomaly mask.
        beta_min / beta_max: blending factor ``beta`` uniform in this range; the
            anomalous pixels are ``(1 - beta) * texture + beta * image``
            ([official]: ``beta = U(0, 0.8)``).
        anomaly_probability: probability that a sample gets an anomaly at all
            ([official]: 0.5; the rest are left clean with an empty mask).
        n_augmentations: how many random texture augmentations are chained
            ([official]: 3 of a list of 10).
        source: ``builtin`` (procedural textures, no download), ``colour``
            (homogeneous colour patches, the paper's DTD-free ablation) or
            ``folder`` (images under ``source_dir``: DTD ``*/*.jpg`` or flat).
        source_dir: folder of texture images when ``source == "folder"``.
        image_size: (H, W) of the samples the simulator produces.
        rotate_image_prob: probability that the good image itself is rotated by a
            uniform angle in ``±90°`` before the anomaly is pasted ([official]:
            0.3, ``do_aug_orig = rand > 0.7``; 0 disables it).
    """

    perlin_scale_min: int = 0
    perlin_scale_max: int = 6
    rotation_deg: float = 90.0
    threshold: float = 0.5
    beta_min: float = 0.0
    beta_max: float = 0.8
    anomaly_probability: float = 0.5
    n_augmentations: int = 3
    source: AnomalySourceKind = "builtin"
    source_dir: str | None = None
    image_size: tuple[int, int] = (256, 256)
    rotate_image_prob: float = 0.3

    def __post_init__(self) -> None:
        _check(
            0 <= self.perlin_scale_min < self.perlin_scale_max <= 8,
            f"perlin_scale_min/max must satisfy 0 <= min < max <= 8, got "
            f"{self.perlin_scale_min}/{self.perlin_scale_max}",
        )
        _check(
            0 <= self.rotation_deg <= 180,
            f"rotation_deg must be in [0, 180], got {self.rotation_deg}",
        )
        _check(-1.0 < self.threshold < 1.0, f"threshold must be in (-1, 1), got {self.threshold}")
        _check(
            0.0 <= self.beta_min <= self.beta_max <= 1.0,
            f"beta range must satisfy 0 <= beta_min <= beta_max <= 1, got {self.beta_min}/{self.beta_max}",
        )
        _check(
            0.0 <= self.anomaly_probability <= 1.0,
            f"anomaly_probability must be in [0, 1], got {self.anomaly_probability}",
        )
        _check(
            0 <= self.n_augmentations <= 10,
            f"n_augmentations must be in [0, 10], got {self.n_augmentations}",
        )
        _check(
            self.source in ("builtin", "colour", "folder"),
            f"source must be builtin|colour|folder, got {self.source!r}",
        )
        _check(
            self.source != "folder" or bool(self.source_dir),
            "source='folder' needs source_dir (a folder of texture images)",
        )
        _check(
            len(self.image_size) == 2
            and all(isinstance(s, int) and 16 <= s <= 4096 for s in self.image_size),
            f"image_size must be (H, W) with 16 <= H, W <= 4096, got {self.image_size}",
        )
        _check(
            0.0 <= self.rotate_image_prob <= 1.0,
            f"rotate_image_prob must be in [0, 1], got {self.rotate_image_prob}",
        )


#: largest network a stored config may ask for (the paper's widths are 128 and 64, its
#: input 256): a damaged or foreign config is refused instead of exhausting memory
MAX_SIDE, MAX_WIDTH = 2048, 512


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelConfig(_DictMixin):
    """Network architecture.

    ``paper``: [paper]/[official] reconstructive sub-network base width 128,
    discriminative U-Net base width 64, 256x256 input (~97 M parameters).
    ``compact``: the CPU preset (see :func:`model_preset` and ``core/models/draem/compact.py``).

    ``preset`` is the variant (:mod:`core.models.draem.recipe`): ``paper`` builds [paper]'s two
    sub-networks (trained from scratch) at the given widths; ``compact`` builds
    ``core.models.draem.compact.CompactDraem`` (frozen ImageNet encoder + trainable segmentation head
    of width ``disc_width``; no reconstructive sub-network, ``recon_width`` unused).
    ``backbone`` follows the variant (``none`` / ``efficientnet_lite0``) and is only
    recorded.

    Geometry (``core/data/geometry.py``): with ``keep_aspect=False`` ([paper]) every image
    is squashed to ``image_size``.  With ``keep_aspect=True`` an image keeps its
    aspect ratio and is scaled (never enlarged) to at most ``work_area**2`` pixels,
    sides multiples of 16; ``image_size`` is then the size of the square training
    crops.  Maps are always returned at the original image size.

    ``score_kernel``: the image score is the maximum of the anomaly map mean-filtered
    with this odd window at the model's resolution ([paper]: 21; the compact preset: 5,
    see :func:`model_preset`).  1 scores the plain maximum.

    ``flip_views``: how many views of an image are averaged into its anomaly map at
    inference: 1 = the image only ([paper]); 2 = also its left-right mirror; 3 = also
    its up-down mirror (each map mirrored back).  Costs one forward pass per view.
    The compact preset uses 3: it trains on randomly mirrored crops, so the mirrors
    are in its training distribution (measured on magnetic_tile: +0.02-0.03 image
    AUROC on five models, docs/benchmarks.md).

    ``standardise`` (compact preset only): every image is standardised at its working
    size (all channels together to mean 128, standard deviation 40 grey levels,
    :func:`core.data.geometry.standardise`) before the network, in training and at inference,
    so that a part photographed brighter or with more contrast looks like the others.
    """

    preset: Preset = "paper"
    image_size: tuple[int, int] = (256, 256)
    recon_width: int = 128
    disc_width: int = 64
    in_channels: int = 3
    keep_aspect: bool = False
    work_area: int = 320
    backbone: str = "none"
    score_kernel: int = 21
    flip_views: int = 1
    standardise: bool = False

    def __post_init__(self) -> None:
        _check(
            self.standardise in (False, True)
            and (not self.standardise or self.preset == "compact"),
            f"standardise must be a bool and only with the compact preset, got {self.standardise!r}",
        )
        _check(
            self.flip_views in (1, 2, 3),
            f"flip_views must be 1, 2 or 3, got {self.flip_views!r}",
        )
        _check(
            isinstance(self.score_kernel, int)
            and 1 <= self.score_kernel <= 63
            and self.score_kernel % 2,
            f"score_kernel must be an odd integer in [1, 63], got {self.score_kernel!r}",
        )
        _check(
            self.preset in ("paper", "compact"),
            f"preset must be paper|compact, got {self.preset!r}",
        )
        _check(
            isinstance(self.image_size, tuple | list)
            and len(self.image_size) == 2
            and all(_int(s) and 32 <= s <= MAX_SIDE and s % 16 == 0 for s in self.image_size),
            f"image_size must be (H, W), multiples of 16 in [32, {MAX_SIDE}], "
            f"got {self.image_size!r}",
        )
        for name in ("recon_width", "disc_width"):
            width = getattr(self, name)
            _check(
                _int(width) and 4 <= width <= MAX_WIDTH,
                f"{name} must be an integer in [4, {MAX_WIDTH}], got {width!r}",
            )
        _check(self.in_channels in (1, 3), f"in_channels must be 1 or 3, got {self.in_channels}")
        _check(
            isinstance(self.keep_aspect, bool),
            f"keep_aspect must be a bool, got {self.keep_aspect!r}",
        )
        _check(
            64 <= self.work_area <= 2048, f"work_area must be in [64, 2048], got {self.work_area}"
        )
        _check(
            self.backbone in ("none", "efficientnet_lite0"),
            f"backbone must be none|efficientnet_lite0, got {self.backbone!r}",
        )
        # the variant decides the network: the compact one is built on EfficientNet-Lite0,
        # the paper's from scratch (the field is kept so that stored configs stay readable)
        object.__setattr__(
            self, "backbone", "efficientnet_lite0" if self.preset == "compact" else "none"
        )


def model_preset(name: str) -> ModelConfig:
    """Return the :class:`ModelConfig` of a named preset (``paper`` or ``compact``)."""
    if name == "paper":
        return ModelConfig(preset="paper")
    if name == "compact":
        return ModelConfig(
            preset="compact",
            image_size=(224, 224),
            recon_width=32,
            disc_width=32,
            keep_aspect=True,
            work_area=320,
            backbone="efficientnet_lite0",
            # 5x5 instead of [paper]'s 21x21: +0.04-0.06 image AUROC on every magnetic_tile
            # run (9 runs, docs/benchmarks.md), the demo set unchanged at 1.0; the head's map
            # is already smooth (upsampled from stride 2), so 5x5 still ignores single pixels.
            score_kernel=5,
            # the map averaged over the image and its two mirrors: +0.02-0.03 image AUROC
            # on five magnetic_tile models (the network trains on mirrored crops)
            flip_views=3,
            # each image standardised (brightness, contrast): magnetic_tile, 3 seeds at
            # 2 min: image AUROC 0.843 -> 0.858 (spread 0.028 -> 0.003), pixel 0.694 -> 0.717
            standardise=True,
        )
    raise ConfigError(f"unknown preset {name!r}; choose 'paper' or 'compact'")


@dataclass(frozen=True)
class TrainConfig(_DictMixin):
    """Training settings.

    Budget: exactly one of ``steps`` / ``minutes`` / ``epochs`` is used; if
    several are given the first that runs out stops training.  The learning-rate
    schedule is [official]'s MultiStepLR (x0.2 at 80 % and 90 % of the budget),
    scaled to whatever budget is given.
    """

    steps: int | None = None
    minutes: float | None = None
    epochs: int | None = None
    batch_size: int = 8
    lr: float = 1e-4
    lr_milestones: tuple[float, float] = (0.8, 0.9)
    lr_gamma: float = 0.2
    seed: int = 0
    device: Device = "auto"
    amp: bool = True
    num_workers: int = 2
    checkpoint_every_s: float = 120.0
    preview_every_s: float = 10.0

    def __post_init__(self) -> None:
        _check(
            self.steps is not None or self.minutes is not None or self.epochs is not None,
            "a training budget is needed: set steps, minutes or epochs",
        )
        _check(self.steps is None or self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        _check(self.minutes is None or self.minutes > 0, f"minutes must be > 0, got {self.minutes}")
        _check(self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(
            1 <= self.batch_size <= 256, f"batch_size must be in [1, 256], got {self.batch_size}"
        )
        _check(0 < self.lr < 1, f"lr must be in (0, 1), got {self.lr}")
        _check(
            len(self.lr_milestones) == 2
            and 0 < self.lr_milestones[0] <= self.lr_milestones[1] <= 1,
            f"lr_milestones must be two fractions 0 < a <= b <= 1, got {self.lr_milestones}",
        )
        _check(0 < self.lr_gamma <= 1, f"lr_gamma must be in (0, 1], got {self.lr_gamma}")
        _check(
            self.device in ("auto", "cpu", "cuda"),
            f"device must be auto|cpu|cuda, got {self.device!r}",
        )
        _check(
            0 <= self.num_workers <= 32, f"num_workers must be in [0, 32], got {self.num_workers}"
        )
        _check(self.checkpoint_every_s > 0, "checkpoint_every_s must be > 0")
        _check(self.preview_every_s > 0, "preview_every_s must be > 0")


@dataclass(frozen=True)
class Thresholds(_DictMixin):
    """Decision thresholds on the image score and on the per-pixel anomaly map.

    Both live on the same scale as :class:`core.types.Prediction` values.
    ``source`` records how they were chosen (e.g. ``"percentile-99 of 200 good"``).
    """

    image: float = 0.5
    pixel: float = 0.5
    source: str = "default"

    def __post_init__(self) -> None:
        import math

        _check(math.isfinite(self.image), f"image threshold must be finite, got {self.image}")
        _check(math.isfinite(self.pixel), f"pixel threshold must be finite, got {self.pixel}")


__all__ = [
    "ModelConfig",
    "SimulatorConfig",
    "Thresholds",
    "TrainConfig",
    "model_preset",
]
