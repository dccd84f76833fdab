"""Background work of the inspection page: inspect, export, re-open, pixel metrics, runtime.

:class:`InspectionSession` owns the detector and starts the Qt-free jobs of
:mod:`app.components.inspection.jobs` and :mod:`app.components.inspection.runtime`
through a :class:`JobBar` (one at a time; further inspection requests queue).  Results
come back on the GUI thread and go into the :class:`InspectionState`; every outcome is
reported as a readable ``message``.

Runtime: a checkpoint's model runs with PyTorch until another runtime is chosen
(:meth:`InspectionSession.set_runtime`); it is then exported once into a temporary
folder owned by the session (removed at shutdown) and the listed images are inspected
again through it. A failed switch leaves the model, runtime and results as they were.
Each image remembers which runtime scored it; an export records that runtime (and is
refused for a selection scored by several).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app._qt.inspection.runner import JobBar
from app.components.inspection import jobs
from app.components.inspection.items import InspectedChunk
from app.components.inspection.model import InspectionState
from app.components.inspection.runtime import (
    TORCH,
    RuntimeSwitch,
    open_exported_job,
    runtime_job,
    short_label,
)
from core.deploy.choices import runtime_of
from core.errors import CoreError
from core.registry import detector_identity


class InspectionSession(QObject):
    """Runs the panel's jobs against ``state``; see the module docstring.

    Signals:
        message(str): readable status for the user.
        runtime_changed(): the model or the runtime in use changed, or a switch ended
            (the selector shows :attr:`runtime` again).
    """

    message = Signal(str)
    runtime_changed = Signal()

    def __init__(
        self, state: InspectionState, jobbar: JobBar, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.state, self.jobbar = state, jobbar
        self.detector = None
        self.checkpoint_path: str | None = None
        self.export_meta: dict = {"method": "unknown", "model_config": {}}
        self.pending: list[str] = []
        #: the checkpoint's (PyTorch) detector, None for a model opened as an exported folder
        self.torch_detector = None
        #: the exported folder the model was opened from (None for a checkpoint)
        self.export_folder: str | None = None
        #: the runtime in use, as ``--runtime`` names it, and its exported folder if any
        self.runtime, self.runtime_folder = TORCH, None
        #: the runtime that scored each listed path (what an export records)
        self.scored_with: dict[str, str] = {}
        self._cache: str | None = None
        jobbar.message.connect(self.message.emit)
        # queued inspections start when any job (inspection, export, ...) ends
        jobbar.busy_changed.connect(lambda busy: None if busy else self._start_pending_later())

    def set_detector(self, detector, checkpoint_path: str | None = None) -> None:
        """Use ``detector`` for new inspections and adopt its thresholds; start queued paths.

        ``checkpoint_path``: its checkpoint file, or the exported folder it was opened
        from. A checkpoint's model keeps an export runtime chosen for the previous one
        (it is exported for it in the background; queued paths wait for that)."""
        wanted = self.runtime if self.detector is not None else TORCH
        self.detector, self.checkpoint_path = detector, checkpoint_path
        self.runtime = runtime_of(detector)
        folder = getattr(detector, "folder", None)
        self.export_folder = None if folder is None else str(checkpoint_path or folder)
        self.torch_detector = detector if self.export_folder is None else None
        self.runtime_folder = self.export_folder
        self.state.checkpoint_path = checkpoint_path
        self.export_meta = detector_identity(detector)
        t = detector.thresholds
        self.state.set_thresholds(image=t.image, pixel=t.pixel, source=f"model ({t.source})")
        name = Path(checkpoint_path).name if checkpoint_path else self.export_meta["method"]
        hint = " — press Ctrl+R to re-inspect the list with it" if len(self.state) else ""
        self.message.emit(f"Model {name} ready ({short_label(self.runtime)}){hint}")
        self.runtime_changed.emit()
        if self.torch_detector is not None and wanted != TORCH:
            self.set_runtime(wanted, reinspect=False)
        self._start_pending()

    def set_runtime(self, spec: str, *, reinspect: bool = True) -> bool:
        """Inspect with ``spec`` (``torch``, ``onnxruntime``, ``openvino:bf16``, ...) from now
        on: the model is exported for it in the background if needed, then the listed images
        are inspected again (``reinspect``). False (and a message) when refused at once."""
        if spec == self.runtime:
            return True
        if self.detector is None:
            self.message.emit("Load a model before choosing its runtime")
            self.runtime_changed.emit()
            return False
        if spec == TORCH and self.torch_detector is not None:
            self._adopt(RuntimeSwitch(self.torch_detector, TORCH, None), reinspect)
            return True
        if self.export_folder is None and self._cache is None:
            self._cache = tempfile.mkdtemp(prefix="inspection-runtime-")
        started = self.jobbar.start(
            f"Switching to {short_label(spec)}",
            runtime_job,
            spec,
            torch_detector=self.torch_detector,
            checkpoint_path=self.checkpoint_path if self.export_folder is None else None,
            export_folder=self.export_folder,
            cache_dir=self._cache,
            on_result=lambda switch: self._adopt(switch, reinspect),
            on_end=self.runtime_changed.emit,
        )
        if not started:
            self.runtime_changed.emit()
        return started

    def _adopt(self, switch: RuntimeSwitch, reinspect: bool) -> None:
        self.detector, self.runtime, self.runtime_folder = (
            switch.detector,
            switch.spec,
            switch.folder,
        )
        where = f" (exported to {switch.folder})" if switch.folder else ""
        self.message.emit(f"Inspecting with {short_label(switch.spec)}{where}")
        self.runtime_changed.emit()
        if reinspect and len(self.state):
            if self.jobbar.busy:  # the switch's own job: inspected once it has ended
                queued = set(self.pending)
                self.pending.extend(p for p in self.state.paths if p not in queued)
            else:
                self.add_paths(list(self.state.paths))

    def open_exported(self, folder: str) -> bool:
        """Use the exported model folder ``folder`` (``export-model``'s, with ``deploy.json``),
        opened in the background with the export runtime in use (else ONNX Runtime)."""
        spec = self.runtime if self.runtime != TORCH else "onnxruntime"
        return self.jobbar.start(
            "Opening exported model",
            open_exported_job,
            str(folder),
            spec,
            on_result=lambda switch: self.set_detector(switch.detector, switch.folder),
        )

    def add_paths(self, paths: Sequence[str]) -> None:
        """Inspect files/folders in the background; queued while busy or without a model."""
        paths = [str(p) for p in paths]
        if not paths:
            return
        if self.detector is None or self.jobbar.busy:
            queued = set(self.pending)
            self.pending.extend(p for p in paths if p not in queued)
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
            on_report=lambda chunk, spec=self.runtime: self._on_chunk(chunk, spec),
            keep=lambda r: isinstance(r, InspectedChunk),
        )

    def _on_chunk(self, chunk: InspectedChunk, spec: str) -> None:
        self.scored_with.update((item.path, spec) for item in chunk.items)
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
                self.state,
                list(rows),
                checkpoint_path=self.checkpoint_path,
                scored_with=self.scored_with,
                **self.export_meta,
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
        spec = str(opened.attrs.get("runtime", TORCH))
        self.scored_with = {item.path: spec for item in opened.items}
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
            if self._cache is not None:
                shutil.rmtree(self._cache, ignore_errors=True)
                self._cache = None
        return ok


__all__ = ["InspectionSession"]
