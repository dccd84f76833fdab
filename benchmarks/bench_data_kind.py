"""Colour objects vs the three methods, and the data-kind rule on three data sets.

Usage (wrap in ``flock /tmp/cpu.lock nice -n 5`` on a shared machine)::

    python benchmarks/bench_data_kind.py                      # all of it, ~6 min of CPU
    python benchmarks/bench_data_kind.py --methods patchcore  # one method
    python benchmarks/bench_data_kind.py --strength 0.4       # subtler defects
    python benchmarks/bench_data_kind.py --kind-only          # only the data-kind rule

1. Generates a small colour-object set in MVTec layout under a temporary folder: a
   lightly textured, coloured cap-like disc (a body, a rim ring, a printed mark) centred
   on a plain background, with small pose (shift, rotation, scale) and lighting jitter.
   Test defects: ``scratch`` (a thin dark or bright stroke), ``missing`` (a chunk bitten
   out of the rim, background showing), ``spot`` (a blob of another colour); each with
   its ground-truth mask.  Everything derives from ``--seed``.
2. Fits PatchCore, trains compact DRAEM (``--draem-steps``) and the flow
   (``--flow-steps``) on it through :func:`core.registry.fit_detector` (each method's
   CPU default config) and evaluates them with :func:`core.evaluate.inspect.evaluate_mvtec`,
   printing image / pixel AUROC per method.
3. Runs the data-kind rule (:func:`core.data.kind.data_kind`) on the generated set,
   on magnetic_tile (``--tile``) and on the demo set, printing the decided kind and the
   method the registry proposes for it.

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

SIZE = 160
DEFECTS = ("scratch", "missing", "spot")
BACKGROUND = (214, 214, 208)  # a plain light plate


def _object(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One good (SIZE, SIZE, 3) uint8 RGB image and its object mask (SIZE, SIZE) uint8 {0, 1}."""
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = BACKGROUND
    img += rng.normal(0, 1.0, img.shape)  # sensor noise on the plate
    cx, cy = SIZE / 2 + rng.uniform(-4, 4, 2)
    r = SIZE * 0.33 * rng.uniform(0.97, 1.03)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    d = np.hypot(xx - cx, yy - cy)
    body = (d <= r).astype(np.float32)
    body = cv2.GaussianBlur(body, (3, 3), 0)  # anti-aliased silhouette
    hue_shift = rng.uniform(-6, 6)
    base = np.array([196 + hue_shift, 92, 44], np.float32)  # an orange-brown cap
    texture = cv2.GaussianBlur(rng.normal(0, 6, (SIZE, SIZE)).astype(np.float32), (0, 0), 1.5)
    shade = 1.0 - 0.25 * (d / r) ** 2  # domed: darker towards the rim
    obj = base[None, None] * shade[..., None] + texture[..., None]
    rim = np.abs(d - 0.8 * r) < 0.05 * r  # a moulded ring
    obj[rim] *= 0.72
    angle = rng.uniform(0, 2 * np.pi)  # a printed mark that turns with the cap
    mx, my = cx + 0.45 * r * np.cos(angle), cy + 0.45 * r * np.sin(angle)
    mark = np.hypot(xx - mx, yy - my) < 0.12 * r
    obj[mark] = obj[mark] * 0.4 + np.array([250, 235, 200], np.float32) * 0.6
    img = img * (1 - body[..., None]) + obj * body[..., None]
    img *= rng.uniform(0.93, 1.07)  # lighting
    out = np.clip(img, 0, 255).astype(np.uint8)
    return out, (d <= r).astype(np.uint8)


