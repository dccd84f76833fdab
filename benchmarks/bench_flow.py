"""Train the normalizing-flow detector briefly on an MVTec AD category and evaluate it.

Usage (wrap in ``flock /tmp/cpu.lock`` on a shared machine)::

    python benchmarks/bench_flow.py --data ../shared/data/magnetic_tile --minutes 2 \
        --seed 0 --ssl-weight 1 --subnet conv

Prints image / pixel AUROC, AP, AUPRO (FPR <= 0.3), seconds per image, and the image
AUROC of the alternative image score (top-1 % mean vs max) computed from the same maps;
the last line is one JSON object. ``--test-every k`` evaluates every k-th test image
(for a quick look on a busy machine; figures to compare use the whole split).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="MVTec AD category folder (read-only)")
    ap.add_argument("--anomaly-source", default=None, help="texture folder (default: good patches)")
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=None, help="instead of --minutes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ssl-weight", type=float, default=1.0)
    ap.add_argument("--subnet", choices=("conv", "conv_attn"), default="conv")
    ap.add_argument("--work-area", type=int, default=256)
    ap.add_argument("--device", default="cpu")
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
    from core.evaluate.metrics import image_auroc
    from core.models.flow import SPEC, FlowConfig
    from core.models.flow.detector import image_score
    from core.registry import FitRequest, method_names, register

    if "flow" not in method_names():  # until core.registry lists the method
        register(SPEC, "core.models.flow")
    cat = read_mvtec(args.data)
    images = [load_image(p) for p in cat.train]
    print(f"{len(images)} training images loaded", flush=True)
    config = FlowConfig(ssl_weight=args.ssl_weight, subnet=args.subnet, work_area=args.work_area)
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
        train_s = time.perf_counter() - t0
    print(f"trained: {result.steps} steps, {result.final_losses}", flush=True)
    if args.test_every > 1:
        cat = dataclasses.replace(cat, test=cat.test[:: args.test_every])
    res = evaluate_mvtec(det, cat)
    ev = res.evaluation
    maps = [p.anomaly_map for p in res.result.predictions]
    alt_rule = "topk" if config.score == "max" else "max"
    alt_cfg = dataclasses.replace(config, score=alt_rule)
    alt = image_auroc(np.array(res.labels), [image_score(m, alt_cfg) for m in maps])
    out = {
        "data": Path(args.data).name,
        "subnet": args.subnet,
        "ssl_weight": args.ssl_weight,
        "seed": args.seed,
        "budget": budget,
        "steps": result.steps,
        "n_test": len(res.labels),
        "train_s": round(train_s, 1),
        "image_auroc": round(ev.image_auroc, 4),
        "pixel_auroc": round(ev.pixel_auroc, 4),
        "image_ap": round(ev.image_ap, 4),
        "pixel_ap": round(ev.pixel_ap, 4),
        "aupro": round(ev.aupro, 4),
        f"image_auroc_{alt_rule}": round(alt, 4),
        "seconds_per_image": round(res.seconds_per_image, 4),
        "final_losses": {k: round(v, 4) for k, v in result.final_losses.items()},
    }
    print(
        f"{out['data']} flow {args.subnet} ssl={args.ssl_weight:g} seed={args.seed}: "
        f"{result.steps} steps in {train_s:.0f} s; image AUROC {ev.image_auroc:.3f} "
        f"(score {alt_rule}: {alt:.3f}), pixel AUROC {ev.pixel_auroc:.3f}, "
        f"AUPRO {ev.aupro:.3f}, {1000 * res.seconds_per_image:.0f} ms/image"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
