"""The Inspection page: inspect, threshold, label and export a batch of images.

Layout (splitters, so it fits a laptop as well as 1920x1080): the runtime selector
and the list of inspected images with failures below it | the viewer with its
options and the label bar | thresholds, score histogram and metrics.  The panel only lays out
and wires: the logic lives in the Qt-free :class:`InspectionState`, background
work in :class:`InspectionSession` (jobs from :mod:`app.components.inspection.jobs`).

Keyboard (active while focus is inside the panel): G/O label OK and go next,
D defective and next, U clear label, J/K next/previous, B paint / E erase mask,
[ ] brush size, F fit, C outlines, PgUp/PgDown nudge the image threshold,
Ctrl+I add images, Ctrl+Shift+O open an export, Ctrl+Shift+E export,
Ctrl+R re-inspect, Esc cancel the running job, Del remove selected rows.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QSplitter, QVBoxLayout, QWidget

from app._qt.inspection.controls import ThresholdControls
from app._qt.inspection.histogram import ScoreHistogram
from app._qt.inspection.metrics_box import MetricsBox
from app._qt.inspection.runner import JobBar
from app._qt.inspection.runtime_bar import RuntimeBar
from app._qt.inspection.session import InspectionSession
from app._qt.inspection.table import BatchList
from app._qt.inspection.viewer_pane import ViewerPane
from app._qt.widgets.common import FileDrop
from app.components.inspection.items import LABEL_DEFECT, LABEL_OK, UNLABELLED
from app.components.inspection.model import InspectionState

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff);;All files (*)"


class InspectionPanel(FileDrop, QWidget):
    """Inspection, labelling and export of a batch (inspect, label, export).

    Public API used by the main window: :meth:`set_detector`, :meth:`add_paths`,
    :meth:`open_export`, :meth:`export_to`, :meth:`shutdown`, :attr:`state`
    (``to_dict`` / ``load_dict`` for the project file) and ``status_message(str)``.
    """

    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = InspectionState()
        self._shown_pixel: float | None = None
        self.setAcceptDrops(True)
        self.jobbar = JobBar()
        self.session = InspectionSession(self.state, self.jobbar, self)
        self.batch = BatchList(self.state)
        self.pane = ViewerPane(self.state)
        self.viewer, self.labelbar, self.options = (
            self.pane.viewer,
            self.pane.labelbar,
            self.pane.options,
        )
        self.runtime = RuntimeBar()
        self.controls = ThresholdControls()
        self.histogram = ScoreHistogram()
        self.metrics = MetricsBox()
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        for w, stretch in ((self.controls, 0), (self.histogram, 1), (self.metrics, 0)):
            rv.addWidget(w, stretch)
        left = QWidget()  # the runtime row costs the scrolled list a line, not the right column
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.runtime)
        lv.addWidget(self.batch, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for w, stretch in ((left, 2), (self.pane, 5), (right, 3)):
            self.splitter.addWidget(w)
            self.splitter.setStretchFactor(self.splitter.count() - 1, stretch)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([400, 860, 420])
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addWidget(self.splitter, 1)
        outer.addWidget(self.jobbar)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(100)  # aggregate views refresh at <= 10 Hz
        self._wire()
        self._install_shortcuts()
        self._refresh_now()

    def _wire(self) -> None:
        self.state.subscribe(self._on_state)
        self._refresh_timer.timeout.connect(self._refresh_now)
        self.session.message.connect(self.status_message.emit)
        self.session.runtime_changed.connect(lambda: self.runtime.show_session(self.session))
        self.runtime.runtime_requested.connect(self.set_runtime)
        self.runtime.open_requested.connect(self.open_exported_model)
        self.batch.current_changed.connect(self.pane.show_row)
        self.controls.image_threshold_changed.connect(lambda v: self.set_thresholds(image=v))
        self.controls.pixel_threshold_changed.connect(lambda v: self.set_thresholds(pixel=v))
        self.histogram.threshold_moved.connect(lambda v: self.set_thresholds(image=v))
        self.metrics.image_suggested.connect(
            lambda v, why: self.set_thresholds(image=v, source=why)
        )
        self.metrics.pixel_suggested.connect(
            lambda v, why: self.set_thresholds(pixel=v, source=why)
        )
        self.metrics.message.connect(self.status_message.emit)
        self.metrics.pixel_metrics_requested.connect(
            lambda: self.session.pixel_metrics(self.metrics.set_pixel_metrics)
        )
        self.labelbar.label_requested.connect(self.label_current)
        self.labelbar.clear_mask_requested.connect(self._clear_mask)
        self.viewer.mask_edited.connect(self._on_mask_edited)
        b = self.batch
        b.btn_add.clicked.connect(self._ask_add)
        b.btn_open.clicked.connect(self._ask_open)
        b.btn_export.clicked.connect(lambda: self._ask_export(False))
        b.btn_export_sel.clicked.connect(lambda: self._ask_export(True))

    def _install_shortcuts(self) -> None:
        radius = self.labelbar.radius
        keys = {
            "G": lambda: self.label_current(LABEL_OK),
            "O": lambda: self.label_current(LABEL_OK),
            "D": lambda: self.label_current(LABEL_DEFECT),
            "U": lambda: self.label_current(UNLABELLED),
            "J": lambda: self.batch.step(1),
            "K": lambda: self.batch.step(-1),
            "B": lambda: self.labelbar.toggle("paint"),
            "E": lambda: self.labelbar.toggle("erase"),
            "[": lambda: radius.setValue(radius.value() - 2),
            "]": lambda: radius.setValue(radius.value() + 2),
            "F": self.viewer.fit,
            "C": self.options.contours.toggle,
            "PgUp": lambda: self._nudge(+1),
            "PgDown": lambda: self._nudge(-1),
            "Ctrl+I": self._ask_add,
            "Ctrl+Shift+O": self._ask_open,
            "Ctrl+Shift+E": lambda: self._ask_export(False),
            "Ctrl+R": self.reinspect,
            "Esc": self.jobbar.cancel,
            "Del": self.remove_selected,
        }
        self.shortcuts: dict[str, QShortcut] = {}
        for key, fn in keys.items():
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(fn)
            self.shortcuts[key] = sc

    # ----------------------------------------------------------------- public API
    @property
    def detector(self):
        return self.session.detector

    def set_detector(self, detector, checkpoint_path: str | None = None) -> None:
        """Use ``detector`` (a ``core.types.Detector``) for new inspections; adopt its thresholds."""
        self.session.set_detector(detector, checkpoint_path)

    def set_runtime(self, spec: str) -> bool:
        """Inspect with ``spec`` (``torch``, ``onnxruntime``, ``openvino:bf16``, ...): the model
        is exported for it in the background, then the list is inspected again. A failure
        leaves the runtime and the results as they were."""
        return self.session.set_runtime(spec)

    def open_exported_model(self, folder: str) -> bool:
        """Inspect with the exported model folder ``folder`` (written by ``export-model``)."""
        return self.session.open_exported(str(folder))

    def add_paths(self, paths: list[str]) -> None:
        """Inspect image files and folders in the background (results stream into the list)."""
        self.session.add_paths(paths)

    def reinspect(self) -> None:
        """Run the model again on every listed image (labels and masks are kept)."""
        self.session.add_paths(list(self.state.paths))

    def export_to(self, path: str, selection_only: bool = False) -> bool:
        """Export all (or the selected) images to HDF5 in the background; False if refused."""
        rows = self.batch.selected_rows() if selection_only else range(len(self.state))
        return self.session.export(str(path), list(rows))

    def open_export(self, path: str) -> bool:
        """Re-open an exported HDF5 batch in the background; it replaces the list."""
        return self.session.open_export(str(path))

    def shutdown(self, wait_ms: int = 10_000) -> bool:
        """Stop background work cleanly and delete the temporary arrays (window close)."""
        return self.session.shutdown(wait_ms)

    def set_thresholds(self, image=None, pixel=None, source: str = "manual") -> None:
        """Set the image and/or pixel threshold; every view follows at once."""
        self.state.set_thresholds(image=image, pixel=pixel, source=source)

    # ----------------------------------------------------------------- state -> views
    def _on_state(self, kind: str, info) -> None:
        if kind in ("inserted", "updated", "reset", "labels"):
            self._refresh_timer.start()
            if kind == "reset":
                row = self.batch.current_row()
                if row is None and len(self.state):
                    self.batch.select_row(0)
                else:
                    self.pane.show_row(row)
            elif (
                kind == "updated"
                and self.pane.row is not None
                and self.pane.row in set(info.tolist())
            ):
                self.pane.show_row(self.pane.row)
            elif self.pane.row is None and len(self.state):
                self.batch.select_row(0)
        elif kind == "thresholds":
            self._on_thresholds()
        elif kind == "failures":
            self.batch.show_failures(self.state.failures)

    def _on_thresholds(self) -> None:
        """Cheap per-threshold updates: everything here is O(1) or vectorised."""
        t = self.state.thresholds
        self.controls.image.set_value(t.image)
        self.controls.pixel.set_value(t.pixel)
        self.controls.set_source(t.source)
        self.controls.set_counts(self.state.counts())
        self.histogram.set_threshold(t.image)
        self.metrics.update_threshold(t.image)
        if t.pixel != self._shown_pixel:
            self._shown_pixel = t.pixel
            self.viewer.set_pixel_threshold(t.pixel)
        self.pane.update_badge()

    def _refresh_now(self) -> None:
        """Aggregates over all scores/labels (throttled to <= 10 Hz by ``_refresh_timer``)."""
        s = self.state
        scores, labels = s.scores, s.labels
        self.histogram.set_data(scores, labels)
        self.metrics.update_labels(scores, labels, s.thresholds.image)
        lo, hi = (float(scores.min()), float(scores.max())) if len(s) else (0.0, 1.0)
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        self.controls.image.set_range(lo - pad, hi + pad)
        self.controls.pixel.set_range(*s.map_range)
        self._on_thresholds()
        self.batch.show_failures(s.failures)

    # ----------------------------------------------------------------- labelling
    def label_current(self, label: int) -> None:
        """Label the selected images (or the current one); after OK/defective go to the next."""
        cur = self.pane.row
        rows = self.batch.selected_rows() or ([cur] if cur is not None else [])
        if not rows:
            return
        self.state.set_label(rows, label)
        if label != UNLABELLED:
            self.batch.step(1)

    def _on_mask_edited(self, mask) -> None:
        row = self.pane.row
        if row is None:
            return
        self.state.set_mask(row, mask)
        if mask.any() and self.state.labels[row] == UNLABELLED:
            self.state.set_label(row, LABEL_DEFECT)  # painting a defect implies the label

    def _clear_mask(self) -> None:
        if self.pane.row is not None:
            self.state.set_mask(self.pane.row, None)
            self.pane.show_row(self.pane.row)

    def remove_selected(self) -> None:
        """Remove the selected rows from the batch."""
        self.state.remove(self.batch.selected_rows())

    def _nudge(self, direction: int) -> None:
        row = self.controls.image
        self.set_thresholds(
            image=self.state.thresholds.image + direction * (row.hi - row.lo) / 100.0
        )

    # ----------------------------------------------------------------- dialogs and drops
    def _ask_add(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Images to inspect", "", IMAGE_FILTER)
        self.add_paths(files)

    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open exported batch", "", "HDF5 (*.h5 *.hdf5)")
        if path:
            self.open_export(path)

    def _ask_export(self, selection_only: bool) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export batch", "inspection.h5", "HDF5 (*.h5)")
        if path:
            self.export_to(path, selection_only)


__all__ = ["InspectionPanel"]
