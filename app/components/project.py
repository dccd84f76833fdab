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
others are stored absolute.  The frozen records a project holds (training
settings, model and batch entries) live in :mod:`app.components.project_entries`
and are importable from here too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from app.components.project_entries import (
    BUDGET_KINDS,
    LABELS,
    BatchEntry,
    ModelEntry,
    TrainingSettings,
)
from app.components.project_schema import MAX_PROJECT_BYTES, check_project
from app.components.schema import SchemaError, read_json
from core.config import SimulatorConfig, Thresholds
from core.errors import ConfigError
from core.io.files import atomic_write
from core.registry import method_names

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

Listener = Callable[[str], None]


class ProjectError(Exception):
    """A project file is missing, damaged or cannot be written (message is user-readable)."""


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
    "BUDGET_KINDS",
    "LABELS",
    "BatchEntry",
    "EVENTS",
    "ModelEntry",
    "Project",
    "ProjectError",
    "TrainingSettings",
    "new_project",
    "open_project",
]
