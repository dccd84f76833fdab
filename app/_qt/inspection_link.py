"""Keeps the project's inspected batch and the inspection panel in step.

* :meth:`InspectionLink.capture` (before every save): the panel's state goes to
  ``<project>/batches/inspection.json`` (E2's ``InspectionState.to_dict``: paths,
  scores, labels, painted masks, thresholds) and into the project file as a
  :class:`app.components.project.BatchEntry` (paths, labels ``good``/``defect``) plus the
  thresholds of the model in use.
* :meth:`restore` (a project was opened): the snapshot is loaded back; a batch
  recorded only as paths (the demo's test images) is queued for inspection, and the
  labels it records (the demo's ground truth) are given to its images as they arrive.
* :meth:`on_detector_loaded`: the panel gets the model, the project's saved
  thresholds for it, and (re-)inspects what needs maps.

Works with any panel; without E2's ``state`` it does nothing.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QObject, Signal

from app._qt.project_qt import ProjectAdapter
from app.components.inspection.items import UNLABELLED
from app.components.project import BatchEntry
from app.components.schema import read_json
from core.io.files import atomic_write

BATCH_NAME = "inspection"
LABEL_NAMES = {0: "good", 1: "defect"}
#: the largest inspection snapshot restored (10 000 images with painted masks fit)
MAX_STATE_BYTES = 256 * 2**20


class InspectionLink(QObject):
    """Project ↔ inspection panel synchronisation (GUI thread)."""

    status_message = Signal(str)
    #: the panel has a model and any queued images are being inspected
    inspected = Signal()

    def __init__(self, adapter: ProjectAdapter, panel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.adapter = adapter
        self.panel = panel
        self.pending_paths: list[str] = []
        #: labels (0 OK / 1 defective) of queued images, set when each is inspected
        self.pending_labels: dict[str, int] = {}
        #: queued images not inspected yet; when the last arrives the batch is recorded
        self._awaiting: set[str] = set()
        self.needs_maps = False
        self._listening = False

    @property
    def state(self):
        return getattr(self.panel, "state", None)

    # ----------------------------------------------------------------- panel → project
    def capture(self) -> None:
        """Write the panel's batch into the project (called before saving)."""
        p, state = self.adapter.project, self.state
        if p is None or state is None or (len(state) == 0 and p.batch(BATCH_NAME) is None):
            return
        snapshot = state.to_dict()
        file = p.batches_dir / f"{BATCH_NAME}.json"
        try:
            with atomic_write(file) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                json.dump(snapshot, fh)
        except OSError as exc:
            self.status_message.emit(f"Cannot save the inspected batch to {file}: {exc}")
            return
        labels = {path: LABEL_NAMES[v] for path, v in self.pending_labels.items()}
        labels.update(
            (e["path"], LABEL_NAMES[e["label"]])
            for e in snapshot["items"]
            if e["label"] in LABEL_NAMES
        )
        old = p.batch(BATCH_NAME)
        p.set_batch(
            BatchEntry(
                BATCH_NAME,
                tuple(e["path"] for e in snapshot["items"]) + tuple(self.pending_paths),
                model=p.active_model,
                export_path=str(p.abs(old.export_path)) if old and old.export_path else None,
                labels=labels,
                state_path=str(file),
            )
        )
        if p.active_model is not None:
            p.set_thresholds(p.active_model, state.thresholds)

    # ----------------------------------------------------------------- project → panel
    def restore(self) -> None:
        """Show the opened project's batch (without maps until a model is loaded)."""
        self.pending_paths, self.pending_labels, self.needs_maps = [], {}, False
        self._awaiting = set()
        p, state = self.adapter.project, self.state
        if p is None or state is None:
            return
        if not self._listening:
            state.subscribe(self._on_state)
            self._listening = True
        batch = p.batch(BATCH_NAME) or (p.batches[-1] if p.batches else None)
        snapshot = None
        if batch is not None and batch.state_path and p.abs(batch.state_path).is_file():
            try:
                snapshot = read_json(
                    p.abs(batch.state_path), max_bytes=MAX_STATE_BYTES, what="inspection state"
                )
                state.load_dict(snapshot)
                self.needs_maps = len(state) > 0
            except (OSError, ValueError) as exc:  # StateError is a ValueError
                self.status_message.emit(f"The saved inspection could not be restored: {exc}")
                snapshot = None
        if snapshot is None:
            state.load_dict({"items": [], "thresholds": state.thresholds.to_dict()})
            if batch is not None:
                self.pending_paths = [str(p.abs(x)) for x in batch.paths]
                names = {name: code for code, name in LABEL_NAMES.items()}
                self.pending_labels = {
                    str(p.abs(k)): names[v] for k, v in batch.labels.items() if v in names
                }

    def _on_state(self, kind: str, info) -> None:
        """Newly inspected images of a queued batch get the labels the batch recorded;
        once the last queued image is in, the batch is recorded in the project."""
        state = self.state
        if state is None or not self._awaiting or kind not in ("inserted", "failures"):
            return
        if kind == "failures":
            self._awaiting.difference_update(f.path for f in state.failures)
        else:
            for i in range(info[0], info[1] + 1):
                self._awaiting.discard(state.path(i))
                label = self.pending_labels.pop(state.path(i), None)
                if label is not None and state.label(i) == UNLABELLED:
                    state.set_label(i, label)
        if not self._awaiting:
            self.pending_labels = {}
            self.capture()

    def on_detector_loaded(self, detector, path: str) -> None:
        """Give the panel the model, then inspect what is waiting for it."""
        if not hasattr(self.panel, "set_detector"):
            return
        self.panel.set_detector(detector, path)
        p = self.adapter.project
        saved = p.thresholds.get(p.active_model) if p is not None and p.active_model else None
        if saved is not None:
            self.panel.set_thresholds(image=saved.image, pixel=saved.pixel, source=saved.source)
        if self.pending_paths:
            paths, self.pending_paths = self.pending_paths, []
            self._awaiting = set(paths)
            self.panel.add_paths(paths)
        elif self.needs_maps and self.state is not None and len(self.state):
            self.needs_maps = False
            self.panel.reinspect()
        self.inspected.emit()
