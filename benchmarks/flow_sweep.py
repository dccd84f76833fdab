"""Screen flow settings on an MVTec AD category: several variants in one process.

Usage (wrap in ``flock /tmp/cpu.lock nice -n 5`` on a shared machine)::

    python benchmarks/flow_sweep.py --data ../shared/data/magnetic_tile --steps 200 \
        --test-every 4 '{"name": "base"}' '{"name": "plain", "ssl_weight": 0}'

Each variant is a JSON object of :class:`FlowConfig` fields plus optional ``name``,
``steps`` (overrides ``--steps``), ``seed`` and ``anomaly_source``.  The test images'
backbone features are computed once per backbone and feature geometry (stages, work area,
enlarge)
and reused by every variant that shares it, so only the flows run per variant.  Each
variant's maps are scored with several smoothing sigmas and image-score rules (max,
top 1 %, top 0.1 %) from the same raw maps (the detector's standardised scale fusion;
``plain_mean_*``: the scales' raw NLL averaged instead, at the config's sigma and
score).  Thresholds are calibrated on 20 held-out good images (as ``fit_flow`` does).
One JSON line per variant (also appended to ``--out``).  For screening: the test split
is subsampled with ``--test-every``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIGMAS = (2.0, 4.0, 8.0)
RULES = {"max": ("max", 0.01), "top1%": ("topk", 0.01), "top0.1%": ("topk", 0.001)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--test-every", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/flow_sweep.jsonl")
    ap.add_argument("variants", nargs="+", help="JSON objects of FlowConfig overrides")
    args = ap.parse_args()

    import numpy as np
    import torch

    from core.data.geometry import to_original
    from core.data.images import load_image, load_mask, read_mvtec
    from core.evaluate.metrics import image_auroc, image_auroc_per_type, pixel_auroc
    from core.models.flow import SPEC, FlowConfig
    from core.models.flow.detector import image_score, nll_map, smooth
    from core.models.flow.features import prepare
    from core.registry import FitRequest, method_names, register

    if "flow" not in method_names():
        register(SPEC, "core.models.flow")
    cat = read_mvtec(args.data)
    train = [load_image(p) for p in cat.train]
    items = cat.test[:: args.test_every]
    test = [load_image(it.path) for it in items]
    labels = np.array([int(it.is_anomalous) for it in items])
    types = [it.defect_type for it in items]
    masks = [
        load_mask(it.path if it.mask_path is None else it.mask_path, im.shape[:2])
        if it.mask_path is not None
        else np.zeros(im.shape[:2], np.uint8)
        for it, im in zip(items, test, strict=True)
    ]
    print(f"{len(train)} train, {len(test)} test images", flush=True)
    cache: dict = {}
    for raw in args.variants:
        spec = json.loads(raw)
        name = spec.pop("name", raw)
        steps = int(spec.pop("steps", args.steps))
        seed = int(spec.pop("seed", args.seed))
        source = spec.pop("anomaly_source", None)
        config = FlowConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        with tempfile.TemporaryDirectory() as tmp:
            req = FitRequest(
                out_path=str(Path(tmp) / "flow.pt"),
                seed=seed,
                device="cpu",
                budget={"steps": steps},
                options={"anomaly_source": source},
            )
            t0 = time.perf_counter()
            det, result = SPEC.fit(train, config, req)
            train_s = time.perf_counter() - t0
        key = (
            config.backbone,
            config.backbone_weights,
            config.stages,
            config.work_area,
            config.enlarge,
        )
        t1 = time.perf_counter()
        if key not in cache:
            cache.clear()
            feats = []
            with torch.no_grad():
                for im in test:
                    feats.append(det.features([prepare(im, config)]))
            cache[key] = feats
        with torch.no_grad():
            raws, plain = [], []
            for im, f in zip(test, cache[key], strict=True):
                p = prepare(im, config)
                out = det.model(f)
                raws.append(nll_map(out, p.shape[:2], det.model.map_norm())[0].numpy())
                plain.append(nll_map(out, p.shape[:2])[0].numpy())
        eval_s = time.perf_counter() - t1
        res: dict = {}
        # the scales' raw NLL averaged without standardisation (the fusion before it)
        maps = [
            to_original(smooth(r, config.sigma), im.shape[:2])
            for r, im in zip(plain, test, strict=True)
        ]
        res["plain_mean_image"] = round(
            image_auroc(labels, [image_score(m, config) for m in maps]), 4
        )
        res["plain_mean_pixel"] = round(pixel_auroc([m > 0 for m in masks], maps), 4)
        best = None
        for sigma in SIGMAS:
            maps = [
                to_original(smooth(r, sigma), im.shape[:2])
                for r, im in zip(raws, test, strict=True)
            ]
            px = pixel_auroc([m > 0 for m in masks], maps)
            res[f"pixel_s{sigma:g}"] = round(px, 4)
            for rule, (score, frac) in RULES.items():
                cfg = dataclasses.replace(config, score=score, topk_fraction=frac)
                scores = [image_score(m, cfg) for m in maps]
                auc = image_auroc(labels, scores)
                res[f"image_{rule}_s{sigma:g}"] = round(auc, 4)
                if sigma == config.sigma and score == config.score and frac == config.topk_fraction:
                    best = image_auroc_per_type(labels, scores, types)
        out = {
            "name": name,
            "config": spec,
            "steps": result.steps,
            "seed": seed,
            "n_test": len(test),
            "train_s": round(train_s, 1),
            "s_per_step": round(train_s / max(1, result.steps), 3),
            "eval_s": round(eval_s, 1),
            "losses": {k: round(v, 3) for k, v in result.final_losses.items()},
            **res,
            "per_type": {k: round(v, 3) for k, v in (best or {}).items()},
        }
        line = json.dumps(out)
        print(line, flush=True)
        with open(args.out, "a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
