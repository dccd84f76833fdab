"""The main window: left navigation + stacked workflow pages + status bar. Lays out and wires only."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QStackedWidget,
    QWidget,
)

from app._qt.controller import DetectorLoader, ProjectController
from app._qt.inspection_link import InspectionLink
from app._qt.project_qt import ProjectAdapter
from app._qt.settings import APPLICATION, Settings
from app._qt.widgets.good_images import GoodImagesPage
from app._qt.widgets.project_view import ProjectPage
from app._qt.widgets.simulator_view import SimulatorPage
from app._qt.widgets.training_view import TrainingPage
from app._qt.workers import cancel_all
from app.components.messages import plain_text

PAGES = ("Project", "Good images", "Synthetic anomalies", "Training", "Inspection")
TOOLTIPS = (
    "Project overview, models and recent projects (Ctrl+1)",
    "Defect-free images used for training (Ctrl+2)",
    "Preview the simulated defects used for training (Ctrl+3)",
    "Train a model or fit PatchCore (Ctrl+4)",
    "Inspect new images, set thresholds, label, export (Ctrl+5)",
)

SHORTCUTS = """Everywhere
  Ctrl+1 … Ctrl+5   go to a page          Ctrl+N / Ctrl+O / Ctrl+S   new / open / save project
  Ctrl+Shift+S      save project as…      Ctrl+Q   quit              F1   this list
Good images
  Ctrl+I   add files        Ctrl+Shift+I   add a folder        Del   remove selected
Synthetic anomalies
  Ctrl+R   next samples
Training
  Ctrl+Return   start        Esc   cancel (the last checkpoint is kept)
Inspection
  G / O  label OK and next   D  defective and next   U  clear label   J / K  next / previous
  B / E  paint / erase mask  [ ]  brush size   F  fit   C  outlines   PgUp / PgDown  nudge threshold
  Ctrl+I  add images   Ctrl+Shift+O  open an export   Ctrl+Shift+E  export   Ctrl+R  re-inspect"""


def make_inspection_panel(parent=None):
    """E2's ``app._qt.inspection.panel.InspectionPanel``, or a placeholder while it is missing."""
    try:
        from app._qt.inspection.panel import InspectionPanel
    except ImportError as exc:
        label = QLabel(f"The inspection view is not available in this build ({exc}).")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return label
    return InspectionPanel(parent)


