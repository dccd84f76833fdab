"""The frozen records a project holds: training settings, trained models, inspected batches.

:class:`app.components.project.Project` keeps lists of these and writes them into
``project.json`` with :func:`dataclasses.asdict`; their fields are that file's keys
(checked by :mod:`app.components.project_schema` before they are built again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.config import TrainConfig
from core.errors import ConfigError
from core.models.backbone_choice import needs_weights_file
from core.registry import data_config, get_method, method_names

BUDGET_KINDS = ("steps", "epochs", "minutes")
#: the working areas (side of the square of equal area, pixels) the training page offers
WORK_AREA_RANGE = (128, 2048)
#: the labels a batch stores per image
LABELS = ("good", "defect")


@dataclass(frozen=True)
class TrainingSettings:
    """What the training page shows; turned into a :class:`TrainConfig` on start.

    ``budget_kind`` is ``steps`` / ``epochs`` / ``minutes``; ``budget_value`` its amount.
    ``preset`` is ``paper`` / ``compact``, or ``auto`` (compact on a CPU, paper on a GPU).
    ``max_minutes``: an optional time cap on a steps or epochs budget (the run stops at
    whichever comes first, and says so); the demo project's quick model uses one.
    ``work_area``: the working area the user set (``work_area**2`` pixels, aspect ratio
    kept), offered to a method that takes the ``work_area`` run option; None: the method's
    own default (:meth:`work_area_default`).
    ``method_chosen``: the user picked ``method`` for this project, so the method proposed
    for the kind of its good images (:mod:`app.components.proposal`) no longer replaces it.
    """

    method: str = "draem"
    preset: str = "auto"
    device: str = "auto"
    budget_kind: str = "steps"
    budget_value: float = 2000
    batch_size: int = 8
    seed: int = 0
    #: the backbone of PatchCore and the flow (``core.models.backbone.load_backbone`` name)
    #: and its local weights file (used only by a backbone that needs one)
    backbone: str = "efficientnet_lite0"
    backbone_weights: str = ""
    max_minutes: float | None = None
    method_chosen: bool = False
    work_area: int | None = None

    def __post_init__(self) -> None:
        if self.method not in method_names():
            raise ConfigError(f"method must be one of {method_names()}, got {self.method!r}")
        if self.preset not in ("auto", "paper", "compact"):
            raise ConfigError(f"preset must be auto|paper|compact, got {self.preset!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto|cpu|cuda, got {self.device!r}")
        if self.budget_kind not in BUDGET_KINDS:
            raise ConfigError(
                f"budget_kind must be one of {BUDGET_KINDS}, got {self.budget_kind!r}"
            )
        if not self.budget_value > 0:
            raise ConfigError(f"the training budget must be > 0, got {self.budget_value}")
        if self.max_minutes is not None and not 0 < self.max_minutes <= 1e6:
            raise ConfigError(f"the time cap must be > 0 minutes, got {self.max_minutes}")
        lo, hi = WORK_AREA_RANGE
        if self.work_area is not None and not lo <= self.work_area <= hi:
            raise ConfigError(f"the working area must be {lo}-{hi} px, got {self.work_area}")

    def method_config(self, kind: str, sizes: Sequence[tuple[int, int]] = ()) -> Any:
        """The method's core config for a device kind (raises ``ConfigError`` when it cannot work).

        The settings are offered to the method as run options; it takes the ones it knows.
        The working area goes only where the chosen variant takes it
        (:meth:`work_area_default`; the page shows it disabled elsewhere); unset, it is
        fitted to the good images' ``sizes`` ((h, w) pairs,
        :func:`core.registry.data_config`).
        """
        return self.fitted_config(kind, sizes)[0]

    def fitted_config(self, kind: str, sizes: Sequence[tuple[int, int]] = ()) -> tuple[Any, str]:
        """:meth:`method_config` and the note saying why its working area is not the
        method's default (empty when it is, or when the user set the area)."""
        area = self.work_area if self.work_area_default(kind) is not None else None
        return self._config(kind, area, sizes=sizes)

    def work_area_default(self, kind: str, sizes: Sequence[tuple[int, int]] = ()) -> int | None:
        """The working area the chosen method uses for a device kind and good images of
        ``sizes`` when none is set, or None when it takes none: no ``work_area`` run
        option, or a variant (preset) that refuses one (e.g. one that scales every image
        to a fixed size)."""
        if "work_area" not in get_method(self.method).options:
            return None
        try:  # whatever the backbone (its weights file may not be chosen yet)
            value = int(self._config(kind, None, backbone=False, sizes=sizes)[0].work_area)
            self._config(kind, value, backbone=False)  # the chosen variant takes it
        except (ConfigError, AttributeError, TypeError, ValueError):
            return None
        return value

    def _config(
        self,
        kind: str,
        work_area: int | None,
        backbone: bool = True,
        sizes: Sequence[tuple[int, int]] = (),
    ) -> tuple[Any, str]:
        """The config from the offered run options and its working-area note;
        ``backbone=False`` leaves the backbone at the method's default.  A weights file
        goes only with a backbone that needs one (the page keeps the file of an earlier
        choice)."""
        spec = get_method(self.method)
        own_file = backbone and needs_weights_file(self.backbone)
        offered = {
            "preset": None if self.preset == "auto" else self.preset,
            "backbone": self.backbone if backbone else None,
            "backbone_weights": (self.backbone_weights or None) if own_file else None,
            "work_area": work_area,
        }
        return data_config(
            self.method, {k: v for k, v in offered.items() if k in spec.options}, kind, sizes
        )

    def to_train_config(self, **overrides: Any) -> TrainConfig:
        """The core :class:`TrainConfig` for these settings (``overrides`` win)."""
        budget: dict[str, Any] = {"steps": None, "epochs": None, "minutes": None}
        v = self.budget_value
        budget[self.budget_kind] = float(v) if self.budget_kind == "minutes" else max(1, int(v))
        if self.max_minutes is not None and self.budget_kind != "minutes":
            budget["minutes"] = float(self.max_minutes)
        kw = {**budget, "batch_size": self.batch_size, "seed": self.seed, "device": self.device}
        kw.update(overrides)
        return TrainConfig(**kw)


@dataclass(frozen=True)
class ModelEntry:
    """A trained model (checkpoint) of the project. ``status``: finished | cancelled | failed."""

    name: str
    path: str
    method: str = "draem"
    preset: str = ""
    status: str = "finished"
    steps: int = 0
    elapsed_s: float = 0.0
    created: str = ""
    note: str = ""


@dataclass(frozen=True)
class BatchEntry:
    """An inspected batch: the files, the model used, labels and the HDF5 export if any.

    ``state_path`` is a JSON snapshot of the inspection view (scores, labels,
    painted masks, thresholds) written by the GUI next to the project file.
    """

    name: str
    paths: tuple[str, ...] = ()
    model: str | None = None
    export_path: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    state_path: str | None = None


__all__ = [
    "BUDGET_KINDS",
    "LABELS",
    "WORK_AREA_RANGE",
    "BatchEntry",
    "ModelEntry",
    "TrainingSettings",
]
