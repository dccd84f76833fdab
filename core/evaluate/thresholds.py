"""Threshold suggestions for the image score and the pixel anomaly map.

Decision rule everywhere: an image (or pixel) is NG / defective iff ``score >= threshold``.

Rules
  * :func:`calibrate_from_good` - the stored image threshold of every method at fit time:
    the highest good score plus a multiple of the good scores' robust spread (see there).
  * :func:`from_good_scores` - a high percentile of the scores of good images only.  This
    is the rule for a fresh line where no defective sample exists yet ([anomalib]'s
    F1-adaptive threshold needs defects and degenerates without them).
  * :func:`f1_optimal` - the threshold of maximum F1 on labelled images ([anomalib]
    ``F1AdaptiveThreshold``): the observed score where F1 peaks.
  * :func:`no_missed_defect` - the lowest defective score, i.e. the highest threshold at
    which every labelled defect is NG (recall 1); fewest false alarms under that constraint.
  * :func:`pixel_from_good_maps` - a high percentile of all pixels of good images' maps.

Every rule returns a :class:`ThresholdSuggestion` whose ``detail`` explains the value in
words for the user; a rule that cannot apply raises :class:`core.errors.EvaluationError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import EvaluationError
from core.evaluate.metrics import DEFAULT_MAX_PIXELS, confusion_at, f1_max

_SEED = 0


@dataclass(frozen=True)
class ThresholdSuggestion:
    """A suggested threshold: ``value`` (NG iff score >= value), the ``rule`` id
    (``good-percentile``, ``f1-optimal``, ``no-missed-defect``, ``pixel-good-percentile``)
    and a one-line human-readable ``detail``."""

    value: float
    rule: str
    detail: str


def _scores(scores, what: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise EvaluationError(f"{what} must be a 1-D sequence, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise EvaluationError(f"{int((~np.isfinite(s)).sum())} of the {what} are NaN or infinite")
    return s


def _percentile(p: float) -> float:
    try:
        value = float(p)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 100.0:
        raise EvaluationError(f"percentile must be in [0, 100], got {p!r}")
    return value


def _labelled(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = _scores(scores)
    if y.shape != s.shape:
        raise EvaluationError(f"{y.size} labels but {s.size} scores")
    if y.size and not np.isin(y, (0, 1)).all():
        raise EvaluationError("labels must be 0 (good) or 1 (defective)")
    if not (y == 1).any():
        raise EvaluationError(
            "this rule needs at least one image labelled defective; "
            "use the good-image percentile rule instead"
        )
    return y.astype(np.int64), s


def from_good_scores(scores, percentile: float = 99.0, margin: float = 0.0) -> ThresholdSuggestion:
    """Threshold at the ``percentile``-th percentile of good image scores, plus ``margin``.

    Args:
        scores: (N,) image scores of good images, N >= 1.
        percentile: in [0, 100]; linear interpolation between order statistics (numpy).
        margin: added on the score scale (>= 0 makes the rule stricter against false alarms).

    If the value equals one of the good scores it is moved to the next float above it, so
    that image stays OK: with ``percentile=100`` (or a single good image) no good image is NG.
    Expected false-alarm rate on similar good images: about ``(100 - percentile) %``.
    """
    s = _scores(scores, "good scores")
    if s.size == 0:
        raise EvaluationError("at least one good image score is needed to suggest a threshold")
    p = _percentile(percentile)
    if not math.isfinite(margin):
        raise EvaluationError(f"margin must be finite, got {margin}")
    value = float(np.percentile(s, p)) + float(margin)
    if (s == value).any():
        value = float(np.nextafter(value, math.inf))
    n_ng = int((s >= value).sum())
    detail = (
        f"{p:g}th percentile of {s.size} good image score(s)"
        + (f" + margin {margin:g}" if margin else "")
        + f"; {n_ng} of them would be NG"
    )
    return ThresholdSuggestion(value, "good-percentile", detail)


#: fewer labelled images than this (in all, or of either kind) make a threshold chosen
#: from labels unreliable: the suggestion's detail then says so
MIN_RELIABLE_LABELS, MIN_RELIABLE_PER_CLASS = 20, 5


def few_labels_warning(y: np.ndarray) -> str:
    """``"; only ... too few ..."`` when labels ``y`` (N,) in {0, 1} are too few, else ``""``."""
    n_bad = int(y.sum())
    n_good = int(y.size) - n_bad
    if y.size >= MIN_RELIABLE_LABELS and min(n_good, n_bad) >= MIN_RELIABLE_PER_CLASS:
        return ""
    return (
        f"; unreliable: only {n_good} OK and {n_bad} defective label(s) (label at least "
        f"{MIN_RELIABLE_LABELS}, {MIN_RELIABLE_PER_CLASS} of each kind)"
    )


#: robust standard deviations of the good scores added above the highest of them
SPREAD_MARGIN = 2.0
#: a good score more than this many spreads above the median is an outlier for the threshold
OUTLIER_FENCE = 10.0
#: 1 / Phi^-1(0.75): turns a median absolute deviation into a normal standard deviation
_MAD_TO_SD = 1.4826


def robust_spread(scores) -> float:
    """Robust standard deviation of 1-D scores, never smaller for a long upper tail.

    The larger of ``1.4826 x`` the median absolute deviation of all scores and of the
    same over the upper half alone (the median of ``s - median(s)`` where ``s >=
    median(s)``): both equal the standard deviation for normal data; the upper half
    follows the long upper tail anomaly scores tend to have, all scores keep the
    estimate steady for small samples; a few outliers hardly move either.  If both are 0
    (half or more of the scores equal) the plain standard deviation; if all scores are
    equal ``5 %`` of their magnitude (``1e-6`` for zeros), so a margin always exists.
    """
    s = _scores(scores)
    if s.size == 0:
        raise EvaluationError("at least one score is needed for a spread")
    med = float(np.median(s))
    spread = _MAD_TO_SD * max(
        float(np.median(np.abs(s - med))), float(np.median(s[s >= med] - med))
    )
    if spread <= 0.0:
        spread = float(s.std())
    if spread <= 0.0:
        spread = 0.05 * float(np.abs(s).max()) or 1e-6
    return spread


def calibrate_from_good(scores, k: float = SPREAD_MARGIN) -> ThresholdSuggestion:
    """The stored image threshold of every method, from good images' scores.

    ``value = top + k * spread``: ``spread = robust_spread(s)`` (upper-half robust standard
    deviation), ``top`` the highest good score that is not an outlier (at most
    ``median + OUTLIER_FENCE * spread``; normally simply the highest).

    Args:
        scores: (N,) image scores of good images the model was not fitted on (held-out
            images, or leave-one-out scores), computed exactly as inference computes
            them (the detector's own ``predict``: same views, working size, standardisation).
        k: margin in robust standard deviations (:data:`SPREAD_MARGIN` = 2 by default).

    Why not a high percentile: with the 8-20 held-out images a fit keeps, the 99th
    percentile is (almost) the highest score, so about one new good image in ``N + 1``
    scores above it even when new images are exactly like the held-out ones, and many
    more when they differ a little: another lot, another part of the surface, held-out
    images that are near duplicates of training images (so they score lower than new
    parts).  The margin ``k`` spreads makes the threshold hold on new good images: for
    normal scores the highest of ``N`` lies about 1.4-1.9 spreads above the median
    (N = 8-20), so the threshold sits about 3.5-4 spreads above it, and good scores
    shifted by up to ``k`` spreads still pass.  ``k`` trades false alarms for escapes: 2
    is the compromise between the cases measured (docs/benchmarks.md: DRAEM and PatchCore on the
    demo, PatchCore on magnetic_tile); 3 kept every good image OK there but let up to
    half of the demo's defects escape PatchCore.

    The outlier fence keeps one odd held-out image (a part that was not really good)
    from dragging the threshold up and letting defects escape: such an image is NG at
    the result and the detail counts it.  Every other good score is OK.
    """
    s = _scores(scores, "good scores")
    if s.size == 0:
        raise EvaluationError("at least one good image score is needed to calibrate a threshold")
    if not (math.isfinite(k) and k >= 0):
        raise EvaluationError(f"the margin k must be finite and >= 0, got {k}")
    med, spread = float(np.median(s)), robust_spread(s)
    inside = s[s <= med + OUTLIER_FENCE * spread]  # never empty: the median is inside
    top = float(inside.max())
    value = float(np.nextafter(top + k * spread, math.inf))
    odd = int((s >= value).sum())
    detail = (
        f"highest of {s.size} good score(s) {top:.4g} + {k:g} x robust spread {spread:.3g} "
        f"(median {med:.4g})"
        + (f"; {odd} outlying good score(s) above it (check those images)" if odd else "")
    )
    return ThresholdSuggestion(value, "good-max-plus-spread", detail)


def f1_optimal(labels, scores) -> ThresholdSuggestion:
    """Threshold of maximum F1 on labelled images (``labels`` (N,) in {0, 1}, ``scores`` (N,)).

    The value is the observed score at which F1 peaks ([anomalib] F1-adaptive threshold).
    Needs at least one defective label.
    """
    y, s = _labelled(labels, scores)
    res = f1_max(y, s)
    c = confusion_at(y, s, res.threshold)
    detail = (
        f"max F1 {res.f1:.3f} (precision {c.precision:.3f}, recall {c.recall:.3f}) on "
        f"{y.size} labelled image(s), {int(y.sum())} defective"
    ) + few_labels_warning(y)
    return ThresholdSuggestion(res.threshold, "f1-optimal", detail)


def no_missed_defect(labels, scores) -> ThresholdSuggestion:
    """The lowest score of a defective image: the highest threshold with recall 1.

    With ``score >= threshold`` as NG every labelled defect is caught; the good images
    scoring at or above it are the false alarms reported in ``detail``.
    """
    y, s = _labelled(labels, scores)
    value = float(s[y == 1].min())
    c = confusion_at(y, s, value)
    n_good = int((y == 0).sum())
    detail = (
        f"lowest of {int(y.sum())} defective score(s): all defects NG, "
        f"{c.fp} of {n_good} good image(s) NG"
    ) + few_labels_warning(y)
    return ThresholdSuggestion(value, "no-missed-defect", detail)


def pixel_from_good_maps(
    maps: Sequence[np.ndarray],
    percentile: float = 99.9,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ThresholdSuggestion:
    """Pixel threshold at the ``percentile``-th percentile of all pixels of good maps.

    Args:
        maps: anomaly maps of good images, each (H, W) float, sizes may differ.
        percentile: in [0, 100].
        max_pixels: above this many pixels in total, each image contributes a seeded
            uniform random subsample in proportion to its size (memory stays bounded).
    """
    p = _percentile(percentile)
    if len(maps) == 0:
        raise EvaluationError("at least one good anomaly map is needed for a pixel threshold")
    if max_pixels < 1:
        raise EvaluationError(f"max_pixels must be >= 1, got {max_pixels}")
    arrays = [np.asarray(a, dtype=np.float32) for a in maps]
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.size == 0:
            raise EvaluationError(
                f"anomaly map {i} must be a non-empty (H, W) array, got {a.shape}"
            )
        if not np.isfinite(a).all():
            raise EvaluationError(f"anomaly map {i} contains NaN or infinite values")
    total = sum(a.size for a in arrays)
    if total <= max_pixels:
        values = np.concatenate([a.ravel() for a in arrays])
    else:
        frac = max_pixels / total
        rng = np.random.default_rng(_SEED)
        values = np.concatenate(
            [
                a.ravel()[rng.choice(a.size, size=max(1, round(frac * a.size)), replace=False)]
                for a in arrays
            ]
        )
    value = float(np.percentile(values, p))
    detail = f"{p:g}th percentile of {total} pixel(s) in {len(arrays)} good anomaly map(s)"
    if values.size < total:
        detail += f" (estimated from {values.size} sampled pixels)"
    return ThresholdSuggestion(value, "pixel-good-percentile", detail)


__all__ = [
    "OUTLIER_FENCE",
    "SPREAD_MARGIN",
    "ThresholdSuggestion",
    "calibrate_from_good",
    "f1_optimal",
    "from_good_scores",
    "no_missed_defect",
    "pixel_from_good_maps",
    "robust_spread",
]
