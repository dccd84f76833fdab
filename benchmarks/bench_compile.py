"""Does ``torch.compile`` pay for the compact preset on this CPU?

Measures in one process, compact preset, random weights (speed does not depend on them):

1. Inference: ms per 1024x1024 image through ``DraemDetector.predict`` (three mirrored
   views, map back at 1024x1024), eager vs the detector's fused network wrapped in
   ``torch.compile``; the compiled row also gives the first call (compilation) time.
2. Training: one batch-8 step at the preset's crop size (forward, loss, backward,
   Adam) on a fixed random batch, eager vs ``torch.compile(model)``; compilation time
   and steady-state steps/s.

Run: ``flock /tmp/cpu.lock python benchmarks/bench_compile.py`` (2-4 minutes).
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import model_preset  # noqa: E402
from core.models.draem.detector import DraemDetector  # noqa: E402
from core.models.draem.network import build_model  # noqa: E402
from core.models.draem.recipe import recipe  # noqa: E402


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def inference(compiled: bool, repeats: int) -> tuple[float, list[float]]:
    cfg = model_preset("compact")
    torch.manual_seed(0)
    det = DraemDetector(build_model(cfg), cfg, device="cpu")
    img = np.random.default_rng(1).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    if compiled:
        det._fast = torch.compile(det._network())
    first = _timed(lambda: det.predict([img]), 1)[0]
    return first, _timed(lambda: det.predict([img]), repeats)


def training(compiled: bool, steps: int) -> tuple[float, list[float]]:
    cfg = model_preset("compact")
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    loss_fn = recipe(cfg).loss()
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-4)
    net = torch.compile(model) if compiled else model
    h, w = cfg.image_size
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    mask = (torch.rand(8, 1, h, w, generator=g) > 0.9).float()

    def step() -> None:
        rec, logits = net(x)
        loss = loss_fn(rec, x, logits, mask)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    first = _timed(step, 1)[0]
    return first, _timed(step, steps)


def main() -> None:
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    for compiled in (False, True):
        first, ms = inference(compiled, 10)
        print(
            f"inference {'compiled' if compiled else 'eager':8s} 1024x1024, 3 views: median "
            f"{statistics.median(ms):.1f} ms (min {min(ms):.1f}, max {max(ms):.1f}); first call "
            f"{first / 1000:.1f} s",
            flush=True,
        )
    for compiled in (False, True):
        first, ms = training(compiled, 20)
        print(
            f"training  {'compiled' if compiled else 'eager':8s} batch 8: median {statistics.median(ms):.0f} "
            f"ms/step ({1000 / statistics.median(ms):.2f} steps/s); first step {first / 1000:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
