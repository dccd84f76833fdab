"""The centre column of the inspection page: title, verdict badge, viewer, options, labels."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app._qt.inspection.controls import LabelBar, ViewOptions
from app._qt.inspection.viewer import ImageViewer
from app.components.inspection.model import InspectionState
from app.components.inspection.render import WIDEST_SCORES, score_text
from core.errors import CoreError

HINT = "Drop images or folders here, or press Add images…"
#: the badge's padding inside its coloured box (left and right, px) and its font size
BADGE_PAD_PX, BADGE_PT = 10, 11


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when it is too narrow (``text()`` stays whole):
    a clipped "256×240" would read "256×24"."""

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, rect.width()
        )
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(rect, int(self.alignment()), shown)


class ViewerPane(QWidget):
    """Shows the current item of an :class:`InspectionState` with its verdict."""

    def __init__(self, state: InspectionState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.row: int | None = None
        self.viewer = ImageViewer()
        self.title = ElidedLabel(HINT)
        self.title.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.title.setToolTip("The image on screen")
        # a long file name ends in "…", never widens the page (full path in the tooltip)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setMinimumWidth(120)
        self.badge = QLabel()
        self.badge.setToolTip("Verdict of the image on screen at the current image threshold")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont(self.badge.font())
        font.setPointSize(BADGE_PT)
        font.setBold(True)
        self.badge.setFont(font)  # a font, not a style sheet: its metrics size the badge
        # fixed size, wide enough for the widest score and threshold of any method: a
        # text change on every threshold step must not re-layout the page
        fm = self.badge.fontMetrics()
        widest = max(
            fm.horizontalAdvance(self.badge_text(ng, w, w)) for ng in (0, 1) for w in WIDEST_SCORES
        )
        self.badge.setFixedWidth(widest + 2 * BADGE_PAD_PX + 8)
        self.readout = QLabel(" ")
        self.readout.setStyleSheet("font-family: monospace; color: #333;")
        self.readout.setToolTip("Pixel under the mouse: position, RGB, anomaly value, residual")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.options = ViewOptions()
        self.labelbar = LabelBar()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.badge)
        lay.addLayout(head)
        lay.addWidget(self.viewer, 1)
        lay.addWidget(self.readout)
        lay.addWidget(self.options)
        lay.addWidget(self.labelbar)
        v = self.viewer
        self.options.opacity_changed.connect(v.set_opacity)
        self.options.colormap_changed.connect(v.set_colormap)
        self.options.contours_toggled.connect(v.set_show_contours)
        self.options.below_toggled.connect(lambda on: v.set_below_opacity(0.35 if on else 0.0))
        self.labelbar.brush_changed.connect(v.set_brush)
        v.hovered.connect(lambda t: self.readout.setText(t or " "))
        v.set_pixel_threshold(state.thresholds.pixel)

    def show_row(self, row: int | None) -> None:
        """Display source row ``row`` of the state (None: nothing)."""
        s = self.state
        self.row = row if row is not None and row < len(s) else None
        if self.row is None:
            self.viewer.clear()
            self.title.setText(HINT)
            self.title.setToolTip("The image on screen")
            self.update_badge()
            return
        row = self.row
        note = ""
        try:
            image = s.image(row)
        except CoreError as exc:
            image, note = None, f" — image unavailable: {exc}"
        amap = s.anomaly_map(row)
        if amap is None:
            note += " — no anomaly map (Ctrl+R re-inspects)"
        self.viewer.show_item(image, amap, s.reconstruction(row), s.mask(row), s.map_range)
        h, w = s.shape(row)
        self.title.setText(f"{s.name(row)}   {w}×{h}{note}")
        self.title.setToolTip(s.path(row))
        self.update_badge()

    def update_badge(self) -> None:
        """Verdict badge of the current image at the current threshold (green OK / red NG)."""
        s, i = self.state, self.row
        if i is None or i >= len(s):
            self.badge.setText("")
            self.badge.setStyleSheet("")
            return
        ng = bool(s.verdicts[i])
        colour = "#d62728" if ng else "#2ca02c"
        self.badge.setText(self.badge_text(ng, s.scores[i], s.thresholds.image))
        self.badge.setStyleSheet(
            f"background: {colour}; color: white;"
            f" padding: 3px {BADGE_PAD_PX}px; border-radius: 4px;"
        )

    @staticmethod
    def badge_text(ng: bool, score, threshold) -> str:
        """``NG   59.71 ≥ 50.00`` / ``OK   0.4312 < 0.5000`` (numbers or preformatted text)."""
        sc, th = (v if isinstance(v, str) else score_text(v) for v in (score, threshold))
        return f"{'NG' if ng else 'OK'}   {sc} {'≥' if ng else '<'} {th}"


__all__ = ["ViewerPane"]