class MainWindow(QMainWindow):
    """Holds the pages; project actions go through :class:`ProjectController`."""

    def __init__(
        self, settings: Settings | None = None, *, devices=None, runner=None, inspection=None
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.adapter = ProjectAdapter(parent=self)
        self.controller = ProjectController(self.adapter, self.settings, self)
        self.detector_loader = DetectorLoader(self)
        s, a = self.settings, self.adapter
        self.project_page = ProjectPage(a, s)
        self.good_page = GoodImagesPage(a, s)
        self.training_page = TrainingPage(a, s, devices=devices, runner=runner)
        self.simulator_page = SimulatorPage(a, s, resolve_method=self.training_page.resolve_method)
        self.inspection = inspection if inspection is not None else make_inspection_panel()
        self.link = InspectionLink(self.adapter, self.inspection, self)
        self.controller.before_save.append(self.link.capture)
        self.pages = [
            self.project_page,
            self.good_page,
            self.simulator_page,
            self.training_page,
            self.inspection,
        ]

        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.addItems([f"{i + 1}  {name}" for i, name in enumerate(PAGES)])
        for i, tip in enumerate(TOOLTIPS):
            self.nav.item(i).setToolTip(tip)
        self.nav.ensurePolished()  # the style sheet's font and padding decide the width
        self.nav.setFixedWidth(max(200, self.nav.sizeHintForColumn(0) + 12))
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.stack = QStackedWidget()
        for page in self.pages:  # below a page's minimum size it scrolls (small laptop screens)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(page)
            self.stack.addWidget(scroll)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.nav)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.statusBar().setSizeGripEnabled(True)

        self._build_menus()
        self._wire()
        if (geometry := s.geometry()) is not None:
            self.restoreGeometry(geometry)
        else:  # first start: 1440x900, or the screen's free area when it is smaller (laptops)
            free = self.screen().availableGeometry()
            self.resize(min(1440, free.width()), min(900, free.height()))
        self.nav.setCurrentRow(min(s.last_page(), len(PAGES) - 1))
        self._update_title()

    # ----------------------------------------------------------------- layout
    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.setStatusTip(tip or text)
        act.setToolTip(tip or text)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def _build_menus(self) -> None:
        bar = self.menuBar()
        f = bar.addMenu("&File")
        self._action(
            f,
            "&New project…",
            self.new_project_dialog,
            QKeySequence.StandardKey.New,
            "Create a project",
        )
        self._action(
            f,
            "&Open project…",
            self.open_project_dialog,
            QKeySequence.StandardKey.Open,
            "Open a project",
        )
        self.recent_menu = f.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._action(
            f,
            "Open &demo project",
            self.controller.open_demo,
            None,
            "The bundled demo (brick surface)",
        )
        f.addSeparator()
        self._action(
            f, "&Save", self.controller.save, QKeySequence.StandardKey.Save, "Save the project"
        )
        self._action(
            f,
            "Save &as…",
            self.save_as_dialog,
            "Ctrl+Shift+S",
            "Save the project in another folder",
        )
        f.addSeparator()
        self._action(f, "&Quit", self.close, "Ctrl+Q", "Close the workstation")
        v = bar.addMenu("&View")
        for i, name in enumerate(PAGES):
            self._action(
                v,
                name,
                lambda _=False, k=i: self.nav.setCurrentRow(k),
                f"Ctrl+{i + 1}",
                TOOLTIPS[i],
            )
        t = bar.addMenu("&Training")
        self._action(
            t, "Start training", self.training_page.start, None, "Start (Ctrl+Return on the page)"
        )
        self._action(
            t,
            "Cancel training",
            self.training_page.cancel,
            None,
            "Stop; the last checkpoint is kept",
        )
        h = bar.addMenu("&Help")
        self._action(h, "Keyboard shortcuts", self._shortcuts, "F1", "List the keyboard shortcuts")
        self._action(h, "About", self._about, None, "About this application")

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self.settings.recent_projects():
            self.recent_menu.addAction(folder, lambda f=folder: self.controller.open(f))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    # ----------------------------------------------------------------- wiring
    def _wire(self) -> None:
        def show(message: str, ms: int) -> None:
            self.statusBar().showMessage(plain_text(message).replace("\n", " "), ms)

        for src in (self.controller, self.detector_loader, self.link, *self.pages):
            if hasattr(src, "status_message"):
                src.status_message.connect(lambda m: show(m, 15_000))
        pp = self.project_page
        pp.new_requested.connect(self.new_project_dialog)
        pp.open_requested.connect(self.open_project_dialog)
        pp.demo_requested.connect(self.controller.open_demo)
        pp.open_path_requested.connect(self.controller.open)
        pp.goto_page.connect(self.nav.setCurrentRow)
        pp.model_activated.connect(self._load_active_model)
        pp.train_requested.connect(self.quick_train)
        self.training_page.model_trained.connect(self._load_active_model)
        self.good_page.proposal_changed.connect(self.training_page.set_proposal)
        self.training_page.running_changed.connect(lambda _r: self._update_quick_train())
        self.adapter.changed.connect(lambda _e: self._update_quick_train())
        self.link.inspected.connect(self._show_inspection)
        self.adapter.project_replaced.connect(
            lambda _p: (
                self._update_title(),
                self.link.restore(),
                self._load_active_model(),
                self._update_quick_train(),
            )
        )
        self.adapter.dirty_changed.connect(lambda _d: self._update_title())
        self.adapter.changed.connect(lambda e: self._update_title() if e == "name" else None)
        self.detector_loader.loaded.connect(self.link.on_detector_loaded)

    def _load_active_model(self, _entry=None) -> None:
        p = self.adapter.project
        m = p.active() if p is not None else None
        if m is not None and p.abs(m.path).is_file() and hasattr(self.inspection, "set_detector"):
            self.detector_loader.load(p.abs(m.path))

    def _update_quick_train(self) -> None:
        """The project page's one-click action: shown while the project has good images
        but no usable model and nothing is training."""
        p, page = self.adapter.project, self.training_page
        usable = p is not None and any(
            m.status != "failed" and p.abs(m.path).is_file() for m in p.models
        )
        if p is None or not p.good_images or usable or page.is_running():
            self.project_page.show_quick_train(None)
            return
        self.project_page.show_quick_train(f"▶  Train a model now — {page.expected}")

    def quick_train(self) -> bool:
        """Start training with the project's settings and show its progress; once the
        model is trained the project's batch is inspected and the Inspection page shown."""
        if not self.training_page.start():
            return False
        self._after_quick_train = True
        self.nav.setCurrentRow(PAGES.index("Training"))
        return True

    def _show_inspection(self) -> None:
        if getattr(self, "_after_quick_train", False):
            self._after_quick_train = False
            self.nav.setCurrentRow(PAGES.index("Inspection"))

    def _update_title(self) -> None:
        p = self.adapter.project
        name = f"{p.name}{' *' if p.dirty else ''} — " if p is not None else ""
        self.setWindowTitle(f"{name}{APPLICATION}")

    # ----------------------------------------------------------------- dialogs
    def new_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "New project: choose an empty folder", self.settings.last_folder("project")
        )
        if folder:
            self.controller.new(folder)

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a project folder", self.settings.last_folder("project")
        )
        if folder:
            self.controller.open(folder)

    def save_as_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Save the project into a folder", self.settings.last_folder("project")
        )
        if folder:
            self.controller.save_as(folder)

    def _shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUTS)

    def _about(self) -> None:
        QMessageBox.about(
            self,
            APPLICATION,
            "Surface-defect inspection with DRÆM (Zavrtanik et al., ICCV 2021) and PatchCore.\n"
            "Train on defect-free images, inspect new ones, label and export to HDF5.",
        )

    # ----------------------------------------------------------------- closing
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Stop background work cleanly, save the project and the window state."""
        self.statusBar().showMessage("Stopping background work…")
        for page in (self.training_page, self.good_page, self.simulator_page):
            page.shutdown()  # a cancelled training run is recorded in the project here
        self.detector_loader.shutdown()
        self.controller.autosave()  # captures the inspected batch before the panel lets go
        if hasattr(self.inspection, "shutdown"):
            self.inspection.shutdown()
        cancel_all(wait_ms=10_000)
        self.settings.set_geometry(self.saveGeometry(), self.saveState())
        self.settings.set_last_page(self.nav.currentRow())
        self.settings.sync()
        event.accept()
