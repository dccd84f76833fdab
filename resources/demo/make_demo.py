"""Generate the bundled demo data set (MVTec AD layout) from a CC0 texture.

Source: ``skimage.data.brick()`` (512 x 512 grayscale), which scikit-image
ships under CC0 (originally "Bricks25" from cc0textures.com).  The texture is
upscaled by 1.25; crops for ``train/good`` and for ``test/*`` are cut at
independent random places of the whole texture, like new parts of one product:
the same brick pattern, never the same crop.  (Training on one column band and
testing on another made every good test image a part of another kind: a model
trained to convergence called them all defective.)  Every crop gets a random
flip and a mild brightness / contrast / noise jitter ("camera variation").  Test
defects are drawn with OpenCV:

* ``scratch``: a thin bright or dark curved line (1-2 px);
* ``crack``: a dark jagged random-walk line with a branch (2-3 px);
* ``stain``: an irregular dark blotch with soft edges.

Masks (``ground_truth/<type>/<name>_mask.png``, 0/255) mark the pixels the
drawing changed noticeably.  Everything is seeded: running this script again
reproduces the same files bit for bit.

Usage::

    python resources/demo/make_demo.py [--out resources/demo/brick] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2
import numpy as np

CROP_HW = (240, 256)  # (H, W): slightly non-square, like real line-scan crops
N_TRAIN = 80
N_TEST_GOOD = 9
N_PER_DEFECT = 7
DEFECTS = ("scratch", "crack", "stain")
SCALE = 1.25
TRAIN_COLS = (0, 640)  # column band of the upscaled (640 x 640) texture crops come from
TEST_COLS = (0, 640)


def source_texture() -> np.ndarray:
    """The CC0 brick texture upscaled by :data:`SCALE`: (640, 640) uint8."""
    from skimage import data

    brick = data.brick()
    h, w = brick.shape
    return cv2.resize(brick, (round(w * SCALE), round(h * SCALE)), interpolation=cv2.INTER_CUBIC)


def random_crop(tex: np.ndarray, cols: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A jittered (H, W) uint8 crop from the column band ``cols`` of ``tex``."""
    h, w = CROP_HW
    y = int(rng.integers(0, tex.shape[0] - h + 1))
    x = int(rng.integers(cols[0], cols[1] - w + 1))
    crop = tex[y : y + h, x : x + w].astype(np.float32)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1, :]
    gain = rng.uniform(0.92, 1.08)
    offset = rng.uniform(-8, 8)
    crop = (crop - 128.0) * gain + 128.0 + offset + rng.normal(0, 2.0, crop.shape)
    return np.clip(np.rint(crop), 0, 255).astype(np.uint8)


def _bezier(p0, p1, p2, n: int = 64) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return ((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2).astype(np.float32)


def draw_scratch(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a thin curved bright/dark line in place; return the changed-pixel mask."""
    h, w = img.shape
    p0 = np.array([rng.uniform(20, w - 20), rng.uniform(20, h - 20)])
    ang = rng.uniform(0, np.pi)
    length = rng.uniform(80, 170)
    p2 = np.clip(p0 + length * np.array([np.cos(ang), np.sin(ang)]), 5, [w - 5, h - 5])
    mid = (p0 + p2) / 2 + rng.normal(0, 15, 2)
    pts = (_bezier(p0, mid, p2) * 16).astype(np.int32)  # 4 fractional bits
    layer = np.zeros((h, w), np.uint8)
    cv2.polylines(layer, [pts], False, 255, int(rng.integers(1, 3)), cv2.LINE_AA, shift=4)
    alpha = layer.astype(np.float32) / 255.0
    value = 235.0 if rng.random() < 0.5 else 30.0
    out = img.astype(np.float32) * (1 - alpha) + value * alpha
    img[:] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return (alpha > 0.25).astype(np.uint8)


def draw_crack(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a dark jagged random-walk line with one branch; return its mask."""
    h, w = img.shape
    layer = np.zeros((h, w), np.uint8)

    def walk(start: np.ndarray, heading: float, steps: int) -> np.ndarray:
        pts = [start]
        for _ in range(steps):
            heading += rng.normal(0, 0.35)
            pts.append(pts[-1] + rng.uniform(4, 9) * np.array([np.cos(heading), np.sin(heading)]))
        return np.clip(np.array(pts), 2, [w - 3, h - 3])

    start = np.array([rng.uniform(40, w - 40), rng.uniform(40, h - 40)])
    heading = rng.uniform(0, 2 * np.pi)
    main = walk(start, heading, int(rng.integers(12, 20)))
    branch = walk(main[len(main) // 2], heading + rng.choice([-1, 1]) * rng.uniform(0.6, 1.2), 6)
    for pts, thick in ((main, int(rng.integers(2, 4))), (branch, 2)):
        cv2.polylines(layer, [(pts * 16).astype(np.int32)], False, 255, thick, cv2.LINE_AA, shift=4)
    alpha = layer.astype(np.float32) / 255.0
    out = img.astype(np.float32) * (1 - 0.85 * alpha)
    img[:] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return (alpha > 0.25).astype(np.uint8)


def draw_stain(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darken an irregular soft-edged blotch; return its mask."""
    h, w = img.shape
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6)
    noise /= np.abs(noise).max() + 1e-6
    cy, cx = rng.uniform(50, h - 50), rng.uniform(50, w - 50)
    ry, rx = rng.uniform(14, 35), rng.uniform(14, 35)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = 1.0 - np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) + 0.5 * noise
    strength = np.clip(field * 2.5, 0, 1)
    strength = cv2.GaussianBlur(strength, (0, 0), 2)
    darken = rng.uniform(0.45, 0.65)
    out = img.astype(np.float32) * (1 - (1 - darken) * strength)
    img[:] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return (strength > 0.3).astype(np.uint8)


DRAW = {"scratch": draw_scratch, "crack": draw_crack, "stain": draw_stain}


def _save(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    buf.tofile(path)


def make_demo(out: Path, seed: int = 0) -> dict[str, int]:
    """Write the data set under ``out`` (replacing it); return file counts per folder."""
    if out.exists():
        shutil.rmtree(out)
    rng = np.random.default_rng(seed)
    tex = source_texture()
    counts: dict[str, int] = {}
    for i in range(N_TRAIN):
        _save(out / "train" / "good" / f"{i:03d}.png", random_crop(tex, TRAIN_COLS, rng))
    counts["train/good"] = N_TRAIN
    for i in range(N_TEST_GOOD):
        _save(out / "test" / "good" / f"{i:03d}.png", random_crop(tex, TEST_COLS, rng))
    counts["test/good"] = N_TEST_GOOD
    for kind in DEFECTS:
        for i in range(N_PER_DEFECT):
            img = random_crop(tex, TEST_COLS, rng)
            mask = DRAW[kind](img, rng)
            _save(out / "test" / kind / f"{i:03d}.png", img)
            _save(out / "ground_truth" / kind / f"{i:03d}_mask.png", mask * 255)
        counts[f"test/{kind}"] = N_PER_DEFECT
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "brick")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    counts = make_demo(args.out, args.seed)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    for k, v in counts.items():
        print(f"{k:15s} {v:4d} images")
    print(f"wrote {args.out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
