"""Inference speed of the exported graphs against torch and anomalib, and the AUROC cost of
reduced precisions.

Speed (default): for DRAEM paper (256x256), DRAEM compact (1024x1024 images, three
views, working size 320x320), PatchCore (256x256) and the flow detector (256x256), all
with untrained / few-image weights (speed does not depend on them): torch fp32, torch
bf16 (autocast), onnxruntime (all graph optimisations), OpenVINO fp32 and its bf16 hint
(latency hint), at batch 1 and 8 and 1 and 2 threads; ms per image through ``predict``
(pre- and post-processing included), the median of ``--reps`` timed passes. Also the
time of export plus parity check per method, and anomalib 2.7's eager ``DraemModel``
(256x256) in a separate venv this script makes (``/tmp/anomalib-venv``,
``--system-site-packages``, torch pinned to the installed version; skipped with a
message where it cannot be had); anomalib is never installed into this environment.

    flock /tmp/cpu.lock nice -n 5 python benchmarks/bench_deploy.py [--write]

Precision (``--precision``): each checkpoint is exported (with the int8 graph) and
evaluated on its MVTec-layout data with onnxruntime fp32 / int8 and OpenVINO fp32 /
bf16; prints the image and pixel AUROC and their change against fp32.

    nice -n 5 python benchmarks/bench_deploy.py --precision --data DIR --models A.pt B.pt [--every N]

``--write`` replaces the matching results section of docs/deploy.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VENV = Path("/tmp/anomalib-venv")
ANOMALIB = "anomalib==2.7.0"
COLS = ["torch fp32", "torch bf16", "onnxruntime", "openvino", "openvino bf16"]


# ------------------------------------------------------------------ anomalib reference
def anomalib_python() -> str | None:
    """The venv's python with anomalib importable, made on first use; None (and a message)
    where pip cannot add anomalib without changing torch."""
    py = VENV / "bin" / "python"
    pins = {p: metadata.version(p) for p in ("torch", "torchvision")}
    check = "import anomalib, torch; print(torch.__version__.split('+')[0])"
    if py.exists():
        out = subprocess.run([str(py), "-c", check], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() == pins["torch"]:
            return str(py)
    try:
        if not py.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(VENV), "--system-site-packages"], check=True
            )
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("".join(f"{k}=={v}\n" for k, v in pins.items()))
        env = {**os.environ, "PIP_CONSTRAINT": f.name}  # torch stays the installed one
        print(f"installing {ANOMALIB} into {VENV} (torch pinned to {pins['torch']}) ...")
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", ANOMALIB],
            env=env,
            check=True,
            capture_output=True,
            timeout=1800,
        )
        out = subprocess.run([str(py), "-c", check], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() == pins["torch"]:
            return str(py)
        print(f"anomalib reference skipped: the venv's torch is {out.stdout.strip()!r}")
    except (subprocess.SubprocessError, OSError) as e:
        err = getattr(e, "stderr", b"") or b""
        print(f"anomalib reference skipped: cannot install {ANOMALIB} ({e}) {err[-300:]!r}")
    return None


ANOMALIB_TIMER = r"""
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
from anomalib.models.image.draem.torch_model import DraemModel
batch, threads, n, reps = (int(v) for v in sys.argv[1:5])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = DraemModel().eval()
x = torch.rand(n, 3, 256, 256)
with torch.inference_mode():
    model(x[:batch])
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            model(x[i : i + batch])
        times.append(time.perf_counter() - t0)
