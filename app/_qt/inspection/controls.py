"""Threshold sliders (with numeric boxes) and overlay display options."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app._qt.widgets.common import WrapRow
from app.components.inspection.items import VerdictCounts

SLIDER_STEPS = 1000
#: a slider gets a row of its own at least this wide: one pixel moves it by at most
#: 1/300 of the score range (a narrow slider made a small drag jump across it)
MIN_SLIDER_PX = 300
COLORMAPS = ("inferno", "turbo", "viridis", "plasma", "CET-L4")


class _ThresholdRow:
    """A slider over ``[lo, hi]`` and a numeric box kept in sync; calls ``on_value``."""

    def __init__(self, name: str, tip: str, on_value) -> None:
        self.label = QLabel(name)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setMinimumWidth(MIN_SLIDER_PX)
        self.slider.setPageStep(SLIDER_STEPS // 50)
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(4)
        self.spin.setRange(-1e9, 1e9)
        self.spin.setMinimumWidth(90)
        for w in (self.label, self.slider, self.spin):
            w.setToolTip(tip)
        self.lo, self.hi = 0.0, 1.0
        self._on_value = on_value
        self.slider.valueChanged.connect(self._from_slider)
        self.spin.valueChanged.connect(self._from_spin)

    def _pos(self, value: float) -> int:
        f = (value - self.lo) / (self.hi - self.lo) if self.hi > self.lo else 0.0
        return int(round(min(max(f, 0.0), 1.0) * SLIDER_STEPS))

    def set_range(self, lo: float, hi: float) -> None:
        value = self.spin.value()
        self.lo, self.hi = (lo, hi) if hi > lo else (lo, lo + 1.0)
        self.spin.setSingleStep(max((self.hi - self.lo) / 200.0, 1e-4))
        self.slider.blockSignals(True)
        self.slider.setValue(self._pos(value))
        self.slider.blockSignals(False)

    def set_value(self, value: float) -> None:
        """Show ``value`` without calling back (extends the range if needed)."""
        if not self.lo <= value <= self.hi:
            span = self.hi - self.lo
            self.set_range(min(self.lo, value - 0.05 * span), max(self.hi, value + 0.05 * span))
        for w, v in ((self.spin, value), (self.slider, self._pos(value))):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)

    def _from_slider(self, pos: int) -> None:
        value = self.lo + (self.hi - self.lo) * pos / SLIDER_STEPS
        self.spin.blockSignals(True)
        self.spin.setValue(value)
        self.spin.blockSignals(False)
        self._on_value(self.spin.value())

    def _from_spin(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(self._pos(value))
        self.slider.blockSignals(False)
        self._on_value(value)


class ThresholdControls(QWidget):
    """Image and pixel threshold (slider + box) and the pass/fail readout.

    Signals:
        image_threshold_changed(float), pixel_threshold_changed(float): user edits.
    """

    image_threshold_changed = Signal(float)
    pixel_threshold_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image = _ThresholdRow(
            "Image threshold",
            "Images with a score at or above this value are NG (PageUp/PageDown nudge it)",
            self.image_threshold_changed.emit,
        )
        self.pixel = _ThresholdRow(
            "Pixel threshold",
            "Pixels with an anomaly value at or above this are defective: "
            "they are outlined and coloured in the overlay",
            self.pixel_threshold_changed.emit,
        )
        self.readout = QLabel()
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setToolTip(
            "How many inspected images pass (OK) and fail (NG) at the image threshold"
        )
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.source = QLabel()
        self.source.setStyleSheet("color: #666;")
        self.source.setToolTip("Where the current thresholds come from")
        self.source.setWordWrap(True)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for r, row in enumerate((self.image, self.pixel)):  # label + box, then the slider
            grid.addWidget(row.label, 2 * r, 0)
            grid.addWidget(row.spin, 2 * r, 2)
            grid.addWidget(row.slider, 2 * r + 1, 0, 1, 3)
        grid.addWidget(self.readout, 4, 0, 1, 3)
        grid.addWidget(self.source, 5, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        self.set_counts(VerdictCounts(0, 0, 0, 0, 0))

    def set_counts(self, c: VerdictCounts) -> None:
        pct = 100.0 * c.fail_fraction
        self.readout.setText(
            f"<span style='color:#2ca02c; font-weight:600'>✔ {c.n_pass} pass</span>"
            f" &nbsp;·&nbsp; <span style='color:#d62728; font-weight:600'>✖ {c.n_fail} fail</span>"
            f" &nbsp;({pct:.1f} % of {c.n})"
        )

    def set_source(self, text: str) -> None:
        """Say where the thresholds come from; a warning in it (too few labels) in orange."""
        self.source.setText(f"Thresholds: {text}")
        self.source.setStyleSheet("color: #b35900;" if "unreliable" in text else "color: #666;")


class ViewOptions(QWidget):
    """Overlay opacity, colour map, outline and below-threshold switches."""

    opacity_changed = Signal(float)
    colormap_changed = Signal(str)
    contours_toggled = Signal(bool)
    below_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setMaximumWidth(140)
        self.opacity.setToolTip("Opacity of the anomaly-map overlay (0: image only)")
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.colormap.setToolTip("Colour map of the anomaly overlay and the side maps")
        self.colormap.currentTextChanged.connect(self.colormap_changed.emit)
        self.contours = QCheckBox("Outlines")
        self.contours.setChecked(True)
        self.contours.setToolTip("Outline the regions at or above the pixel threshold (C)")
        self.contours.toggled.connect(self.contours_toggled.emit)
        self.below = QCheckBox("Show below threshold")
        self.below.setToolTip("Also colour (faintly) map values below the pixel threshold")
        self.below.toggled.connect(self.below_toggled.emit)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        op_label = QLabel("Overlay")
        op_label.setToolTip(self.opacity.toolTip())
        for w in (op_label, self.opacity, self.colormap, self.contours, self.below):
            lay.addWidget(w)
        lay.addStretch(1)


class LabelBar(QWidget):
    """Label buttons (OK / defective / clear) and the defect-mask brush.

    Signals:
        label_requested(int): 0 OK, 1 defective, -1 clear (the panel moves on to the next image).
        brush_changed(object, int): brush mode (``"paint"``, ``"erase"`` or None) and radius.
        clear_mask_requested(): remove the painted mask of the current image.
    """

    label_requested = Signal(int)
    brush_changed = Signal(object, int)
    clear_mask_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        labels, brush = QWidget(), QWidget()
        lay = QHBoxLayout(labels)
        lay.setContentsMargins(0, 0, 0, 0)
        specs = (
            ("✔ OK  [G]", 0, "Label the current image OK and go to the next one (G)", "#2ca02c"),
            (
                "✖ Defective  [D]",
                1,
                "Label the current image defective and go to the next (D)",
                "#d62728",
            ),
            ("Clear  [U]", -1, "Remove the label of the current image (U)", None),
        )
        self.buttons: dict[int, QPushButton] = {}
        for text, label, tip, colour in specs:
            b = QPushButton(text)
            b.setToolTip(tip)
            if colour:
                b.setStyleSheet(f"QPushButton {{ color: {colour}; font-weight: 600; }}")
            b.clicked.connect(lambda _=False, v=label: self.label_requested.emit(v))
            lay.addWidget(b)
            self.buttons[label] = b
        lay = QHBoxLayout(brush)
        lay.setContentsMargins(0, 0, 0, 0)
        self.paint = QPushButton("Paint mask [B]")
        self.paint.setToolTip("Paint the defect mask with the brush (B); drag on the image")
        self.erase = QPushButton("Erase [E]")
        self.erase.setToolTip("Erase the defect mask with the brush (E)")
        for b in (self.paint, self.erase):
            b.setCheckable(True)
            b.toggled.connect(self._on_toggle)
            lay.addWidget(b)
        self.radius = QSpinBox()
        self.radius.setRange(1, 200)
        self.radius.setValue(8)
        self.radius.setSuffix(" px")
        self.radius.setToolTip("Brush radius in image pixels ([ and ] change it)")
        self.radius.valueChanged.connect(lambda _v: self._emit_brush())
        lay.addWidget(self.radius)
        self.clear_mask = QPushButton("Clear mask")
        self.clear_mask.setToolTip("Remove the painted defect mask of this image")
        self.clear_mask.clicked.connect(self.clear_mask_requested.emit)
        lay.addWidget(self.clear_mask)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.row = WrapRow([labels, brush])  # two lines when the pane is narrow (laptops)
        outer.addWidget(self.row)

    @property
    def mode(self) -> str | None:
        return "paint" if self.paint.isChecked() else "erase" if self.erase.isChecked() else None

    def toggle(self, mode: str) -> None:
        """Switch the brush ``mode`` on or off (keyboard shortcuts)."""
        b = self.paint if mode == "paint" else self.erase
        b.setChecked(not b.isChecked())

    def _on_toggle(self, checked: bool) -> None:
        if checked:  # the two modes exclude each other
            other = self.erase if self.sender() is self.paint else self.paint
            other.blockSignals(True)
            other.setChecked(False)
            other.blockSignals(False)
        self._emit_brush()

    def _emit_brush(self) -> None:
        self.brush_changed.emit(self.mode, self.radius.value())


__all__ = ["COLORMAPS", "LabelBar", "ThresholdControls", "ViewOptions"]
