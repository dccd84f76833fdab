"""The training settings form: method, backbone (PatchCore, flow), preset, device, working
area, budget, batch, seed, expected time, buttons."""

from __future__ import annotations

import re

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
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

from app._qt.widgets.common import SPACING, button
from app.components import training as tr
from app.components.backbones import backbone_choices
from app.components.project import TrainingSettings
from app.components.project_entries import WORK_AREA_RANGE
from core.models.backbone_choice import needs_weights_file
from core.registry import get_method, method_names

#: (minimum, maximum, decimals) of the budget box per unit.
BUDGET_LIMITS = {"steps": (1, 1_000_000, 0), "epochs": (1, 100_000, 0), "minutes": (0.1, 10_000, 1)}
#: The value a budget unit starts at when the user switches to it.
BUDGET_DEFAULTS = {"steps": 2000, "epochs": 100, "minutes": 10}


class WorkAreaBox(QSpinBox):
    """The working area as ``N × N px`` (the side of the square of the same area)."""

    def textFromValue(self, v: int) -> str:  # noqa: N802 (Qt override)
        return f"{v} × {v} px"

    def valueFromText(self, text: str) -> int:  # noqa: N802 (Qt override)
        m = re.match(r"\s*(\d+)", text)
        return int(m.group(1)) if m else self.value()

    def validate(self, text: str, pos: int):
        m = re.fullmatch(r"\s*(\d*)\s*(×\s*\d*\s*(px)?)?\s*", text)
        if not m:
            return QValidator.State.Invalid, text, pos
        digits = m.group(1)
        ok = digits and self.minimum() <= int(digits) <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos


def _combo(items: list[tuple[str, str]], tip: str) -> QComboBox:
    c = QComboBox()
    for key, text in items:
        c.addItem(text, key)
    c.setToolTip(tip)
    return c


