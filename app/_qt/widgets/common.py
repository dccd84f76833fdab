"""Small shared widgets and numpy → Qt helpers (used by every page, E2's too).

* :func:`to_qimage` / :func:`to_pixmap`: numpy image → Qt (always a deep copy,
  so the array may be freed or reused afterwards).
* :func:`outline` / :func:`colorize`: Qt-free numpy helpers for overlays.
* :class:`ImageView`: an image scaled to fit (aspect kept) with a caption.
* :func:`button`, :func:`labelled`, :class:`MessageList`: consistent controls.
* :class:`WrapRow`: groups of controls in one row, or stacked when the row is narrow.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QBoxLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QWidget,
)

#: Colours used consistently for pass / fail / outlines (RGB).
PASS_RGB = (46, 160, 67)
FAIL_RGB = (218, 54, 51)
OUTLINE_RGB = (255, 64, 64)
SPACING = 8


def to_qimage(arr: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB, (H, W) uint8 gray or (H, W) float in [0, 1] → a QImage copy."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    a = np.ascontiguousarray(a)
    if a.ndim == 2:
        h, w = a.shape
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    elif a.ndim == 3 and a.shape[2] == 3:
        h, w, _ = a.shape
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    else:
        raise ValueError(f"expected (H, W) or (H, W, 3) image, got shape {a.shape}")
    return img.copy()  # detach from the numpy buffer


def to_pixmap(arr: np.ndarray) -> QPixmap:
    """Like :func:`to_qimage` but a QPixmap (GUI thread only)."""
    return QPixmap.fromImage(to_qimage(arr))


def outline(image: np.ndarray, mask: np.ndarray, rgb=OUTLINE_RGB, width: int = 1) -> np.ndarray:
    """Draw the boundary of ``mask`` on a copy of ``image``.

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) array, non-zero inside the region.
        width: boundary thickness in pixels (grown inwards).

    Returns:
        (H, W, 3) uint8 copy with the boundary pixels set to ``rgb``.
    """
    m = np.asarray(mask) > 0
    inner = m.copy()
    for _ in range(max(1, width)):
        p = np.pad(inner, 1, mode="edge")
        inner = inner & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    edge = m & ~inner
    out = np.array(image, dtype=np.uint8, copy=True)
    out[edge] = rgb
    return out


def colorize(values: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Map a float (H, W) array to an (H, W, 3) uint8 'inferno'-like heat image."""
    t = np.clip((np.asarray(values, np.float32) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    # piecewise-linear approximation of matplotlib's inferno (5 stops)
    stops = np.array([0.0, 0.25, 0.5, 0.75, 1.0], np.float32)
    cols = np.array(
        [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32
    )
    out = np.stack([np.interp(t, stops, cols[:, c]) for c in range(3)], axis=-1)
    return (out + 0.5).astype(np.uint8)


class ImageView(QWidget):
    """Shows one image scaled to fit (aspect ratio kept, centred) with a caption below."""

    def __init__(
        self, caption: str = "", parent: QWidget | None = None, min_side: int = 96
    ) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._cache: QPixmap | None = None
        self._caption = caption
        self._placeholder = "no image"
        self.setMinimumSize(QSize(min_side, min_side + 18))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, arr: np.ndarray | None, caption: str | None = None) -> None:
        """Show a numpy image (see :func:`to_qimage`), or clear with None."""
        self._pixmap = None if arr is None else to_pixmap(arr)
        self._cache = None
        if caption is not None:
            self._caption = caption
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def caption(self) -> str:
        return self._caption

    def has_image(self) -> bool:
        return self._pixmap is not None

    def _scaled(self, size) -> QPixmap:
        """The pixmap scaled to fit ``size`` (cached: painting never rescales twice)."""
        target = self._pixmap.size().scaled(size, Qt.AspectRatioMode.KeepAspectRatio)
        if self._cache is None or self._cache.size() != target:
            self._cache = self._pixmap.scaled(
                target,
                Qt.AspectRatioMode.IgnoreAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        return self._cache

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        cap_h = 18 if self._caption else 0
        area = QRectF(self.rect()).adjusted(0, 0, 0, -cap_h)
        if self._pixmap is not None and not self._pixmap.isNull() and area.height() > 1:
            pm = self._scaled(area.size().toSize())
            x = area.x() + (area.width() - pm.width()) / 2
            y = area.y() + (area.height() - pm.height()) / 2
            p.drawPixmap(int(x), int(y), pm)
        else:  # an empty, lightly shaded box with the placeholder text
            p.fillRect(area, self.palette().color(self.backgroundRole()).darker(108))
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, self._placeholder)
        if cap_h:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(
                QRectF(0, self.height() - cap_h, self.width(), cap_h),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextSingleLine,
                self._caption,
            )
        p.end()


def button(text: str, tooltip: str, slot=None, shortcut: str | None = None) -> QPushButton:
    """A push button with a tooltip (and the shortcut shown in it)."""
    b = QPushButton(text)
    if shortcut:
        b.setShortcut(shortcut)
        tooltip = f"{tooltip} ({shortcut})"
    b.setToolTip(tooltip)
    if slot is not None:
        b.clicked.connect(slot)
    return b


def labelled(label: str, widget: QWidget, tooltip: str = "") -> QWidget:
    """``label`` + ``widget`` in a row; the tooltip goes on both."""
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(SPACING)
    lab = QLabel(label)
    lab.setBuddy(widget)
    lay.addWidget(lab)
    lay.addWidget(widget, 1)
    if tooltip:
        lab.setToolTip(tooltip)
        widget.setToolTip(tooltip)
    return row


class WrapRow(QWidget):
    """Groups of controls side by side; stacked one per line when the width is too small.

    Its minimum width is that of the widest group (not the sum), so a bar of many
    buttons does not force a wide window on a laptop screen.
    """

    def __init__(self, groups: list[QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.groups = list(groups)
        self._box = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self._box.setContentsMargins(0, 0, 0, 0)
        self._box.setSpacing(2 * SPACING)
        self._box.setSizeConstraint(QBoxLayout.SizeConstraint.SetNoConstraint)
        for g in self.groups:
            self._box.addWidget(g)
        self._box.addStretch(1)

    def one_row_width(self) -> int:
        hints = [g.sizeHint().width() for g in self.groups]
        return sum(hints) + self._box.spacing() * max(0, len(hints) - 1)

    def is_stacked(self) -> bool:
        return self._box.direction() == QBoxLayout.Direction.TopToBottom

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hints = [g.minimumSizeHint() for g in self.groups] or [QSize(0, 0)]
        h = (
            sum(x.height() for x in hints) + self._box.spacing() * (len(hints) - 1)
            if self.is_stacked()
            else max(x.height() for x in hints)
        )
        return QSize(max(x.width() for x in hints), h)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        stacked = event.size().width() < self.one_row_width()
        if stacked != self.is_stacked():
            self._box.setDirection(
                QBoxLayout.Direction.TopToBottom if stacked else QBoxLayout.Direction.LeftToRight
            )
            self.updateGeometry()
        super().resizeEvent(event)


class MessageList(QListWidget):
    """A compact list of problems (e.g. corrupt files with their reason)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlternatingRowColors(True)
        self.setToolTip("Files that could not be used, with the reason")
        self.setMaximumHeight(120)

    def set_messages(self, rows: list[tuple[str, str]]) -> None:
        """``rows``: (path, reason) pairs; hides itself when empty."""
        self.clear()
        for path, reason in rows:
            item = QListWidgetItem(f"{path} — {reason}")
            item.setToolTip(f"{path}\n{reason}")
            item.setForeground(QColor(*FAIL_RGB))
            self.addItem(item)
        self.setVisible(bool(rows))


class FileDrop:
    """Mixin for a widget that takes local files dropped on it: accepts the drag when it
    carries at least one local file and passes the dropped files' paths to the widget's
    ``add_paths(paths: list[str])``.  The widget calls ``setAcceptDrops(True)``."""

    @staticmethod
    def dropped_paths(mime) -> list[str]:
        """Local file paths of a ``QMimeData`` (URLs that are not local files are left out)."""
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.dropped_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    dragMoveEvent = dragEnterEvent  # noqa: N815 - Qt override

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        paths = self.dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)
