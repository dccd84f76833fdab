"""Project page: what the project holds, its models, recent projects and the next step."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app._qt.project_qt import ProjectAdapter
from app._qt.settings import Settings
from app._qt.widgets.common import FAIL_RGB, PASS_RGB, SPACING, button
from app.components.project import Project
from app.components.training import format_duration

WAIT_RGB = (200, 140, 0)
MODEL_COLUMNS = (
    "name",
    "method",
    "preset/device",
    "status",
    "steps",
    "time",
    "created",
    "checkpoint / note",
)
STEPS = (
    ("Good images", "Add defect-free images of the product (files or folders, or drop them)."),
    ("Synthetic anomalies", "Check that simulated defects look plausible on your images."),
    ("Training", "Train a model (or fit PatchCore); cancel any time, the checkpoint is kept."),
    ("Inspection", "Drop new images, set the threshold, label, export to HDF5."),
)


class ProjectPage(QWidget):
    """The 'Project' page. Emits requests; the main window runs the dialogs."""

    status_message = Signal(str)
    new_requested = Signal()
    open_requested = Signal()
    demo_requested = Signal()
    open_path_requested = Signal(str)
    goto_page = Signal(int)
    model_activated = Signal(object)  # ModelEntry made active by the user
    train_requested = Signal()  # the "train a model now" action of a project without one

    def __init__(self, adapter: ProjectAdapter, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.adapter, self.settings = adapter, settings
        self.title = QLabel()
        self.title.setObjectName("title")
        self.name = QLineEdit()
        self.name.setToolTip("Project name (press Enter to rename)")
        self.name.editingFinished.connect(self._rename)
        self.folder = QLabel()
        self.folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder.setToolTip("The project folder: project.json, models/ and exports/")
        head = QHBoxLayout()
        head.addWidget(QLabel("Name"))
        head.addWidget(self.name, 1)
        for text, tip, sig in (
            ("New…", "Create a new project in an empty folder (Ctrl+N)", self.new_requested),
            ("Open…", "Open a project folder (Ctrl+O)", self.open_requested),
            ("Open demo", "Open the bundled demo project (brick surface)", self.demo_requested),
        ):
            head.addWidget(button(text, tip, sig.emit))

        self.steps = QGridLayout()
        self.step_labels: list[QLabel] = []
        for i, (title, text) in enumerate(STEPS):
            b = button(
                f"{i + 1}. {title}",
                f"Go to {title} (Ctrl+{i + 2})",
                lambda _=False, k=i + 1: self.goto_page.emit(k),
            )
            b.setMinimumWidth(190)
            lab = QLabel(text)
            lab.setWordWrap(True)
            self.steps.addWidget(b, i, 0)
            self.steps.addWidget(lab, i, 1)
            self.step_labels.append(lab)
        self.quick_train = button(
            "Train a model now",
            "Train with the Training page's settings, then inspect the project's batch",
            self.train_requested.emit,
        )
        self.quick_train.setObjectName("primary")
        self.quick_train.setVisible(False)
        self.steps.addWidget(self.quick_train, len(STEPS), 0, 1, 2)
        steps_box = QGroupBox("Workflow")
        steps_box.setLayout(self.steps)

        self.models = QTableWidget(0, len(MODEL_COLUMNS))
        self.models.setHorizontalHeaderLabels(MODEL_COLUMNS)
        self.models.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.models.horizontalHeader().setStretchLastSection(True)
        self.models.verticalHeader().setVisible(False)
        self.models.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.models.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.models.setToolTip(
            "Trained models. Double-click one to use it for inspection (bold = in use)."
        )
        self.models.cellDoubleClicked.connect(self._activate_row)
        models_box = QGroupBox("Models")
        QVBoxLayout(models_box).addWidget(self.models)

        self.recent = QListWidget()
        self.recent.setToolTip("Recent projects. Double-click to open.")
        self.recent.itemActivated.connect(
            lambda it: self.open_path_requested.emit(it.data(Qt.ItemDataRole.UserRole))
        )
        recent_box = QGroupBox("Recent projects")
        QVBoxLayout(recent_box).addWidget(self.recent)

        grid = QGridLayout()
        grid.setSpacing(SPACING)
        grid.addWidget(steps_box, 0, 0)
        grid.addWidget(recent_box, 0, 1)
        grid.addWidget(models_box, 1, 0, 1, 2)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        grid.setRowStretch(1, 1)
        lay = QVBoxLayout(self)
        lay.setSpacing(SPACING)
        lay.addWidget(self.title)
        lay.addLayout(head)
        lay.addWidget(self.folder)
        lay.addLayout(grid, 1)

        adapter.project_replaced.connect(lambda _p: self.refresh())
        adapter.changed.connect(lambda _e: self.refresh())
        self.refresh()

    # ----------------------------------------------------------------- model → view
    def refresh(self) -> None:
        p = self.adapter.project
        self.title.setText(p.name if p is not None else "No project open")
        self.name.setEnabled(p is not None)
        if p is not None and not self.name.hasFocus():
            self.name.setText(p.name)
        self.folder.setText(
            str(p.root) if p is not None else "Create a project (Ctrl+N) or open the demo to begin."
        )
        self._fill_steps(p)
        self._fill_models(p)
        self._fill_recent()

    def show_quick_train(self, text: str | None) -> None:
        """Show the one-click training action with ``text`` (None hides it)."""
        self.quick_train.setVisible(text is not None)
        if text is not None:
            self.quick_train.setText(text)

    def _fill_steps(self, p: Project | None) -> None:
        """One line per step; a ✓ only on a step that has been done (the simulator step
        has nothing to finish and never gets one)."""
        if p is None:
            return
        n = len(p.good_images)
        usable = [m for m in p.models if m.status != "failed"]
        inspected = [b for b in p.batches if b.state_path or b.export_path]
        waiting = sum(len(b.paths) for b in p.batches if b not in inspected)
        batches = (
            f"{len(inspected)} inspected batch(es): " + ", ".join(b.name for b in inspected[:3])
            if inspected
            else f"{waiting} image(s) wait for a model to inspect them"
            if waiting
            else STEPS[3][1]
        )
        ok = [n > 0, False, bool(usable), bool(inspected)]
        facts = [
            f"{n} good image(s)" if n else STEPS[0][1],
            f"source: {p.simulator.source}, threshold {p.simulator.threshold:g}, β {p.simulator.beta_min:g}–{p.simulator.beta_max:g}",
            f"{len(p.models)} model(s); in use: {p.active_model or 'none'}"
            if p.models
            else "No model yet. " + STEPS[2][1],
            batches,
        ]
        for lab, text, done in zip(self.step_labels, facts, ok, strict=True):
            lab.setText(("✓ " if done else "") + text)
            lab.setStyleSheet(f"color: rgb{PASS_RGB};" if done else "")

    def _fill_models(self, p: Project | None) -> None:
        models = p.models if p is not None else []
        self.models.setRowCount(len(models))
        for r, m in enumerate(models):
            when = m.created[:16]  # "YYYY-MM-DD HH:MM"
            cells = (
                m.name,
                m.method,
                m.preset,
                m.status,
                str(m.steps),
                format_duration(m.elapsed_s),
                when,
                f"{m.path}   {m.note}".strip(),
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{m.path}\n{m.note}".strip())
                font = item.font()
                font.setBold(m.name == p.active_model)
                item.setFont(font)
                if c == 3 and m.status != "finished":
                    item.setForeground(QColor(*(FAIL_RGB if m.status == "failed" else WAIT_RGB)))
                self.models.setItem(r, c, item)

    def _fill_recent(self) -> None:
        self.recent.clear()
        for folder in self.settings.recent_projects():
            item = QListWidgetItem(f"{Path(folder).name}   —   {folder}")
            item.setData(Qt.ItemDataRole.UserRole, folder)
            item.setToolTip(folder)
            self.recent.addItem(item)
        if self.recent.count() == 0:
            self.recent.addItem(QListWidgetItem("(none yet)"))

    # ----------------------------------------------------------------- view → model
    def _rename(self) -> None:
        p = self.adapter.project
        if p is not None and self.name.text().strip() and self.name.text().strip() != p.name:
            p.set_name(self.name.text())

    def _activate_row(self, row: int, _col: int) -> None:
        p = self.adapter.project
        if p is None or row >= len(p.models):
            return
        m = p.models[row]
        if m.status == "failed":
            self.status_message.emit(f"{m.name} failed and cannot be used: {m.note}")
            return
        p.set_active_model(m.name)
        self.model_activated.emit(m)
        self.status_message.emit(f"Using {m.name} for inspection")
