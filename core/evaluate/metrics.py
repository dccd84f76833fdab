"""Detection metrics: image/pixel AUROC and AP, AUPRO, F1-max, confusion matrix.

Conventions
  * ``labels``: 1-D int array in {0, 1} (0 = good/OK, 1 = defective/NG); ``scores``: 1-D
    finite float array of the same length.  An image is predicted defective (NG) iff
    ``score >= threshold`` (the convention of scikit-learn's curves and of
    :mod:`core.evaluate.thresholds`).
  * ``masks``: list of (H, W) uint8 ground-truth masks (any value > 0 is defective);
    ``maps``: list of (H, W) float anomaly maps of the same shapes.  Sizes may differ from
    image to image.
  * A metric that is undefined for the data (only one class present, no ground-truth
    region) returns ``nan`` without raising; malformed input raises
    :class:`core.errors.EvaluationError`.

Memory: pixel AUROC/AP are exact while the total pixel count is at most ``max_pixels``
(default 2 000 000).  Above that they use a deterministic stratified subsample: from every
image, defective and good pixels are each drawn with probability ``max_pixels / total``
(stochastic rounding, seeded per image), which keeps the class ratio, so AUROC and AP are
unbiased estimates (standard error well below 1e-3 at the default cap).  AUPRO counts every
pixel exactly; only the placement of its thresholds uses that subsample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from core.errors import EvaluationError
from core.types import Prediction

DEFAULT_MAX_PIXELS = 2_000_000
DEFAULT_PRO_THRESHOLDS = 200
_SEED = 0


# ----------------------------------------------------------------------------- input checks
def _labels_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(labels int64 (N,), scores float64 (N,))``."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise EvaluationError(
            f"labels and scores must be 1-D of equal length, got shapes {y.shape} and {s.shape}"
        )
    if y.size and not np.isin(y, (0, 1)).all():
        raise EvaluationError("labels must be 0 (good) or 1 (defective)")
    if not np.isfinite(s).all():
        raise EvaluationError(f"{int((~np.isfinite(s)).sum())} score(s) are NaN or infinite")
    return y.astype(np.int64), s


def _one_class(y: np.ndarray) -> bool:
    return y.size == 0 or int(y.min()) == int(y.max())


def _pixel_pairs(masks, maps) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validate masks/maps and return ``[(mask bool (H,W), map float32 (H,W)), ...]``."""
    if len(masks) != len(maps):
        raise EvaluationError(f"{len(masks)} masks but {len(maps)} anomaly maps")
    pairs = []
    for i, (m, a) in enumerate(zip(masks, maps, strict=True)):
        m = np.asarray(m)
        a = np.asarray(a, dtype=np.float32)
        if m.ndim != 2 or a.shape != m.shape:
            raise EvaluationError(
                f"image {i}: mask {m.shape} and anomaly map {a.shape} must be the same (H, W)"
            )
        if not np.isfinite(a).all():
            raise EvaluationError(f"image {i}: anomaly map contains NaN or infinite values")
        pairs.append((m > 0, a))
    return pairs


