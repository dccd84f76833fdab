"""Train the normalizing-flow detector on an MVTec AD category and evaluate it.

Usage (wrap in ``flock /tmp/cpu.lock nice -n 5`` on a shared machine)::

    python benchmarks/bench_flow.py --data ../shared/data/magnetic_tile --minutes 2 --seed 0
    python benchmarks/bench_flow.py --data ... --minutes 2 --split random     # papers' protocol
    python benchmarks/bench_flow.py --data ... --minutes 2 --few-shot 10      # 10 good images
    python benchmarks/bench_flow.py --data ... --steps 300 --config '{"ssl_weight": 0}'

The default :class:`FlowConfig` is used unless ``--config`` (JSON of field overrides) or
the shortcut flags (``--ssl-weight``, ``--subnet``, ``--work-area``) change it.

* ``--split grouped`` (default): the category's own train / test split.
* ``--split random``: all good images (train + test good) are shuffled with the seed and
  split 80 / 20 (as DifferNet, CS-Flow, MSFlow do on Magnetic Tile); the defect images
  stay in the test split.
* ``--few-shot N``: train on N good training images drawn with the seed.
* ``--speed``: also time inference on a 256x256 and a 1024x1024 image (median of 5 after a
  warm-up, batch 1).

Prints image / pixel AUROC, AP, AUPRO (FPR <= 0.3), image AUROC per defect type, the
alternative image score's AUROC (top 1 % vs max) from the same maps, the operating point
at the stored image threshold (false alarms on good, escapes on defective images), fit
time and seconds per image; the last line is one JSON object.  ``--test-every k``
evaluates every k-th test image (quick looks only; compared figures use the whole split).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _split(cat, mode: str, seed: int):
    """The category, or with ``mode="random"`` its good images re-split 80 / 20 at random."""
    import numpy as np

    from core.data.images import MvtecItem

    if mode == "grouped":
        return cat
    good = list(cat.train) + [t.path for t in cat.test if not t.is_anomalous]
    order = np.random.default_rng(seed).permutation(len(good))
    n_train = int(round(0.8 * len(good)))
    train = [good[i] for i in sorted(order[:n_train])]
    test_good = [MvtecItem(path=good[i], defect_type="good") for i in sorted(order[n_train:])]
    defects = [t for t in cat.test if t.is_anomalous]
    return dataclasses.replace(cat, train=train, test=test_good + defects)


def _speed(det, sizes=(256, 1024), repeats: int = 5) -> dict:
    """Median ms of ``det.predict`` on one (s, s, 3) image per size (after a warm-up)."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for s in sizes:
        img = np.clip(rng.normal(128, 30, (s, s, 3)), 0, 255).astype(np.uint8)
        det.predict([img])
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            det.predict([img])
            times.append(time.perf_counter() - t0)
        out[f"infer_ms_{s}"] = round(1000 * float(np.median(times)), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="MVTec AD category folder (read-only)")
    ap.add_argument("--anomaly-source", default=None, help="texture folder (default: good patches)")
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=None, help="instead of --minutes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="{}", help="JSON of FlowConfig field overrides")
    ap.add_argument("--ssl-weight", type=float, default=None)
    ap.add_argument("--subnet", choices=("conv", "conv_attn"), default=None)
    ap.add_argument("--work-area", type=int, default=None)
    ap.add_argument("--split", choices=("grouped", "random"), default="grouped")
    ap.add_argument("--few-shot", type=int, default=None, help="train on N good images")
    ap.add_argument("--speed", action="store_true", help="time 256^2 and 1024^2 inference")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--save", default=None, help="keep the trained checkpoint at this path")
    ap.add_argument(
        "--test-every",
        type=int,
        default=1,
        help="evaluate every k-th test image (in sorted order; 1 = the whole test split)",
    )
    args = ap.parse_args()

    import numpy as np

    from core.data.images import load_image, read_mvtec
    from core.evaluate.inspect import evaluate_mvtec
    from core.evaluate.metrics import confusion_at, image_auroc, image_auroc_per_type
    from core.models.flow import SPEC, FlowConfig
    from core.models.flow.detector import image_score
    from core.registry import FitRequest, method_names, register

    if "flow" not in method_names():  # until core.registry lists the method
        register(SPEC, "core.models.flow")
    cat = _split(read_mvtec(args.data), args.split, args.seed)
    train_paths = list(cat.train)
    if args.few_shot:
        pick = np.random.default_rng(args.seed).permutation(len(train_paths))[: args.few_shot]
        train_paths = [train_paths[i] for i in sorted(pick)]
    images = [load_image(p) for p in train_paths]
    print(f"{len(images)} training images loaded ({args.split} split)", flush=True)
    overrides = json.loads(args.config)
    for key, flag in (
        ("ssl_weight", args.ssl_weight),
        ("subnet", args.subnet),
        ("work_area", args.work_area),
    ):
        if flag is not None:
            overrides[key] = flag
    config = FlowConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    budget = {"steps": args.steps} if args.steps else {"minutes": args.minutes}
    with tempfile.TemporaryDirectory() as tmp:
        req = FitRequest(
            out_path=str(Path(tmp) / "flow.pt"),
            seed=args.seed,
            device=args.device,
            budget=budget,
            options={"anomaly_source": args.anomaly_source},
        )
        t0 = time.perf_counter()
        det, result = SPEC.fit(images, config, req)
        fit_s = time.perf_counter() - t0
        if args.save:
            shutil.copyfile(req.out_path, args.save)
    print(
        f"trained: {result.steps} steps in {result.elapsed_s:.0f} s, fit {fit_s:.0f} s", flush=True
    )
    if args.test_every > 1:
        cat = dataclasses.replace(cat, test=cat.test[:: args.test_every])
    res = evaluate_mvtec(det, cat)
    ev = res.evaluation
    maps = [p.anomaly_map for p in res.result.predictions]
    scores = [p.score for p in res.result.predictions]
    labels = np.array(res.labels)
    alt_rule = "topk" if config.score == "max" else "max"
    alt_cfg = dataclasses.replace(config, score=alt_rule)
    alt = image_auroc(labels, [image_score(m, alt_cfg) for m in maps])
    per_type = image_auroc_per_type(labels, scores, list(res.defect_types))
    conf = confusion_at(labels, scores, det.thresholds.image)
    n_good, n_bad = int((labels == 0).sum()), int((labels == 1).sum())
    out = {
        "data": Path(args.data).name,
        "split": args.split,
        "few_shot": args.few_shot,
        "n_train": len(images),
        "config": overrides,
        "seed": args.seed,
        "budget": budget,
        "steps": result.steps,
        "s_per_step": round(result.elapsed_s / max(1, result.steps), 3),
        "n_test": len(res.labels),
        "fit_s": round(fit_s, 1),
        "image_auroc": round(ev.image_auroc, 4),
        "pixel_auroc": round(ev.pixel_auroc, 4),
        "image_ap": round(ev.image_ap, 4),
        "pixel_ap": round(ev.pixel_ap, 4),
        "aupro": round(ev.aupro, 4),
        f"image_auroc_{alt_rule}": round(alt, 4),
        "per_type": {k: round(v, 3) for k, v in per_type.items()},
        "image_threshold": round(det.thresholds.image, 4),
        "good_pass": f"{conf.tn}/{n_good}",
        "false_alarm_rate": round(conf.fp / max(1, n_good), 4),
        "escape_rate": round(conf.fn / max(1, n_bad), 4),
        "seconds_per_image": round(res.seconds_per_image, 4),
        "final_losses": {k: round(v, 4) for k, v in result.final_losses.items()},
    }
    if args.speed:
        out.update(_speed(det))
    print(
        f"{out['data']} flow ({args.split}, {len(images)} train) seed={args.seed}: "
        f"{result.steps} steps, fit {fit_s:.0f} s; image AUROC {ev.image_auroc:.3f} "
        f"(score {alt_rule}: {alt:.3f}), pixel AUROC {ev.pixel_auroc:.3f}, "
        f"AUPRO {ev.aupro:.3f}, per type {out['per_type']}, good pass {out['good_pass']}, "
        f"escapes {out['escape_rate']:.2f}, {1000 * res.seconds_per_image:.0f} ms/image"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
