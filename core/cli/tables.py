"""The command line's result tables: inspection scores and verdicts, evaluation metrics,
false alarms and escapes at a threshold. Everything goes to stdout (pipe-able); with
``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import json
import math
from typing import Any

from core.types import InspectionResult


def inspection_table(result: InspectionResult, threshold: float) -> None:
    """Print ``score  verdict  path`` per image (NG iff score >= threshold) and a summary."""
    width = max((len(p) for p in result.paths), default=4)
    print(f"{'score':>10}  verdict  {'path':<{width}}")
    n_ng = 0
    for path, pred in zip(result.paths, result.predictions, strict=True):
        ng = pred.score >= threshold
        n_ng += ng
        print(f"{pred.score:>10.4f}  {'NG' if ng else 'OK':<7}  {path}")
    n = len(result.predictions)
    print(
        f"{n} inspected: {n - n_ng} OK, {n_ng} NG (threshold {threshold:.4g}); {len(result.failures)} skipped"
    )


_KEYS = ("image_auroc", "pixel_auroc", "image_ap", "pixel_ap", "aupro", "f1_max", "threshold_f1")


def evaluation(
    ev,
    seconds_per_image: float,
    *,
    as_json: bool,
    per_type: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
    operating=None,
    threshold_source: str = "",
) -> None:
    """Print a :class:`core.evaluate.metrics.Evaluation` (and the image AUROC per defect type,
    and with ``operating`` (:class:`core.evaluate.operating_point.OperatingPoint`) the false
    alarms and escapes at its threshold); with ``as_json`` the last line is one JSON object."""
    d = ev.to_dict()
    labels = {"aupro": "AUPRO (FPR<=0.3)", "threshold_f1": "threshold at F1-max"}
    print(
        f"images: {d['n_images']} ({d['n_defective']} defective), pixel metrics on {d['n_pixel_images']}"
    )
    for k in _KEYS:
        v = d.get(k)
        print(f"  {labels.get(k, k):22s} {'n/a' if v is None else f'{v:.4f}'}")
    print(f"  {'seconds per image':22s} {seconds_per_image:.4f}")
    per_type = {k: (None if math.isnan(v) else v) for k, v in (per_type or {}).items()}
    if per_type:
        print("image AUROC per defect type (against all good images):")
        for k, v in per_type.items():
            print(f"  {k:22s} {'n/a' if v is None else f'{v:.4f}'}")
    if operating is not None:
        operating_table(operating, "given" if threshold_source == "command line" else "model's")
    if as_json:
        out = {k: d.get(k) for k in _KEYS}
        if per_type:
            out["image_auroc_per_type"] = per_type
        if operating is not None:
            out["operating_point"] = {
                **operating.to_dict(),
                "threshold_source": threshold_source,
            }
        out["seconds_per_image"] = None if math.isnan(seconds_per_image) else seconds_per_image
        out.update(extra or {})
        print(json.dumps(out))


def _count(wrong: int, n: int) -> str:
    rate = f"{100.0 * wrong / n:.1f} %" if n else "n/a"
    return f"{wrong:>4} of {n:<4} ({rate})"


def operating_table(op, whose: str = "model's") -> None:
    """Print false alarms and escapes at ``op.threshold``, overall and per test type."""
    print(f"at the {whose} image threshold {op.threshold:.4g}:")
    print(f"  {'false alarms (good -> NG)':30s} {_count(op.good.wrong, op.good.n)}")
    print(f"  {'escapes (defective -> OK)':30s} {_count(op.defective.wrong, op.defective.n)}")
    if op.per_type:
        print("  per test type:")
        for k, o in op.per_type.items():
            what = "false alarms" if k in op.good_types else "escapes"
            print(f"    {k:18s} {what:12s} {_count(o.wrong, o.n)}")


def verdict_counts(op) -> str:
    """One line of pass/fail counts at ``op.threshold``: how many good images pass (OK)
    and how many defective images fail (NG)."""
    good_pass = op.good.n - op.good.wrong
    bad_fail = op.defective.n - op.defective.wrong
    return (
        f"at the stored threshold {op.threshold:.4g}: good images {good_pass} of {op.good.n} pass, "
        f"defective images {bad_fail} of {op.defective.n} fail"
    )
