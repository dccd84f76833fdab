"""The Inspection page's runtime selector: PyTorch, ONNX Runtime, OpenVINO (+ measured precisions).

It sits above the list of images (the right column's height is the thresholds' and
metrics' at 1366x768).

One row: the selector (its current entry is the runtime in use; entries of runtimes that
are not installed are disabled, their tooltip says how to install them) and a button that
opens a folder written by ``export-model``. The entries come from
:func:`app.components.inspection.runtime.runtime_entries`; the switch itself is the
session's (:meth:`app._qt.inspection.session.InspectionSession.set_runtime`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from app.components.inspection.runtime import RuntimeEntry, runtime_entries, short_label


class RuntimeBar(QWidget):
    """Runtime selector + "Model folder…" button.

    Signals:
        runtime_requested(str): the user picked an entry (``torch``, ``openvino:bf16``, ...).
        open_requested(str): the user chose an exported model folder to inspect with.
    """

    runtime_requested = Signal(str)
    open_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("Runtime")
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.combo.setMinimumContentsLength(10)
        self.combo.activated.connect(self._on_activated)  # user choices only
        self.open_button = QPushButton("Model folder…")
        self.open_button.setToolTip(
            "Inspect with a model folder written by export-model (deploy.json), "
            "as the line PC runs it"
        )
        self.open_button.clicked.connect(self._ask_folder)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.combo, 1)
        lay.addWidget(self.open_button)
        self.show_entries([], "torch", None)

    def show_session(self, session) -> None:
        """Show the runtimes offered for ``session``'s model (an
        :class:`~app._qt.inspection.session.InspectionSession`) and the one in use."""
        from core.deploy.prepare import variant_of

        det = session.detector
        entries = (
            []
            if det is None
            else runtime_entries(
                det.method, variant_of(det), has_checkpoint=session.torch_detector is not None
            )
        )
        self.show_entries(entries, session.runtime, session.runtime_folder)

    def show_entries(self, entries: list[RuntimeEntry], current: str, folder: str | None) -> None:
        """List ``entries`` and select ``current`` (the runtime in use); no signal.
        Without entries (no model yet) the selector is disabled."""
        self.combo.blockSignals(True)
        self.combo.clear()
        for e in entries:
            self.combo.addItem(e.label, e.spec)
            i = self.combo.count() - 1
            self.combo.setItemData(i, e.tip, Qt.ItemDataRole.ToolTipRole)
            self.combo.model().item(i).setEnabled(e.enabled)
        if not entries:
            self.combo.addItem(short_label(current), current)
        index = self.combo.findData(current)
        if index < 0:  # in use but not offered any more: still shown as what runs
            self.combo.addItem(short_label(current), current)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)
        self.combo.setEnabled(bool(entries))
        self.combo.blockSignals(False)
        where = f"\nExported model: {folder}" if folder else ""
        tip = (
            f"Inspecting with {short_label(current)}.{where}\nPick another runtime to "
            "inspect with it: the model is exported once (checked against PyTorch) and the "
            "listed images are inspected again; results and exports record the runtime."
            if entries
            else "Load a model to choose the runtime it runs with"
        )
        self.combo.setToolTip(tip)
        self.label.setToolTip(tip)

    @property
    def current(self) -> str:
        """The selected entry's runtime spec."""
        return str(self.combo.currentData())

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open an exported model folder")
        if folder:
            self.open_requested.emit(folder)

    def _on_activated(self, index: int) -> None:
        spec = self.combo.itemData(index)
        if spec is not None:
            self.runtime_requested.emit(str(spec))


__all__ = ["RuntimeBar"]
