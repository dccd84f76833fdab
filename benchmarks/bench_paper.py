"""Paper preset (97 M parameters, 256x256) on the CPU: inference and training speed.

Measures, in one process and on the same randomly initialised network:

1. fp32 inference seconds per image through ``DraemDetector.predict`` (resize,
   batched forward, softmax, 21x21 score, resize back, reconstruction) versus a
   plain eager PyTorch forward of the same network (``model.eval()``, ``no_grad``,
   contiguous NCHW, tensors already at 256x256: no pre/post-processing at all).
   Target: ours no slower.
2. Training seconds per batch-8 step of the real training code path
   (``core.models.draem.train._Run._train_step``: forward, L2+SSIM+focal, backward, Adam), and
   the same step done the plain way (contiguous NCHW) for comparison.

Run heavy: ``flock /tmp/cpu.lock python benchmarks/bench_paper.py`` (about 5 minutes
on 2 cores).  ``--data DIR`` takes the images from a folder (e.g. MVTec test images;
any size) instead of random ones.  Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import SimulatorConfig, TrainConfig, model_preset  # noqa: E402
from core.models.draem.detector import DraemDetector  # noqa: E402
from core.models.draem.loss import DraemLoss  # noqa: E402
from core.models.draem.network import build_model  # noqa: E402
from core.models.draem.train import _Run  # noqa: E402


def _images(data: str | None, n: int) -> list[np.ndarray]:
    if data:
        from core.data.images import list_images, load_image

        paths = list_images(data)[:n]
        if not paths:
            raise SystemExit(f"no images under {data}")
        return [load_image(p) for p in paths]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(n)]


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_inference(images: list[np.ndarray], repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    cfg = model_preset("paper")
    model = build_model(cfg).eval()
    det = DraemDetector(model, cfg, device="cpu")
    n = len(images)
    x = torch.rand(n, 3, *cfg.image_size)

    def eager():
        with torch.no_grad():
            model(x)

    def ours():
        det.predict(images, batch_size=n)

    eager(), ours()  # warm-up (and builds the fused copy)
    t_eager, t_ours = [], []
    for _ in range(repeats):  # interleaved so load changes hit both
        t_eager += _timed(eager, 1)
        t_ours += _timed(ours, 1)
    return {
        "eager_s_per_image": statistics.median(t_eager) / n,
        "ours_s_per_image": statistics.median(t_ours) / n,
    }


def _batches(images: list[np.ndarray], n: int) -> list[dict]:
    from core.simulate.dataset import make_loader
    from core.simulate.simulator import AnomalySimulator

    with make_loader(images, AnomalySimulator(SimulatorConfig(), seed=0), 8, 0, 0) as stream:
        return [next(stream) for _ in range(n)]


def _ours_steps(images: list[np.ndarray], batches: list[dict]) -> list[float]:
    """The real trainer step (``_Run._train_step``); the first call is a warm-up."""
    torch.manual_seed(0)
    tc = TrainConfig(steps=10, batch_size=8, device="cpu", num_workers=0)
    run = _Run(images, model_preset("paper"), SimulatorConfig(), tc, Path("unused"), None)
    return [_timed(lambda b=b: run._train_step(b, 1e-4), 1)[0] for b in batches][1:]


def _plain_steps(batches: list[dict]) -> list[float]:
    """A textbook eager step (NCHW, same loss and optimizer); the first call is a warm-up."""
    torch.manual_seed(0)
    plain = build_model(model_preset("paper")).train()
    opt = torch.optim.Adam(plain.parameters(), lr=1e-4)
    loss_fn = DraemLoss()
    it = iter(batches)

    def step():
        b = next(it)
        rec, logits = plain(b["augmented"])
        loss = loss_fn(rec, b["image"], logits, b["mask"])["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _timed(step, len(batches))[1:]


def bench_training(images: list[np.ndarray], steps: int) -> dict[str, float]:
    batches = _batches(images, steps + 1)
    ours = _ours_steps(images, batches)
    gc.collect()  # one 97 M network with its activations in memory at a time
    eager = _plain_steps(batches)
    return {
        "ours_s_per_step": statistics.median(ours),
        "eager_s_per_step": statistics.median(eager),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="folder of images for inference (default: random 256x256)")
    ap.add_argument("--images", type=int, default=4, help="images per inference batch")
    ap.add_argument("--repeats", type=int, default=3, help="timed inference repeats")
    ap.add_argument("--train-steps", type=int, default=2, help="timed training steps (batch 8)")
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    print(
        f"# bench_paper  torch {torch.__version__}  threads {torch.get_num_threads()}  {platform.processor() or platform.machine()}"
    )
    images = _images(args.data, args.images)
    sizes = sorted({im.shape[:2] for im in images})
    print(
        f"inference: {len(images)} images, sizes {sizes}, batch {len(images)}, fp32 CPU, paper preset"
    )
    r = bench_inference(images, args.repeats)
    print(
        f"  plain eager forward (256x256 tensors, no pre/post): {r['eager_s_per_image']:.3f} s/image"
    )
    print(
        f"  DraemDetector.predict (full pipeline):             {r['ours_s_per_image']:.3f} s/image"
    )
    print(f"  speed-up: {r['eager_s_per_image'] / r['ours_s_per_image']:.2f}x")
    if not args.skip_training:
        t = bench_training(_images(None, 8), args.train_steps)
        print(
            f"training, batch 8, 256x256, fp32 CPU (median of {args.train_steps} steps after 1 warm-up):"
        )
        print(f"  core.models.draem.train step (channels-last): {t['ours_s_per_step']:.1f} s/step")
        print(f"  plain eager step (NCHW):         {t['eager_s_per_step']:.1f} s/step")


if __name__ == "__main__":
    main()