print(json.dumps(1000.0 * statistics.median(times) / n))
"""


def time_anomalib(py: str, batch: int, threads: int, n: int, reps: int) -> float | None:
    out = subprocess.run(
        [py, "-c", ANOMALIB_TIMER, str(batch), str(threads), str(n), str(reps)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        print(f"anomalib timing failed: {out.stderr[-400:]}")
        return None
    return float(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ detectors
def _images(n: int, size: int) -> list[np.ndarray]:
    """``n`` demo test images resized to size x size (RGB uint8)."""
    from core.data.images import load_images, read_mvtec
    from core.demo import demo_root

    cat = read_mvtec(demo_root())
    imgs = [im for _, im in load_images([it.path for it in cat.test[: max(n, 1)]])[0]]
    imgs = (imgs * n)[:n]
    return [cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in imgs]


def _train_images() -> list[np.ndarray]:
    from core.data.images import load_images, read_mvtec
    from core.demo import demo_root

    return [im for _, im in load_images(read_mvtec(demo_root()).train[:8])[0]]


def build(name: str, train: list[np.ndarray]):
    """(detector, image sizes) for one benchmarked model."""
    from core.config import Thresholds, model_preset
    from core.models.draem.detector import DraemDetector
    from core.models.draem.network import build_model

    torch.manual_seed(0)
    if name in ("DRAEM paper", "DRAEM compact"):
        cfg = model_preset(name.split()[1])
        det = DraemDetector(build_model(cfg), cfg, Thresholds(), {}, device="cpu")
        return det, (256,) if cfg.preset == "paper" else (1024,)
    if name == "PatchCore":
        from core.models.patchcore.detector import PatchCoreConfig, fit_patchcore

        cfg = PatchCoreConfig(calibration_images=2, search="exact")
        return fit_patchcore(train, config=cfg), (256,)
    from core.models.flow import SPEC, FlowConfig
    from core.registry import FitRequest

    with tempfile.TemporaryDirectory() as tmp:
        req = FitRequest(out_path=f"{tmp}/f.pt", budget={"steps": 2}, device="cpu")
        det, _ = SPEC.fit(train, FlowConfig(), req)
    return det, (256, 1024)  # a 1024^2 image is scaled to the 256^2 working area first


def _bf16(det, on: bool):
    """torch bf16: the compact network's own autocast flag, the others under autocast."""
    nets = [getattr(det, "model", None)]
    if hasattr(det, "_network"):  # DRAEM's fused inference copy
        nets.append(det._network())
    flagged = [n for n in nets if hasattr(n, "bf16")]
    for n in flagged:
        n.bf16 = on
    if flagged:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=on)


def _time(det, images, batch: int, reps: int, ctx=None) -> float:
    with ctx or contextlib.nullcontext():
        det.predict(images[:batch], batch_size=batch)  # warm-up
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            det.predict(images, batch_size=batch)
            times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times) / len(images)


def _max_diff(ref, got) -> tuple[float, float]:
    m = max(
        float(np.abs(a.anomaly_map - b.anomaly_map).max()) for a, b in zip(ref, got, strict=True)
    )
    return m, max(abs(a.score - b.score) for a, b in zip(ref, got, strict=True))


def bench_method(name, train, args, anomalib_py, rows, notes) -> None:
    from core.deploy.export import export_model
    from core.deploy.runtime import load_exported

    det, sizes = build(name, train)
    slow = name == "DRAEM paper"  # ~1-2 s per image: fewer images and passes
    reps = 1 if slow else args.reps
    images = _images(2 if slow else args.images, sizes[0])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = Path(tmp) / "m"
        export_model(det, folder, "openvino", checkpoint_sha256="benchmark")
        _bf16(det, False)
        ref = det.predict(images[:2])
        got = load_exported(folder, "onnxruntime").predict(images[:2])
        diff, sdiff = _max_diff(ref, got)
        secs = time.perf_counter() - t0
        notes.append(
            f"{name}: export + parity check {secs:.1f} s (onnxruntime fp32 vs torch fp32: "
            f"max |map diff| {diff:.1e}, max score diff {sdiff:.1e})"
        )
        print(notes[-1], flush=True)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs = {
                "onnxruntime": load_exported(folder, "onnxruntime", threads),
                "openvino": load_exported(folder, "openvino", threads),
                "openvino bf16": load_exported(
                    folder, "openvino", threads, "bf16", unmeasured=True
                ),
            }
            for size, batch in [(s, b) for s in sizes for b in (1, 8)]:
                images = _images(2 if slow else args.images, size)
                cells = {}
                for bf16 in (False, True):
                    ctx = _bf16(det, bf16)
                    try:
                        cells["torch bf16" if bf16 else "torch fp32"] = _time(
                            det, images, batch, reps, ctx
                        )
                    except (TypeError, RuntimeError) as e:  # e.g. numpy() of a bf16 tensor
                        cells["torch bf16"] = None
                        note = f"{name}: torch bf16 autocast fails ({str(e)[:80]})"
                        if note not in notes:
                            notes.append(note)
                _bf16(det, False)
                for rt, r in runs.items():
                    cells[rt] = _time(r, images, batch, reps)
                if name == "DRAEM paper" and anomalib_py:
                    cells["anomalib eager"] = time_anomalib(
                        anomalib_py, batch, threads, len(images), reps
                    )
                rows.append((name, size, batch, threads, cells))
                shown = {k: round(v, 1) for k, v in cells.items() if v is not None}
                print(name, size, batch, threads, shown, flush=True)


