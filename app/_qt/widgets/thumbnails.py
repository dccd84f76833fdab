"""Thumbnail list model for the good-images grid (rows are absolute image paths)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractListModel, Qt
from PySide6.QtGui import QColor, QPixmap

from app._qt.widgets.common import FAIL_RGB, to_pixmap
from app.components.imagescan import ImageInfo

PATH_ROLE = Qt.ItemDataRole.UserRole + 1


class ThumbnailModel(QAbstractListModel):
    """Rows are absolute image paths; thumbnails appear once scanned."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.paths: list[str] = []
        self.infos: dict[str, ImageInfo] = {}
        self.failures: dict[str, str] = {}
        self._pixmaps: dict[str, QPixmap] = {}

    def set_paths(self, paths: list[str]) -> None:
        self.beginResetModel()
        self.paths = list(paths)
        self.endResetModel()

    def add_results(self, infos, failures) -> None:
        for i in infos:
            self.infos[i.path] = i
        for f in failures:
            self.failures[f.path] = f.reason
        if self.paths:
            self.dataChanged.emit(self.index(0), self.index(len(self.paths) - 1))

    def forget(self) -> None:
        self.infos.clear()
        self.failures.clear()
        self._pixmaps.clear()

    def rowCount(self, parent=None) -> int:  # noqa: N802 - Qt override
        return 0 if parent is not None and parent.isValid() else len(self.paths)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        path = self.paths[index.row()]
        info = self.infos.get(path)
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(path).name
        if role == Qt.ItemDataRole.DecorationRole and info is not None:
            if path not in self._pixmaps:
                self._pixmaps[path] = to_pixmap(info.thumbnail)
            return self._pixmaps[path]
        if role == Qt.ItemDataRole.ToolTipRole:
            if info is not None:
                kind = "grayscale" if info.gray else "colour"
                return f"{path}\n{info.width}×{info.height} px, {kind}"
            if path in self.failures:
                return f"{path}\nCannot be used: {self.failures[path]}"
            return f"{path}\n(reading…)"
        if role == Qt.ItemDataRole.ForegroundRole and path in self.failures:
            return QColor(*FAIL_RGB)
        if role == PATH_ROLE:
            return path
        return None
