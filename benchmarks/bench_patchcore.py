"""PatchCore on real data: fit time, inference latency, metrics, coreset coverage.

Measures, in one process:

1. ``fit``: ``core.models.patchcore.detector.fit_patchcore`` on ``<data>/train/good`` (all images unless
   ``--train-limit``), wall time including feature extraction, coreset selection,
   search index and threshold calibration.  Target: <= 5 minutes for magnetic_tile's 768.
2. ``latency``: ms per 256x256 RGB image through ``PatchCoreDetector.predict`` (batch 1,
   after a warm-up; median of ``--repeats``).  Target: <= 150 ms.
3. ``metrics``: every test image (``--test-stride`` k: every k-th) through
   ``core.evaluate.inspect.evaluate_mvtec``: image / pixel AUROC, pixel AP, AUPRO (FPR <= 0.3).
4. ``--coverage N``: coverage radius of the fast greedy coreset vs plain greedy on N
   patch features (the first images' patches), 10 % picks, same projection and seed.

Run: ``flock /tmp/cpu.lock python benchmarks/bench_patchcore.py`` (about 5 minutes) and
``flock /tmp/cpu.lock python benchmarks/bench_patchcore.py --coverage 100000 --skip-eval``.
Options ``--set key=value`` override :class:`PatchCoreConfig` fields (exploration).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.images import load_image, read_mvtec  # noqa: E402
from core.evaluate.inspect import evaluate_mvtec  # noqa: E402
from core.models.patchcore.coreset import coverage_radius, fast_greedy_coreset, greedy_coreset  # noqa: E402
from core.models.patchcore.detector import PatchCoreConfig, PatchEmbedder, fit_patchcore  # noqa: E402

DEFAULT_DATA = "/work/shared/data/magnetic_tile"


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        v = json.loads(value) if value[:1] in "[{0123456789-tfn" else value
        out[key] = tuple(v) if isinstance(v, list) else v
    return out


def latency_ms(det, repeats: int) -> list[float]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    det.predict([img])  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pred = det.predict([img])[0]
        out.append((time.perf_counter() - t0) * 1000)
        assert pred.anomaly_map.shape == (256, 256)
    return out


def coverage(train_paths, config: PatchCoreConfig, n_patches: int, seed: int) -> None:
    emb = PatchEmbedder(config)
    rows, have = [], 0
    for p in train_paths:
        e = emb([load_image(p)])[0]
        rows.append(e.reshape(-1, e.shape[-1]))
        have += rows[-1].shape[0]
        if have >= n_patches:
            break
    x = torch.cat(rows)[:n_patches]
    k = max(1, round(0.1 * x.shape[0]))
    print(f"coverage: {x.shape[0]} patches x {x.shape[1]} dims, {k} picks, projection 128")
    from core.models.patchcore.coreset import project

    px = project(x, 128, seed)
    fast = fast_greedy_coreset(x, k, seed=seed)
    print(
        f"  fast greedy : {fast.seconds:7.1f} s  radius {fast.radius:.4f} (exact check "
        f"{coverage_radius(px, fast.indices):.4f}), {fast.n_partitions} partitions",
        flush=True,
    )
    plain = greedy_coreset(x, k, seed=seed)
    print(f"  plain greedy: {plain.seconds:7.1f} s  radius {plain.radius:.4f}")
    same = len(set(fast.indices.tolist()) & set(plain.indices.tolist())) / k
    print(
        f"  radius ratio fast/plain {fast.radius / plain.radius:.4f}; speed-up "
        f"{plain.seconds / fast.seconds:.1f}x; {same:.1%} of the picks identical"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--train-stride", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--test-stride", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--coverage", type=int, default=0, metavar="N")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--save", default="", help="write the fitted checkpoint here")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    config = PatchCoreConfig(**parse_overrides(args.set))
    cat = read_mvtec(args.data)
    train_paths = cat.train[:: args.train_stride][: args.train_limit or None]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; config {config.to_json()}"
    )
    if args.coverage:
        coverage(train_paths, config, args.coverage, args.seed)
    if args.skip_eval:
        return 0

    t0 = time.perf_counter()
    images = [load_image(p) for p in train_paths]
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    det = fit_patchcore(images, config=config, seed=args.seed)
    t_fit = time.perf_counter() - t0
    meta = det.metadata
    print(
        f"fit: {len(images)} images ({t_load:.1f} s to read) in {t_fit:.1f} s; "
        f"{meta['n_patches']} patches -> bank {meta['bank_size']}, coverage radius "
        f"{meta['coverage_radius']:.3f}; thresholds {det.thresholds}",
        flush=True,
    )
    if args.save:
        det.save(args.save)
    lat = latency_ms(det, args.repeats)
    print(
        f"latency 256x256: median {statistics.median(lat):.1f} ms, "
        f"min {min(lat):.1f} ms, max {max(lat):.1f} ms ({args.repeats} runs)",
        flush=True,
    )
    test = cat.test[:: args.test_stride]
    cat_eval = type(cat)(root=cat.root, train=cat.train, test=test)
    ev = evaluate_mvtec(det, cat_eval)
    e = ev.evaluation
    print(
        f"eval on {len(test)} test images ({ev.seconds_per_image * 1000:.0f} ms/image incl. "
        f"loading): image AUROC {e.image_auroc:.4f}  pixel AUROC {e.pixel_auroc:.4f}  "
        f"pixel AP {e.pixel_ap:.4f}  AUPRO {e.aupro:.4f}"
    )
    scores = np.array([p.score for p in ev.result.predictions])
    labels = np.array(ev.labels)
    types = np.array(ev.defect_types)
    from core.evaluate.metrics import image_auroc

    per = {
        t: image_auroc(labels[(types == t) | (labels == 0)], scores[(types == t) | (labels == 0)])
        for t in sorted(set(types) - {"good"})
    }
    print("  per defect type image AUROC: " + ", ".join(f"{t} {v:.3f}" for t, v in per.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
