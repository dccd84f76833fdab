"""Fast PatchCore probe for exploring feature settings (the PatchCore exploration table in docs).

The committed ``PatchEmbedder`` with ``PatchCoreConfig`` overrides, every
``train_stride``-th training image, a ``ratio`` fast-greedy coreset (128-d projection),
exact nearest-neighbour search, image score = maximum of the sigma-4 map (no
reweighting), every ``test_stride``-th test image.  Prints image / pixel AUROC overall
and per defect type (pixel AUROC on 4,000 random pixels per image).  Comparable between
its own runs, not with ``bench_patchcore.py`` (which runs the full method).

Run:  flock /tmp/cpu.lock python benchmarks/patchcore_probe.py resolution=256 'stages=[16,32]'
Extra keys: train_stride (2), test_stride (2), ratio (0.02), norm (none|std: each image
standardised to mean 128, std 40 before the backbone), data (../shared/data/magnetic_tile),
flips (1: the bank also holds the patches of every good image's three mirrors), knn (patch
score = mean distance to the knn nearest bank items; 1), squash (1: every image resized to
resolution x resolution, aspect ratio not kept, as the issue's first probe).
Values are JSON (strings in double quotes: 'backbone="timm:efficientnet_lite2"').
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:
    import cv2
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from core.data.geometry import standardise
    from core.data.images import load_image, load_mask, read_mvtec
    from core.models.patchcore.coreset import fast_greedy_coreset, projection_matrix
    from core.models.patchcore.detector import (
        PatchCoreConfig,
        PatchEmbedder,
        _smooth_map,
        working_size,
    )

    args = dict(a.split("=", 1) for a in argv)
    train_stride = int(args.pop("train_stride", 2))
    test_stride = int(args.pop("test_stride", 2))
    ratio = float(args.pop("ratio", 0.02))
    norm = args.pop("norm", "none")
    flips = args.pop("flips", "0") == "1"
    knn = int(args.pop("knn", 1))
    squash = args.pop("squash", "0") == "1"
    data = args.pop("data", str(ROOT.parent / "shared" / "data" / "magnetic_tile"))
    over = {k: json.loads(v) for k, v in args.items()}
    cfg = PatchCoreConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in over.items()})
    cat = read_mvtec(data)
    emb = PatchEmbedder(cfg)

    def prep(img: np.ndarray) -> np.ndarray:
        if squash:  # the first probe: every image resized to resolution^2
            img = cv2.resize(img, (cfg.resolution, cfg.resolution), interpolation=cv2.INTER_AREA)
        return standardise(img) if norm == "std" else img

    t0 = time.perf_counter()
    views = ((), (1,), (0,), (0, 1)) if flips else ((),)  # mirrors of every good image
    rows = []
    for p in cat.train[::train_stride]:
        img = prep(load_image(p))
        rows += [emb([np.ascontiguousarray(np.flip(img, v))])[0] for v in views]
    x = torch.cat([e.reshape(-1, e.shape[-1]) for e in rows])
    t1 = time.perf_counter()
    k = max(1, int(ratio * x.shape[0]))
    picks = fast_greedy_coreset(x @ projection_matrix(x.shape[1], 128, 0), k, projection_dim=None)
    bank = x[torch.from_numpy(picks.indices)]
    t2 = time.perf_counter()
    rng = np.random.default_rng(0)
    scores, labels, types, pix = [], [], [], {"s": [], "l": [], "t": []}
    for item in cat.test[::test_stride]:
        img = load_image(item.path)
        small = prep(img)
        e = emb([small])[0]
        dist = torch.cdist(e.reshape(-1, e.shape[-1]), bank)
        d = dist.topk(knn, dim=1, largest=False).values.mean(1).reshape(e.shape[:2])
        size = working_size(small.shape[0], small.shape[1], cfg)
        amap = _smooth_map(d.numpy(), size, img.shape[:2], cfg.sigma)
        scores.append(float(amap.max()))
        labels.append(int(item.is_anomalous))
        types.append(item.defect_type)
        mask = (
            load_mask(item.mask_path, img.shape[:2])
            if item.mask_path
            else np.zeros(img.shape[:2], bool)
        )
        idx = rng.choice(amap.size, min(amap.size, 4000), replace=False)
        pix["s"].append(amap.ravel()[idx])
        pix["l"].append(mask.ravel()[idx] > 0)
        pix["t"].append(np.full(len(idx), item.defect_type))
    t3 = time.perf_counter()
    s, y, t = np.array(scores), np.array(labels), np.array(types)
    ps, pl, pt = (np.concatenate(pix[key]) for key in ("s", "l", "t"))
    kinds = sorted(set(types) - {"good"})
    img_per = {
        c: round(roc_auc_score(y[(t == c) | (y == 0)], s[(t == c) | (y == 0)]), 3) for c in kinds
    }
    sel = {c: (pt == c) | (pt == "good") for c in kinds}
    px_per = {c: round(roc_auc_score(pl[sel[c]], ps[sel[c]]), 3) for c in kinds}
    print(
        f"{argv} dim {x.shape[1]}, {x.shape[0]} patches, bank {k} | image AUROC "
        f"{roc_auc_score(y, s):.3f} pixel AUROC {roc_auc_score(pl, ps):.3f}\n"
        f"  image AUROC per type {img_per}\n  pixel AUROC per type {px_per}\n"
        f"  features {t1 - t0:.0f} s, coreset {t2 - t1:.0f} s, test {t3 - t2:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
