"""Background work of the inspection page: inspect, export, re-open, pixel metrics.

:class:`InspectionSession` owns the detector and starts the Qt-free jobs of
:mod:`app.components.inspection.jobs` through a :class:`JobBar` (one at a time; further
inspection requests queue).  Results come back on the GUI thread and go into
the :class:`InspectionState`; every outcome is reported as a readable
``message``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app._qt.inspection.runner import JobBar
from app.components.inspection import jobs
from app.components.inspection.items import InspectedChunk
from app.components.inspection.model import InspectionState
from core.errors import CoreError
from core.registry import detector_identity


class InspectionSession(QObject):
    """Runs the panel's jobs against ``state``; see the module docstring.

    Signals:
        message(str): readable status for the user.
    """

    message = Signal(str)

    def __init__(
        self, state: InspectionState, jobbar: JobBar, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.state, self.jobbar = state, jobbar
        self.detector = None
        self.checkpoint_path: str | None = None
        self.export_meta: dict = {"method": "unknown", "model_config": {}}
        self.pending: list[str] = []
        jobbar.message.connect(self.message.emit)
        # queued inspections start when any job (inspection, export, ...) ends
        jobbar.busy_changed.connect(lambda busy: None if busy else self._start_pending_later())

    def set_detector(self, detector, checkpoint_path: str | None = None) -> None:
        """Use ``detector`` for new inspections and adopt its thresholds; start queued paths."""
        self.detector, self.checkpoint_path = detector, checkpoint_path
        self.state.checkpoint_path = checkpoint_path
        self.export_meta = detector_identity(detector)
        t = detector.thresholds
        self.state.set_thresholds(image=t.image, pixel=t.pixel, source=f"model ({t.source})")
        name = Path(checkpoint_path).name if checkpoint_path else self.export_meta["method"]
        hint = " — press Ctrl+R to re-inspect the list with it" if len(self.state) else ""
        self.message.emit(f"Model {name} ready{hint}")
        self._start_pending()

    def add_paths(self, paths: Sequence[str]) -> None:
        """Inspect files/folders in the background; queued while busy or without a model."""
        paths = [str(p) for p in paths]
        if not paths:
            return
        if self.detector is None or self.jobbar.busy:
            self.pending.extend(paths)
            why = "once a model is loaded" if self.detector is None else "after the current job"
            self.message.emit(f"{len(paths)} path(s) will be inspected {why}")
            return
        self.jobbar.start(
            "Inspection",
            jobs.inspect_stream,
            self.detector,
            paths,
            self.state.store,
            on_result=self._on_inspected,
            on_report=self._on_chunk,
            keep=lambda r: isinstance(r, InspectedChunk),
        )

    def _on_chunk(self, chunk: InspectedChunk) -> None:
        self.state.add_items(chunk.items)
        self.state.add_failures(chunk.failures)

    def _on_inspected(self, summary: jobs.InspectionSummary) -> None:
        failed = f"; {summary.n_failed} failed (see the list)" if summary.n_failed else ""
        self.message.emit(
            f"Inspected {summary.n_inspected} image(s) in {summary.elapsed_s:.1f} s{failed}"
        )

    def _start_pending(self) -> None:
        if self.pending and self.detector is not None and not self.jobbar.busy:
            paths, self.pending = self.pending, []
            self.add_paths(paths)

    def _start_pending_later(self) -> None:
        QTimer.singleShot(0, self._start_pending)

    def export(self, path: str, rows: Sequence[int]) -> bool:
        """Export ``rows`` of the state to the HDF5 file ``path``; False (and a message) if refused."""
        try:
            snap = jobs.export_snapshot(
                self.state, list(rows), checkpoint_path=self.checkpoint_path, **self.export_meta
            )
        except CoreError as exc:
            self.message.emit(f"Export refused: {exc}")
            return False
        n = len(snap.items)
        return self.jobbar.start(
            "Export",
            jobs.export_job,
            str(path),
            snap,
            self.state.store,
            on_result=lambda p: self.message.emit(f"Exported {n} image(s) to {p}"),
        )

    def open_export(self, path: str) -> bool:
        """Re-open an exported batch; when read, it replaces the list and thresholds."""
        return self.jobbar.start(
            "Opening export",
            jobs.open_export_job,
            str(path),
            self.state.store,
            on_result=self._on_opened,
        )

    def _on_opened(self, opened: jobs.OpenedExport) -> None:
        self.state.clear()
        t = opened.thresholds
        self.state.set_thresholds(image=t.image, pixel=t.pixel, source=f"export ({t.source})")
        cfg = opened.attrs.get("model_config", "{}")
        try:
            cfg = json.loads(cfg) if isinstance(cfg, str) else dict(cfg)
        except (ValueError, TypeError):
            cfg = {}
        self.export_meta = {
            "method": str(opened.attrs.get("method", "unknown")),
            "model_config": cfg,
        }
        self.state.add_items(opened.items)
        self.message.emit(f"Opened {len(opened.items)} image(s) from {opened.path}")

    def pixel_metrics(self, on_result: Callable[[jobs.PixelMetrics], None]) -> bool:
        """Pixel AUROC + pixel-threshold suggestion over the labelled items, in the background."""
        s = self.state
        refs = tuple(
            (s.key(i), int(s.labels[i]), s.mask(i)) for i in range(len(s)) if s.labels[i] >= 0
        )
        return self.jobbar.start(
            "Pixel metrics", jobs.pixel_metrics_job, refs, s.store, on_result=on_result
        )

    def shutdown(self, wait_ms: int = 10_000) -> bool:
        """Drop queued work, cancel and wait for the running job, delete temporary arrays."""
        self.pending.clear()
        ok = self.jobbar.shutdown(wait_ms)
        if ok:
            self.state.store.close()
        return ok


__all__ = ["InspectionSession"]
