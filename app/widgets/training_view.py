"""Training page: method, preset, device and budget; start / cancel / resume; live monitor.

The run is :func:`app.training.run_training` in a background
:class:`app.workers.Task`; the window stays responsive and Cancel stops it
within a few seconds, keeping the last checkpoint (DRAEM).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import training as tr
from app.project import ModelEntry, TrainingSettings
from app.project_qt import ProjectAdapter
from app.settings import Settings
from app.widgets.common import SPACING, MessageList, button
from app.widgets.training_monitor import LossPlot, PreviewStrip, describe_progress
from app.workers import Task
from core.errors import ConfigError
from core.types import TrainProgress

BUDGET_LIMITS = {"steps": (1, 1_000_000, 0), "epochs": (1, 100_000, 0), "minutes": (0.1, 10_000, 1)}


def _combo(items: list[tuple[str, str]], tip: str) -> QComboBox:
    c = QComboBox()
    for key, text in items:
        c.addItem(text, key)
    c.setToolTip(tip)
    return c


class TrainingPage(QWidget):
    """The 'Training' workflow page. ``model_trained(ModelEntry)`` after a usable run."""

    status_message = Signal(str)
    model_trained = Signal(object)
    running_changed = Signal(bool)

    def __init__(
        self, adapter: ProjectAdapter, settings: Settings, parent=None, *, runner=None, devices=None
    ):
        super().__init__(parent)
        self.adapter, self.settings = adapter, settings
        self.runner = runner or tr.run_training
        self.devices = devices if devices is not None else tr.available_devices()
        self._task: Task | None = None
        self._job: tr.TrainJob | None = None
        self._loading = False
        dev = tr.device_kind("auto", self.devices)
        self.method = _combo(
            [("draem", "DRÆM (trained)"), ("patchcore", "PatchCore (fitted)")], "Detection method"
        )
        self.preset = _combo(
            [
                ("auto", f"Automatic ({tr.default_preset(self.devices)} on {dev.upper()})"),
                ("paper", "Paper (97 M parameters, for a GPU)"),
                ("compact", "Compact (minutes on a CPU)"),
            ],
            "Network size: the paper's, or the compact one that trains in minutes on a CPU",
        )
        cuda = "CUDA GPU" + ("" if self.devices.get("cuda") else " (not present)")
        self.device = _combo(
            [("auto", f"Automatic ({dev.upper()})"), ("cpu", "CPU"), ("cuda", cuda)],
            "Where to train",
        )
        self.device.model().item(2).setEnabled(bool(self.devices.get("cuda")))
        self.budget_kind = _combo(
            [("steps", "Steps"), ("epochs", "Epochs"), ("minutes", "Minutes")], "Budget unit"
        )
        self.budget = QDoubleSpinBox()
        self.budget.setToolTip("How long to train, in the chosen unit")
        self.batch = QSpinBox()
        self.batch.setRange(1, 256)
        self.batch.setToolTip("Images per training step")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed: the same seed and data give the same model")
        self.expected = QLabel()
        self.expected.setObjectName("summary")
        self.expected.setToolTip(
            "Estimated from earlier runs on this project, or from typical speeds"
        )
        self.start_btn = button(
            "Start training", "Train a new model on the good images", self.start, "Ctrl+Return"
        )
        self.cancel_btn = button(
            "Cancel", "Stop training; the last checkpoint is kept", self.cancel, "Esc"
        )
        self.resume_btn = button(
            "Resume", "Continue the active, cancelled model from its checkpoint", self.resume
        )
        self.progress = QProgressBar()
        self.progress.setToolTip("Training progress")
        self.state = QLabel("Ready.")
        self.state.setWordWrap(True)
        self.problems = MessageList()
        self.problems.setVisible(False)
        self.plot = LossPlot()
        self.preview = PreviewStrip()

        form = QFormLayout()
        form.setSpacing(SPACING)
        brow = QHBoxLayout()
        brow.addWidget(self.budget, 1)
        brow.addWidget(self.budget_kind)
        for label, w in (("Method", self.method), ("Preset", self.preset), ("Device", self.device)):
            form.addRow(label, w)
        form.addRow("Budget", brow)
        form.addRow("Batch size", self.batch)
        form.addRow("Seed", self.seed)
        form.addRow("Expected", self.expected)
        box = QGroupBox("Training")
        bl = QVBoxLayout(box)
        bl.addLayout(form)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.cancel_btn, self.resume_btn):
            buttons.addWidget(b)
        bl.addLayout(buttons)
        bl.addStretch(1)
        box.setFixedWidth(380)
        right = QVBoxLayout()
        right.addWidget(self.progress)
        right.addWidget(self.state)
        right.addWidget(self.plot, 3)
        right.addWidget(self.preview, 2)
        right.addWidget(self.problems)
        lay = QHBoxLayout(self)
        lay.setSpacing(SPACING)
        lay.addWidget(box)
        lay.addLayout(right, 1)

        for w in (self.method, self.preset, self.device, self.budget_kind):
            w.currentIndexChanged.connect(self._controls_changed)
        for w in (self.budget, self.batch, self.seed):
            w.valueChanged.connect(self._controls_changed)
        adapter.project_replaced.connect(lambda _p: self._load())
        adapter.changed.connect(
            lambda e: self._load() if e in ("training", "models", "good_images") else None
        )
        self._load()

    # ----------------------------------------------------------------- binding
    def _load(self) -> None:
        """Project → controls."""
        p = self.adapter.project
        s = p.training if p is not None else TrainingSettings()
        self._loading = True
        for combo, key in (
            (self.method, s.method),
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
        self._loading = False
        self._refresh()

    def _controls_changed(self, *_a) -> None:
        """Controls → project."""
        if self._loading or self.adapter.project is None:
            return
        kind = self.budget_kind.currentData()
        value = self.budget.value()
        if kind != self.adapter.project.training.budget_kind:  # unit changed: sensible default
            value = {"steps": 2000, "epochs": 100, "minutes": 10}[kind]
        try:
            s = TrainingSettings(
                self.method.currentData(),
                self.preset.currentData(),
                self.device.currentData(),
                kind,
                value,
                self.batch.value(),
                self.seed.value(),
            )
        except ConfigError as exc:
            self.state.setText(f"⚠ {exc}")
            return
        self.adapter.project.set_training(s)

    def _refresh(self) -> None:
        p, running = self.adapter.project, self.is_running()
        n = len(p.good_images) if p is not None else 0
        s = p.training if p is not None else TrainingSettings()
        is_draem = s.method == "draem"
        for w in (
            self.method,
            self.preset,
            self.device,
            self.budget,
            self.budget_kind,
            self.batch,
            self.seed,
        ):
            w.setEnabled(not running and (is_draem or w in (self.method, self.device, self.seed)))
        self.start_btn.setEnabled(not running and n > 0)
        self.cancel_btn.setEnabled(running)
        active = p.active() if p is not None else None
        can_resume = bool(
            active is not None
            and active.method == "draem"
            and active.status == "cancelled"
            and p.abs(active.path).is_file()
        )
        self.resume_btn.setEnabled(not running and can_resume)
        if not running:
            self.expected.setText(self._expected_text(s, n))

    def _expected_text(self, s: TrainingSettings, n: int) -> str:
        if n == 0:
            return "add good images first"
        device = tr.device_kind(s.device, self.devices)
        preset = tr.resolve_preset(s.preset, self.devices)
        p = self.adapter.project
        history = [
            (m.elapsed_s, m.steps)
            for m in p.models
            if m.method == s.method and m.preset == f"{preset}/{device}"
        ]
        secs = tr.estimate_seconds(s.method, preset, device, s.to_train_config(), n, history)
        what = "PatchCore" if s.method == "patchcore" else f"{preset} on {device.upper()}"
        return f"about {tr.format_duration(secs)} ({what}, {n} images)"

    # ----------------------------------------------------------------- actions
    def is_running(self) -> bool:
        return self._task is not None

    def start(self, resume: bool = False) -> bool:
        """Start a run (or resume the active cancelled model). Returns False if it cannot start."""
        p = self.adapter.project
        if p is None or self.is_running():
            return False
        if not p.good_images:
            self.status_message.emit("Add good images before training.")
            return False
        s = p.training
        device = tr.device_kind(s.device, self.devices)
        preset = tr.resolve_preset(s.preset, self.devices)
        if resume:
            entry = p.active()
            name, out = entry.name, str(p.abs(entry.path))
        else:
            name = p.new_model_name(s.method)
            out = str(p.models_dir / f"{name}.ckpt")
        try:
            job = tr.TrainJob(
                s.method,
                tuple(str(x) for x in p.good_image_paths()),
                tr.model_config_for(preset),
                p.simulator,
                s.to_train_config(device=s.device),
                out,
                resume,
            )
        except ConfigError as exc:
            self.status_message.emit(str(exc))
            return False
        self._job, self._name, self._preset_tag = job, name, f"{preset}/{device}"
        self.plot.clear_history()
        self.preview.clear()
        self.problems.set_messages([])
        self.progress.setRange(0, 0)
        self.state.setText(("Resuming " if resume else "Starting ") + name + "…")
        task = Task(self.runner, job, parent=self, name=f"train-{name}")
        task.progress.connect(self._on_progress)
        task.succeeded.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.cancelled.connect(
            lambda: self._end("Training cancelled before it began; nothing was saved.")
        )
        task.finished.connect(lambda: self._on_finished(task))
        self._task = task
        task.start()
        self.running_changed.emit(True)
        self._refresh()
        return True

    def resume(self) -> bool:
        return self.start(resume=True)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self.state.setText("Cancelling… (the last checkpoint is kept)")

    # ----------------------------------------------------------------- task signals
    def _on_progress(self, p) -> None:
        if isinstance(p, TrainProgress):
            frac = p.fraction
            if frac is None:
                self.progress.setRange(0, 0)
            else:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * frac))
            self.state.setText(describe_progress(p))
            self.plot.add(p.step, p.losses)
            if p.preview is not None:
                self.preview.show_preview(p.preview)
        else:
            self.progress.setRange(0, max(1, p.total))
            self.progress.setValue(p.done)
            self.state.setText(
                f"{p.message} ({p.done} / {p.total})" if p.message else f"{p.done} / {p.total}"
            )

    def _on_done(self, out: tr.TrainOutcome) -> None:
        p = self.adapter.project
        self.problems.set_messages([(f.path, f.reason) for f in out.failures])
        usable = out.status in ("finished", "cancelled") and Path(out.checkpoint_path).is_file()
        if p is not None and (usable or out.status == "failed"):
            entry = p.add_model(
                ModelEntry(
                    self._name,
                    out.checkpoint_path,
                    out.method,
                    self._preset_tag,
                    out.status,
                    out.steps,
                    round(out.elapsed_s, 1),
                    note=out.message,
                )
            )
            if p.root.exists():
                p.save()
            if usable:
                self.model_trained.emit(entry)
        skipped = f"; {len(out.failures)} unreadable image(s) skipped" if out.failures else ""
        verb = {"finished": "finished", "cancelled": "cancelled (checkpoint kept)"}.get(
            out.status, out.status
        )
        self._end(
            f"{self._name} {verb}: {out.steps} steps in {tr.format_duration(out.elapsed_s)}{skipped}. {out.message}"
        )

    def _on_failed(self, message: str) -> None:
        self._end(f"Training failed: {message}")

    def _end(self, text: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if "finished" in text else 0)
        self.state.setText(text)
        self.status_message.emit(text)

    def _on_finished(self, task: Task) -> None:
        if task is self._task:
            self._task = None
            self.running_changed.emit(False)
            self._refresh()

    def shutdown(self, wait_ms: int = 15_000) -> None:
        """Cancel a run and wait for it (window closing)."""
        if self._task is not None:
            self._task.cancel()
            if self._task.wait(wait_ms):
                QCoreApplication.processEvents()  # deliver the outcome: the model is recorded
