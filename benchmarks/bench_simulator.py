"""Benchmark of the synthetic anomaly simulator (target: >= 100 samples/s at 256x256 on one core).

Single process, torch and OpenCV limited to one thread.  For each anomaly source
(builtin, colour, folder = /work/shared/data/anomaly_source when present) it
prints the throughput of ``AnomalySimulator.sample`` over a stream of indices
(half the samples are clean, as in training), the cost of an anomalous sample,
and a per-stage breakdown.  Optionally (``--workers N``) it also measures the
background loader's stream rate.

Usage::

    flock /tmp/cpu.lock python benchmarks/bench_simulator.py [--n 600] [--size 256] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.config import SimulatorConfig  # noqa: E402
from core.simulate.simulator import AnomalySimulator  # noqa: E402
from core.simulate.textures import augment_texture  # noqa: E402

DATA = Path("/work/shared/data/magnetic_tile/train/good")
TEXTURES = Path("/work/shared/data/anomaly_source")


def good_images(n: int = 32) -> tuple[list[np.ndarray], str]:
    """Real good images when available (read-only), else seeded synthetic ones."""
    if DATA.is_dir():
        paths = sorted(DATA.glob("*"))[:n]
        imgs = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
        imgs = [i for i in imgs if i is not None]
        if imgs:
            return imgs, f"{len(imgs)} images from {DATA}"
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, (300, 280, 3), dtype=np.uint8) for _ in range(n)
    ], f"{n} random images"


def bench_source(name: str, cfg: SimulatorConfig, images: list[np.ndarray], n: int) -> None:
    sim = AnomalySimulator(cfg, seed=0)
    prepared = [sim.prepare(i) for i in images]  # as SyntheticDataset does (resize once)
    for i in range(20):  # warm-up (fills the folder cache, as in a long run)
        sim.sample(prepared[i % len(prepared)], 10**6 + i)
    times, anomalous = [], []
    t_all = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        s = sim.sample(prepared[i % len(prepared)], i)
        times.append(time.perf_counter() - t0)
        anomalous.append(s.has_anomaly)
    total = time.perf_counter() - t_all
    times_a = np.array(times)[np.array(anomalous)]
    print(
        f"{name:8s} {n / total:7.1f} samples/s  ({np.mean(anomalous):.0%} anomalous; "
        f"anomalous sample {1e3 * times_a.mean():.2f} ms mean, {1e3 * np.percentile(times_a, 95):.2f} ms p95; "
        f"clean {1e3 * np.array(times)[~np.array(anomalous)].mean():.2f} ms)"
    )
    stage_breakdown(sim, prepared[0], n=max(50, n // 6))


def stage_breakdown(sim: AnomalySimulator, image: np.ndarray, n: int) -> None:
    c = sim.config
    rng = np.random.default_rng(1)
    acc = {"perlin+rotate+threshold": 0.0, "texture": 0.0, "augment": 0.0, "blend": 0.0}
    for _ in range(n):
        t0 = time.perf_counter()
        mask = sim.anomaly_mask(rng)
        t1 = time.perf_counter()
        tex = sim.source.sample(rng, c.image_size)
        t2 = time.perf_counter()
        tex = augment_texture(tex, rng, c.n_augmentations)
        t3 = time.perf_counter()
        blended = cv2.addWeighted(tex, 0.6, image, 0.4, 0.0)
        np.where(mask[..., None].astype(bool), blended, image)
        t4 = time.perf_counter()
        for k, dt in zip(acc, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            acc[k] += dt
    print("         stages (ms): " + ", ".join(f"{k} {1e3 * v / n:.2f}" for k, v in acc.items()))


def bench_loader(
    cfg: SimulatorConfig,
    images: list[np.ndarray],
    workers: int,
    batch: int,
    n_batches: int,
    step_ms: float,
) -> None:
    """Stream rate when drained flat out, and the consumer's idle time at ``step_ms`` per step."""
    from core.simulate.dataset import make_loader

    sim = AnomalySimulator(cfg, seed=0)
    t0 = time.perf_counter()
    with make_loader(images, sim, batch_size=batch, num_workers=workers, seed=0) as stream:
        next(stream)
        t1 = time.perf_counter()
        for _ in range(n_batches):
            next(stream)
        t2 = time.perf_counter()
        print(
            f"loader   {workers} workers, batch {batch}: first batch after {t1 - t0:.2f} s, then "
            f"{n_batches * batch / (t2 - t1):.1f} samples/s when drained as fast as possible"
        )
        stream.wait_s = 0.0
        t3 = time.perf_counter()
        for _ in range(n_batches):
            next(stream)
            time.sleep(step_ms / 1e3)  # a trainer step (GPU-bound: the host thread mostly waits)
        total = time.perf_counter() - t3
        print(
            f"         consumer at {step_ms:.0f} ms/step ({1e3 * batch / step_ms:.0f} samples/s): "
            f"waited {stream.wait_s:.2f} s of {total:.2f} s ({stream.wait_s / total:.1%}; "
            f"{1e3 * stream.wait_s / n_batches:.2f} ms per batch)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600, help="samples per source")
    ap.add_argument("--size", type=int, default=256, help="sample size (square)")
    ap.add_argument("--workers", type=int, default=0, help="also time make_loader with N workers")
    ap.add_argument(
        "--step-ms", type=float, default=80.0, help="simulated trainer step (loader test)"
    )
    args = ap.parse_args()

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    images, desc = good_images()
    size = (args.size, args.size)
    print(
        f"simulator benchmark: {args.size}x{args.size}, {args.n} samples per source, 1 thread, {desc}"
    )
    sources = {
        "builtin": SimulatorConfig(image_size=size),
        "colour": SimulatorConfig(image_size=size, source="colour"),
    }
    if TEXTURES.is_dir():
        sources["folder"] = SimulatorConfig(
            image_size=size, source="folder", source_dir=str(TEXTURES)
        )
    else:
        print(f"(folder source skipped: {TEXTURES} not found)")
    for name, cfg in sources.items():
        bench_source(name, cfg, images, args.n)
    if args.workers:
        bench_loader(
            sources["builtin"], images, args.workers, 8, max(10, args.n // 8), args.step_ms
        )


if __name__ == "__main__":
    main()
