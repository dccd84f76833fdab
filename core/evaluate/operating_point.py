"""The operating point: what a line running at one image threshold would see.

AUROC ranks scores; a quality engineer runs at one threshold.  At the model's stored
image threshold (or any other) this counts, overall and per test type:

* false alarms: good images called NG (``score >= threshold``), over the good images;
* escapes: defective images called OK (``score < threshold``), over the defective images.

Same decision rule as :mod:`core.evaluate.metrics` and :mod:`core.evaluate.thresholds`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import EvaluationError
from core.evaluate.metrics import _labels_scores


@dataclass(frozen=True)
class TypeOutcome:
    """Images of one kind at a threshold: ``n`` images, ``wrong`` wrong verdicts.

    ``wrong`` counts good images called NG (false alarms) for good images, defective
    images called OK (escapes) for defective ones.  ``rate`` = ``wrong / n`` (``nan`` if
    ``n == 0``).
    """

    n: int
    wrong: int

    @property
    def rate(self) -> float:
        return self.wrong / self.n if self.n else math.nan

    def to_dict(self) -> dict:
        return {"n": self.n, "wrong": self.wrong, "rate": None if self.n == 0 else self.rate}


@dataclass(frozen=True)
class OperatingPoint:
    """False alarms and escapes at ``threshold`` (NG iff ``score >= threshold``).

    Attributes:
        threshold: the image threshold the verdicts were taken at.
        good: the good images (``wrong`` = false alarms).
        defective: the defective images (``wrong`` = escapes).
        per_type: test type -> :class:`TypeOutcome`, sorted by name; a type of good
            images counts false alarms, a defect type escapes.
        good_types: the names in ``per_type`` that hold good images.
    """

    threshold: float
    good: TypeOutcome
    defective: TypeOutcome
    per_type: dict[str, TypeOutcome]
    good_types: tuple[str, ...] = ()

    @property
    def false_alarm_rate(self) -> float:
        return self.good.rate

    @property
    def escape_rate(self) -> float:
        return self.defective.rate

    def to_dict(self) -> dict:
        """Plain JSON-able dict; undefined rates (no image of that kind) are ``None``."""
        good, bad = self.good.to_dict(), self.defective.to_dict()
        return {
            "threshold": self.threshold,
            "n_good": good["n"],
            "false_alarms": good["wrong"],
            "false_alarm_rate": good["rate"],
            "n_defective": bad["n"],
            "escapes": bad["wrong"],
            "escape_rate": bad["rate"],
            "per_type": {
                k: {
                    "n": o.n,
                    "false_alarms" if k in self.good_types else "escapes": o.wrong,
                    "rate": o.to_dict()["rate"],
                }
                for k, o in self.per_type.items()
            },
        }


def operating_point(labels, scores, threshold: float, types=None) -> OperatingPoint:
    """Count false alarms and escapes at ``threshold``, overall and per test type.

    Args:
        labels: (N,) int in {0, 1} (1 = defective).
        scores: (N,) finite image scores.
        threshold: finite; an image is NG iff ``score >= threshold``.
        types: optional (N,) type names (e.g. MVTec ``test/<type>``); None: no per-type
            breakdown.  A type is a good type when all its images are labelled 0.

    Raises:
        EvaluationError: mismatched lengths, labels outside {0, 1}, non-finite values.
    """
    y, s = _labels_scores(labels, scores)
    try:
        thr = float(threshold)
    except (TypeError, ValueError):
        thr = math.nan
    if not math.isfinite(thr):
        raise EvaluationError(f"threshold must be a finite number, got {threshold!r}")
    ng = s >= thr
    wrong = np.where(y == 1, ~ng, ng)
    per_type: dict[str, TypeOutcome] = {}
    good_types: list[str] = []
    if types is not None:
        t = np.asarray([str(x) for x in types])
        if t.shape != y.shape:
            raise EvaluationError(f"{t.size} types but {y.size} labels")
        for k in sorted(set(t.tolist())):
            sel = t == k
            per_type[k] = TypeOutcome(int(sel.sum()), int(wrong[sel].sum()))
            if not y[sel].any():
                good_types.append(k)
    good, bad = y == 0, y == 1
    return OperatingPoint(
        threshold=thr,
        good=TypeOutcome(int(good.sum()), int(wrong[good].sum())),
        defective=TypeOutcome(int(bad.sum()), int(wrong[bad].sum())),
        per_type=per_type,
        good_types=tuple(good_types),
    )


__all__ = ["OperatingPoint", "TypeOutcome", "operating_point"]
