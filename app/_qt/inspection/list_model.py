"""Qt table model over :class:`~app.components.inspection.model.InspectionState`.

The model never copies the items: it reads the state's arrays on demand and
turns state events into Qt's fine-grained signals (``rowsInserted``,
``dataChanged`` for just the changed rows), so moving a threshold over 1,000
items costs one ``dataChanged`` and a repaint of the visible rows, not a
rebuild of widgets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPixmap

from app._qt.widgets.common import FAIL_RGB, PASS_RGB, to_qimage
from app.components.inspection.model import LABEL_DEFECT, LABEL_OK, InspectionState
from app.components.inspection.render import score_text

COL_IMAGE, COL_SCORE, COL_VERDICT, COL_LABEL = range(4)
HEADERS = ("Image", "Score", "Verdict", "Label")
HEADER_TIPS = (
    "Inspected image (thumbnail and file name)",
    "Image anomaly score: higher is more anomalous",
    "NG when score ≥ image threshold, otherwise OK",
    "Your label: OK (G key) or Defect (D key); — when unlabelled",
)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1

# the application's pass/fail colours (app._qt.widgets.common), as text and as row tints
FAIL_COLOUR = QColor(*FAIL_RGB)
PASS_COLOUR = QColor(*PASS_RGB)
FAIL_TINT = QColor(*FAIL_RGB, 40)
PASS_TINT = QColor(*PASS_RGB, 28)


class ItemTableModel(QAbstractTableModel):
    """Rows = inspected items; columns = image, score, verdict, label."""

    def __init__(self, state: InspectionState, parent=None) -> None:
        super().__init__(parent)
        self._state = state
        self._rows = len(state)
        self._pixmaps: dict[int, QPixmap] = {}
        self.thumb_px = 0  # > 0: thumbnails are scaled to fit this many pixels
        self._bold = QFont()
        self._bold.setBold(True)
        state.subscribe(self._on_state)

    # ----------------------------------------------------------------- state -> Qt
    def _on_state(self, kind: str, info: Any) -> None:
        if kind == "inserted":
            first, last = info
            self.beginInsertRows(QModelIndex(), first, last)
            self._rows = len(self._state)
            self.endInsertRows()
        elif kind == "reset":
            self.beginResetModel()
            self._rows = len(self._state)
            self._pixmaps.clear()
            self.endResetModel()
        elif kind in ("verdicts", "updated", "labels"):
            idx = np.asarray(info)
            if idx.size == 0:
                return
            if kind == "updated":
                for i in idx:
                    self._pixmaps.pop(int(i), None)
            # verdicts tint whole rows; labels change one column; updates change everything
            first_col = COL_LABEL if kind == "labels" else COL_IMAGE
            self.dataChanged.emit(
                self.index(int(idx.min()), first_col), self.index(int(idx.max()), COL_LABEL)
            )

    # ----------------------------------------------------------------- Qt API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def _pixmap(self, row: int) -> QPixmap | None:
        pm = self._pixmaps.get(row)
        if pm is None:
            thumb = self._state.thumbnail(row)
            if thumb is None:
                return None
            pm = QPixmap.fromImage(to_qimage(thumb))
            if self.thumb_px and max(pm.width(), pm.height()) > self.thumb_px:
                pm = pm.scaled(
                    self.thumb_px,
                    self.thumb_px,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            self._pixmaps[row] = pm
        return pm

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ):
        if not index.isValid() or index.row() >= self._rows:
            return None
        s, row, col = self._state, index.row(), index.column()
        ng = s.verdict(row)
        label = s.label(row)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_IMAGE:
                return s.name(row)
            if col == COL_SCORE:
                return score_text(s.score(row))
            if col == COL_VERDICT:
                return "NG" if ng else "OK"
            return {LABEL_OK: "OK", LABEL_DEFECT: "Defect"}.get(label, "—")
        if role == SORT_ROLE:
            if col == COL_IMAGE:
                return s.name(row).lower()
            if col == COL_SCORE:
                return s.score(row)
            return int(ng) if col == COL_VERDICT else label
        if role == Qt.ItemDataRole.DecorationRole and col == COL_IMAGE:
            return self._pixmap(row)
        if role == Qt.ItemDataRole.BackgroundRole:
            if col == COL_VERDICT:
                return QBrush(FAIL_COLOUR if ng else PASS_COLOUR)
            return QBrush(FAIL_TINT if ng else PASS_TINT)
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_VERDICT:
            return QBrush(QColor("white"))
        if role == Qt.ItemDataRole.FontRole and col in (COL_VERDICT, COL_LABEL):
            return self._bold
        if role == Qt.ItemDataRole.TextAlignmentRole and col != COL_IMAGE:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            h, w = s.shape(row)
            mask = "painted defect mask" if s.mask(row) is not None else "no defect mask"
            return (
                f"{s.path(row)}\n{w}×{h} px · score {score_text(s.score(row))} · "
                f"{'NG' if ng else 'OK'} at threshold {score_text(s.thresholds.image)}\n"
                f"label: {self.data(index.siblingAtColumn(COL_LABEL))} · {mask}"
            )
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


__all__ = [
    "COL_IMAGE",
    "COL_LABEL",
    "COL_SCORE",
    "COL_VERDICT",
    "SORT_ROLE",
    "ItemTableModel",
]