def _defect(
    img: np.ndarray, obj: np.ndarray, kind: str, rng, strength: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``img`` with one defect of ``kind`` on the object; returns (image, mask {0, 1}).
    ``strength`` (0, 1] scales its contrast (scratch, spot) and size (chunk, spot)."""
    out = img.copy()
    mask = np.zeros(obj.shape, np.uint8)
    ys, xs = np.nonzero(obj)
    cy, cx, r = ys.mean(), xs.mean(), np.sqrt(obj.sum() / np.pi)
    if kind == "scratch":
        a = rng.uniform(0, np.pi)
        length = rng.uniform(0.6, 1.1) * r
        ox, oy = cx + rng.uniform(-0.3, 0.3) * r, cy + rng.uniform(-0.3, 0.3) * r
        p0 = (int(ox - length / 2 * np.cos(a)), int(oy - length / 2 * np.sin(a)))
        p1 = (int(ox + length / 2 * np.cos(a)), int(oy + length / 2 * np.sin(a)))
        cv2.line(mask, p0, p1, 1, int(rng.integers(1, 3)))
        mask &= obj
        tone = 40 if rng.random() < 0.5 else 235
        a = 0.7 * strength
        out[mask > 0] = ((1 - a) * out[mask > 0] + a * tone).astype(np.uint8)
    elif kind == "missing":
        a = rng.uniform(0, 2 * np.pi)
        bx, by = cx + r * np.cos(a), cy + r * np.sin(a)
        bite = np.zeros_like(mask)
        cv2.circle(
            bite,
            (int(bx), int(by)),
            int(rng.uniform(0.18, 0.28) * (0.5 + 0.5 * strength) * r),
            1,
            -1,
        )
        mask = bite & obj
        out[mask > 0] = BACKGROUND
    else:  # a colour spot
        spot = np.zeros(mask.shape, np.float32)
        px, py = cx + rng.uniform(-0.5, 0.5) * r, cy + rng.uniform(-0.5, 0.5) * r
        side = (0.5 + 0.5 * strength) * r
        axes = (
            max(1, int(rng.uniform(0.08, 0.16) * side)),
            max(1, int(rng.uniform(0.08, 0.16) * side)),
        )
        cv2.ellipse(spot, (int(px), int(py)), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        colour = np.array([[60, 150, 70], [70, 90, 190], [150, 60, 150]][int(rng.integers(3))])
        blend = cv2.GaussianBlur(spot, (3, 3), 0)[..., None] * 0.85 * strength
        out = np.clip(out * (1 - blend) + colour * blend, 0, 255).astype(np.uint8)
        mask = ((spot > 0) & (obj > 0)).astype(np.uint8)
    return out, mask


def make_object_set(
    root: Path, seed: int, n_train: int, n_test_good: int, n_defect: int, strength: float = 1.0
) -> Path:
    """Write the colour-object set in MVTec layout under ``root``; returns the category folder."""
    rng = np.random.default_rng(seed)
    cat = root / "colour_caps"

    def save(path: Path, rgb: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rgb[..., ::-1] if rgb.ndim == 3 else rgb)

    for i in range(n_train):
        save(cat / "train" / "good" / f"{i:03d}.png", _object(rng)[0])
    for i in range(n_test_good):
        save(cat / "test" / "good" / f"{i:03d}.png", _object(rng)[0])
    for kind in DEFECTS:
        for i in range(n_defect):
            img, obj = _object(rng)
            bad, mask = _defect(img, obj, kind, rng, strength)
            save(cat / "test" / kind / f"{i:03d}.png", bad)
            save(cat / "ground_truth" / kind / f"{i:03d}_mask.png", mask * 255)
    return cat


def _first_good(root: Path, n: int = 16) -> list[np.ndarray]:
    from core.data.images import good_image_paths, load_image

    return [load_image(p) for p in good_image_paths(root)[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="patchcore,draem,flow")
    ap.add_argument("--draem-steps", type=int, default=300)
    ap.add_argument("--flow-steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=40)
    ap.add_argument("--n-test-good", type=int, default=15)
    ap.add_argument("--n-defect", type=int, default=10, help="test images per defect type")
    ap.add_argument("--tile", default="/work/shared/data/magnetic_tile")
    ap.add_argument(
        "--strength", type=float, default=1.0, help="defect contrast / size, (0, 1]; 0.4: subtle"
    )
    ap.add_argument("--kind-only", action="store_true")
    ap.add_argument("--keep", default=None, help="write the generated set here instead")
    args = ap.parse_args()

    from core.data.images import load_image, read_mvtec
    from core.data.kind import data_kind
    from core.demo import demo_root
    from core.evaluate.inspect import evaluate_mvtec
    from core.evaluate.metrics import image_auroc_per_type
    from core.registry import FitRequest, fit_detector, get_method, propose_method

    out: dict = {"seed": args.seed, "size": SIZE, "strength": args.strength}
    with tempfile.TemporaryDirectory() as tmp:
        cat_dir = make_object_set(
            Path(args.keep or tmp),
            args.seed,
            args.n_train,
            args.n_test_good,
            args.n_defect,
            args.strength,
        )
        cat = read_mvtec(cat_dir)
        print(f"generated {len(cat.train)} good / {len(cat.test)} test images in {cat_dir}")
        sets = {"colour_caps": cat_dir, "magnetic_tile": Path(args.tile), "demo": demo_root()}
        for name, root in sets.items():
            if not root.is_dir():
                print(f"{name}: {root} not found, skipped")
                continue
            kind = data_kind(_first_good(root))
            method, _ = propose_method(kind.kind)
            out[f"kind_{name}"] = {"kind": kind.label, "objects": kind.objects, "of": kind.sampled}
            print(f"{name}: {kind.label} ({kind.reason}) -> proposed {method}", flush=True)
        if args.kind_only:
            print(json.dumps(out))
            return
        images = [load_image(p) for p in cat.train]
        budgets = {"draem": {"steps": args.draem_steps}, "flow": {"steps": args.flow_steps}}
        for method in [m for m in args.methods.split(",") if m]:
            spec = get_method(method)
            request = FitRequest(
                out_path=str(Path(tmp) / f"{method}.ckpt"),
                seed=args.seed,
                device="cpu",
                budget=budgets.get(method, {}),
            )
            t0 = time.perf_counter()
            det, result = fit_detector(method, images, None, request)
            fit_s = time.perf_counter() - t0
            res = evaluate_mvtec(det, cat)
            ev = res.evaluation
            scores = [p.score for p in res.result.predictions]
            per_type = image_auroc_per_type(res.labels, scores, list(res.defect_types))
            steps = result.steps if result is not None else 0
            out[method] = {
                "variant": spec.variant(det.config),
                "steps": steps,
                "fit_s": round(fit_s, 1),
                "image_auroc": round(ev.image_auroc, 4),
                "pixel_auroc": round(ev.pixel_auroc, 4),
                "per_type": {k: round(v, 3) for k, v in per_type.items()},
            }
            print(
                f"{spec.title} ({spec.variant(det.config)}, {steps} steps, fit {fit_s:.0f} s): "
                f"image AUROC {ev.image_auroc:.3f}, pixel AUROC {ev.pixel_auroc:.3f}, "
                f"per type {out[method]['per_type']}",
                flush=True,
            )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
