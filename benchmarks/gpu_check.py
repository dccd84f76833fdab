"""One-GPU check: paper-preset speed (fp32 vs AMP), inference, AMP drift, CUDA training.

Writes one JSON results file (``--out``, default ``gpu_check_results.json``) with:

1. ``train_step_s``: paper preset (256x256, batch 8) seconds per optimizer step of the
   real training step (``core.models.draem.train._Run._train_step``), fp32 versus the device
   policy's AMP (bf16, or fp16 with loss scaling).
2. ``paper_train``: a short paper-preset training on the demo set through the CLI
   (``main.py train --preset paper --minutes M --device cuda``) and its ``evaluate``
   metrics on the demo test split.
3. ``inference``: ``inference_ms_per_image``, that model's ``predict`` on the demo test images,
   fp32 and under the policy's autocast; ``amp_vs_fp32``: the largest and mean
   absolute anomaly-map difference and the largest image-score difference.
4. ``compact`` and ``patchcore``: CLI training/fitting on CUDA and their metrics.

Runs in about 6-8 minutes on one GPU: ``bash benchmarks/gpu_check.sh [OUT.json]``.

``--dry-run`` runs every stage on the CPU at toy sizes (a 64x64 paper network, a few
steps, the compact preset in place of the paper CLI training), in a few minutes on a
CPU: it checks the plumbing (the trainer's API, the CLI options, the JSON the stages
parse) before a GPU lease is spent on it; its figures mean nothing.
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
#: "cuda" for the check, "cpu" for ``--dry-run``
DEVICE = "cuda"


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def train_step_seconds(
    amp: bool, steps: int, warmup: int = 3, size: int | None = None, batch_size: int = 8
) -> float:
    import dataclasses

    mc = model_preset("paper")
    if size is not None:  # dry run: a toy input size
        mc = dataclasses.replace(mc, image_size=(size, size))
    tc = TrainConfig(steps=steps, batch_size=batch_size, num_workers=0, device=DEVICE, amp=amp)
    run = _Run([], mc, SimulatorConfig(), tc, Path("unused"), None)
    h, w = mc.image_size
    g = torch.Generator().manual_seed(0)
    b = batch_size
    batch = {
        "image": torch.rand(b, 3, h, w, generator=g),
        "augmented": torch.rand(b, 3, h, w, generator=g),
        "mask": (torch.rand(b, 1, h, w, generator=g) > 0.9).float(),
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
    if DEVICE == "cuda":
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
    rc, _ = cli("train", "--data", str(DEMO), "--out", str(out), "--device", DEVICE, *train_args)
    result: dict = {"train_rc": rc, "train_wall_s": round(time.perf_counter() - t0, 1)}
    if rc == 0:
        rc, text = cli("evaluate", "--model", str(out), "--data", str(DEMO), "--json")
        result["evaluate_rc"] = rc
        if rc == 0:
            result["metrics"] = json.loads(text.strip().splitlines()[-1])
    return result


def inference_and_amp(model_path: Path) -> dict:
    det = load_detector(model_path, device=DEVICE)
    images = [load_image(p) for p in list_images(DEMO / "test")]
    pol = policy(DEVICE)

    def timed(ctx_factory):
        with ctx_factory():
            det.predict(images[:2])  # warm-up (cuDNN autotuning, allocations)
            _sync()
            t0 = time.perf_counter()
            preds = det.predict(images)
            _sync()
        return preds, 1000 * (time.perf_counter() - t0) / len(images)

    with pol.scope():
        fp32, ms32 = timed(lambda: torch.autocast(pol.kind, enabled=False))
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
    ap.add_argument("--dry-run", action="store_true", help="every stage on the CPU, toy sizes")
    args = ap.parse_args()
    global DEVICE
    if args.dry_run:
        DEVICE = "cpu"
    elif not torch.cuda.is_available():
        print("error: no CUDA GPU available; this check needs one", file=sys.stderr)
        return 1
    pol = policy(DEVICE)
    results: dict = {
        "gpu": torch.cuda.get_device_name(0) if DEVICE == "cuda" else "none (dry run on CPU)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "policy": pol.precision,
        "dry_run": bool(args.dry_run),
    }

    def save() -> None:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    def stage(name: str, fn) -> None:
        """Run one stage; a failure is recorded and the next stages still run (one bad
        stage must not waste the rest of a GPU lease)."""
        t0 = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - recorded in the results
            value = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            print(f"{name} failed: {value['error']}", file=sys.stderr)
        results[name] = value
        results.setdefault("stage_wall_s", {})[name] = round(time.perf_counter() - t0, 1)
        save()

    steps, size, batch = (1, 64, 2) if args.dry_run else (args.steps, None, 8)
    warmup = 1 if args.dry_run else 3

    def step_times() -> dict:
        out = {"fp32": train_step_seconds(False, steps, warmup, size, batch)}
        if pol.amp:  # on the CPU the policy has no AMP: nothing more to time
            out[pol.precision] = train_step_seconds(True, steps, warmup, size, batch)
        return out

    stage("train_step_s", step_times)
    with tempfile.TemporaryDirectory() as tmp:
        paper = Path(tmp) / "paper.pt"
        budget = ["--preset", "paper", "--minutes", str(args.paper_minutes)]
        if args.dry_run:  # the paper network takes ~70 s a step on a CPU
            budget = ["--preset", "compact", "--steps", "2"]
        stage("paper_train", lambda: train_and_evaluate(paper, *budget))
        if paper.is_file():
            stage("inference", lambda: inference_and_amp(paper))
        compact_steps = "2" if args.dry_run else "300"
        stage(
            "compact",
            lambda: train_and_evaluate(
                Path(tmp) / "compact.pt", "--preset", "compact", "--steps", compact_steps
            ),
        )
        stage("patchcore", lambda: train_and_evaluate(Path(tmp) / "pc.pt", "--method", "patchcore"))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
