"""Training page: method, preset, device and budget; start / cancel / resume; live monitor.

The run is :func:`app.components.training.run_training` in a background
:class:`app._qt.workers.Task`; the window stays responsive and Cancel stops it
within a few seconds, keeping the last checkpoint (DRAEM).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from app._qt.project_qt import ProjectAdapter
from app._qt.settings import Settings
from app._qt.widgets.common import SPACING, MessageList
from app._qt.widgets.training_controls import TrainingControls
from app._qt.widgets.training_monitor import LossPlot, PreviewStrip, describe_progress
from app._qt.workers import Task
from app.components import training as tr
from app.components.project import ModelEntry, TrainingSettings
from app.components.proposal import Proposal, follow, page_text
from core.errors import ConfigError
from core.registry import get_method, method_names
from core.types import TrainProgress


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
        self._proposal: Proposal | None = None
        #: the expected training time, in words (the quick-train action quotes it)
        self.expected = ""
        self.controls = c = TrainingControls(self.devices)
        c.start_btn.clicked.connect(lambda: self.start())
        c.cancel_btn.clicked.connect(self.cancel)
        c.resume_btn.clicked.connect(self.resume)
        c.edited.connect(self._controls_changed)
        self.progress = QProgressBar()
        self.progress.setToolTip("Training progress")
        self.state = QLabel("Ready.")
        self.state.setWordWrap(True)
        self.problems = MessageList()
        self.problems.setVisible(False)
        self.plot = LossPlot()
        self.preview = PreviewStrip()
        self._show_previews_of(None)

        right = QVBoxLayout()
        right.addWidget(self.progress)
        right.addWidget(self.state)
        right.addWidget(self.plot, 3)
        right.addWidget(self.preview, 2)
        right.addWidget(self.problems)
        lay = QHBoxLayout(self)
        lay.setSpacing(SPACING)
        lay.addWidget(c)
        lay.addLayout(right, 1)
        adapter.project_replaced.connect(lambda _p: self._load())
        adapter.changed.connect(
            lambda e: self._load() if e in ("training", "models", "good_images") else None
        )
        self._load()

    # ----------------------------------------------------------------- binding
    def resolve_method(self, s: TrainingSettings) -> tuple[str, Any]:
        """Training settings -> (method, its config) as a run on this machine would use."""
        return s.method, s.method_config(tr.device_kind(s.device, self.devices), self._sizes())

    def _sizes(self) -> tuple[tuple[int, int], ...]:
        """(h, w) of the sampled good images (from the proposal), for the working area."""
        return self._proposal.sizes if self._proposal is not None else ()

    def set_proposal(self, proposal: Proposal | None) -> None:
        """The method proposed for the project's good images: selected unless the user
        chose one for this project (and not during a run), and shown with its reason."""
        self._proposal = proposal
        p = self.adapter.project
        if p is not None and not self.is_running():
            p.set_training(follow(p.training, proposal))  # notifies: the page reloads
        self._load()

    def _load(self) -> None:
        """Project → controls."""
        p = self.adapter.project
        s = p.training if p is not None else TrainingSettings()
        self.controls.load(s)
        proposal = self._proposal if p is not None else None
        kind = tr.device_kind(s.device, self.devices)
        self.controls.show_proposal(page_text(proposal, s, kind))
        self._refresh()

    def _controls_changed(self) -> None:
        """Controls → project."""
        p = self.adapter.project
        if p is None:
            return
        try:
            p.set_training(self.controls.read(p.training))
        except ConfigError as exc:
            self.state.setText(f"⚠ {exc}")

    def _refresh(self) -> None:
        p, running = self.adapter.project, self.is_running()
        n = len(p.good_images) if p is not None else 0
        s = p.training if p is not None else TrainingSettings()
        active = p.active() if p is not None else None
        can_resume = bool(
            active is not None
            and active.method in method_names()
            and get_method(active.method).trains
            and active.status == "cancelled"
            and p.abs(active.path).is_file()
        )
        if not running:
            self.plot.setVisible(get_method(s.method).trains)  # a fitted method has no curves
        self.controls.set_state(
            running=running,
            can_start=n > 0,
            can_resume=can_resume,
            options=get_method(s.method).options,
            trains=get_method(s.method).trains,
            work_area_default=s.work_area_default(
                tr.device_kind(s.device, self.devices), self._sizes()
            ),
        )
        if not running:
            self.expected = self._expected_text(s, n)
            self.controls.expected.setText(f"Expected: {self.expected}")

    def _expected_text(self, s: TrainingSettings, n: int) -> str:
        if n == 0:
            return "add good images first"
        device = tr.device_kind(s.device, self.devices)
        spec = get_method(s.method)
        try:  # the method's variant (DRAEM: its preset) as a run here would use it
            variant = spec.variant(s.method_config(device, self._sizes()))
        except ConfigError:
            variant = spec.variant(spec.default_config(device))
        p = self.adapter.project
        history = [
            (m.elapsed_s, m.steps)
            for m in p.models
            if m.method == s.method and m.preset == f"{variant}/{device}"
        ]
        secs = tr.estimate_seconds(s.method, variant, device, s.to_train_config(), n, history)
        what = f"{variant} on {device.upper()}" if spec.trains else spec.title
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
        if resume:
            entry = p.active()
            name, out = entry.name, str(p.abs(entry.path))
        else:
            name = p.new_model_name(s.method)
            out = str(p.models_dir / f"{name}.ckpt")
        try:
            config = s.method_config(device, self._sizes())
            job = tr.TrainJob(
                s.method,
                tuple(str(x) for x in p.good_image_paths()),
                config,
                p.simulator,
                s.to_train_config(device=s.device),
                out,
                resume,
            )
        except ConfigError as exc:
            self.status_message.emit(str(exc))
            return False
        tag = get_method(s.method).variant(config)
        self._job, self._name, self._preset_tag = job, name, f"{tag}/{device}"
        self.plot.clear_history()
        self.preview.clear()
        self._show_previews_of(get_method(s.method))
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

    def _show_previews_of(self, spec) -> None:
        """Show only the preview views the method has: none for a fitted method, and a
        reconstruction only once its previews carry one (DRAEM's compact variant has none)."""
        self.preview.setVisible(spec is not None and spec.trains)
        self.preview.views["reconstruction"].setVisible(False)

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
        tc = self._job.train_config if self._job is not None else None
        capped = tc is not None and tc.steps and tc.minutes and out.steps < tc.steps
        if out.status == "finished" and capped:  # the time cap came first: say so
            verb = f"finished, cut short by its {tc.minutes:g}-minute cap at {out.steps} of {tc.steps} steps"
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
