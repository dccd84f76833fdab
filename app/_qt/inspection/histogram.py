"""Histogram of image scores with the image threshold as a draggable line.

Good-labelled, defect-labelled and unlabelled scores are drawn in separate
colours on shared bins.  Dragging the line emits ``threshold_moved``; setting
the threshold from elsewhere only moves the line (the bars are rebuilt only
when scores or labels change).  The legend is part of the x axis' title, outside
the plot, so the threshold's value label (near the top of the line, above the
bars) can never cover it wherever the line is.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.components.inspection.items import LABEL_DEFECT, LABEL_OK, UNLABELLED

SERIES = (
    (UNLABELLED, "unlabelled", (150, 150, 160)),
    (LABEL_OK, "labelled OK", (44, 160, 44)),
    (LABEL_DEFECT, "labelled defective", (214, 39, 40)),
)
AXIS_TITLE = "image score"


class ScoreHistogram(QWidget):
    """Score histogram (stacked by label) + threshold line.

    Signals:
        threshold_moved(float): the user dragged the threshold line.
    """

    threshold_moved = Signal(float)

    def __init__(self, parent: QWidget | None = None, bins: int = 40) -> None:
        super().__init__(parent)
        self.bins = bins
        self.plot = pg.PlotWidget(background="w")
        self.plot.setAcceptDrops(False)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", AXIS_TITLE)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setLabel("left", "images")
        self.plot.setMinimumHeight(150)
        self.plot.setToolTip(
            "Image scores (grey: unlabelled, green: labelled OK, red: labelled defective). "
            "Drag the dashed line to move the image threshold: scores at or right of it are NG."
        )
        self.legend = ""  # the series shown, as rich text after the x axis' title
        self._axis_title = AXIS_TITLE
        self.curves: dict[int, pg.PlotDataItem] = {}
        for z, (label, name, rgb) in enumerate(SERIES):  # later series drawn on top
            c = self.plot.plot(
                [0, 1],
                [0],
                stepMode="center",
                fillLevel=0,
                brush=(*rgb, 110),
                pen=pg.mkPen((*rgb, 230), width=1.2),
                name=name,
            )
            c.setZValue(z)
            self.curves[label] = c
        self.line = pg.InfiniteLine(
            pos=0.5,
            angle=90,
            movable=True,
            pen=pg.mkPen("#1f3b73", width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
            hoverPen=pg.mkPen("#ff7f0e", width=3),
            label="{value:.4f}",
            labelOpts={"position": 0.92, "color": "#1f3b73", "fill": (255, 255, 255, 200)},
        )
        self.line.setZValue(10)
        self.plot.addItem(self.line)
        self._moving_from_code = False
        self.line.sigPositionChanged.connect(self._on_line_moved)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.counts: dict[int, np.ndarray] = {}
        self.edges = np.linspace(0.0, 1.0, bins + 1)

    def set_data(self, scores: np.ndarray, labels: np.ndarray) -> None:
        """Rebuild the bars from (N,) float scores and (N,) int labels (-1/0/1)."""
        scores = np.asarray(scores, np.float64)
        labels = np.asarray(labels)
        if scores.size:
            lo, hi = float(scores.min()), float(scores.max())
            t = float(self.line.value())
            lo, hi = min(lo, t), max(hi, t)
            pad = 0.05 * (hi - lo) if hi > lo else 0.05
            self.edges = np.linspace(lo - pad, hi + pad, self.bins + 1)
        else:
            self.edges = np.linspace(0.0, 1.0, self.bins + 1)
        self.counts = {}
        stacked = np.zeros(self.bins, np.int64)
        for label, _name, _rgb in reversed(SERIES):  # stacked: defective, OK, unlabelled
            sel = scores[labels == label]
            counts, _ = np.histogram(sel, bins=self.edges)
            self.counts[label] = counts
            stacked = stacked + counts
            self.curves[label].setData(self.edges, stacked, stepMode="center", fillLevel=0)
            self.curves[label].setVisible(bool(sel.size))
        self.legend = " &nbsp; ".join(  # only the series present
            f"<span style='color:rgb{rgb}'>■</span> {name.removeprefix('labelled ')}"
            for label, name, rgb in SERIES
            if self.curves[label].isVisible()
        )
        sep = " &nbsp;·&nbsp; " if self.legend else ""
        title = f"{AXIS_TITLE}{sep}{self.legend}"
        if title != self._axis_title:  # a new title lays the axis out again
            self._axis_title = title
            self.plot.setLabel("bottom", title)
        self.plot.setXRange(self.edges[0], self.edges[-1], padding=0)
        # headroom above the bars for the threshold label
        self.plot.setYRange(0, max(int(stacked.max(initial=0)), 1) * 1.4, padding=0)

    def set_threshold(self, value: float) -> None:
        """Move the line without emitting ``threshold_moved``."""
        self._moving_from_code = True
        try:
            self.line.setValue(float(value))
        finally:
            self._moving_from_code = False
        lo, hi = self.edges[0], self.edges[-1]
        if not lo <= value <= hi:  # keep the line visible
            self.plot.setXRange(min(lo, value), max(hi, value), padding=0.02)

    def _on_line_moved(self) -> None:
        if not self._moving_from_code:
            self.threshold_moved.emit(float(self.line.value()))


__all__ = ["ScoreHistogram"]
