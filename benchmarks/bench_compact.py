"""Compact vs paper preset on this CPU: inference latency and training throughput.

Measures in ONE process (same machine state for both presets):

1. Inference: milliseconds per 1024x1024 RGB image through ``DraemDetector.predict``
   (working-size resize, forward, softmax, 21x21 score, map back at 1024x1024), for
   the compact preset and the paper preset (randomly initialised weights: speed does
   not depend on them).  Target: compact <= 80 ms.
2. Training: steps/s and samples/s of the real training path (``core.models.draem.train.train``
   with a step budget, background simulator workers) and the trainer's idle time
   waiting for the simulator (``TrainResult.data_wait_s``).

Run: ``flock /tmp/cpu.lock python benchmarks/bench_compact.py [--data DIR]`` (about
5 minutes; ``--paper-steps 0`` skips the paper training measurement, ~1 min/step).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import SimulatorConfig, TrainConfig, model_preset  # noqa: E402
from core.models.draem.detector import DraemDetector  # noqa: E402
from core.models.draem.network import build_model  # noqa: E402
from core.models.draem.train import train  # noqa: E402


def good_images(data: str | None, n: int) -> list[np.ndarray]:
    if data:
        from core.data.images import good_image_paths, load_image

        return [load_image(p) for p in good_image_paths(data)[:n]]
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (1, 320, 3), dtype=np.uint8)
    return [
        np.clip(base + rng.integers(-20, 20, (300, 320, 3)), 0, 255).astype(np.uint8)
        for _ in range(n)
    ]


def inference_ms(preset: str, repeats: int) -> list[float]:
    cfg = model_preset(preset)
    torch.manual_seed(0)
    det = DraemDetector(build_model(cfg), cfg, device="cpu")
    img = np.random.default_rng(1).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    pred = det.predict([img])[0]  # warm-up (oneDNN kernels, fused copy)
    assert pred.anomaly_map.shape == (1024, 1024), pred.anomaly_map.shape
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        det.predict([img])
        out.append(1000 * (time.perf_counter() - t0))
    return out


def training(preset: str, images: list[np.ndarray], steps: int) -> dict:
    cfg = model_preset(preset)
    tc = TrainConfig(steps=steps, seed=0, device="cpu", num_workers=2, checkpoint_every_s=1e9)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = train(
            images,
            model_config=cfg,
            sim_config=SimulatorConfig(),
            train_config=tc,
            out_path=Path(tmp) / "m.pt",
        )
        wall = time.perf_counter() - t0
    return {
        "steps": res.steps,
        "batch": tc.batch_size,
        "train_s": res.elapsed_s,
        "wall_s": wall,
        "steps_per_s": res.steps / res.elapsed_s,
        "samples_per_s": res.steps * tc.batch_size / res.elapsed_s,
        "data_wait_s": res.data_wait_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="folder of good images (MVTec category ok); default random")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--compact-steps", type=int, default=60)
    ap.add_argument("--paper-steps", type=int, default=2)
    a = ap.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    for preset in ("compact", "paper"):
        ms = inference_ms(preset, a.repeats if preset == "compact" else max(2, a.repeats // 5))
        print(
            f"inference {preset:8s} 1024x1024 -> map 1024x1024: median {statistics.median(ms):.1f} ms/image "
            f"(min {min(ms):.1f}, max {max(ms):.1f}, n={len(ms)})",
            flush=True,
        )
    images = good_images(a.data, 64)
    for preset, steps in (("compact", a.compact_steps), ("paper", a.paper_steps)):
        if steps <= 0:
            continue
        r = training(preset, images, steps)
        print(
            f"training  {preset:8s} {r['steps']} steps x batch {r['batch']}: {r['steps_per_s']:.2f} steps/s, "
            f"{r['samples_per_s']:.1f} samples/s, waiting for the simulator {r['data_wait_s']:.1f} s of "
            f"{r['train_s']:.1f} s ({100 * r['data_wait_s'] / r['train_s']:.0f} %)",
            flush=True,
        )


if __name__ == "__main__":
    main()
