"""Benchmark: HDF5 export/read throughput and metric speed on a real MVTec-layout category.

Usage::

    flock /tmp/cpu.lock python benchmarks/bench_export.py [--data /path/to/category] [--repeat 3]

Loads every test image (and ground-truth mask) of the category with ``core.data.images``.  The
anomaly maps are *synthetic stand-ins* (blurred ground truth + seeded noise), because this
benchmark measures I/O and metric cost, not detection quality; the reconstruction is a copy of
the image so the file holds as much data as a DRAEM export.  Prints what it measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import Thresholds  # noqa: E402
from core.data.images import load_image, load_mask, read_mvtec  # noqa: E402
from core.evaluate.metrics import evaluate  # noqa: E402
from core.evaluate.thresholds import from_good_scores, pixel_from_good_maps  # noqa: E402
from core.io.export import ExportRecord, export_batch, read_batch  # noqa: E402
from core.types import Prediction  # noqa: E402


def _records(root: Path) -> list[ExportRecord]:
    cat = read_mvtec(root)
    rng = np.random.default_rng(0)
    out = []
    for item in cat.test:
        img = load_image(item.path)
        h, w = img.shape[:2]
        if item.mask_path is not None:
            gt = load_mask(item.mask_path, shape=(h, w))
        else:
            gt = np.zeros((h, w), np.uint8) if not item.is_anomalous else None
        base = np.zeros((h, w), np.float32) if gt is None else gt.astype(np.float32)
        amap = cv2.GaussianBlur(base, (0, 0), 3) + rng.normal(0.15, 0.1, (h, w))
        amap = np.clip(amap, 0, 1).astype(np.float32)
        score = float(cv2.blur(amap, (21, 21)).max())
        out.append(
            ExportRecord(
                path=str(item.path),
                image=img,
                anomaly_map=amap,
                score=score,
                label=int(item.is_anomalous),
                gt_mask=gt,
                reconstruction=img.copy(),
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/shared/data/magnetic_tile")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    recs = _records(Path(args.data))
    n = len(recs)
    pixels = sum(r.anomaly_map.size for r in recs)
    raw = sum(r.image.nbytes + r.anomaly_map.nbytes + 2 * r.anomaly_map.size for r in recs)
    raw += sum(r.reconstruction.nbytes for r in recs if r.reconstruction is not None)
    print(
        f"data: {args.data}: {n} test images, {pixels / 1e6:.2f} Mpixel, "
        f"loaded in {time.perf_counter() - t0:.1f} s"
    )

    good = [r for r in recs if r.label == 0]
    th_img = from_good_scores([r.score for r in good])
    th_px = pixel_from_good_maps([r.anomaly_map for r in good])
    th = Thresholds(image=th_img.value, pixel=th_px.value, source=th_img.detail)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "batch.h5")
        w_times, r_times = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            export_batch(
                path,
                recs,
                thresholds=th,
                method="draem",
                model_config={},
                checkpoint_sha256="0" * 64,
            )
            w_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            back = read_batch(path)
            r_times.append(time.perf_counter() - t)
            assert len(back.records) == n
        size = os.path.getsize(path)
    w, r = statistics.median(w_times), statistics.median(r_times)
    print(
        f"export: {w:.2f} s median of {args.repeat} ({n / w:.0f} images/s, "
        f"{raw / w / 1e6:.0f} MB/s of uncompressed data)"
    )
    print(f"read_batch: {r:.2f} s median ({n / r:.0f} images/s)")
    print(
        f"file: {size / 1e6:.1f} MB for {raw / 1e6:.1f} MB uncompressed "
        f"(ratio {raw / size:.2f}; maps are noisy float32 stand-ins)"
    )

    preds = [Prediction(r.anomaly_map, r.score) for r in recs]
    labels = np.array([r.label for r in recs])
    masks = [r.gt_mask for r in recs]
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        ev = evaluate(preds, labels, masks)
        times.append(time.perf_counter() - t)
    print(
        f"evaluate (image+pixel AUROC/AP, AUPRO@0.3, F1-max) on {pixels / 1e6:.2f} Mpixel: "
        f"{statistics.median(times):.2f} s median; n_pixel_images={ev.n_pixel_images}, "
        f"pixel_auroc={ev.pixel_auroc:.4f}, aupro={ev.aupro:.4f}"
    )
    tracemalloc.start()
    evaluate(preds, labels, masks)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"evaluate peak extra memory (tracemalloc): {peak / 1e6:.0f} MB "
        f"(the maps themselves: {pixels * 4 / 1e6:.0f} MB)"
    )


if __name__ == "__main__":
    main()
