"""Synthetic anomalies page: live simulator controls and a browser of samples.

Each card shows the good image, the Perlin anomaly mask and the augmented image
with the mask outlined.  Moving a control updates the project's
:class:`core.config.SimulatorConfig` (debounced) and regenerates the preview in
a background :class:`app.workers.Task` (the newest request wins).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.project_qt import ProjectAdapter
from app.settings import Settings
from app.sim_preview import PreviewResult, make_previews
from app.widgets.common import SPACING, ImageView, button, outline
from app.workers import Task
from core.config import SimulatorConfig
from core.errors import ConfigError

SOURCES = (
    ("builtin", "Built-in textures"),
    ("colour", "Plain colours"),
    ("folder", "Folder (e.g. DTD)"),
)


def _dspin(lo: float, hi: float, step: float, tip: str) -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setDecimals(2)
    s.setToolTip(tip)
    s.setKeyboardTracking(False)
    return s


def _ispin(lo: int, hi: int, tip: str) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setToolTip(tip)
    s.setKeyboardTracking(False)
    return s


class SampleCard(QFrame):
    """Good image | mask | augmented image with the mask outlined, plus a caption."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.views = [ImageView(c) for c in ("good", "anomaly mask", "augmented")]
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row = QHBoxLayout()
        for v in self.views:
            row.addWidget(v)
        lay = QVBoxLayout(self)
        lay.addLayout(row, 1)
        lay.addWidget(self.caption)

    def show_item(self, item) -> None:
        s = item.sample
        self.views[0].set_image(s.good)
        self.views[1].set_image(s.mask * 255)
        self.views[2].set_image(outline(s.augmented, s.mask) if s.has_anomaly else s.augmented)
        state = (
            f"anomaly, β = {s.beta:.2f}, {100 * s.mask.mean():.1f} % of the area"
            if s.has_anomaly
            else "clean"
        )
        self.caption.setText(f"#{s.index} · {Path(item.path).name} · {state}")
        self.setToolTip(f"{item.path}\nsample index {s.index}")


