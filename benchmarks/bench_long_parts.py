"""Working area vs hairline cracks on long grey parts: compact DRAEM and the flow.

Usage (wrap in ``flock /tmp/cpu.lock nice -n 5`` on a shared machine)::

    python benchmarks/bench_long_parts.py                          # the whole grid
    python benchmarks/bench_long_parts.py --draem-areas 320,448 --flow-areas 256
    python benchmarks/bench_long_parts.py --snr-only --keep /tmp/long  # data + crack SNR only

1. Generates, under a temporary folder (``--keep DIR`` to keep it), an MVTec-layout set
   of long machined parts as a line-scan camera sees them: grey PNGs of **H x W =
   1250 x 500** (500 px across the part, 1250 along it).  The surface is brushed metal:
   streaks along the part (white noise blurred 12 px along and 0.8 px across, turned by
   up to ±1.5°, plus thin per-column brush lines), a little sensor grain, a light fall-off
   towards both edges and a slow ramp along the part, soft blotches, faint chatter
   bands on half the parts and a per-image brightness jitter of ±10 %.  Test defects:
   ``crack`` (one jagged polyline 40-300 px long, 1-2 px wide, 10-22 grey levels darker than
   its surroundings) and ``pit`` (one small dark ellipse, radius 2-5 px); ground-truth
   masks follow the drawn pixels.  Everything derives from ``--seed``.
2. For each method and working area, takes the method's CPU default config through
   :func:`core.registry.make_config` and changes only ``work_area`` (both methods keep
   the aspect ratio; a 1250 x 500 image has ``sqrt(h*w) = 791``, so every area below that
   shrinks it and ``enlarge`` plays no part), trains it through
   :func:`core.registry.fit_detector` with a step budget equal across areas, evaluates it
   with :func:`core.evaluate.inspect.evaluate_mvtec` and times ``predict`` on one test
   image (batch 1, ``--threads`` torch / OpenCV threads, median of ``--repeats`` after a
   warm-up).
3. Model-free diagnostic per working size (:func:`crack_snr`): how much of a crack is
   left after the image is scaled there (its known darkening over the surface's fine
   detail, both scaled as the detectors scale images).

Prints one JSON line per run (with the false alarms and escapes at the threshold training
stored), then a markdown table.  No tiling path exists in ``core``:
both models are fully convolutional, so whole-image inference at a larger working area
is what tiling the image at that resolution would compute (apart from the tiles' borders).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

H, W = 1250, 500  # along the part x across it
DEFECTS = ("crack", "pit")


# ----------------------------------------------------------------------------- data
def surface(rng: np.random.Generator) -> np.ndarray:
    """One good part: (H, W) uint8 grey, brushed metal with lighting and benign variation."""
    # brush streaks along the part: white noise blurred along y, a little across x
    streak = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), 0.8, None, 12)
    streak /= streak.std() + 1e-6
    lines = cv2.GaussianBlur(rng.standard_normal((1, W)).astype(np.float32), (0, 0), 0.6)
    lines = lines / (lines.std() + 1e-6) * (1.0 + 0.3 * np.sin(np.linspace(0, 6, H)))[:, None]
    brushed = rng.uniform(4.0, 6.0) * streak + rng.uniform(1.5, 2.5) * lines
    angle = rng.uniform(-1.5, 1.5)  # the part is never quite straight under the camera
    rot = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
    brushed = cv2.warpAffine(brushed, rot, (W, H), borderMode=cv2.BORDER_REFLECT_101)
    # light: fall-off towards both edges, a slow ramp and wave along the part
    x = np.linspace(-1, 1, W, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    light = (1 - rng.uniform(0.08, 0.18) * x**2) * (
        1 + rng.uniform(-0.05, 0.05) * (y - 0.5) + 0.02 * np.sin(2 * np.pi * y + rng.uniform(0, 6))
    )
    base = rng.uniform(108, 132) * light  # per-image brightness jitter ±10 %
    # soft blotches (benign texture variation) and, on half the parts, chatter bands
    blotch = cv2.resize(
        rng.standard_normal((H // 60 + 2, W // 60 + 2)).astype(np.float32),
        (W, H),
        interpolation=cv2.INTER_CUBIC,
    )
    img = base + brushed + rng.uniform(2.0, 4.0) * blotch
    if rng.random() < 0.5:
        period, phase = rng.uniform(20, 60), rng.uniform(0, 2 * np.pi)
        img = img + rng.uniform(1.0, 2.0) * np.sin(2 * np.pi * y / period + phase)
    img = img + rng.normal(0, 2.0, (H, W)).astype(np.float32)  # sensor grain
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def crack(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``img`` (H, W) uint8 with one hairline crack; returns (image, mask (H, W) {0, 1}).

    A random-walk polyline 40-300 px long (segments of 8-20 px turning by N(0, 0.25) rad),
    drawn anti-aliased 1 or 2 px wide, darker by 10-22 grey levels at its core."""
    length = rng.uniform(40, 300)
    p = np.array([rng.uniform(30, W - 30), rng.uniform(30, H - 30)])
    ang = rng.uniform(0, np.pi)
    pts, done = [p.copy()], 0.0
    while done < length:
        seg = rng.uniform(8, 20)
        ang += rng.normal(0, 0.25)
        p = p + seg * np.array([math.cos(ang), math.sin(ang)])
        p = np.clip(p, 2, [W - 3, H - 3])
        pts.append(p.copy())
        done += seg
    canvas = np.zeros((H, W), np.uint8)
    poly = np.round(np.array(pts) * 16).astype(np.int32)  # 4 fractional bits
    cv2.polylines(canvas, [poly], False, 255, int(rng.integers(1, 3)), cv2.LINE_AA, shift=4)
    alpha = canvas.astype(np.float32) / 255.0
    dark = rng.uniform(10, 22)
    out = np.clip(img.astype(np.float32) - dark * alpha + 0.5, 0, 255).astype(np.uint8)
    return out, (alpha > 0.3).astype(np.uint8)


