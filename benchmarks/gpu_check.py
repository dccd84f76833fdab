"""One-GPU check: paper-preset speed (fp32 vs AMP), inference, AMP drift, CUDA training.

Writes one JSON results file (``--out``, default ``gpu_check_results.json``) with:

1. ``train_step_s``: paper preset (256x256, batch 8) seconds per optimizer step of the
   real training step (``core.models.draem.train._Run._train_step``), fp32 versus the device
   policy's AMP (bf16, or fp16 with loss scaling).
2. ``paper_train``: a short paper-preset training on the demo set through the CLI
   (``main.py train --preset paper --minutes M --device cuda``) and its ``evaluate``
   metrics on the demo test split.
3. ``inference_ms_per_image``: that model's ``predict`` on the demo test images,
   fp32 and under the policy's autocast; ``amp_vs_fp32``: the largest and mean
   absolute anomaly-map difference and the largest image-score difference.
4. ``compact`` and ``patchcore``: CLI training/fitting on CUDA and their metrics.

Runs in about 6-8 minutes on one GPU: ``bash benchmarks/gpu_check.sh [OUT.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import SimulatorConfig, TrainConfig, model_preset  # noqa: E402
from core.data.images import list_images, load_image  # noqa: E402
from core.device import policy  # noqa: E402
from core.models.draem.train import _Run  # noqa: E402
from core.registry import load_detector  # noqa: E402

DEMO = ROOT / "resources" / "demo" / "brick"


def _sync() -> None:
    torch.cuda.synchronize()


def train_step_seconds(amp: bool, steps: int, warmup: int = 3) -> float:
    mc = model_preset("paper")
    tc = TrainConfig(steps=steps, batch_size=8, num_workers=0, device="cuda", amp=amp)
    run = _Run([], mc, SimulatorConfig(), tc, Path("unused"), None)
    h, w = mc.image_size
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.rand(8, 3, h, w, generator=g),
        "augmented": torch.rand(8, 3, h, w, generator=g),
        "mask": (torch.rand(8, 1, h, w, generator=g) > 0.9).float(),
    }
    times = []
    with run.policy.scope():
        for i in range(warmup + steps):
            _sync()
            t0 = time.perf_counter()
            run._train_step(batch, tc.lr)
            _sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    del run
    torch.cuda.empty_cache()
    return statistics.median(times)


def cli(*args: str) -> tuple[int, str]:
    p = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, cwd=ROOT
    )
    if p.returncode != 0:
        print(p.stderr[-2000:], file=sys.stderr)
    return p.returncode, p.stdout


def train_and_evaluate(out: Path, *train_args: str) -> dict:
    t0 = time.perf_counter()
    rc, _ = cli("train", "--data", str(DEMO), "--out", str(out), "--device", "cuda", *train_args)
    result: dict = {"train_rc": rc, "train_wall_s": round(time.perf_counter() - t0, 1)}
    if rc == 0:
        rc, text = cli("evaluate", "--model", str(out), "--data", str(DEMO), "--json")
        result["evaluate_rc"] = rc
        if rc == 0:
            result["metrics"] = json.loads(text.strip().splitlines()[-1])
    return result


def inference_and_amp(model_path: Path) -> dict:
    det = load_detector(model_path, device="cuda")
    images = [load_image(p) for p in list_images(DEMO / "test")]
    pol = policy("cuda")

    def timed(ctx_factory):
        with ctx_factory():
            det.predict(images[:2])  # warm-up (cuDNN autotuning, allocations)
            _sync()
            t0 = time.perf_counter()
            preds = det.predict(images)
            _sync()
        return preds, 1000 * (time.perf_counter() - t0) / len(images)

    with pol.scope():
        fp32, ms32 = timed(lambda: torch.autocast("cuda", enabled=False))
        amp, ms_amp = timed(pol.autocast)
    diffs = [
        abs(a.anomaly_map.astype("float64") - b.anomaly_map) for a, b in zip(fp32, amp, strict=True)
    ]
    return {
        "images": len(images),
        "inference_ms_per_image": {"fp32": round(ms32, 2), pol.precision: round(ms_amp, 2)},
        "amp_vs_fp32": {
            "precision": pol.precision,
            "map_max_abs_diff": float(max(d.max() for d in diffs)),
            "map_mean_abs_diff": float(sum(d.mean() for d in diffs) / len(diffs)),
            "score_max_abs_diff": max(
                abs(a.score - b.score) for a, b in zip(fp32, amp, strict=True)
            ),
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_check_results.json")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per precision")
    ap.add_argument("--paper-minutes", type=float, default=2.0)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("error: no CUDA GPU available; this check needs one", file=sys.stderr)
        return 1
    results: dict = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "policy": policy("cuda").precision,
    }

    def save() -> None:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    results["train_step_s"] = {
        "fp32": train_step_seconds(False, args.steps),
        policy("cuda").precision: train_step_seconds(True, args.steps),
    }
    save()
    with tempfile.TemporaryDirectory() as tmp:
        paper = Path(tmp) / "paper.pt"
        results["paper_train"] = train_and_evaluate(
            paper, "--preset", "paper", "--minutes", str(args.paper_minutes)
        )
        save()
        if paper.is_file():
            results.update(inference_and_amp(paper))
            save()
        results["compact"] = train_and_evaluate(
            Path(tmp) / "compact.pt", "--preset", "compact", "--steps", "300"
        )
        save()
        results["patchcore"] = train_and_evaluate(Path(tmp) / "pc.pt", "--method", "patchcore")
    save()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