class SimulatorPage(QWidget):
    """The 'Synthetic anomalies' workflow page."""

    status_message = Signal(str)
    preview_ready = Signal(object)  # PreviewResult, for tests and screenshots

    def __init__(self, adapter: ProjectAdapter, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.adapter, self.settings = adapter, settings
        self._task: Task | None = None
        self._pending = False
        self._start = 0
        self._loading = False
        self._debounce = QTimer(self, singleShot=True, interval=150)
        self._debounce.timeout.connect(self._apply_controls)

        c = self.controls = {
            "perlin_scale_min": _ispin(
                0, 7, "Smallest Perlin scale exponent k (noise has 2^k cells per axis)"
            ),
            "perlin_scale_max": _ispin(
                1, 8, "Largest Perlin scale exponent (exclusive); bigger = finer blobs"
            ),
            "threshold": _dspin(
                -0.95, 0.95, 0.05, "Perlin noise above this becomes anomaly; higher = smaller areas"
            ),
            "beta_min": _dspin(
                0.0, 1.0, 0.05, "Lowest opacity factor β (0 = texture fully replaces the image)"
            ),
            "beta_max": _dspin(
                0.0, 1.0, 0.05, "Highest β; the paper draws β uniformly in [0, 0.8]"
            ),
            "anomaly_probability": _dspin(
                0.0, 1.0, 0.05, "Share of samples that get an anomaly (paper: 0.5)"
            ),
            "n_augmentations": _ispin(
                0, 10, "How many random colour/geometry operations alter the texture"
            ),
            "rotation_deg": _dspin(
                0.0, 180.0, 5.0, "The noise pattern is rotated by up to ± this angle"
            ),
        }
        self.source = QComboBox()
        for key, text in SOURCES:
            self.source.addItem(text, key)
        self.source.setToolTip("Where anomaly textures come from")
        self.source_dir = QLineEdit()
        self.source_dir.setReadOnly(True)
        self.source_dir.setPlaceholderText("no folder chosen")
        self.source_dir.setToolTip("Folder of texture images (e.g. the DTD data set)")
        self.browse = button("…", "Choose the texture folder", self.choose_folder)
        self.seed = _ispin(
            0, 2**31 - 1, "Simulator seed: the same seed and index always give the same sample"
        )
        self.count = _ispin(1, 24, "How many samples to show")
        self.count.setValue(int(settings.value("simulator/count", 6, int) or 6))
        self.regen_btn = button(
            "Next samples", "Show the next samples (new indices)", self.next_samples, "Ctrl+R"
        )
        self.reset_btn = button(
            "Paper defaults", "Reset every control to the paper's values", self.reset_defaults
        )
        self.message = QLabel()
        self.message.setObjectName("warning")
        self.message.setWordWrap(True)

        form = QFormLayout()
        form.setSpacing(SPACING)
        names = {
            "perlin_scale_min": "Perlin scale min",
            "perlin_scale_max": "Perlin scale max",
            "threshold": "Threshold",
            "beta_min": "β min",
            "beta_max": "β max",
            "anomaly_probability": "Anomaly probability",
            "n_augmentations": "Augmentations",
            "rotation_deg": "Rotation (±°)",
        }
        for key, w in c.items():
            form.addRow(names[key], w)
            w.valueChanged.connect(self._controls_changed)
        srow = QHBoxLayout()
        srow.addWidget(self.source_dir, 1)
        srow.addWidget(self.browse)
        form.addRow("Anomaly source", self.source)
        form.addRow("", srow)
        form.addRow("Seed", self.seed)
        form.addRow("Samples shown", self.count)
        self.source.currentIndexChanged.connect(self._source_changed)
        self.seed.valueChanged.connect(self._controls_changed)
        self.count.valueChanged.connect(self._count_changed)
        box = QGroupBox("Simulator")
        bl = QVBoxLayout(box)
        bl.addLayout(form)
        bl.addWidget(self.regen_btn)
        bl.addWidget(self.reset_btn)
        bl.addWidget(self.message)
        bl.addStretch(1)
        box.setFixedWidth(320)

        self.cards_host = QWidget()
        self.grid = QGridLayout(self.cards_host)
        self.grid.setSpacing(SPACING)
        self.cards: list[SampleCard] = []
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.cards_host)
        self.empty = QLabel("Add good images first: the samples are made from them.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        right = QVBoxLayout()
        right.addWidget(self.empty)
        right.addWidget(scroll, 1)
        lay = QHBoxLayout(self)
        lay.setSpacing(SPACING)
        lay.addWidget(box)
        lay.addLayout(right, 1)

        adapter.project_replaced.connect(lambda _p: self._load_from_project(reset=True))
        adapter.changed.connect(self._on_changed)
        self._load_from_project(reset=True)

    # ----------------------------------------------------------------- model → widgets
    def _load_from_project(self, reset: bool = False) -> None:
        p = self.adapter.project
        cfg = p.simulator if p is not None else SimulatorConfig()
        self._loading = True
        for key, w in self.controls.items():
            w.setValue(getattr(cfg, key))
        self.source.setCurrentIndex([k for k, _ in SOURCES].index(cfg.source))
        self.source_dir.setText(cfg.source_dir or "")
        self.seed.setValue(p.simulator_seed if p is not None else 0)
        self._loading = False
        self.source_dir.setEnabled(cfg.source == "folder")
        self.browse.setEnabled(cfg.source == "folder")
        if reset:
            self._start = 0
        self.request_preview()

    def _on_changed(self, event: str) -> None:
        if event == "simulator":
            self._load_from_project()
        elif event == "good_images":
            self.request_preview()

    # ----------------------------------------------------------------- widgets → model
    def _controls_changed(self, *_args) -> None:
        if not self._loading:
            self._debounce.start()

    def _source_changed(self, _i: int) -> None:
        if self._loading:
            return
        if self.source.currentData() == "folder" and not self.source_dir.text():
            self.choose_folder()
        self._controls_changed()

    def _count_changed(self, n: int) -> None:
        self.settings.set_value("simulator/count", int(n))
        self.request_preview()

    def config_from_controls(self) -> SimulatorConfig:
        """The config the controls describe (raises :class:`ConfigError` if invalid)."""
        base = self.adapter.project.simulator if self.adapter.project else SimulatorConfig()
        values = {k: w.value() for k, w in self.controls.items()}
        src = self.source.currentData()
        folder = self.source_dir.text() or None
        return SimulatorConfig(**{**base.to_dict(), **values, "source": src, "source_dir": folder})

    def _apply_controls(self) -> None:
        p = self.adapter.project
        if p is None:
            return
        try:
            cfg = self.config_from_controls()
        except ConfigError as exc:
            self.message.setText(f"⚠ {exc}")
            return
        self.message.setText("")
        p.set_simulator(cfg, self.seed.value())

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Texture folder", self.settings.last_folder("textures")
        )
        if folder:
            self.settings.set_last_folder("textures", folder)
            self.source_dir.setText(folder)
            self._controls_changed()
        elif not self.source_dir.text():
            self.source.setCurrentIndex(0)

    def reset_defaults(self) -> None:
        p = self.adapter.project
        if p is not None:
            p.set_simulator(SimulatorConfig(image_size=p.simulator.image_size), 0)

    def next_samples(self) -> None:
        self._start += self.count.value()
        self.request_preview()

    # ----------------------------------------------------------------- preview
    def request_preview(self) -> None:
        """Regenerate the cards (cancels a running preview; the newest request wins)."""
        if self._task is not None:
            self._task.cancel()
            self._pending = True
            return
        p = self.adapter.project
        paths = [str(x) for x in p.good_image_paths()] if p is not None else []
        self.empty.setVisible(not paths)
        if not paths:
            self._show(None)
            return
        cfg = p.simulator
        task = Task(
            make_previews,
            paths,
            cfg,
            p.simulator_seed,
            self._start,
            self.count.value(),
            parent=self,
        )
        task.succeeded.connect(self._on_preview)
        task.failed.connect(lambda m: self.message.setText(f"⚠ {m}"))
        task.finished.connect(lambda: self._on_finished(task))
        self._task = task
        task.start()

    def _on_finished(self, task: Task) -> None:
        if task is self._task:
            self._task = None
            if self._pending:
                self._pending = False
                self.request_preview()

    def _on_preview(self, result: PreviewResult) -> None:
        if self._pending:
            return  # outdated
        self._show(result)
        if result.failures:
            self.message.setText(
                f"⚠ {len(result.failures)} image(s) unreadable, e.g. {result.failures[0].reason}"
            )
        self.preview_ready.emit(result)

    def _show(self, result: PreviewResult | None) -> None:
        items = result.items if result is not None else ()
        while len(self.cards) < len(items):
            card = SampleCard()
            card.setMinimumHeight(220)
            self.cards.append(card)
            n = len(self.cards) - 1
            self.grid.addWidget(card, n // 2, n % 2)
        for card, item in zip(self.cards, items, strict=False):
            card.show_item(item)
        for i, card in enumerate(self.cards):
            card.setVisible(i < len(items))

    def shutdown(self) -> None:
        self._debounce.stop()
        self._pending = False
        if self._task is not None:
            self._task.cancel()
            self._task.wait(5000)
            self._task = None
