"""Project actions shared by the menus and the project page: new, open, save, demo, recent.

Every action reports through ``status_message`` (a readable line for the status
bar) and returns whether it worked; nothing here raises to the caller for a
user mistake (missing folder, damaged project file, unwritable disk).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Signal

from app._qt.project_qt import ProjectAdapter
from app._qt.settings import Settings
from app.components.project import (
    BatchEntry,
    Project,
    ProjectError,
    TrainingSettings,
    new_project,
    open_project,
)
from core.errors import CoreError

DEMO_NAME = "Demo – brick surface"
#: the demo test images; the inspection link inspects a batch by this name like its own
DEMO_BATCH = "inspection"


def default_demo_folder() -> Path:
    """Where the demo project lives (writable per-user data folder)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".draem-workstation") / "demo-project"


def make_demo_project(folder: str | Path) -> Project:
    """Create (or reopen) the demo project: the bundled demo set's good images and test batch.

    An existing demo project is reopened once it holds work (a model or an inspected
    batch); an untouched or damaged one is created afresh.

    The good images are ``resources/demo/brick/train/good`` (read in place, never
    copied); the demo test images are recorded as a batch to inspect once a model
    is trained, labelled from their folder names (``test/good`` → good, every other
    ``test/<type>`` → defect: the data set's ground truth, as the command-line demo's
    export records it).  Training is set to the command-line demo's quick budget
    (compact preset, :data:`core.demo.DEMO_STEPS` steps capped at
    :data:`core.demo.DEMO_MINUTES` minutes), so one click gives a usable model.

    Raises:
        ProjectError: the demo data are missing or the folder is not writable.
    """
    from core.data.images import good_image_paths, read_mvtec
    from core.demo import DEMO_MINUTES, DEMO_STEPS, demo_root

    folder = Path(folder)
    if (folder / "project.json").is_file():
        try:
            kept = open_project(folder)
        except ProjectError:
            kept = None  # the demo folder is the application's own: a damaged one is rebuilt
        if kept is not None and (kept.models or any(b.state_path for b in kept.batches)):
            return kept  # the user's work on the demo stays
    try:
        root = demo_root()
        goods = good_image_paths(root)
        tests = read_mvtec(root).test
    except CoreError as exc:
        raise ProjectError(str(exc)) from exc
    p = Project(folder, DEMO_NAME)
    p.add_good_images(goods)
    p.set_training(
        TrainingSettings(
            preset="compact",
            budget_kind="steps",
            budget_value=DEMO_STEPS,
            max_minutes=DEMO_MINUTES,
        )
    )
    p.set_batch(
        BatchEntry(
            name=DEMO_BATCH,
            paths=tuple(str(t.path) for t in tests),
            labels={str(t.path): "defect" if t.is_anomalous else "good" for t in tests},
        )
    )
    p.save()
    return p


class ProjectController(QObject):
    """Opens and saves projects into a :class:`ProjectAdapter`; keeps the recent list."""

    status_message = Signal(str)

    def __init__(
        self, adapter: ProjectAdapter, settings: Settings, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.adapter = adapter
        self.settings = settings
        #: called (no arguments) before every save, e.g. to capture the inspection view
        self.before_save: list = []

    @property
    def project(self) -> Project | None:
        return self.adapter.project

    def _use(self, project: Project, verb: str) -> bool:
        # said first: what the views report while taking the project (e.g. a damaged
        # inspection snapshot) must stay on the status bar, not be overwritten by this
        self.status_message.emit(f"{verb} project “{project.name}” ({project.root})")
        self.adapter.set_project(project)
        self.settings.add_recent_project(project.root)
        self.settings.set_last_folder("project", project.root.parent)
        return True

    def new(self, folder: str | Path, name: str | None = None) -> bool:
        if not self.autosave():
            return False
        try:
            return self._use(new_project(folder, name), "Created")
        except ProjectError as exc:
            self.status_message.emit(str(exc))
            return False

    def open(self, path: str | Path) -> bool:
        if self.project is not None and Path(path).resolve() in (
            self.project.root,
            self.project.file,
        ):
            return True
        if not self.autosave():
            return False
        try:
            return self._use(open_project(path), "Opened")
        except ProjectError as exc:
            self.status_message.emit(str(exc))
            return False

    def open_demo(self, folder: str | Path | None = None) -> bool:
        if not self.autosave():
            return False
        try:
            return self._use(make_demo_project(folder or default_demo_folder()), "Opened the demo")
        except ProjectError as exc:
            self.status_message.emit(f"Cannot open the demo project: {exc}")
            return False

    def save(self) -> bool:
        if self.project is None:
            return False
        for hook in self.before_save:
            hook()
        try:
            self.project.save()
        except ProjectError as exc:
            self.status_message.emit(str(exc))
            return False
        self.settings.add_recent_project(self.project.root)
        self.status_message.emit(f"Saved {self.project.file}")
        return True

    def save_as(self, folder: str | Path) -> bool:
        if self.project is None:
            return False
        if (Path(folder) / "project.json").exists() and Path(folder).resolve() != self.project.root:
            self.status_message.emit(f"{folder} already holds a project; choose an empty folder")
            return False
        try:
            self.project.save_as(folder)
        except ProjectError as exc:
            self.status_message.emit(str(exc))
            return False
        self.adapter.set_project(self.project)  # root changed: views re-read it
        return self._use(self.project, "Saved")

    def autosave(self) -> bool:
        """Save the current project if it has changes (before switching or quitting)."""
        p = self.project
        if p is None:
            return True
        for hook in self.before_save:
            hook()
        return self.save() if p.dirty else True


class DetectorLoader(QObject):
    """Loads a checkpoint with :func:`core.registry.load_detector` in the background.

    ``loaded(detector, path)`` on success, ``status_message(str)`` on failure;
    a newer :meth:`load` supersedes an older one still running.
    """

    loaded = Signal(object, str)
    status_message = Signal(str)

    def __init__(self, parent: QObject | None = None, loader=None) -> None:
        super().__init__(parent)
        self._loader = loader
        self._task = None
        self._generation = 0

    def load(self, path: str | Path) -> None:
        from app._qt.workers import Task

        loader = self._loader
        if loader is None:
            from core.registry import load_detector as loader
        self._generation += 1
        gen, path = self._generation, str(path)
        task = Task(loader, path, parent=self, name="load-detector", pass_callbacks=False)
        task.succeeded.connect(lambda det: self._done(gen, det, path))
        task.failed.connect(
            lambda msg: self.status_message.emit(f"Cannot load the model {path}: {msg}")
        )
        self._task = task
        task.start()

    def _done(self, gen: int, detector, path: str) -> None:
        if gen == self._generation:
            self.loaded.emit(detector, path)

    def shutdown(self) -> None:
        if self._task is not None:
            self._task.wait(10_000)
