"""Live training display: loss curves (pyqtgraph) and the latest preview sample."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from app._qt.widgets.common import ImageView, colorize, outline
from core.types import TrainPreview, TrainProgress

#: (loss key, legend text, colour) — the parts of DRAEM's loss [paper] Eq. 5; other parts
#: a preset reports (e.g. the compact preset's ``bce``) get the next :data:`EXTRA_COLOURS`.
CURVES = (
    ("total", "total", (60, 60, 60)),
    ("l2", "L2", (86, 180, 233)),
    ("ssim", "SSIM", (0, 158, 115)),
    ("focal", "focal", (230, 159, 0)),
)
#: Weight of the newest report in the displayed curves (the history keeps raw values).
SMOOTHING = 0.15
EXTRA_COLOURS = ((204, 121, 167), (213, 94, 0), (0, 114, 178), (240, 228, 66))


class LogAxis(pg.AxisItem):
    """A log-scale axis that labels only 1, 2 and 5 × 10^k (all minor labels overlap)."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph override
        out = []
        for v in values:
            x = 10.0 ** float(v) * scale
            mantissa = round(x / 10.0 ** np.floor(np.log10(x)), 6) if x > 0 else 0
            out.append(f"{x:.1g}" if mantissa in (1.0, 2.0, 5.0) else "")
        return out


class LossPlot(pg.PlotWidget):
    """Running-mean losses against the training step, log scale, one curve per part."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, axisItems={"left": LogAxis("left")})
        self.setBackground(None)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setLabel("bottom", "step")
        self.setLabel("left", "loss (smoothed)")
        self.getAxis("left").enableAutoSIPrefix(False)
        self.setLogMode(y=True)
        self.addLegend(offset=(-10, 10))
        self.setMouseEnabled(x=True, y=False)
        self.setToolTip("Training losses (running means, log scale). Drag to pan, wheel to zoom.")
        self._steps: list[int] = []
        self._values: dict[str, list[float]] = {}  # raw reports (NaN: part not reported)
        self._smooth: dict[str, list[float]] = {}  # exponential moving average, for display
        self._curves: dict[str, pg.PlotDataItem] = {}

    def clear_history(self) -> None:
        self._steps.clear()
        for key in list(self._curves):
            self.removeItem(self._curves.pop(key))
        self._values.clear()
        self._smooth.clear()

    def _curve(self, key: str) -> None:
        """Create the curve of a loss part on its first report (earlier steps: no value)."""
        known = {k: (name, col) for k, name, col in CURVES}
        extra = EXTRA_COLOURS[sum(k not in known for k in self._curves) % len(EXTRA_COLOURS)]
        name, col = known.get(key, (key, extra))
        self._curves[key] = self.plot([], [], name=name, pen=pg.mkPen(col, width=2))
        self._values[key] = [np.nan] * len(self._steps)
        self._smooth[key] = [np.nan] * len(self._steps)

    def add(self, step: int, losses: dict[str, float]) -> None:
        """Append one report; parts that are zero or missing (e.g. L2 of the compact preset) stay empty."""
        if not losses or (self._steps and step <= self._steps[-1]):
            return
        order = [k for k, _, _ in CURVES] + sorted(set(losses) - {k for k, _, _ in CURVES})
        for key in order:
            if (
                key in losses
                and key not in self._curves
                and np.isfinite(losses[key])
                and losses[key] > 0
            ):
                self._curve(key)
        self._steps.append(int(step))
        x = np.asarray(self._steps, dtype=np.float64)
        for key, values in self._values.items():
            v = losses.get(key)
            v = float(v) if v is not None and np.isfinite(v) and v > 0 else np.nan
            values.append(v)
            prev = next((s for s in reversed(self._smooth[key]) if np.isfinite(s)), np.nan)
            ema = (
                v
                if not np.isfinite(prev)
                else prev
                if np.isnan(v)
                else prev + SMOOTHING * (v - prev)
            )
            self._smooth[key].append(ema if np.isfinite(v) else np.nan)
            y = np.asarray(self._smooth[key], dtype=np.float64)
            if np.isfinite(y).any():
                self._curves[key].setData(x, y, connect="finite")

    def history(self) -> dict[str, list[float]]:
        return {"step": list(self._steps), **{k: list(v) for k, v in self._values.items()}}


class PreviewStrip(QWidget):
    """A synthetic training sample with the network's reconstruction and predicted mask."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.views = {
            "image": ImageView("synthetic input"),
            "reconstruction": ImageView("reconstruction"),
            "mask": ImageView("true mask"),
            "prediction": ImageView("predicted anomaly map"),
        }
        row = QHBoxLayout()
        for v in self.views.values():
            v.set_placeholder("waiting for the first preview")
            row.addWidget(v)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        self.setToolTip("A synthetic sample, refreshed every few seconds while training")

    def show_preview(self, p: TrainPreview) -> None:
        self.views["image"].set_image(outline(p.image, p.mask > 0.5))
        # the compact preset has no reconstructive sub-network: its view is hidden
        self.views["reconstruction"].setVisible(p.reconstruction is not None)
        self.views["reconstruction"].set_image(p.reconstruction)
        self.views["mask"].set_image(p.mask.astype(np.float32))
        self.views["prediction"].set_image(colorize(p.prediction))

    def clear(self) -> None:
        for v in self.views.values():
            v.set_image(None)


def describe_progress(p: TrainProgress) -> str:
    """``'step 120 / 2000 · epoch 3.0 · 14.2 samples/s · ETA 4 min 10 s'``."""
    from app.components.training import format_duration

    step = f"step {p.step}" + (f" / {p.total_steps}" if p.total_steps else "")
    parts = [step, f"epoch {p.epoch:.1f}", f"{p.samples_per_s:.1f} samples/s"]
    if p.eta_s is not None:
        parts.append(f"ETA {format_duration(p.eta_s)}")
    parts.append(f"elapsed {format_duration(p.elapsed_s)}")
    if p.message and not p.message.startswith("step"):
        parts.append(p.message)
    return " · ".join(parts)
