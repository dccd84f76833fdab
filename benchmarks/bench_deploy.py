"""Inference speed of the exported graphs against torch, per method.

For DRAEM compact (untrained head: speed does not depend on the weights) and PatchCore
(fitted on a few demo images, default config): torch fp32, torch bf16 (autocast),
onnxruntime and OpenVINO (fp32), at batch 1 and 8 and with 1 and 2 threads, in ms per
image through each detector's ``predict`` (pre- and post-processing included) on demo
test images (256x240). Also prints the fp32 parity (max |map diff|, score diff).

    flock /tmp/cpu.lock python benchmarks/bench_deploy.py [--write] [--images 8] [--reps 2]

``--write`` replaces the results section of docs/deploy.md. The anomalib reference is
skipped (not installed here).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BEGIN, END = "<!-- bench-deploy:begin -->", "<!-- bench-deploy:end -->"


def _detectors(train):
    from core.config import Thresholds, model_preset
    from core.models.draem.detector import DraemDetector
    from core.models.draem.network import build_model
    from core.models.patchcore.detector import PatchCoreConfig, fit_patchcore

    torch.manual_seed(0)
    cfg = model_preset("compact")
    compact = DraemDetector(build_model(cfg), cfg, Thresholds(), {}, device="cpu")
    pc = fit_patchcore(train, config=PatchCoreConfig(calibration_images=2, search="exact"))
    return {"DRAEM compact": compact, "PatchCore": pc}


def _set_bf16(det, on: bool):
    """torch variant: the compact network's own autocast flag, PatchCore under autocast."""
    if det.method == "draem":
        det._network().bf16 = on
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=on)


def _time(det, images, batch, reps, ctx=contextlib.nullcontext) -> float:
    with ctx():
        det.predict(images[:batch], batch_size=batch)  # warm-up
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            det.predict(images, batch_size=batch)
            best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / len(images)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="update docs/deploy.md")
    args = ap.parse_args()
    from core.data.images import load_images, read_mvtec
    from core.demo import demo_root
    from core.deploy.export import export_model
    from core.deploy.runtime import load_exported

    try:
        import anomalib  # noqa: F401
    except ImportError:
        print("anomalib reference skipped: anomalib is not installed")
    cat = read_mvtec(demo_root())
    train = [im for _, im in load_images(cat.train[:8])[0]]
    images = [im for _, im in load_images([it.path for it in cat.test[: args.images]])[0]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, det in _detectors(train).items():
            folder = Path(tmp) / name.replace(" ", "_")
            export_model(det, folder, "openvino", checkpoint_sha256="benchmark")
            _set_bf16(det, False)
            ref = det.predict(images)
            for threads in (1, 2):
                torch.set_num_threads(threads)
                runs = {
                    "onnxruntime": load_exported(folder, "onnxruntime", threads),
                    "openvino": load_exported(folder, "openvino", threads),
                }
                if threads == 2:
                    got = runs["onnxruntime"].predict(images)
                    diff = max(
                        float(np.abs(a.anomaly_map - b.anomaly_map).max())
                        for a, b in zip(ref, got, strict=True)
                    )
                    sdiff = max(abs(a.score - b.score) for a, b in zip(ref, got, strict=True))
                    print(
                        f"{name}: fp32 onnxruntime vs torch max|map|={diff:.1e} score={sdiff:.1e}"
                    )
                for batch in (1, 8):
                    cells = {}
                    for bf16 in (False, True):
                        ctx = functools.partial(_set_bf16, det, bf16)
                        # bf16 is slow on CPUs without AVX-512 BF16 / AMX: fewer images
                        few = images[: max(batch, 2)] if bf16 else images
                        cells["torch bf16" if bf16 else "torch fp32"] = _time(
                            det, few, batch, 1 if bf16 else args.reps, ctx
                        )
                    _set_bf16(det, False)
                    for rt, r in runs.items():
                        cells[rt] = _time(r, images, batch, args.reps)
                    rows.append((name, batch, threads, cells))
                    print(name, batch, threads, {k: round(v, 1) for k, v in cells.items()})
    cols = ["torch fp32", "torch bf16", "onnxruntime", "openvino"]
    lines = [
        f"ms per image ({len(images)} demo test images, 256x240; {platform.processor() or 'cpu'}, "
        f"torch {torch.__version__}; `flock /tmp/cpu.lock python benchmarks/bench_deploy.py --write`)",
        "",
        "| method | batch | threads | " + " | ".join(cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for name, batch, threads, cells in rows:
        vals = " | ".join(f"{cells[c]:.1f}" for c in cols)
        lines.append(f"| {name} | {batch} | {threads} | {vals} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        doc = ROOT / "docs" / "deploy.md"
        text = doc.read_text(encoding="utf-8")
        block = f"{BEGIN}\n{table}\n{END}"
        if BEGIN in text:
            text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip() + "\n\n## Speed\n\n" + block + "\n"
        doc.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