def _pixel_sample(pairs, max_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """All pixels, or the documented stratified subsample: ``(y uint8 (K,), s float32 (K,))``."""
    if max_pixels < 1:
        raise EvaluationError(f"max_pixels must be >= 1, got {max_pixels}")
    total = sum(m.size for m, _ in pairs)
    if total <= max_pixels:
        ys = [m.ravel().astype(np.uint8) for m, _ in pairs]
        ss = [a.ravel() for _, a in pairs]
    else:
        frac = max_pixels / total
        ys, ss = [], []
        for i, (m, a) in enumerate(pairs):
            rng = np.random.default_rng([_SEED, i])
            flat_m, flat_a = m.ravel(), a.ravel()
            for cls in (True, False):
                idx = np.flatnonzero(flat_m == cls)
                want = frac * idx.size
                k = int(want) + int(rng.random() < want - int(want))
                pick = idx[rng.choice(idx.size, size=k, replace=False)] if k else idx[:0]
                ys.append(np.full(k, cls, dtype=np.uint8))
                ss.append(flat_a[pick])
    if not ys:
        return np.zeros(0, np.uint8), np.zeros(0, np.float32)
    return np.concatenate(ys), np.concatenate(ss)


# ----------------------------------------------------------------------------- image level
def image_auroc(labels, scores) -> float:
    """Area under the ROC curve of image scores (scikit-learn); ``nan`` if one class only."""
    y, s = _labels_scores(labels, scores)
    return math.nan if _one_class(y) else float(roc_auc_score(y, s))


def image_auroc_per_type(labels, scores, types) -> dict[str, float]:
    """Image AUROC of each defect type against all good images (labels 0).

    ``types``: one name per image (e.g. the MVTec ``test/<type>`` folder); returns
    ``{type: AUROC}`` for every type with a defective image, sorted by name.
    """
    y, s = _labels_scores(labels, scores)
    t = np.asarray(types)
    if t.shape != y.shape:
        raise ValueError(f"types must have one entry per image, got {t.shape} for {y.shape}")
    good = y == 0
    return {
        str(k): image_auroc(y[good | (t == k)], s[good | (t == k)])
        for k in sorted(set(t[~good].tolist()))
    }


def image_ap(labels, scores) -> float:
    """Average precision of image scores (scikit-learn); ``nan`` if one class only."""
    y, s = _labels_scores(labels, scores)
    return math.nan if _one_class(y) else float(average_precision_score(y, s))


@dataclass(frozen=True)
class F1Result:
    """Best F1 over all thresholds and the threshold reaching it (NG iff score >= threshold)."""

    f1: float
    threshold: float


def f1_max(labels, scores) -> F1Result:
    """Maximum F1 over thresholds at the observed scores (the [anomalib] F1-max rule).

    ``nan`` for both fields when no defective label exists (F1 undefined).  With only
    defective labels the lowest score reaches F1 = 1.
    """
    y, s = _labels_scores(labels, scores)
    if y.size == 0 or y.max() == 0:
        return F1Result(math.nan, math.nan)
    precision, recall, thr = precision_recall_curve(y, s)
    p, r = precision[:-1], recall[:-1]  # the last point (P=1, R=0) has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    best = int(np.argmax(f1))
    return F1Result(float(f1[best]), float(thr[best]))


@dataclass(frozen=True)
class Confusion:
    """Image-level confusion matrix at a threshold (positive = defective = NG)."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def false_positive_rate(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else math.nan

    @property
    def accuracy(self) -> float:
        n = self.tp + self.fp + self.tn + self.fn
        return (self.tp + self.tn) / n if n else math.nan

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else math.nan


def confusion_at(labels, scores, threshold: float) -> Confusion:
    """Counts of TP/FP/TN/FN when images with ``score >= threshold`` are called NG."""
    y, s = _labels_scores(labels, scores)
    pred = s >= threshold
    pos = y == 1
    return Confusion(
        tp=int((pred & pos).sum()),
        fp=int((pred & ~pos).sum()),
        tn=int((~pred & ~pos).sum()),
        fn=int((~pred & pos).sum()),
    )


# ----------------------------------------------------------------------------- pixel level
def pixel_auroc(masks, maps, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> float:
    """Pixel-wise ROC AUC over all images (see module doc for the subsample cap)."""
    y, s = _pixel_sample(_pixel_pairs(masks, maps), max_pixels)
    return math.nan if _one_class(y) else float(roc_auc_score(y, s))


def pixel_ap(masks, maps, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> float:
    """Pixel-wise average precision over all images (see module doc for the subsample cap)."""
    y, s = _pixel_sample(_pixel_pairs(masks, maps), max_pixels)
    return math.nan if _one_class(y) else float(average_precision_score(y, s))


def _area_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under (x, y) from x[0] to ``x_max``, interpolating at ``x_max``.

    ``x`` and ``y`` are non-decreasing (a ROC-like curve), ``x[0] == 0``.
    """
    inside = x <= x_max
    xs, ys = x[inside], y[inside]
    if xs[-1] < x_max and (~inside).any():
        j = int(np.argmax(~inside))  # first point beyond the limit
        x0, y0, x1, y1 = x[j - 1], y[j - 1], x[j], y[j]
        xs = np.append(xs, x_max)
        ys = np.append(ys, y0 + (y1 - y0) * (x_max - x0) / (x1 - x0))
    return float(np.trapezoid(ys, xs))


def aupro(
    masks,
    maps,
    *,
    fpr_limit: float = 0.3,
    n_thresholds: int = DEFAULT_PRO_THRESHOLDS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> float:
    """Area under the per-region-overlap curve up to ``fpr_limit``, divided by ``fpr_limit``.

    MVTec AD definition (Bergmann et al., IJCV 2021): regions are the 8-connected components
    of every ground-truth mask (``cv2.connectedComponents``); at a threshold ``t`` a pixel
    is anomalous iff ``map >= t``; PRO(t) = mean over all regions of all images of the
    fraction of the region's pixels that are anomalous; FPR(t) = anomalous good pixels /
    all good pixels.  The curve starts at (0, 0), is integrated with the trapezoid rule up
    to ``fpr_limit`` (linear interpolation at the limit) and normalised to [0, 1].

    Threshold sweep: ``n_thresholds`` quantiles of the good-pixel values at levels
    ``1 - linspace(0, fpr_limit, n_thresholds)`` (evenly spaced in FPR over the integrated
    range), plus one just above the highest good pixel (FPR 0) and the global minimum
    (FPR 1).  PRO and FPR at those thresholds are exact counts over every pixel.
    Returns ``nan`` when there is no defective region or no good pixel.
    """
    pairs = _pixel_pairs(masks, maps)
    y, s = _pixel_sample(pairs, max_pixels)
    return _aupro(pairs, s[y == 0], fpr_limit, n_thresholds)


def _aupro(pairs, neg: np.ndarray, fpr_limit: float, n_thresholds: int) -> float:
    """:func:`aupro` on validated pairs; ``neg`` (K,) float32 = sampled good-pixel values."""
    if not 0 < fpr_limit <= 1:
        raise EvaluationError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    if n_thresholds < 2:
        raise EvaluationError(f"n_thresholds must be >= 2, got {n_thresholds}")
    if neg.size == 0 or not any(m.any() for m, _ in pairs):
        return math.nan
    levels = 1.0 - np.linspace(0.0, fpr_limit, n_thresholds)
    thr = np.quantile(neg, levels, method="lower").astype(np.float32)
    lowest = np.float32(min(float(a.min()) for _, a in pairs))
    above_neg = np.nextafter(neg.max(), np.float32(np.inf))
    thr = np.unique(np.concatenate([thr, [lowest, above_neg]]))  # ascending
    n_t = thr.size
    fp = np.zeros(n_t, np.int64)
    pro_sum = np.zeros(n_t, np.float64)
    n_neg = n_regions = 0
    for m, a in pairs:
        # idx = number of thresholds <= value; the pixel is anomalous at thr[k] iff k < idx
        idx = np.searchsorted(thr, a, side="right")
        counts = np.bincount(idx[~m], minlength=n_t + 1)
        fp += np.cumsum(counts[::-1])[::-1][1:]
        n_neg += int((~m).sum())
        if m.any():
            n_lab, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
            reg = lab[m] - 1  # region index 0..n_lab-2 of each defective pixel
            hist = np.bincount(reg * (n_t + 1) + idx[m], minlength=(n_lab - 1) * (n_t + 1))
            hist = hist.reshape(n_lab - 1, n_t + 1)
            hit = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]  # (regions, n_t)
            pro_sum += (hit / hist.sum(axis=1, keepdims=True)).sum(axis=0)
            n_regions += n_lab - 1
    # descending thresholds -> FPR and PRO non-decreasing; prepend the (0, 0) point
    fpr = np.concatenate([[0.0], fp[::-1] / n_neg])
    pro = np.concatenate([[0.0], pro_sum[::-1] / n_regions])
    return _area_to(fpr, pro, fpr_limit) / fpr_limit


# ----------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class Evaluation:
    """All metrics of one evaluated batch (``nan`` where undefined, see :func:`evaluate`)."""

    image_auroc: float
    image_ap: float
    pixel_auroc: float
    pixel_ap: float
    aupro: float
    f1_max: float
    threshold_f1: float
    n_images: int
    n_defective: int
    n_pixel_images: int

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain dict for JSON/tables; ``nan`` becomes ``None`` (valid JSON)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def evaluate(
    predictions: Sequence[Prediction],
    labels,
    masks: Sequence[np.ndarray | None] | None = None,
    *,
    fpr_limit: float = 0.3,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Evaluation:
    """Compute every metric for predictions with known image labels.

    Args:
        predictions: one :class:`Prediction` per image (``anomaly_map`` (H, W) float32).
        labels: (N,) int in {0, 1}.
        masks: per image a (H, W) uint8 ground-truth mask or None (the whole argument may
            be None).  A missing mask of a good image (label 0) means an all-zero mask; a
            defective image without a mask is left out of the pixel metrics
            (``n_pixel_images`` counts the images that were used).
    """
    if len(predictions) != len(labels):
        raise EvaluationError(f"{len(predictions)} predictions but {len(labels)} labels")
    if masks is not None and len(masks) != len(predictions):
        raise EvaluationError(f"{len(masks)} masks but {len(predictions)} predictions")
    y, s = _labels_scores(labels, [p.score for p in predictions])
    px_masks, px_maps = [], []
    for i, p in enumerate(predictions):
        m = None if masks is None else masks[i]
        if m is None and y[i] == 0:
            m = np.zeros(np.shape(p.anomaly_map), np.uint8)
        if m is not None:
            px_masks.append(m)
            px_maps.append(p.anomaly_map)
    pairs = _pixel_pairs(px_masks, px_maps)
    py, ps = _pixel_sample(pairs, max_pixels)  # one sample shared by the pixel metrics
    px_defined = not _one_class(py)
    f1 = f1_max(y, s)
    return Evaluation(
        image_auroc=image_auroc(y, s),
        image_ap=image_ap(y, s),
        pixel_auroc=float(roc_auc_score(py, ps)) if px_defined else math.nan,
        pixel_ap=float(average_precision_score(py, ps)) if px_defined else math.nan,
        aupro=_aupro(pairs, ps[py == 0], fpr_limit, DEFAULT_PRO_THRESHOLDS),
        f1_max=f1.f1,
        threshold_f1=f1.threshold,
        n_images=int(y.size),
        n_defective=int(y.sum()),
        n_pixel_images=len(px_masks),
    )


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PRO_THRESHOLDS",
    "Confusion",
    "Evaluation",
    "F1Result",
    "aupro",
    "confusion_at",
    "evaluate",
    "f1_max",
    "image_ap",
    "image_auroc",
    "image_auroc_per_type",
    "pixel_ap",
    "pixel_auroc",
]
