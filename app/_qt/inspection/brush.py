"""The defect-mask layer of the viewer: shows the mask and paints/erases it with a brush.

While a brush is active (``viewer.brush_mode`` is ``"paint"`` or ``"erase"``) a left
click paints a disc of ``viewer.brush_radius`` image pixels and a drag paints a
stroke; the viewer then emits ``mask_edited`` with a copy of the (H, W) uint8
{0, 1} mask.  Without a brush the events fall through to pan/zoom.
"""

from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF

MASK_LUT = np.array([[0, 0, 0, 0], [255, 0, 255, 110]], np.uint8)  # painted mask: magenta


class MaskItem(pg.ImageItem):
    """The painted defect mask; paints/erases with the mouse when a brush is active."""

    def __init__(self, viewer) -> None:
        super().__init__(axisOrder="row-major")
        self._viewer = viewer
        self._last: tuple[int, int] | None = None

    def _grab(self, ev) -> bool:
        """Accept a left-button event while a brush is active; ignore it otherwise."""
        if self._viewer.brush_mode is None or ev.button() != pg.QtCore.Qt.MouseButton.LeftButton:
            ev.ignore()
            return False
        ev.accept()
        return True

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - Qt naming
        if not self._grab(ev):
            return
        v = self._viewer
        self._paint(ev.pos(), start=ev.isStart())
        if ev.isFinish():
            self._last = None
            v.mask_edited.emit(v.mask.copy())

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - Qt naming
        if not self._grab(ev):
            return
        v = self._viewer
        self._paint(ev.pos(), start=True)
        self._last = None
        v.mask_edited.emit(v.mask.copy())

    def _paint(self, pos: QPointF, start: bool) -> None:
        v = self._viewer
        pt = (int(pos.x()), int(pos.y()))
        value = 1 if v.brush_mode == "paint" else 0
        if start or self._last is None:
            cv2.circle(v.mask, pt, v.brush_radius, value, -1)
        else:
            cv2.line(v.mask, self._last, pt, value, 2 * v.brush_radius + 1)
        self._last = pt
        self.setImage(v.mask, autoLevels=False, levels=(0, 1), lut=MASK_LUT)


__all__ = ["MASK_LUT", "MaskItem"]
