"""Image I/O and command-line start-up costs.

Measures and prints:

* ``load_image`` throughput per format / bit depth / size on synthetic files written
  to a temporary folder (PNG 8-bit gray + RGB, PNG 16-bit, JPEG, BMP, TIFF 16-bit);
* ``load_images`` on real data (``--data``: an MVTec category or folder, read-only);
* ``read_mvtec`` listing time;
* ``import core`` and ``python main.py --help`` wall time (fresh interpreters).

Usage::

    flock /tmp/cpu.lock python benchmarks/bench_io.py [--data /work/shared/data/magnetic_tile]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.data.images import good_image_paths, is_mvtec, load_image, load_images, read_mvtec  # noqa: E402


def _files(folder: Path, size: tuple[int, int], n: int) -> dict[str, list[Path]]:
    rng = np.random.default_rng(0)
    h, w = size
    # smooth texture + noise: compresses like a real surface photo, not like white noise
    base = cv2.GaussianBlur(rng.normal(128, 40, (h, w)).astype(np.float32), (0, 0), 3)
    out: dict[str, list[Path]] = {}
    kinds = {
        "png gray 8": (".png", lambda g: g),
        "png rgb 8": (".png", lambda g: np.dstack([g, g // 2 + 40, 255 - g])),
        "png gray 16": (".png", lambda g: g.astype(np.uint16) * 257),
        "jpeg rgb q95": (".jpg", lambda g: np.dstack([g, g, g])),
        "bmp rgb": (".bmp", lambda g: np.dstack([g, g, g])),
        "tiff gray 16": (".tif", lambda g: g.astype(np.uint16) * 257),
    }
    for name, (ext, make) in kinds.items():
        paths = []
        for i in range(n):
            g = np.clip(base + rng.normal(0, 4, (h, w)), 0, 255).astype(np.uint8)
            p = folder / f"{name.replace(' ', '_')}_{i}{ext}"
            params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == ".jpg" else []
            cv2.imwrite(str(p), make(g), params)
            paths.append(p)
        out[name] = paths
    return out


def bench_formats(sizes: list[tuple[int, int]], n: int) -> None:
    print(f"load_image, synthetic files, median of {n} files (ms per image):")
    print(f"{'format':14s} " + " ".join(f"{h}x{w:<10}" for h, w in sizes))
    with tempfile.TemporaryDirectory() as tmp:
        rows: dict[str, list[float]] = {}
        for size in sizes:
            d = Path(tmp) / f"{size[0]}x{size[1]}"
            d.mkdir()
            for name, paths in _files(d, size, n).items():
                load_image(paths[0])  # warm the decoder
                times = []
                for p in paths:
                    t0 = time.perf_counter()
                    img = load_image(p)
                    times.append(time.perf_counter() - t0)
                assert img.shape == (*size, 3) and img.dtype == np.uint8
                rows.setdefault(name, []).append(statistics.median(times) * 1e3)
        for name, ms in rows.items():
            print(f"{name:14s} " + " ".join(f"{v:<14.2f}" for v in ms))


def bench_real(data: Path) -> None:
    t0 = time.perf_counter()
    if is_mvtec(data):
        cat = read_mvtec(data)
        dt = time.perf_counter() - t0
        print(
            f"read_mvtec({data}): {len(cat.train)} train, {len(cat.test)} test in {dt * 1e3:.0f} ms"
        )
    paths = good_image_paths(data)
    t0 = time.perf_counter()
    loaded, failed = load_images(paths)
    dt = time.perf_counter() - t0
    sizes = sorted({img.shape[:2] for _, img in loaded})
    print(
        f"load_images: {len(loaded)} good images ({len(failed)} failed), sizes {sizes[0]}..{sizes[-1]}: "
        f"{dt:.2f} s = {dt / max(1, len(loaded)) * 1e3:.2f} ms/image"
    )


def bench_startup(repeat: int) -> None:
    for label, cmd in (
        ("import core", [sys.executable, "-c", "import core"]),
        ("python main.py --help", [sys.executable, str(ROOT / "main.py"), "--help"]),
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
    ):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        print(f"{label:28s} median {statistics.median(times) * 1e3:.0f} ms over {repeat} runs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="real data (read-only) for load_images")
    ap.add_argument("--n", type=int, default=20, help="files per format and size")
    ap.add_argument("--repeat", type=int, default=5, help="start-up runs")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    bench_formats([(256, 256), (1024, 1024), (2048, 2448)], args.n)
    if args.data:
        bench_real(args.data)
    bench_startup(args.repeat)


if __name__ == "__main__":
    main()
