"""Does the stored image threshold hold on new images?  False alarms and escapes, old and new rule.

For one method and one MVTec-layout category this fits the model exactly as ``train`` does
(the same held-out split for methods with a training loop, leave-one-out for PatchCore),
records the good scores the fit calibrated its threshold on, scores every test image, and
prints, for the previous rule (99th percentile of the good scores) and the current one
(``core.evaluate.thresholds.calibrate_from_good``: highest + k robust spreads):

* the threshold;
* good test images called NG (false alarms) and defective test images called OK (escapes),
  overall and per defect type;
* the calibration scores beside the test good scores (the shift between them).

Both rules are applied to the *same* calibration scores, so one fit compares them.

Run (heavy; serialise with the other CPU jobs)::

    flock /tmp/cpu.lock nice -n 5 python benchmarks/bench_calibration.py \\
        --method draem --data resources/demo/brick --steps 300
    flock /tmp/cpu.lock nice -n 5 python benchmarks/bench_calibration.py \\
        --method patchcore --data /work/shared/data/magnetic_tile

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.evaluate.thresholds as thresholds  # noqa: E402
from core.data.images import good_image_paths, load_images, read_mvtec, split_held_out  # noqa: E402
from core.evaluate.inspect import evaluate_mvtec  # noqa: E402
from core.evaluate.operating_point import operating_point  # noqa: E402
from core.registry import FitRequest, fit_detector, get_method, make_config  # noqa: E402


def _stats(x) -> dict:
    a = np.asarray(x, dtype=np.float64)
    return {
        "n": int(a.size),
        "min": float(a.min()),
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "max": float(a.max()),
        "robust_spread": thresholds.robust_spread(a),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="draem")
    ap.add_argument("--data", required=True, help="MVTec AD layout category")
    ap.add_argument("--steps", type=int, help="training steps (methods with a training loop)")
    ap.add_argument("--minutes", type=float, help="training minutes instead of --steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=float, nargs="+", default=[thresholds.SPREAD_MARGIN])
    ap.add_argument("--set", nargs="*", default=[], help="config options key=value")
    args = ap.parse_args()

    spec = get_method(args.method)
    options = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        options[k] = json.loads(v) if v[:1] in "0123456789-[{tf" else v
    config = make_config(args.method, options, "cpu")
    loaded, _ = load_images(good_image_paths(args.data))
    images = [img for _, img in loaded]
    fit, held_out = split_held_out(images) if spec.trains else (images, [])
    budget = (
        {"steps": args.steps} if args.steps else {"minutes": args.minutes} if args.minutes else {}
    )

    seen: list[list[float]] = []
    original = thresholds.calibrate_from_good

    def recording(scores, *a, **kw):
        seen.append([float(s) for s in scores])
        return original(scores, *a, **kw)

    thresholds.calibrate_from_good = recording
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        det, result = fit_detector(
            args.method,
            fit,
            config,
            FitRequest(
                out_path=str(Path(tmp) / "model.pt"),
                held_out=held_out,
                seed=args.seed,
                budget=budget,
            ),
        )
    fit_s = time.perf_counter() - t0
    thresholds.calibrate_from_good = original
    if not seen:
        raise SystemExit("the fit stored no calibrated threshold (no good images to calibrate on?)")
    calib = seen[-1]
    rescored = None
    if held_out:  # the loaded model scores the held-out images as the fit did (same path)
        again = [p.score for p in det.predict(held_out)]
        rescored = float(np.max(np.abs(np.asarray(again) - np.asarray(calib))))
    ev = evaluate_mvtec(det, read_mvtec(args.data))
    scores = [p.score for p in ev.result.predictions]
    y = np.asarray(ev.labels)
    rules = {"percentile-99 (previous)": thresholds.from_good_scores(calib, 99.0).value}
    for k in args.k:
        rules[f"max + {k:g} x robust spread"] = thresholds.calibrate_from_good(calib, k).value

    out = {
        "method": args.method,
        "data": str(args.data),
        "fit_s": round(fit_s, 1),
        "steps": None if result is None else result.steps,
        "n_fit": len(fit),
        "held_out_rescore_max_abs_diff": rescored,
        "calibration_scores": _stats(calib),
        "test_good_scores": _stats(np.asarray(scores)[y == 0]),
        "test_defect_scores": _stats(np.asarray(scores)[y == 1]),
        "image_auroc": ev.evaluation.to_dict()["image_auroc"],
        "stored_threshold": det.thresholds.image,
        "rules": {},
    }
    print(
        f"{args.method} on {args.data}: fitted on {len(fit)} good images in {fit_s:.0f} s"
        + ("" if result is None else f" ({result.steps} steps)")
    )
    for name in ("calibration_scores", "test_good_scores", "test_defect_scores"):
        st = out[name]
        print(
            f"  {name:20s} n={st['n']:4d} min {st['min']:.4g} median {st['median']:.4g} "
            f"p90 {st['p90']:.4g} max {st['max']:.4g} spread {st['robust_spread']:.3g}"
        )
    print(f"  image AUROC {out['image_auroc']:.4f}")
    if rescored is not None:
        print(f"  held-out scores at fit vs by the loaded model: max abs difference {rescored:.2e}")
    for name, thr in rules.items():
        op = operating_point(ev.labels, scores, thr, ev.defect_types)
        out["rules"][name] = op.to_dict()
        good_pass = op.good.n - op.good.wrong
        bad_fail = op.defective.n - op.defective.wrong
        print(
            f"  {name:28s} threshold {thr:.4g}: false alarms {op.good.wrong}/{op.good.n} "
            f"({100 * op.false_alarm_rate:.1f} %), escapes {op.defective.wrong}/{op.defective.n} "
            f"({100 * op.escape_rate:.1f} %); good pass {good_pass}, defects fail {bad_fail}"
        )
        per = ", ".join(
            f"{k} {o.wrong}/{o.n}" for k, o in op.per_type.items() if k not in op.good_types
        )
        print(f"    escapes per type: {per}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
