"""Good images page: add files/folders (dialog or drag-and-drop), thumbnail grid, warnings.

Reading the files (for thumbnails, sizes and corrupt-file detection) runs in a
background :class:`app._qt.workers.Task` over :func:`app.components.imagescan.scan_images`;
results stream into the grid as they arrive.  Once the data-kind sample is read, the
method proposed for these images (:mod:`app.components.proposal`) goes out as
``proposal_changed`` (the main window hands it to the training page).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from app._qt.project_qt import ProjectAdapter
from app._qt.settings import Settings
from app._qt.widgets.common import SPACING, FileDrop, MessageList, button
from app._qt.widgets.thumbnails import PATH_ROLE, ThumbnailModel
from app._qt.workers import Task
from app.components.imagescan import (
    THUMB_SIDE,
    ImageInfo,
    ScanProgress,
    collect_images,
    scan_images,
    summarize,
)
from app.components.proposal import propose
from core.data.images import IMAGE_EXTENSIONS
from core.data.kind import SAMPLE
from core.types import FailedImage


class GoodImagesPage(FileDrop, QWidget):
    """The 'Good images' workflow page. Emits ``status_message`` for the status bar."""

    status_message = Signal(str)
    #: the :class:`app.components.proposal.Proposal` for the good images, or None
    proposal_changed = Signal(object)

    def __init__(self, adapter: ProjectAdapter, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.adapter = adapter
        self.settings = settings
        self._task: Task | None = None
        self._queued: list[str] = []
        self._listing: Task | None = None
        self.proposal = None
        self.setAcceptDrops(True)

        self.model = ThumbnailModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setUniformItemSizes(True)
        self.view.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.view.setGridSize(QSize(THUMB_SIDE + 24, THUMB_SIDE + 34))
        self.view.setSpacing(4)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setToolTip("Defect-free images used for training. Drop files or folders here.")

        self.add_files_btn = button(
            "Add files…", "Add image files to the good set", self.add_files_dialog, "Ctrl+I"
        )
        self.add_folder_btn = button(
            "Add folder…",
            "Add every image in a folder (and its sub-folders)",
            self.add_folder_dialog,
            "Ctrl+Shift+I",
        )
        self.remove_btn = button(
            "Remove selected", "Remove the selected images from the project", self.remove_selected
        )
        self.remove_btn.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.remove_failed_btn = button(
            "Remove unreadable", "Remove every file that could not be read", self.remove_failed
        )
        self.summary = QLabel("no images")
        self.summary.setObjectName("summary")
        self.summary.setToolTip("Number of usable images and their sizes (width×height, count)")
        self.warnings = QLabel()
        self.warnings.setObjectName("warning")
        self.warnings.setWordWrap(True)
        self.warnings.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setToolTip("Reading images")
        self.progress.setVisible(False)
        self.problems = MessageList()
        self.problems.setVisible(False)

        top = QHBoxLayout()
        top.setSpacing(SPACING)
        for b in (self.add_files_btn, self.add_folder_btn, self.remove_btn, self.remove_failed_btn):
            top.addWidget(b)
        top.addStretch(1)
        top.addWidget(self.progress)
        lay = QVBoxLayout(self)
        lay.setSpacing(SPACING)
        lay.addLayout(top)
        lay.addWidget(self.summary)
        lay.addWidget(self.warnings)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.problems)

        adapter.project_replaced.connect(self._on_project_replaced)
        adapter.changed.connect(self._on_changed)
        self._on_project_replaced(adapter.project)

    # ----------------------------------------------------------------- actions
    def add_paths(self, paths: list[str | Path]) -> None:
        """Add files and/or folders; folders are listed in the background, then added."""
        if self.adapter.project is None:
            self.status_message.emit("Open or create a project first.")
            return
        task = Task(collect_images, [str(p) for p in paths], parent=self, pass_callbacks=False)
        target = self.adapter.project
        task.succeeded.connect(lambda files: self._add_files(files, target))
        task.failed.connect(self.status_message.emit)
        self._listing = task
        task.start()

    def _add_files(self, files: list[str], target) -> None:
        project = self.adapter.project
        if project is None or project is not target:  # another project was opened meanwhile
            return
        if not files:
            self.status_message.emit("No images found in what was added.")
            return
        n = project.add_good_images(files)
        dup = f", {len(files) - n} already present" if n < len(files) else ""
        self.status_message.emit(f"Added {n} image(s){dup}")

    def add_files_dialog(self) -> None:
        exts = " ".join(f"*{e}" for e in sorted(IMAGE_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Add good images",
            self.settings.last_folder("images"),
            f"Images ({exts});;All files (*)",
        )
        if files:
            self.settings.set_last_folder("images", files[0])
            self.add_paths(files)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Add a folder of good images", self.settings.last_folder("images")
        )
        if folder:
            self.settings.set_last_folder("images", folder)
            self.add_paths([folder])

    def selected_paths(self) -> list[str]:
        return [i.data(PATH_ROLE) for i in self.view.selectionModel().selectedIndexes()]

    def remove_selected(self) -> None:
        project, sel = self.adapter.project, self.selected_paths()
        if project is not None and sel:
            n = project.remove_good_images(sel)
            self.status_message.emit(f"Removed {n} image(s)")

    def remove_failed(self) -> None:
        project = self.adapter.project
        failed = [p for p in self.model.paths if p in self.model.failures]
        if project is not None and failed:
            n = project.remove_good_images(failed)
            self.status_message.emit(f"Removed {n} unreadable file(s)")

    # ----------------------------------------------------------------- binding
    def _on_project_replaced(self, project) -> None:
        self.shutdown()
        self.model.forget()
        if self.proposal is not None:  # the last project's: gone until this one is read
            self.proposal = None
            self.proposal_changed.emit(None)
        self._sync()

    def _on_changed(self, event: str) -> None:
        if event == "good_images":
            self._sync()

    def _sync(self) -> None:
        project = self.adapter.project
        paths = [str(p) for p in project.good_image_paths()] if project is not None else []
        self.model.set_paths(paths)
        todo = [p for p in paths if p not in self.model.infos and p not in self.model.failures]
        pending = set(self._queued)
        self._queued.extend(p for p in todo if p not in pending)
        for b in (self.remove_btn, self.remove_failed_btn):
            b.setEnabled(bool(paths))
        self._refresh_summary()
        self._start_scan()

    def _start_scan(self) -> None:
        if self._task is not None or not self._queued:
            return
        batch, self._queued = self._queued, []
        task = Task(scan_images, batch, parent=self, name="scan-good-images", keep=lambda r: True)
        task.progress.connect(self._on_scan_progress)
        task.failed.connect(self.status_message.emit)
        task.finished.connect(lambda: self._on_scan_finished(task))
        self._task = task
        self.progress.setRange(0, len(batch))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        task.start()

    def _on_scan_progress(self, p: ScanProgress) -> None:
        current = set(self.model.paths)
        self.model.add_results(
            [i for i in p.infos if i.path in current], [f for f in p.failures if f.path in current]
        )
        self.progress.setValue(p.done)
        self._refresh_summary()

    def _on_scan_finished(self, task: Task) -> None:
        if task is not self._task:  # a cancelled scan of a previous project
            return
        self._task = None
        self.progress.setVisible(False)
        self._start_scan()
        self._refresh_summary()

    def _refresh_summary(self) -> None:
        infos = [self.model.infos[p] for p in self.model.paths if p in self.model.infos]
        failed = [
            FailedImage(p, self.model.failures[p])
            for p in self.model.paths
            if p in self.model.failures
        ]
        summary, warnings = summarize(infos)
        waiting = len(self.model.paths) - len(infos) - len(failed)
        if waiting:
            summary += f" · reading {waiting}…"
        if failed:
            summary += f" · {len(failed)} unreadable"
        self.summary.setText(summary)
        self.warnings.setText("⚠ " + "\n⚠ ".join(warnings) if warnings else "")
        self.warnings.setVisible(bool(warnings))
        self.problems.set_messages([(f.path, f.reason) for f in failed])
        self.remove_failed_btn.setEnabled(bool(failed))
        self._update_proposal(infos, waiting)

    def _update_proposal(self, infos: list[ImageInfo], waiting: int) -> None:
        """Propose once the sample is complete (or nothing is left to read), so a half-read
        sample never switches the method back and forth."""
        voted = sum(i.object_like is not None for i in infos)
        if voted < SAMPLE and (waiting or self._task is not None):
            return
        proposal = propose(infos)
        if proposal != self.proposal:
            self.proposal = proposal
            self.proposal_changed.emit(proposal)

    def usable_infos(self) -> list[ImageInfo]:
        """Scanned, readable images in project order."""
        return [self.model.infos[p] for p in self.model.paths if p in self.model.infos]

    def shutdown(self) -> None:
        """Cancel the scan (window closing or project switch)."""
        self._queued = []
        if self._task is not None:
            self._task.cancel()
            self._task.wait(5000)
            self._task = None
        self.progress.setVisible(False)
