"""Qt-free display helpers: quantised maps, overlay lookup tables, contours, residuals.

Everything here is plain numpy/OpenCV so it can be tested and benchmarked
without a display.  The viewer shows an anomaly map as a uint8 image through a
256-entry RGBA lookup table (LUT): moving the pixel threshold or the opacity
only rebuilds the 256-entry LUT, never the map itself.
"""

from __future__ import annotations

import cv2
import numpy as np

LUT_SIZE = 256
#: significant digits of a score on screen: 0.4312 (DRAEM), 5.123 / 29.71 (flow), 109.7 (PatchCore)
SCORE_DIGITS = 4
#: the widest texts :func:`score_text` writes below 1e5 (to size columns and badges)
WIDEST_SCORES = ("-0.0000", "-00000")


def display_range(lo: float, hi: float) -> tuple[float, float]:
    """A non-empty ``(lo, hi)`` display range: DRAEM maps in [0, 1] keep [0, 1]."""
    lo, hi = float(min(lo, 0.0)), float(hi)
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def score_text(value: float) -> str:
    """A score or threshold as text with about :data:`SCORE_DIGITS` significant digits.

    The decimals follow the magnitude, so every method's scale reads the same and
    stays short: 0.4312, 5.123, 59.71, 109.7, 1235 (at most 4 decimals, never an
    exponent; values below 1e5 are at most as wide as :data:`WIDEST_SCORES`).
    """
    v = float(value)
    if not np.isfinite(v):
        return str(v)
    magnitude = int(np.floor(np.log10(abs(v)))) if v != 0.0 else -1
    decimals = min(max(SCORE_DIGITS - 1 - magnitude, 0), SCORE_DIGITS)
    return f"{v:.{decimals}f}"


def quantise(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map float values in ``[lo, hi]`` to uint8 ``0..255`` (clipped), same shape."""
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.empty(values.shape, np.float32)
    np.subtract(values, lo, out=out, casting="unsafe")
    np.multiply(out, scale, out=out)
    np.clip(out, 0.0, 255.0, out=out)
    return (out + 0.5).astype(np.uint8)


def threshold_index(threshold: float, lo: float, hi: float) -> int:
    """The first LUT index whose value ``lo + i (hi - lo) / 255`` is ``>= threshold`` (0..256)."""
    if hi <= lo:
        return 0
    return int(np.clip(np.ceil((threshold - lo) / (hi - lo) * 255.0 - 1e-9), 0, LUT_SIZE))


def overlay_lut(
    colours: np.ndarray, opacity: float, first_above: int, below_opacity: float = 0.0
) -> np.ndarray:
    """RGBA LUT for the map overlay.

    Args:
        colours: (256, 3) uint8 colour map.
        opacity: alpha in [0, 1] of entries at or above the pixel threshold.
        first_above: the first index at or above the pixel threshold
            (:func:`threshold_index`).
        below_opacity: alpha factor (relative to ``opacity``) below the threshold.

    Returns:
        (256, 4) uint8 RGBA.
    """
    lut = np.empty((LUT_SIZE, 4), np.uint8)
    lut[:, :3] = colours[:LUT_SIZE]
    alpha = np.full(LUT_SIZE, opacity * below_opacity, np.float32)
    alpha[first_above:] = opacity
    lut[:, 3] = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return lut


def defect_mask(anomaly_map: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W) uint8 {0, 1}: pixels with ``anomaly_map >= threshold``."""
    return (anomaly_map >= threshold).view(np.uint8)


def contour_polyline(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outlines of the regions of a binary mask as one NaN-separated polyline.

    Args:
        mask: (H, W) uint8/bool, non-zero = inside.

    Returns:
        ``(x, y)`` float64 arrays in image coordinates (pixel centres at
        ``i + 0.5``), each closed outline followed by a NaN; empty when the
        mask is empty.  Draw with ``connect="finite"``.
    """
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if not m.any():
        return np.empty(0), np.empty(0)
    contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    parts = []
    for c in contours:
        pts = c.reshape(-1, 2).astype(np.float64) + 0.5
        parts.append(np.vstack([pts, pts[:1], [np.nan, np.nan]]))
    xy = np.concatenate(parts)
    return xy[:, 0], xy[:, 1]


def residual_map(image: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """|image - reconstruction| averaged over channels: (H, W) float32 in [0, 1].

    The classic reconstruction-error anomaly map that DRAEM's discriminative
    network improves upon ([paper] Sec. 1).
    """
    if image.shape != reconstruction.shape:
        reconstruction = cv2.resize(
            reconstruction, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR
        )
    diff = cv2.absdiff(image, reconstruction)
    return diff.mean(axis=2, dtype=np.float32) / 255.0


def fit_thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """Downscale (H, W, 3) uint8 so the longest side is ``size`` (INTER_AREA)."""
    h, w = image.shape[:2]
    s = size / max(h, w)
    if s >= 1.0:
        return np.ascontiguousarray(image)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)


__all__ = [
    "contour_polyline",
    "defect_mask",
    "display_range",
    "fit_thumbnail",
    "overlay_lut",
    "quantise",
    "residual_map",
    "threshold_index",
]
