"""One background job at a time for the inspection panel, with a progress bar.

Wraps :class:`app._qt.workers.Task` (a QObject worker in a QThread, cancelled
through a ``threading.Event``, progress throttled to ~10 Hz).  Streamed results
(e.g. :class:`~app.components.inspection.items.InspectedChunk`) travel through the same
progress channel and bypass the throttle so none is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from app._qt.workers import Task
from core.types import Progress


class JobBar(QWidget):
    """Progress bar + cancel button for the panel's background jobs.

    Signals:
        message(str): readable status (started, finished, failed with reason, cancelled).
        busy_changed(bool): a job started (True) or ended (False).
    """

    message = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task: Task | None = None
        self.title = ""
        self.label = QLabel()
        self.label.setToolTip("What is running in the background")
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setToolTip("Progress of the background job")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the background job (Esc); finished results are kept")
        self.cancel_button.clicked.connect(self.cancel)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.bar, 1)
        lay.addWidget(self.cancel_button)
        self.setVisible(False)

    @property
    def busy(self) -> bool:
        return self.task is not None

    def start(
        self,
        title: str,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None],
        on_report: Callable[[Any], None] | None = None,
        keep: Callable[[object], bool] | None = None,
        on_end: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> bool:
        """Run ``fn(*args, on_progress, should_stop, **kwargs)`` in a worker thread.

        Args:
            on_result: called on the GUI thread with the return value.
            on_report: called with every non-:class:`Progress` report (streamed results).
            keep: reports for which this is True skip the 10 Hz throttle.
            on_end: called last, whatever the outcome.

        Returns:
            False (and a message) when another job is still running.
        """
        if self.task is not None:
            self.message.emit(f"Busy with {self.title.lower()}: wait or cancel it (Esc) first")
            return False
        kw: dict[str, Any] = {"parent": self, "name": title}
        if keep is not None:
            kw["keep"] = keep
        task = Task(fn, *args, **kw, **kwargs)
        self.task, self.title = task, title
        task.progress.connect(lambda r: self._on_report(r, on_report))
        task.succeeded.connect(on_result)
        task.failed.connect(lambda msg: self.message.emit(f"{title} failed: {msg}"))
        task.cancelled.connect(lambda: self.message.emit(f"{title} cancelled"))
        task.finished.connect(lambda: self._on_finished(task, on_end))
        self.label.setText(title)
        self.bar.setRange(0, 0)  # busy until the first report
        self.setVisible(True)
        self.busy_changed.emit(True)
        task.start()
        return True

    def _on_report(self, report: object, on_report: Callable[[Any], None] | None) -> None:
        if isinstance(report, Progress):
            total = max(report.total, 0)
            self.bar.setRange(0, total if total else 0)
            self.bar.setValue(min(report.done, total))
            if report.message:
                self.bar.setFormat(f"{report.message}  (%p %)" if total else report.message)
        elif on_report is not None:
            on_report(report)

    def _on_finished(self, task: Task, on_end: Callable[[], None] | None) -> None:
        if self.task is task:
            self.task = None
            self.setVisible(False)
            self.busy_changed.emit(False)
        if on_end is not None:
            on_end()

    def cancel(self) -> None:
        """Ask the running job to stop (returns at once)."""
        if self.task is not None:
            self.task.cancel()
            self.bar.setFormat("cancelling…")

    def shutdown(self, wait_ms: int = 10_000) -> bool:
        """Cancel and wait for the running job; True when nothing is left running."""
        task = self.task
        if task is None:
            return True
        task.cancel()
        return task.wait(wait_ms)


__all__ = ["JobBar"]
