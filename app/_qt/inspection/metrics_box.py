"""Labelling metrics and threshold suggestions.

Image AUROC (``core.evaluate.metrics.image_auroc``) and the confusion matrix at the
current threshold (``core.evaluate.metrics.confusion_at``) update live; pixel AUROC
needs every labelled anomaly map from disk, so it is computed in the
background on request (the panel runs the job and calls
:meth:`MetricsBox.set_pixel_metrics`).  Suggestion buttons apply
``core.evaluate.thresholds`` rules: F1-optimal, no missed defect, a percentile of the
good-labelled scores, and a pixel threshold from good-labelled maps.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.components.inspection.items import LABEL_DEFECT, LABEL_OK
from core.errors import CoreError
from core.evaluate import metrics, thresholds


def _fmt(v: float) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.3f}"


class MetricsBox(QGroupBox):
    """Metrics of the labelled images and threshold suggestion buttons.

    Signals:
        image_suggested(float, str): apply this image threshold (value, description).
        pixel_suggested(float, str): apply this pixel threshold.
        pixel_metrics_requested(): compute pixel AUROC / pixel suggestion in the background.
        message(str): a readable explanation (e.g. why a rule cannot apply).
    """

    image_suggested = Signal(float, str)
    pixel_suggested = Signal(float, str)
    pixel_metrics_requested = Signal()
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Labels, metrics and threshold suggestions", parent)
        self._labels = np.empty(0, np.int8)
        self._scores = np.empty(0, np.float64)
        self._pixel_value: float | None = None
        self._pixel_detail = ""
        self.auroc = QLabel()
        self.auroc.setToolTip(
            "Image AUROC over the labelled images (needs OK and defective labels)"
        )
        self.pixel = QLabel("Pixel AUROC: — (press Pixel metrics)")
        self.pixel.setToolTip(
            "Pixel AUROC over OK-labelled images and defective images with a painted mask"
        )
        self.rates = QLabel()
        for lab in (self.auroc, self.pixel, self.rates):  # long figures wrap, never widen the page
            lab.setWordWrap(True)
        self.cells: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setSpacing(2)
        heads = (("", 0, 0), ("predicted NG", 0, 1), ("predicted OK", 0, 2))
        heads += (("labelled defective", 1, 0), ("labelled OK", 2, 0))
        for text, r, c in heads:
            h = QLabel(text)
            h.setStyleSheet("color: #555;")
            grid.addWidget(h, r, c)
        tips = {
            "tp": "Defective and NG: caught",
            "fn": "Defective but OK: missed defects",
            "fp": "OK-labelled but NG: false alarms",
            "tn": "OK and OK",
        }
        for key, r, c, colour in (
            ("tp", 1, 1, "#d9f2d9"),
            ("fn", 1, 2, "#f8d0d0"),
            ("fp", 2, 1, "#f8d0d0"),
            ("tn", 2, 2, "#d9f2d9"),
        ):
            cell = QLabel("0")
            cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cell.setStyleSheet(f"background: {colour}; padding: 3px; font-weight: 600;")
            cell.setToolTip(tips[key])
            grid.addWidget(cell, r, c)
            self.cells[key] = cell
        self.rates.setToolTip(
            "Precision / recall / false-positive rate at the current image threshold"
        )
        self.rates.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.btn_f1 = QPushButton("F1-optimal")
        self.btn_f1.setToolTip("Image threshold of maximum F1 on the labelled images")
        self.btn_nomiss = QPushButton("No missed defect")
        self.btn_nomiss.setToolTip(
            "Highest image threshold that still flags every defective-labelled image"
        )
        self.btn_pct = QPushButton("Percentile of OK")
        self.btn_pct.setToolTip("Image threshold at this percentile of the OK-labelled scores")
        self.pct = QDoubleSpinBox()
        self.pct.setRange(50.0, 100.0)
        self.pct.setDecimals(1)
        self.pct.setValue(99.0)
        self.pct.setSuffix(" %")
        self.pct.setToolTip("Percentile used by 'Percentile of OK'")
        self.btn_pixel = QPushButton("Pixel metrics")
        self.btn_pixel.setToolTip(
            "Compute pixel AUROC and a pixel threshold (99.9th percentile of OK-labelled maps) "
            "in the background"
        )
        self.btn_use_pixel = QPushButton("Use pixel threshold")
        self.btn_use_pixel.setEnabled(False)
        self.btn_use_pixel.setToolTip("Apply the pixel threshold suggested from OK-labelled maps")
        self.btn_f1.clicked.connect(lambda: self._suggest("f1"))
        self.btn_nomiss.clicked.connect(lambda: self._suggest("nomiss"))
        self.btn_pct.clicked.connect(lambda: self._suggest("pct"))
        self.btn_pixel.clicked.connect(self.pixel_metrics_requested.emit)
        self.btn_use_pixel.clicked.connect(self._use_pixel)

        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for w in (self.btn_f1, self.btn_nomiss):
            row1.addWidget(w)
        for w in (self.btn_pct, self.pct):
            row2.addWidget(w)
        row3 = QHBoxLayout()
        row3.addWidget(self.btn_pixel)
        row3.addWidget(self.btn_use_pixel)
        lay = QVBoxLayout(self)
        for w in (self.auroc, self.pixel):
            lay.addWidget(w)
        lay.addLayout(grid)
        lay.addWidget(self.rates)
        for r in (row1, row2, row3):
            lay.addLayout(r)
        self.update_labels(self._scores, self._labels, 0.5)

    # ----------------------------------------------------------------- updates
    def update_labels(self, scores: np.ndarray, labels: np.ndarray, threshold: float) -> None:
        """Scores or labels changed: recompute image AUROC and the confusion matrix."""
        known = labels >= 0
        self._scores, self._labels = scores[known], labels[known].astype(np.int64)
        n_def = int((self._labels == LABEL_DEFECT).sum())
        n_ok = int((self._labels == LABEL_OK).sum())
        auroc = metrics.image_auroc(self._labels, self._scores) if self._labels.size else math.nan
        self.auroc.setText(
            f"Image AUROC: <b>{_fmt(auroc)}</b> &nbsp;({n_ok} OK, {n_def} defective labelled)"
        )
        self.btn_f1.setEnabled(n_def > 0)
        self.btn_nomiss.setEnabled(n_def > 0)
        self.btn_pct.setEnabled(n_ok > 0)
        self.btn_pixel.setEnabled(n_ok + n_def > 0)
        self.update_threshold(threshold)

    def update_threshold(self, threshold: float) -> None:
        """The image threshold moved: recompute the confusion matrix (vectorised)."""
        c = metrics.confusion_at(self._labels, self._scores, threshold)
        for key in ("tp", "fn", "fp", "tn"):
            self.cells[key].setText(str(getattr(c, key)))
        self.rates.setText(
            f"precision {_fmt(c.precision)} · recall {_fmt(c.recall)} · "
            f"false alarms {_fmt(c.false_positive_rate)}"
        )

    def set_pixel_metrics(self, result) -> None:
        """Show a :class:`app.components.inspection.jobs.PixelMetrics` result."""
        self.pixel.setText(
            f"Pixel AUROC: <b>{_fmt(result.pixel_auroc)}</b> &nbsp;({result.detail})"
        )
        self._pixel_value = result.pixel_threshold
        self._pixel_detail = result.threshold_detail
        self.btn_use_pixel.setEnabled(self._pixel_value is not None)
        if self._pixel_value is not None:
            self.btn_use_pixel.setText(f"Use pixel threshold {self._pixel_value:.4f}")
            self.btn_use_pixel.setToolTip(f"Apply this pixel threshold: {result.threshold_detail}")

    # ----------------------------------------------------------------- suggestions
    def _suggest(self, rule: str) -> None:
        try:
            if rule == "f1":
                s = thresholds.f1_optimal(self._labels, self._scores)
            elif rule == "nomiss":
                s = thresholds.no_missed_defect(self._labels, self._scores)
            else:
                good = self._scores[self._labels == LABEL_OK]
                s = thresholds.from_good_scores(good, percentile=self.pct.value())
        except CoreError as exc:
            self.message.emit(str(exc))
            return
        self.image_suggested.emit(float(s.value), f"{s.rule}: {s.detail}")
        if rule in ("f1", "nomiss"):  # chosen from labels: say when they are too few
            warning = thresholds.few_labels_warning(self._labels[self._labels >= 0] == 1)
            if warning:
                self.message.emit(f"⚠ {s.rule} threshold {s.value:.4f}{warning}")

    def _use_pixel(self) -> None:
        if self._pixel_value is not None:
            self.pixel_suggested.emit(self._pixel_value, f"pixel: {self._pixel_detail}")


__all__ = ["MetricsBox"]
