"""Synthetic anomalies page: live simulator controls and a browser of samples.

Each card shows the good image, the Perlin anomaly mask and the augmented image
with the mask outlined.  Moving a control updates the project's
:class:`core.config.SimulatorConfig` (debounced) and regenerates the preview in
a background :class:`app._qt.workers.Task` (the newest request wins).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app._qt.project_qt import ProjectAdapter
from app._qt.settings import Settings
from app._qt.widgets.common import SPACING, ImageView, outline
from app._qt.widgets.sim_controls import SimulatorControls
from app._qt.workers import Task
from app.components.project import TrainingSettings
from app.components.sim_preview import PreviewResult, make_previews
from core.config import SimulatorConfig
from core.errors import ConfigError
from core.registry import get_method

#: ``SyntheticSample.kind`` -> caption wording.
KIND_NAMES = {
    "intensity": "intensity change",
    "line": "thin line",
    "spot": "spots",
}


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
        area = f"{100 * s.mask.mean():.1f} % of the area"
        if not s.has_anomaly:
            state = "clean"
        elif s.kind == "texture":
            state = f"texture patch, β = {s.beta:.2f}, {area}"
        else:
            state = f"{KIND_NAMES.get(s.kind, s.kind)}, {area}"
        self.caption.setText(f"#{s.index} · {Path(item.path).name} · {state}")
        self.setToolTip(f"{item.path}\nsample index {s.index}")


class SimulatorPage(QWidget):
    """The 'Synthetic anomalies' workflow page."""

    status_message = Signal(str)
    preview_ready = Signal(object)  # PreviewResult, for tests and screenshots

    def __init__(
        self,
        adapter: ProjectAdapter,
        settings: Settings,
        parent=None,
        *,
        resolve_method: Callable[[TrainingSettings], tuple[str, Any]] | None = None,
    ) -> None:
        super().__init__(parent)
        self.adapter, self.settings = adapter, settings
        self._task: Task | None = None
        self._pending = False
        self._start = 0
        self._debounce = QTimer(self, singleShot=True, interval=150)
        self._debounce.timeout.connect(self._apply_controls)

        c = self.controls = SimulatorControls(settings)
        c.edited.connect(self._debounce.start)
        c.count.valueChanged.connect(self._count_changed)
        c.next_btn.clicked.connect(self.next_samples)
        c.reset_btn.clicked.connect(self.reset_defaults)

        self.cards_host = QWidget()
        self.grid = QGridLayout(self.cards_host)
        self.grid.setSpacing(SPACING)
        self.cards: list[SampleCard] = []
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.cards_host)
        self.empty = QLabel("Add good images first: the samples are made from them.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preset_note = QLabel()
        self.preset_note.setWordWrap(True)
        self.preset_note.setToolTip("The method and its preset are chosen on the Training page")
        #: Training-page settings -> (method, its config) on this machine; the main window
        #: passes the device-aware rule (e.g. DRAEM auto: compact on a CPU, paper on a GPU).
        self.resolve_method = resolve_method or (lambda s: (s.method, s.method_config("cpu")))
        self._shown: tuple[str, str] = ("", "")
        right = QVBoxLayout()
        right.addWidget(self.preset_note)
        right.addWidget(self.empty)
        right.addWidget(scroll, 1)
        lay = QHBoxLayout(self)
        lay.setSpacing(SPACING)
        lay.addWidget(c)
        lay.addLayout(right, 1)

        adapter.project_replaced.connect(lambda _p: self._load_from_project(reset=True))
        adapter.changed.connect(self._on_changed)
        self._load_from_project(reset=True)

    # ----------------------------------------------------------------- model → widgets
    def _load_from_project(self, reset: bool = False) -> None:
        p = self.adapter.project
        if p is not None:
            self.controls.load(p.simulator, p.simulator_seed)
        else:
            self.controls.load(SimulatorConfig(), 0)
        if reset:
            self._start = 0
        self.request_preview()

    def _on_changed(self, event: str) -> None:
        if event == "simulator":
            self._load_from_project()
        elif event == "good_images" or (event == "training" and self._key() != self._shown):
            self.request_preview()

    # ----------------------------------------------------------------- widgets → model
    def _count_changed(self, n: int) -> None:
        self.settings.set_value("simulator/count", int(n))
        self.request_preview()

    def _apply_controls(self) -> None:
        p = self.adapter.project
        if p is None:
            return
        try:
            cfg = self.controls.config(p.simulator)
        except ConfigError as exc:
            self.controls.show_message(str(exc))
            return
        self.controls.show_message("")
        p.set_simulator(cfg, self.controls.seed.value())

    def reset_defaults(self) -> None:
        p = self.adapter.project
        if p is not None:
            p.set_simulator(SimulatorConfig(image_size=p.simulator.image_size), 0)

    def next_samples(self) -> None:
        self._start += self.controls.count.value()
        self.request_preview()

    # ----------------------------------------------------------------- preview
    def method(self) -> tuple[str, Any]:
        """(method, config) whose training samples are shown (the Training page's choice)."""
        p = self.adapter.project
        s = p.training if p is not None else TrainingSettings()
        try:
            return self.resolve_method(s)
        except ConfigError:  # settings that cannot run here: the method's CPU default
            return s.method, get_method(s.method).default_config("cpu")

    def _key(self) -> tuple[str, str]:
        method, config = self.method()
        return method, get_method(method).variant(config)

    def _show_note(self, note: str, object_only: bool = False) -> None:
        on_object = (
            " The images show an object on a plain background: anomalies go on the object only."
            if object_only
            else ""
        )
        self.preset_note.setText(note + on_object)

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
        method, config = self.method()
        spec = get_method(method)
        self._shown = (method, spec.variant(config))
        self._show_note(spec.samples_note(config))
        self.controls.offer(spec.simulator_fields)
        task = Task(
            make_previews,
            paths,
            cfg,
            p.simulator_seed,
            self._start,
            self.controls.count.value(),
            method=method,
            method_config=config,
            parent=self,
        )
        task.succeeded.connect(self._on_preview)
        task.failed.connect(lambda m: self.controls.show_message(m))
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
        self._show_note(result.note, result.object_only)
        if result.failures:
            f = result.failures
            self.controls.show_message(f"{len(f)} image(s) unreadable, e.g. {f[0].reason}")
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