def speed(args) -> str:
    load0 = os.getloadavg()
    anomalib_py = None if args.no_anomalib else anomalib_python()
    train = _train_images()
    rows, notes = [], []
    for name in args.methods:
        bench_method(name, train, args, anomalib_py, rows, notes)
    load1 = os.getloadavg()
    cols = COLS + (["anomalib eager"] if anomalib_py else [])
    lines = [
        f"ms per image through `predict` (median of {args.reps} passes; DRAEM paper: 2 images, "
        f"1 pass), {platform.machine()} CPU with {os.cpu_count()} cores, torch "
        f"{torch.__version__}, load average {load0[0]:.1f} before / {load1[0]:.1f} after "
        "(other jobs share this CPU: figures are contended when it is above ~1). Command: "
        "`flock /tmp/cpu.lock nice -n 5 python benchmarks/bench_deploy.py --write`.",
        "",
        "| method | image | batch | threads | " + " | ".join(cols) + " |",
        "|---|---|---|---|" + "---|" * len(cols),
    ]
    for name, size, batch, threads, cells in rows:
        vals = " | ".join(f"{cells[c]:.1f}" if cells.get(c) is not None else "-" for c in cols)
        lines.append(f"| {name} | {size}² | {batch} | {threads} | {vals} |")
    if not anomalib_py:
        lines += ["", "anomalib reference: skipped (see the script's message)."]
    lines += ["", *[f"* {n}" for n in notes]]
    return "\n".join(lines)


# ------------------------------------------------------------------ precision
def precision(args) -> str:
    from core.data.images import read_mvtec
    from core.deploy.export import export_model
    from core.deploy.runtime import load_exported
    from core.evaluate.inspect import evaluate_mvtec
    from core.io.checkpoint import file_sha256
    from core.registry import get_method, load_detector

    cat = read_mvtec(args.data)
    cat = dataclasses.replace(cat, test=cat.test[:: args.every])  # every N-th test image
    lines = []
    for ckpt in args.models:
        det = load_detector(ckpt, device="cpu")
        variant = get_method(det.method).variant(det.config)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "m"
            export_model(det, folder, "openvino", checkpoint_sha256=file_sha256(ckpt), int8=True)
            res = {}
            for rt, prec in (
                ("onnxruntime", "fp32"),
                ("onnxruntime", "int8"),
                ("openvino", "fp32"),
                ("openvino", "bf16"),
            ):
                run = load_exported(folder, rt, None, prec, unmeasured=True)
                ev = evaluate_mvtec(run, cat).evaluation
                res[(rt, prec)] = (ev.image_auroc, ev.pixel_auroc)
                print(ckpt, rt, prec, res[(rt, prec)], flush=True)
        for rt, prec in (("onnxruntime", "int8"), ("openvino", "bf16")):
            (i0, p0), (i1, p1) = res[(rt, "fp32")], res[(rt, prec)]
            entry = {
                "key": [det.method, variant, rt, prec],
                "data": f"{Path(args.data).name} ({len(cat.test)} test images)",
                "fp32": [round(i0, 4), round(p0, 4)],
                "reduced": [round(i1, 4), round(p1, 4)],
                "delta": [round(abs(i1 - i0), 4), round(abs(p1 - p0), 4)],
            }
            lines.append(json.dumps(entry))
            print(lines[-1], flush=True)
    return "\n".join(lines)


def _write(section: str, text: str) -> None:
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    doc = ROOT / "docs" / "deploy.md"
    body = doc.read_text(encoding="utf-8")
    block = f"{begin}\n{text}\n{end}"
    if begin in body:
        body = body[: body.index(begin)] + block + body[body.index(end) + len(end) :]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    doc.write_text(body, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["DRAEM compact", "PatchCore", "flow", "DRAEM paper"],
    )
    ap.add_argument("--no-anomalib", action="store_true")
    ap.add_argument("--precision", action="store_true", help="measure AUROC, not speed")
    ap.add_argument("--data", help="MVTec-layout category (--precision)")
    ap.add_argument("--models", nargs="+", default=[], help="checkpoints (--precision)")
    ap.add_argument("--every", type=int, default=1, help="every N-th test image (--precision)")
    ap.add_argument("--write", action="store_true", help="update docs/deploy.md")
    args = ap.parse_args()
    if args.precision:
        precision(args)
        return 0
    text = speed(args)
    print(text)
    if args.write:
        _write("bench-deploy", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