def pit(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``img`` with one small dark pit (ellipse, radius 2-5 px, 20-40 grey levels, soft edge)."""
    blob = np.zeros((H, W), np.float32)
    c = (int(rng.uniform(20, W - 20)), int(rng.uniform(20, H - 20)))
    axes = (int(rng.integers(2, 6)), int(rng.integers(2, 6)))
    cv2.ellipse(blob, c, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    soft = cv2.GaussianBlur(blob, (0, 0), 0.7)
    out = np.clip(img.astype(np.float32) - rng.uniform(20, 40) * soft + 0.5, 0, 255)
    return out.astype(np.uint8), (soft > 0.3).astype(np.uint8)


def make_long_parts(
    root: Path, seed: int, n_train: int = 60, n_good: int = 20, n_crack: int = 30, n_pit: int = 10
) -> Path:
    """Write the MVTec-layout category ``root/long_parts``; returns its folder."""
    rng = np.random.default_rng(seed)
    cat = root / "long_parts"

    def save(path: Path, arr: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), arr)

    for i in range(n_train):
        save(cat / "train" / "good" / f"{i:03d}.png", surface(rng))
    for i in range(n_good):
        save(cat / "test" / "good" / f"{i:03d}.png", surface(rng))
    for kind, n, make in (("crack", n_crack, crack), ("pit", n_pit, pit)):
        for i in range(n):
            img, mask = make(surface(rng), rng)
            save(cat / "test" / kind / f"{i:03d}.png", img)
            save(cat / "ground_truth" / kind / f"{i:03d}_mask.png", mask * 255)
    return cat


def crack_snr(size: tuple[int, int], seed: int, n: int = 16) -> float:
    """Median over ``n`` fresh cracked parts of the crack's SNR at working ``size`` (H, W).

    Known darkening (clean - cracked) and the clean part are scaled as the detectors
    scale images (INTER_AREA); SNR = median darkening on the scaled crack's strong
    pixels (> half its peak) / standard deviation of the scaled clean surface's
    detail (minus a Gaussian blur of sigma 3 working pixels)."""
    rng = np.random.default_rng(seed + 10_000)
    out = []
    for _ in range(n):
        clean = surface(rng)
        dark = clean.astype(np.float32) - crack(clean, rng)[0].astype(np.float32)
        d = cv2.resize(dark, size[::-1], interpolation=cv2.INTER_AREA)
        c = cv2.resize(clean, size[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
        detail = c - cv2.GaussianBlur(c, (0, 0), 3)
        out.append(float(np.median(d[d > 0.5 * d.max()]) / (detail.std() + 1e-6)))
    return float(np.median(out))


# ----------------------------------------------------------------------------- runs
def _speed(det, image: np.ndarray, repeats: int) -> float:
    """Median ms of ``det.predict([image])`` after one warm-up call."""
    det.predict([image])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        det.predict([image])
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def _config(method: str, area: int):
    from core.registry import make_config

    base = make_config(method, {}, "cpu")  # the CPU default (DRAEM: the compact preset)
    return dataclasses.replace(base, work_area=area)


def run_one(method: str, area: int, cat, images, args, tmp: Path) -> dict:
    """Train ``method`` at working area ``area``, evaluate, time; one result dict."""
    import torch

    from core.data.images import load_image
    from core.evaluate.inspect import evaluate_mvtec
    from core.evaluate.metrics import image_auroc_per_type, pixel_auroc
    from core.evaluate.operating_point import operating_point
    from core.registry import FitRequest, fit_detector, get_method

    load_before = os.getloadavg()[0]
    config = _config(method, area)
    steps = args.draem_steps if method == "draem" else args.flow_steps
    request = FitRequest(
        out_path=str(tmp / f"{method}_{area}.ckpt"),
        seed=args.seed,
        device="cpu",
        budget={"steps": steps},
    )
    t0 = time.perf_counter()
    det, result = fit_detector(method, images, config, request)
    fit_s = time.perf_counter() - t0
    work = tuple(int(s) for s in det.working_size(H, W))
    res = evaluate_mvtec(det, cat)
    maps = [p.anomaly_map for p in res.result.predictions]
    scores = [p.score for p in res.result.predictions]
    types = np.array(res.defect_types)
    per_type = image_auroc_per_type(res.labels, scores, list(types))
    cap = args.max_pixels
    pix = {}
    for kind in ["all", *DEFECTS]:
        keep = [i for i, t in enumerate(types) if kind == "all" or t in ("good", kind)]
        pix[kind] = pixel_auroc(
            [res.masks[i] for i in keep], [maps[i] for i in keep], max_pixels=cap
        )
    probe = next(t.path for t in cat.test if t.defect_type == "crack")
    torch.set_num_threads(args.threads)
    ms = _speed(det, load_image(probe), args.repeats)
    torch.set_num_threads(args.train_threads)
    ev = res.evaluation
    op = operating_point(res.labels, scores, det.thresholds.image, list(types))
    return {
        "method": method,
        "variant": get_method(method).variant(det.config),
        "work_area": area,
        "working_size": list(work),
        "scale": round(math.sqrt(work[0] * work[1] / (H * W)), 3),
        "crack_snr": round(crack_snr(work, args.seed), 2),
        "steps": result.steps if result is not None else 0,
        "fit_s": round(fit_s, 1),
        "image_auroc": round(ev.image_auroc, 4),
        "pixel_auroc": round(pix["all"], 4),
        "aupro": round(ev.aupro, 4),
        "image_auroc_per_type": {k: round(v, 3) for k, v in per_type.items()},
        "pixel_auroc_per_type": {k: round(pix[k], 3) for k in DEFECTS},
        # at the threshold training stored (calibrated on held-out good images)
        "false_alarms": f"{op.good.wrong}/{op.good.n}",
        "escapes": {k: f"{op.per_type[k].wrong}/{op.per_type[k].n}" for k in DEFECTS},
        "infer_ms": round(ms, 1),
        "threads": args.threads,
        "eval_ms_per_image": round(1000 * res.seconds_per_image, 1),
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def table(rows: list[dict]) -> str:
    """The runs as a markdown table."""
    head = (
        "| method | work_area | working size (H x W) | scale | crack SNR | steps | fit s "
        "| image AUROC | crack / pit image AUROC | pixel AUROC | crack / pit pixel AUROC "
        "| AUPRO | ms / image (batch 1) | false alarms | crack / pit escapes |\n|" + "---|" * 15
    )
    lines = [head]
    for r in rows:
        it, pt = r["image_auroc_per_type"], r["pixel_auroc_per_type"]
        lines.append(
            f"| {r['method']} ({r['variant']}) | {r['work_area']} | {r['working_size'][0]} x "
            f"{r['working_size'][1]} | {r['scale']} | {r['crack_snr']} | {r['steps']} | "
            f"{r['fit_s']:.0f} | {r['image_auroc']:.3f} | {it.get('crack', math.nan):.3f} / "
            f"{it.get('pit', math.nan):.3f} | {r['pixel_auroc']:.3f} | "
            f"{pt['crack']:.3f} / {pt['pit']:.3f} | {r['aupro']:.3f} | {r['infer_ms']:.0f} | "
            f"{r['false_alarms']} | {r['escapes']['crack']} / {r['escapes']['pit']} |"
        )
    return "\n".join(lines)


def _areas(text: str) -> list[int]:
    return [int(a) for a in text.split(",") if a.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--draem-areas", default="320,448,640")
    ap.add_argument("--flow-areas", default="256,384,512")
    ap.add_argument("--draem-steps", type=int, default=300)
    ap.add_argument("--flow-steps", type=int, default=200)
    ap.add_argument("--n-train", type=int, default=60)
    ap.add_argument("--n-good", type=int, default=20)
    ap.add_argument("--n-crack", type=int, default=30)
    ap.add_argument("--n-pit", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the timing")
    ap.add_argument("--train-threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--max-pixels", type=int, default=8_000_000, help="pixel AUROC sample cap")
    ap.add_argument("--keep", default=None, help="write the data set here and keep it")
    ap.add_argument("--snr-only", action="store_true", help="only the data and the crack SNR")
    args = ap.parse_args()

    import torch

    from core.data.geometry import scaled_size
    from core.data.images import load_image, read_mvtec

    torch.set_num_threads(args.train_threads)
    cv2.setNumThreads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cat_dir = make_long_parts(
            Path(args.keep or tmp), args.seed, args.n_train, args.n_good, args.n_crack, args.n_pit
        )
        cat = read_mvtec(cat_dir)
        print(
            f"generated {len(cat.train)} good / {len(cat.test)} test images ({H} x {W}) "
            f"in {time.perf_counter() - t0:.1f} s: {cat_dir}",
            flush=True,
        )
        snr = {}
        for a in (256, 320, 384, 448, 512, 640, 800):
            size = scaled_size(H, W, a, 16, enlarge=False)
            snr[a] = {"working_size": list(size), "snr": round(crack_snr(size, args.seed), 2)}
        print(json.dumps({"crack_snr_by_area": snr}), flush=True)
        if args.snr_only:
            return
        images = [load_image(p) for p in cat.train]
        grid = [("draem", a) for a in _areas(args.draem_areas)]
        grid += [("flow", a) for a in _areas(args.flow_areas)]
        for method, area in grid:
            row = run_one(method, area, cat, images, args, Path(tmp))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