class TrainingControls(QGroupBox):
    """Shows a :class:`TrainingSettings`; ``edited`` when the user changes a control."""

    edited = Signal()

    def __init__(
        self, devices: dict[str, bool], parent=None, labels: dict[str, str] | None = None
    ) -> None:
        super().__init__("Training", parent)
        dev = tr.device_kind("auto", devices).upper()
        labels = tr.device_labels(devices) if labels is None else labels
        self.method = _combo(
            [(name, get_method(name).label) for name in method_names()],
            "Detection method: DRÆM learns from simulated defects; PatchCore memorises good patches",
        )
        self.proposal = QLabel()
        self.proposal.setWordWrap(True)
        self.proposal.setObjectName("proposal")
        self.proposal.setToolTip(
            "The method measured best on data like these good images; any method can be chosen"
        )
        self.proposal.setVisible(False)
        choices = backbone_choices()
        self.backbone = _combo(
            [(b.name, b.label) for b in choices],
            "The frozen ImageNet network of PatchCore and the flow; nothing is downloaded, so "
            "a network not installed needs a weights file",
        )
        for i, b in enumerate(choices):
            self.backbone.model().item(i).setEnabled(b.usable)
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("ImageNet weights (.pth / .safetensors)")
        self.weights.setToolTip(
            "A local state_dict for the chosen backbone; the model records its SHA-256"
        )
        self.browse_btn = button("…", "Choose the backbone's weights file", self._browse)
        self.preset = _combo(
            [
                ("auto", f"Automatic ({tr.resolve_preset('auto', devices)} on {dev})"),
                ("paper", "Paper (97 M parameters, for a GPU)"),
                ("compact", "Compact (minutes on a CPU)"),
            ],
            "Network size: the paper's, or the compact one that trains in minutes on a CPU",
        )
        self.device = _combo(
            [
                ("auto", f"Automatic: {labels['auto']}"),
                ("cpu", labels["cpu"]),
                (
                    "cuda",
                    "CUDA GPU"
                    + (f": {labels['cuda']}" if devices.get("cuda") else " (not present)"),
                ),
            ],
            "Where to train: the device, its name and memory (CUDA only when a GPU is present)",
        )
        self.device.model().item(2).setEnabled(bool(devices.get("cuda")))
        self.work_area = WorkAreaBox()
        self.work_area.setRange(*WORK_AREA_RANGE)
        self.work_area.setSingleStep(32)
        self.work_area.setKeyboardTracking(False)
        self._work_area_default: int | None = None  # the chosen method's (set_state)
        self._work_area_set: int | None = None  # the settings' (load)
        self.budget_kind = _combo(
            [("steps", "Steps"), ("epochs", "Epochs"), ("minutes", "Minutes")],
            "Budget unit: optimiser steps, passes over the good images, or wall-clock minutes",
        )
        self.budget = QDoubleSpinBox()
        self.budget.setToolTip("How long to train, in the chosen unit")
        self.budget.setKeyboardTracking(False)
        self.batch = QSpinBox()
        self.batch.setRange(1, 256)
        self.batch.setToolTip("Images per training step")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed: the same seed and data give the same model")
        self.expected = QLabel()
        self.expected.setObjectName("summary")
        self.expected.setWordWrap(True)
        self.expected.setToolTip("Estimated from earlier runs on this project, or typical speeds")
        self.start_btn = button(
            "Start", "Train a new model on the good images", None, "Ctrl+Return"
        )
        self.cancel_btn = button(
            "Cancel", "Stop training; the last checkpoint is kept", None, "Esc"
        )
        self.resume_btn = button(
            "Resume", "Continue the model in use (cancelled) from its checkpoint"
        )

        form = QFormLayout()
        form.setSpacing(SPACING)
        brow = QHBoxLayout()
        brow.addWidget(self.budget, 1)
        brow.addWidget(self.budget_kind)
        wrow = QHBoxLayout()
        wrow.addWidget(self.weights, 1)
        wrow.addWidget(self.browse_btn)
        form.addRow("Method", self.method)
        form.addRow("Backbone", self.backbone)
        form.addRow("Weights", wrow)
        form.addRow("Preset", self.preset)
        form.addRow("Device", self.device)
        form.addRow("Work area", self.work_area)
        form.addRow("Budget", brow)
        form.addRow("Batch size", self.batch)
        form.addRow("Seed", self.seed)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.cancel_btn, self.resume_btn):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addWidget(self.proposal)  # a box layout gives a wrapped label its full height
        lay.addLayout(form)
        lay.addWidget(self.expected)  # wrapped, so in the box layout too
        lay.addLayout(buttons)
        lay.addStretch(1)
        # wide enough for the longest method label (the registry's words, never cut off):
        # the combo's own size hint covers its longest item, arrow and frame
        self.setFixedWidth(max(380, self.method.sizeHint().width() + 130))
        self._loading = False
        for w in (self.method, self.backbone, self.preset, self.device, self.budget_kind):
            w.currentIndexChanged.connect(self._changed)
        self.weights.editingFinished.connect(self._changed)
        for w in (self.budget, self.batch, self.seed, self.work_area):
            w.valueChanged.connect(self._changed)

    def _changed(self, *_a) -> None:
        if not self._loading:
            self.edited.emit()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Backbone weights", "", "Weights (*.pth *.pt *.safetensors);;All files (*)"
        )
        if path:
            self.weights.setText(path)
            self._changed()

    def load(self, s: TrainingSettings) -> None:
        """Settings → controls (no ``edited``)."""
        self._loading = True
        for combo, key in (
            (self.method, s.method),
            (self.backbone, s.backbone),
            (self.preset, s.preset),
            (self.device, s.device),
        ):
            combo.setCurrentIndex(max(0, combo.findData(key)))
        self.budget_kind.setCurrentIndex(self.budget_kind.findData(s.budget_kind))
        lo, hi, dec = BUDGET_LIMITS[s.budget_kind]
        self.budget.setDecimals(dec)
        self.budget.setRange(lo, hi)
        self.budget.setValue(s.budget_value)
        self.batch.setValue(s.batch_size)
        self.seed.setValue(s.seed)
        self.weights.setText(s.backbone_weights)
        self._loading = False
        self._work_area_set = s.work_area

    def read(self, current: TrainingSettings) -> TrainingSettings:
        """Controls → settings (raises ``ConfigError`` when invalid).

        Switching the budget unit starts from that unit's default value.
        """
        kind = self.budget_kind.currentData()
        value = self.budget.value() if kind == current.budget_kind else BUDGET_DEFAULTS[kind]
        same_budget = kind == current.budget_kind and value == current.budget_value
        method = self.method.currentData()
        area = current.work_area
        if self.work_area.isEnabled() and self.work_area.value() != self._shown_work_area():
            # a value the user typed; the method's default again means "not set"
            area = self.work_area.value()
            area = None if area == self._work_area_default else area
        return TrainingSettings(
            method,
            self.preset.currentData(),
            self.device.currentData(),
            kind,
            value,
            self.batch.value(),
            self.seed.value(),
            self.backbone.currentData(),
            self.weights.text().strip(),
            current.max_minutes if same_budget else None,  # a new budget drops the time cap
            current.method_chosen or method != current.method,  # the user's pick stays
            area,
        )

    def show_proposal(self, text: str) -> None:
        """The proposed method and why (rich text); hidden when ``text`` is empty."""
        self.proposal.setText(text)
        self.proposal.setVisible(bool(text))

    def set_state(
        self,
        *,
        running: bool,
        can_start: bool,
        can_resume: bool,
        options: tuple[str, ...],
        trains: bool,
        work_area_default: int | None = None,
    ) -> None:
        """Enable what makes sense: nothing is editable while a run is going; a control
        is live only when the chosen method takes its option (budgets: methods that train;
        the working area: ``work_area_default`` is the method's own, None when it takes none)."""
        training_only = (self.budget, self.budget_kind, self.batch)
        for w in (self.method, self.device, self.seed, *training_only):
            w.setEnabled(not running and (trains or w not in training_only))
        self.preset.setEnabled(not running and "preset" in options)
        self.backbone.setEnabled(not running and "backbone" in options)
        own_file = needs_weights_file(self.backbone.currentData())
        for w in (self.weights, self.browse_btn):
            w.setEnabled(not running and "backbone_weights" in options and own_file)
        self._work_area_default = work_area_default
        self.work_area.setEnabled(not running and work_area_default is not None)
        self._show_work_area()
        self.start_btn.setEnabled(not running and can_start)
        self.cancel_btn.setEnabled(running)
        self.resume_btn.setEnabled(not running and can_resume)

    def _shown_work_area(self) -> int:
        """The set working area, else the method's default."""
        v = self._work_area_set if self._work_area_set is not None else self._work_area_default
        return WORK_AREA_RANGE[0] if v is None else v

    def _show_work_area(self) -> None:
        """The value in use, or "set by the method" (below the range) when it takes none."""
        d, lo, was = self._work_area_default, WORK_AREA_RANGE[0], self._loading
        self._loading = True
        self.work_area.setSpecialValueText("" if d is not None else "set by the method")
        self.work_area.setMinimum(lo if d is not None else lo - 1)
        self.work_area.setValue(self._shown_work_area() if d is not None else lo - 1)
        self._loading = was
        self.work_area.setToolTip(
            tr.WORK_AREA_TIP.format(v=self.work_area.value(), d=d)
            if d is not None
            else "The chosen method (or its preset) scales images to a size of its own"
        )
