"""The inspection viewer: image + anomaly overlay + contours, and three side views.

Main view (zoom with the wheel, pan by dragging): the image with the anomaly
map blended on top through a 256-entry RGBA lookup table, outlines of the
regions at or above the pixel threshold, and the painted defect mask.  Side
views, linked in zoom and pan: the reconstruction, the residual
``|image - reconstruction|`` (the classic reconstruction-error map) and the
raw anomaly map.  Moving the pixel threshold or the opacity only rebuilds the
LUT and the outline polyline; the quantised map is computed once per image.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app._qt.inspection.brush import MASK_LUT, MaskItem
from app.components.inspection.render import (
    contour_polyline,
    defect_mask,
    display_range,
    overlay_lut,
    quantise,
    residual_map,
    threshold_index,
)

MAX_CONTOUR_POINTS = 200_000  # beyond this the outline is skipped (noise at a low threshold)


def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 colours of a pyqtgraph colour map (``inferno``, ``turbo``, ...)."""
    return pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint8)


class ImageViewer(QWidget):
    """Shows one inspected image; see the module docstring.

    Signals:
        hovered(str): a readout of the pixel under the mouse (coordinates,
            RGB, anomaly value, residual), or "" when outside the image.
        mask_edited(object): the (H, W) uint8 {0, 1} mask after a brush stroke.
    """

    hovered = Signal(str)
    mask_edited = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: np.ndarray | None = None
        self.anomaly_map: np.ndarray | None = None
        self.residual: np.ndarray | None = None
        self.mask = np.zeros((1, 1), np.uint8)
        self.pixel_threshold = 0.5
        self.opacity = 0.5
        self.below_opacity = 0.0
        self.show_contours = True
        self.brush_mode: str | None = None  # None | "paint" | "erase"
        self.brush_radius = 8
        self._colours = colormap_lut("inferno")
        self._range = (0.0, 1.0)
        self._quantised: np.ndarray | None = None
        self._res_q: np.ndarray | None = None
        self._shown_shape: tuple[int, ...] = ()

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setAcceptDrops(False)  # let file drops reach the panel
        self.graphics.setBackground("#202124")
        self.graphics.setToolTip(
            "Wheel: zoom · drag: pan · F: fit. Left: image with anomaly overlay and "
            "defect outlines; right: reconstruction, residual and raw anomaly map"
        )
        lay = self.graphics.ci
        self.main_vb = lay.addViewBox(row=0, col=0, rowspan=6, lockAspect=True, invertY=True)
        self.base = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.mask_item = MaskItem(self)
        self.contours = pg.PlotCurveItem(pen=pg.mkPen("#00e5ff", width=1.6), connect="finite")
        for z, item in enumerate((self.base, self.overlay, self.mask_item, self.contours)):
            item.setZValue(z)
            self.main_vb.addItem(item)
        self.side: dict[str, tuple[pg.ViewBox, pg.ImageItem]] = {}
        self.side_labels: dict[str, pg.LabelItem] = {}
        titles = (
            ("recon", "Reconstruction"),
            ("residual", "Residual |image − recon.|"),
            ("map", "Anomaly map"),
        )
        for k, (key, title) in enumerate(titles):
            label = lay.addLabel(title, row=2 * k, col=1, size="9pt", color="#cfcfcf")
            label.setMaximumHeight(18)
            self.side_labels[key] = label
            lay.layout.setRowStretchFactor(2 * k, 0)
            lay.layout.setRowStretchFactor(2 * k + 1, 1)
            vb = lay.addViewBox(row=2 * k + 1, col=1, lockAspect=True, invertY=True)
            vb.setMouseEnabled(x=False, y=False)  # they follow the main view
            vb.setMenuEnabled(False)
            item = pg.ImageItem(axisOrder="row-major")
            vb.addItem(item)
            self.side[key] = (vb, item)
        lay.layout.setColumnStretchFactor(0, 3)
        lay.layout.setColumnStretchFactor(1, 1)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        # Side views follow the main view's region (linking both axes of views with
        # locked aspect ratios and different sizes makes them fight).
        self.main_vb.sigRangeChanged.connect(self._sync_side_views)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

    # ----------------------------------------------------------------- content
    def show_item(
        self,
        image: np.ndarray | None,
        anomaly_map: np.ndarray | None,
        reconstruction: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        map_range: tuple[float, float] | None = None,
    ) -> None:
        """Display one item (any part may be None).

        Args:
            image: (H, W, 3) uint8 RGB.
            anomaly_map: (H, W) float32.
            reconstruction: (H, W, 3) uint8 RGB.
            mask: (H, W) uint8 {0, 1} painted / ground-truth mask.
            map_range: (lo, hi) used to colour maps (default: this map's range).
        """
        self.image, self.anomaly_map = image, anomaly_map
        ref = image if image is not None else anomaly_map
        shape = tuple(ref.shape[:2]) if ref is not None else (1, 1)
        if image is not None:
            self.base.setImage(image, autoLevels=False, levels=(0, 255))
        else:
            self.base.clear()
        self.mask = np.zeros(shape, np.uint8) if mask is None else np.array(mask, np.uint8)
        self.mask_item.setImage(self.mask, autoLevels=False, levels=(0, 1), lut=MASK_LUT)
        if anomaly_map is not None:
            lo, hi = map_range or (float(anomaly_map.min()), float(anomaly_map.max()))
            self._range = display_range(lo, hi)
            self._quantised = quantise(anomaly_map, *self._range)
            self.overlay.setImage(self._quantised, autoLevels=False, levels=(0, 255))
        else:
            self._quantised = None
            self.overlay.clear()
        self.residual, self._res_q = None, None
        if image is not None and reconstruction is not None:
            self.side["recon"][1].setImage(reconstruction, autoLevels=False, levels=(0, 255))
            self.residual = residual_map(image, reconstruction)
            self._res_q = quantise(self.residual, 0.0, max(float(self.residual.max()), 1e-6))
        else:
            self.side["recon"][1].clear()
        # models without a reconstructive network (compact, PatchCore): the anomaly map
        # gets the whole side column instead of two empty panes
        self.set_reconstruction_views(reconstruction is not None)
        self._apply_colours()
        self._refresh_contours()
        if shape != self._shown_shape:
            self._shown_shape = shape
            self.fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        # the side column never takes more than about a quarter of the width: the image
        # on the left is what the engineer inspects (locked aspect ratios otherwise let a
        # tall, lone side view grow as wide as the main one)
        self.graphics.ci.layout.setColumnMaximumWidth(1, max(80.0, 0.27 * event.size().width()))
        super().resizeEvent(event)

    def set_reconstruction_views(self, visible: bool) -> None:
        """Show or hide the reconstruction and residual side views (and their titles)."""
        for key in ("recon", "residual"):
            vb, label = self.side[key][0], self.side_labels[key]
            if vb.isVisible() == visible:
                continue
            vb.setVisible(visible)
            vb.setMaximumHeight(1e6 if visible else 0)
            label.setVisible(visible)  # hidden items still count in the grid: no size either
            label.setMaximumHeight(18 if visible else 0)
            label.setMaximumWidth(1e6 if visible else 0)

    def _apply_colours(self) -> None:
        lut = np.column_stack([self._colours, np.full(256, 255, np.uint8)])
        for key, q in (("map", self._quantised), ("residual", self._res_q)):
            item = self.side[key][1]
            if q is None:
                item.clear()
            else:
                item.setImage(q, autoLevels=False, levels=(0, 255), lut=lut)
        self._refresh_overlay()

    def clear(self) -> None:
        self.show_item(None, None)

    def fit(self) -> None:
        """Zoom to show the whole image."""
        if self.image is not None or self.anomaly_map is not None:
            h, w = (self.image if self.image is not None else self.anomaly_map).shape[:2]
            self.main_vb.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def _sync_side_views(self, *_args) -> None:
        rect = self.main_vb.viewRect()
        for vb, _item in self.side.values():
            vb.setRange(rect=rect, padding=0.0)

    # ----------------------------------------------------------------- display settings
    def set_pixel_threshold(self, value: float) -> None:
        self.pixel_threshold = float(value)
        self._refresh_overlay()
        self._refresh_contours()

    def set_opacity(self, value: float) -> None:
        self.opacity = float(np.clip(value, 0.0, 1.0))
        self._refresh_overlay()

    def set_below_opacity(self, value: float) -> None:
        """Alpha factor for map values below the pixel threshold (0 hides them)."""
        self.below_opacity = float(np.clip(value, 0.0, 1.0))
        self._refresh_overlay()

    def set_colormap(self, name: str) -> None:
        """Colour map of the overlay and the side maps (``inferno``, ``turbo``, ...)."""
        self._colours = colormap_lut(name)
        self._apply_colours()

    def set_show_contours(self, on: bool) -> None:
        self.show_contours = bool(on)
        self._refresh_contours()

    def set_brush(self, mode: str | None, radius: int | None = None) -> None:
        """Brush for the defect mask: ``"paint"``, ``"erase"`` or None (pan/zoom)."""
        self.brush_mode = mode
        if radius is not None:
            self.brush_radius = max(1, int(radius))
        self.main_vb.setMouseEnabled(x=mode is None, y=mode is None)

    # ----------------------------------------------------------------- refresh
    def _refresh_overlay(self) -> None:
        if self._quantised is None:
            return
        first = threshold_index(self.pixel_threshold, *self._range)
        self.overlay.setLookupTable(
            overlay_lut(self._colours, self.opacity, first, self.below_opacity)
        )

    def _refresh_contours(self) -> None:
        if self.anomaly_map is None or not self.show_contours:
            self.contours.setData([], [])
            return
        x, y = contour_polyline(defect_mask(self.anomaly_map, self.pixel_threshold))
        if x.size > MAX_CONTOUR_POINTS:
            x, y = x[:0], y[:0]
        self.contours.setData(x, y, connect="finite")

    # ----------------------------------------------------------------- hover readout
    def _on_mouse_moved(self, pos: QPointF) -> None:
        self.hovered.emit(self.readout(pos))

    def readout(self, scene_pos: QPointF) -> str:
        """Text for the pixel under ``scene_pos`` (scene coordinates), "" outside."""
        ref = self.image if self.image is not None else self.anomaly_map
        if ref is None:
            return ""
        for vb in [self.main_vb] + [vb for vb, _ in self.side.values()]:
            if vb.sceneBoundingRect().contains(scene_pos):
                p = vb.mapSceneToView(scene_pos)
                return self.pixel_text(int(np.floor(p.x())), int(np.floor(p.y())))
        return ""

    def pixel_text(self, x: int, y: int) -> str:
        """Readout of pixel (x, y) in image coordinates, "" outside the image."""
        ref = self.image if self.image is not None else self.anomaly_map
        if ref is None or not (0 <= y < ref.shape[0] and 0 <= x < ref.shape[1]):
            return ""
        parts = [f"x {x}  y {y}"]
        if self.image is not None:
            r, g, b = (int(v) for v in self.image[y, x])
            parts.append(f"RGB {r}, {g}, {b}")
        if self.anomaly_map is not None:
            v = float(self.anomaly_map[y, x])
            parts.append(
                f"map {v:.4f} ({'≥' if v >= self.pixel_threshold else '<'} {self.pixel_threshold:.4f})"
            )
        if self.residual is not None:
            parts.append(f"residual {float(self.residual[y, x]):.3f}")
        if self.mask.shape == ref.shape[:2] and self.mask[y, x]:
            parts.append("in defect mask")
        return "   ".join(parts)


__all__ = ["ImageViewer", "colormap_lut"]
