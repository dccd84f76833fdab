"""The left column of the inspection page: actions, the list of images, failures."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QSize, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app._qt.inspection.list_model import (
    COL_IMAGE,
    COL_LABEL,
    COL_SCORE,
    COL_VERDICT,
    SORT_ROLE,
    ItemTableModel,
)
from app.components.inspection.model import InspectionState
from app.components.inspection.render import WIDEST_SCORES
from core.types import FailedImage

THUMB_ROW = 42
#: narrowest list: score, verdict and label columns plus a readable Image column
MIN_LIST_PX = 360
#: pixels a cell adds around its text (the style's text margins, the grid line, slack)
CELL_PAD_PX = 14
#: room for the header's sort arrow next to a column title
SORT_ARROW_PX = 18


class BatchList(QWidget):
    """Buttons, the sortable table of inspected images and the failed-files list.

    Signals:
        current_changed(object): source row of the new current image, or None.
    """

    current_changed = Signal(object)

    def __init__(self, state: InspectionState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ItemTableModel(state, self)
        self.model.thumb_px = THUMB_ROW - 6
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        t = self.table = QTableView()
        t.setModel(self.proxy)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        t.setIconSize(QSize(THUMB_ROW - 6, THUMB_ROW - 6))
        t.verticalHeader().setVisible(False)
        t.verticalHeader().setDefaultSectionSize(THUMB_ROW)
        t.setSortingEnabled(True)
        t.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # input order until a header is clicked
        t.setAlternatingRowColors(False)
        t.setWordWrap(False)
        t.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        t.setAcceptDrops(False)
        h = t.horizontalHeader()
        h.setSectionResizeMode(COL_IMAGE, QHeaderView.ResizeMode.Stretch)
        # Fixed widths from the font: ResizeToContents would re-measure every row on
        # each dataChanged, i.e. on every threshold move.
        bold = t.font()
        bold.setBold(True)  # verdicts and labels are drawn bold
        fm, fb, fh = t.fontMetrics(), QFontMetrics(bold), h.fontMetrics()
        # every score any method writes (0.4312, 29.71, 109.7, up to -55555) fits whole
        score_px = max(fm.horizontalAdvance(w) for w in WIDEST_SCORES)
        for c, width in (
            (COL_SCORE, max(score_px, fh.horizontalAdvance("Score") + SORT_ARROW_PX)),
            (COL_VERDICT, fb.horizontalAdvance("Verdict")),
            (COL_LABEL, fb.horizontalAdvance("Defect")),
        ):
            h.setSectionResizeMode(c, QHeaderView.ResizeMode.Interactive)
            h.resizeSection(c, width + CELL_PAD_PX)
        t.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        t.setToolTip(
            "Inspected images. Click a header to sort (e.g. by score to review the worst first); "
            "J/K or arrows move; G/D label; Del removes the selected rows"
        )
        t.selectionModel().currentRowChanged.connect(self._on_current)

        self.btn_add = self._button(
            "Add images…", "Inspect image files or folders (Ctrl+I); or drop them here"
        )
        self.btn_open = self._button(
            "Open export…", "Re-open an exported HDF5 batch (Ctrl+Shift+O)"
        )
        self.btn_export = self._button(
            "Export…", "Export all inspected images to HDF5 (Ctrl+Shift+E)"
        )
        self.btn_export_sel = self._button(
            "Export selection…", "Export only the selected images to HDF5"
        )
        self.failed_label = QLabel()
        self.failed_label.setStyleSheet("color: #b00020; font-weight: 600;")
        self.failed_label.setToolTip("Files that could not be inspected")
        self.failed_list = QListWidget()
        self.failed_list.setToolTip("Files that could not be inspected, with the reason")
        self.failed_list.setMaximumHeight(90)
        self.failed_list.setWordWrap(True)
        # the Image column keeps room for a thumbnail and about 16 characters of file name
        self.setMinimumWidth(MIN_LIST_PX)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for pair in ((self.btn_add, self.btn_open), (self.btn_export, self.btn_export_sel)):
            row = QHBoxLayout()
            for b in pair:
                row.addWidget(b)
            lay.addLayout(row)
        lay.addWidget(t, 1)
        lay.addWidget(self.failed_label)
        lay.addWidget(self.failed_list)
        self.show_failures([])

    @staticmethod
    def _button(text: str, tip: str) -> QPushButton:
        b = QPushButton(text)
        b.setToolTip(tip)
        return b

    def _on_current(self, cur, _prev) -> None:
        self.current_changed.emit(self.proxy.mapToSource(cur).row() if cur.isValid() else None)

    def show_failures(self, failures: list[FailedImage]) -> None:
        """List failed files with their reasons (hidden when there are none)."""
        self.failed_label.setText(f"{len(failures)} file(s) could not be inspected:")
        self.failed_label.setVisible(bool(failures))
        self.failed_list.setVisible(bool(failures))
        if self.failed_list.count() != len(failures):
            self.failed_list.clear()
            for f in failures:
                self.failed_list.addItem(f"{Path(f.path).name} — {f.reason}")
                self.failed_list.item(self.failed_list.count() - 1).setToolTip(
                    f"{f.path}\n{f.reason}"
                )

    # ----------------------------------------------------------------- rows
    def selected_rows(self) -> list[int]:
        """Source rows of the selected images, ascending."""
        rows = self.table.selectionModel().selectedRows()
        return sorted({self.proxy.mapToSource(r).row() for r in rows})

    def current_row(self) -> int | None:
        idx = self.table.currentIndex()
        return self.proxy.mapToSource(idx).row() if idx.isValid() else None

    def select_row(self, row: int) -> None:
        """Make source row ``row`` current and the only selected row."""
        idx = self.proxy.mapFromSource(self.model.index(row, 0))
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows
        )
        self.table.selectionModel().setCurrentIndex(idx, flags)
        self.table.scrollTo(idx)

    def step(self, delta: int) -> None:
        """Move the current image by ``delta`` rows in the list's (sorted) order."""
        n = self.proxy.rowCount()
        if not n:
            return
        cur = self.table.currentIndex().row()
        new = min(max(cur + delta, 0), n - 1) if cur >= 0 else 0
        self.select_row(self.proxy.mapToSource(self.proxy.index(new, 0)).row())


__all__ = ["BatchList"]
