"""Qt-free project model: a folder with a small ``project.json``.

A project records everything the workflows need to resume where the user left:
the good images, the simulator settings, the training settings, the trained
models, the inspected batches with their labels, and the decision thresholds.

The model is plain Python (no Qt): widgets bind to it through
``app._qt.project_qt.ProjectAdapter``, which turns :meth:`Project.subscribe` events
into Qt signals.  Every mutating method notifies listeners with the name of the
part that changed (one of :data:`EVENTS`) and marks the project dirty.

File layout::

    <root>/project.json     this model (JSON, written atomically)
    <root>/models/          checkpoints trained from the GUI
    <root>/exports/         HDF5 batches exported from the GUI

Paths inside ``<root>`` are stored relative to it (the folder can be moved);
others are stored absolute.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from app.components.project_schema import MAX_PROJECT_BYTES, check_project
from app.components.schema import SchemaError, read_json
from core.config import SimulatorConfig, Thresholds, TrainConfig
from core.errors import ConfigError
from core.io.files import atomic_write
from core.registry import get_method, make_config, method_names

FILE_NAME = "project.json"
FORMAT = "draem-workstation-project"
VERSION = 1
EVENTS = (
    "name",
    "good_images",
    "simulator",
    "training",
    "models",
    "batches",
    "thresholds",
    "saved",
)
BUDGET_KINDS = ("steps", "epochs", "minutes")
LABELS = ("good", "defect")

Listener = Callable[[str], None]


class ProjectError(Exception):
    """A project file is missing, damaged or cannot be written (message is user-readable)."""


@dataclass(frozen=True)
class TrainingSettings:
    """What the training page shows; turned into a :class:`TrainConfig` on start.

    ``budget_kind`` is ``steps`` / ``epochs`` / ``minutes``; ``budget_value`` its amount.
    ``preset`` is ``paper`` / ``compact``, or ``auto`` (compact on a CPU, paper on a GPU).
    ``max_minutes``: an optional time cap on a steps or epochs budget (the run stops at
    whichever comes first, and says so); the demo project's quick model uses one.
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
    #: PatchCore's backbone (``core.models.backbone.load_backbone`` name) and its local weights
    backbone: str = "efficientnet_lite0"
    backbone_weights: str = ""
    max_minutes: float | None = None
    method_chosen: bool = False

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

    def method_config(self, kind: str) -> Any:
        """The method's core config for a device kind (raises ``ConfigError`` when it cannot work).

        The settings are offered to the method as run options; it takes the ones it knows.
        """
        spec = get_method(self.method)
        offered = {
            "preset": None if self.preset == "auto" else self.preset,
            "backbone": self.backbone,
            "backbone_weights": self.backbone_weights or None,
        }
        return make_config(
            self.method, {k: v for k, v in offered.items() if k in spec.options}, kind
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


class Project:
    """The project model. Mutate only through methods (they notify listeners)."""

    def __init__(self, root: str | os.PathLike, name: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.name = name or self.root.name
        self.good_images: list[str] = []
        self.simulator = SimulatorConfig()
        self.simulator_seed = 0
        self.training = TrainingSettings()
        self.models: list[ModelEntry] = []
        self.active_model: str | None = None
        self.batches: list[BatchEntry] = []
        self.thresholds: dict[str, Thresholds] = {}
        self.dirty = False
        self._listeners: list[Listener] = []

    # ----------------------------------------------------------------- observers
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` after each change; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, event: str, dirty: bool = True) -> None:
        if dirty:
            self.dirty = True
        for listener in list(self._listeners):
            listener(event)

    # ----------------------------------------------------------------- paths
    @property
    def file(self) -> Path:
        return self.root / FILE_NAME

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    def rel(self, path: str | os.PathLike) -> str:
        """How a path is stored: relative to the root when inside it, else absolute."""
        p = os.path.abspath(os.path.expanduser(os.fspath(path)))  # no symlink lookups: cheap
        root = str(self.root)
        if p == root or p.startswith(root + os.sep):
            return Path(os.path.relpath(p, root)).as_posix()
        return p

    def abs(self, stored: str) -> Path:
        """The absolute path of a stored path."""
        p = Path(stored)
        return p if p.is_absolute() else self.root / p

    def good_image_paths(self) -> list[Path]:
        return [self.abs(s) for s in self.good_images]

    # ----------------------------------------------------------------- mutation
    def set_name(self, name: str) -> None:
        name = name.strip()
        if not name:
            raise ProjectError("a project needs a name")
        if name != self.name:
            self.name = name
            self._changed("name")

    def add_good_images(self, paths: Iterable[str | os.PathLike]) -> int:
        """Add image files (already expanded); duplicates are ignored. Returns how many were new."""
        known = set(self.good_images)
        new = []
        for p in paths:
            s = self.rel(p)
            if s not in known:
                known.add(s)
                new.append(s)
        if new:
            self.good_images.extend(new)
            self._changed("good_images")
        return len(new)

    def remove_good_images(self, paths: Iterable[str | os.PathLike]) -> int:
        """Remove images (given as stored or absolute paths). Returns how many were removed."""
        drop = {self.rel(self.abs(str(p))) for p in paths}
        before = len(self.good_images)
        self.good_images = [s for s in self.good_images if s not in drop]
        removed = before - len(self.good_images)
        if removed:
            self._changed("good_images")
        return removed

    def set_simulator(self, config: SimulatorConfig, seed: int | None = None) -> None:
        seed = self.simulator_seed if seed is None else int(seed)
        if config != self.simulator or seed != self.simulator_seed:
            self.simulator, self.simulator_seed = config, seed
            self._changed("simulator")

    def set_training(self, settings: TrainingSettings) -> None:
        if settings != self.training:
            self.training = settings
            self._changed("training")

    def add_model(self, entry: ModelEntry, make_active: bool = True) -> ModelEntry:
        """Add (or replace, by name) a model; its path is stored project-relative if inside."""
        entry = replace(entry, path=self.rel(entry.path), created=entry.created or _now())
        self.models = [m for m in self.models if m.name != entry.name] + [entry]
        if make_active and entry.status != "failed":
            self.active_model = entry.name
        self._changed("models")
        return entry

    def set_active_model(self, name: str | None) -> None:
        if name is not None and self.model(name) is None:
            raise ProjectError(f"no model named {name!r} in this project")
        if name != self.active_model:
            self.active_model = name
            self._changed("models")

    def model(self, name: str | None) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def active(self) -> ModelEntry | None:
        return self.model(self.active_model)

    def new_model_name(self, method: str) -> str:
        n = 1 + sum(1 for m in self.models if m.method == method)
        names = {m.name for m in self.models}
        while f"{method}-{n}" in names:
            n += 1
        return f"{method}-{n}"

    def set_batch(self, batch: BatchEntry) -> None:
        """Add or replace (by name) an inspected batch."""
        batch = replace(
            batch,
            paths=tuple(self.rel(p) for p in batch.paths),
            export_path=self.rel(batch.export_path) if batch.export_path else None,
            labels={self.rel(k): v for k, v in batch.labels.items()},
            state_path=self.rel(batch.state_path) if batch.state_path else None,
        )
        bad = sorted({v for v in batch.labels.values()} - set(LABELS))
        if bad:
            raise ProjectError(f"labels must be one of {LABELS}, got {bad}")
        self.batches = [b for b in self.batches if b.name != batch.name] + [batch]
        self._changed("batches")

    def batch(self, name: str) -> BatchEntry | None:
        return next((b for b in self.batches if b.name == name), None)

    @property
    def batches_dir(self) -> Path:
        return self.root / "batches"

    def set_thresholds(self, model_name: str, thresholds: Thresholds) -> None:
        if self.thresholds.get(model_name) != thresholds:
            self.thresholds[model_name] = thresholds
            self._changed("thresholds")

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "good_images": list(self.good_images),
            "simulator": self.simulator.to_dict(),
            "simulator_seed": self.simulator_seed,
            "training": asdict(self.training),
            "models": [asdict(m) for m in self.models],
            "active_model": self.active_model,
            "batches": [{**asdict(b), "paths": list(b.paths)} for b in self.batches],
            "thresholds": {k: v.to_dict() for k, v in self.thresholds.items()},
        }

    @classmethod
    def from_dict(cls, root: str | os.PathLike, d: dict[str, Any]) -> Project:
        """A project from a parsed ``project.json``; every field is checked first
        (:mod:`app.components.project_schema`), so a damaged file raises
        :class:`ProjectError` naming the field and nothing half-built is returned."""
        file = Path(root) / FILE_NAME
        try:
            d = check_project(d, file_format=FORMAT, version=VERSION, methods=method_names())
            p = cls(root, d.get("name"))
            p.good_images = list(d.get("good_images", []))
            p.simulator = d.get("simulator", SimulatorConfig())
            p.simulator_seed = d.get("simulator_seed", 0)
            training = dict(d.get("training", {}))
            # a file from before the proposal: a method other than the default was chosen
            default = TrainingSettings.method
            training.setdefault("method_chosen", training.get("method", default) != default)
            p.training = TrainingSettings(**training)
            p.models = [ModelEntry(**m) for m in d.get("models", [])]
            p.active_model = d.get("active_model")
            p.batches = [
                BatchEntry(**{**b, "paths": tuple(b.get("paths", ()))})
                for b in d.get("batches", [])
            ]
            p.thresholds = dict(d.get("thresholds", {}))
        except SchemaError as exc:
            raise ProjectError(f"{file}: damaged project file: {exc}") from None
        except (ConfigError, TypeError, ValueError) as exc:
            raise ProjectError(f"{file}: damaged project file ({exc})") from None
        if p.active_model is not None and p.model(p.active_model) is None:
            p.active_model = None
        return p

    def save(self) -> Path:
        """Write ``project.json`` atomically (temp file + rename). Returns its path."""
        try:
            with atomic_write(self.file) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, indent=2, sort_keys=False)
        except OSError as exc:
            raise ProjectError(
                f"cannot save the project to {self.root}: {exc.strerror or exc}"
            ) from exc
        self.dirty = False
        self._changed("saved", dirty=False)
        return self.file

    def save_as(self, root: str | os.PathLike) -> Path:
        """Save into another folder; relative paths are rewritten to stay valid."""
        old = self.root
        new = Path(root).resolve()

        def move(s: str | None) -> str | None:
            if s is None:
                return None
            p = Path(s)
            full = p if p.is_absolute() else old / p
            try:
                return full.relative_to(new).as_posix()
            except ValueError:
                return str(full)

        self.good_images = [move(s) for s in self.good_images]  # type: ignore[misc]
        self.models = [replace(m, path=move(m.path)) for m in self.models]  # type: ignore[arg-type]
        self.batches = [
            replace(
                b,
                paths=tuple(move(s) for s in b.paths),  # type: ignore[misc]
                export_path=move(b.export_path),
                labels={move(k): v for k, v in b.labels.items()},  # type: ignore[misc]
                state_path=move(b.state_path),
            )
            for b in self.batches
        ]
        self.root = new
        if self.name == old.name:
            self.name = new.name
        return self.save()


def open_project(path: str | os.PathLike) -> Project:
    """Open a project from its folder or its ``project.json``; :class:`ProjectError` if unusable."""
    p = Path(path).expanduser()
    file = p if p.name == FILE_NAME or p.suffix == ".json" else p / FILE_NAME
    if not file.is_file():
        raise ProjectError(f"no project found at {p} (expected {FILE_NAME})")
    try:
        data = read_json(file, max_bytes=MAX_PROJECT_BYTES, what="project file")
    except OSError as exc:
        raise ProjectError(
            f"{file}: cannot read the project file ({exc.strerror or exc})"
        ) from None
    except SchemaError as exc:
        raise ProjectError(f"{file}: damaged project file: {exc.problem}") from None
    return Project.from_dict(file.parent, data)


def new_project(root: str | os.PathLike, name: str | None = None) -> Project:
    """Create (and save) an empty project in ``root``; refuses to overwrite one."""
    r = Path(root).expanduser()
    if (r / FILE_NAME).exists():
        raise ProjectError(f"{r} already holds a project; open it instead")
    p = Project(r, name)
    p.save()
    return p


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


__all__ = [
    "BatchEntry",
    "EVENTS",
    "ModelEntry",
    "Project",
    "ProjectError",
    "TrainingSettings",
    "new_project",
    "open_project",
]
