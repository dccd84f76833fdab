"""The simulator settings form of the synthetic-anomaly browser (paper defaults, live)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
)

from app._qt.settings import Settings
from app._qt.widgets.common import SPACING, button
from core.config import SimulatorConfig

SOURCES = (
    ("builtin", "Built-in textures"),
    ("colour", "Plain colours"),
    ("folder", "Folder (e.g. DTD)"),
)
#: SimulatorConfig field → (label, kind, minimum, maximum, step, tooltip).
FIELDS = {
    "perlin_scale_min": ("Perlin scale min", int, 0, 7, 1, "Smallest Perlin scale exponent k: the noise has 2^k cells per axis"),
    "perlin_scale_max": ("Perlin scale max", int, 1, 8, 1, "Largest Perlin scale exponent (exclusive); larger = finer, smaller blobs"),
    "threshold": ("Threshold", float, -0.95, 0.95, 0.05, "Perlin noise above this becomes anomaly; higher = smaller anomalies"),
    "beta_min": ("β min", float, 0.0, 1.0, 0.05, "Lowest opacity factor β (0 = the texture fully replaces the image)"),
    "beta_max": ("β max", float, 0.0, 1.0, 0.05, "Highest β; the paper draws β uniformly in [0, 0.8]"),
    "anomaly_probability": ("Anomaly probability", float, 0.0, 1.0, 0.05, "Share of samples that get an anomaly (paper: 0.5)"),
    "n_augmentations": ("Augmentations", int, 0, 10, 1, "How many random colour/geometry operations alter the texture (paper: 3)"),
    "rotation_deg": ("Rotation (±°)", float, 0.0, 180.0, 5.0, "The noise pattern is rotated by up to ± this angle (paper: 90)"),
}  # fmt: skip


def _spin(kind, lo, hi, step, tip):
    s = QSpinBox() if kind is int else QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    if kind is float:
        s.setDecimals(2)
    s.setToolTip(tip)
    s.setKeyboardTracking(False)  # typed numbers apply on Enter; arrows/wheel apply at once
    return s


class SimulatorControls(QGroupBox):
    """Shows a :class:`SimulatorConfig` + seed; ``edited`` when the user changes one."""

    edited = Signal()

    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__("Simulator", parent)
        self.settings = settings
        self._loading = False
        self.fields = {k: _spin(*spec[1:]) for k, spec in FIELDS.items()}
        self.source = QComboBox()
        for key, text in SOURCES:
            self.source.addItem(text, key)
        self.source.setToolTip("Where anomaly textures come from")
        self.source_dir = QLineEdit()
        self.source_dir.setReadOnly(True)
        self.source_dir.setPlaceholderText("no texture folder chosen")
        self.source_dir.setToolTip("Folder of texture images (e.g. the DTD data set)")
        self.browse = button("Choose…", "Choose the texture folder", self.choose_folder)
        self.seed = _spin(
            int, 0, 2**31 - 1, 1, "Simulator seed: the same seed and index give the same sample"
        )
        self.count = _spin(int, 1, 24, 1, "How many samples to show")
        self.count.setValue(int(settings.value("simulator/count", 6, int) or 6))
        self.next_btn = button(
            "Next samples", "Show the next samples (new indices)", None, "Ctrl+R"
        )
        self.reset_btn = button("Paper defaults", "Reset every control to the paper's values")
        self.message = QLabel()
        self.message.setObjectName("warning")
        self.message.setWordWrap(True)
        self.message.setVisible(False)

        form = QFormLayout()
        form.setSpacing(SPACING)
        for key, w in self.fields.items():
            form.addRow(FIELDS[key][0], w)
            w.valueChanged.connect(self._changed)
        form.addRow("Anomaly source", self.source)
        srow = QHBoxLayout()
        srow.addWidget(self.source_dir, 1)
        srow.addWidget(self.browse)
        form.addRow("Seed", self.seed)
        form.addRow("Samples shown", self.count)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(srow)
        lay.addWidget(self.next_btn)
        lay.addWidget(self.reset_btn)
        lay.addWidget(self.message)
        lay.addStretch(1)
        self.setFixedWidth(340)
        self.source.currentIndexChanged.connect(self._source_changed)
        self.seed.valueChanged.connect(self._changed)

    def _changed(self, *_a) -> None:
        if not self._loading:
            self.edited.emit()

    def _source_changed(self, _i: int) -> None:
        if self._loading:
            return
        if self.source.currentData() == "folder" and not self.source_dir.text():
            self.choose_folder()
        self._update_folder_row()
        self._changed()

    def offer(self, fields: tuple[str, ...] | None) -> None:
        """Enable only the settings the chosen method's simulator uses (None: all)."""
        for key, w in self.fields.items():
            w.setEnabled(fields is None or key in fields)
        for w in (self.source, self.source_dir, self.browse):
            w.setEnabled(fields is None or "source" in fields)

    def _update_folder_row(self) -> None:
        folder = self.source.currentData() == "folder"
        self.source_dir.setVisible(folder)
        self.browse.setVisible(folder)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Texture folder", self.settings.last_folder("textures")
        )
        if folder:
            self.settings.set_last_folder("textures", folder)
            self.source_dir.setText(folder)
            self._changed()
        elif not self.source_dir.text():
            self.source.setCurrentIndex(0)

    def show_message(self, text: str) -> None:
        self.message.setText(f"⚠ {text}" if text else "")
        self.message.setVisible(bool(text))

    def load(self, cfg: SimulatorConfig, seed: int) -> None:
        """Config → controls (no ``edited``)."""
        self._loading = True
        for key, w in self.fields.items():
            w.setValue(getattr(cfg, key))
        self.source.setCurrentIndex([k for k, _ in SOURCES].index(cfg.source))
        self.source_dir.setText(cfg.source_dir or "")
        self.seed.setValue(seed)
        self._loading = False
        self._update_folder_row()

    def config(self, base: SimulatorConfig) -> SimulatorConfig:
        """Controls → config (other fields from ``base``); raises ``ConfigError`` if invalid."""
        values = {k: w.value() for k, w in self.fields.items()}
        src = self.source.currentData()
        folder = self.source_dir.text() or None
        return SimulatorConfig(**{**base.to_dict(), **values, "source": src, "source_dir": folder})
