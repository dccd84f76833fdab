"""Score the demo test set with checkpoints, to compare two versions of the code.

Run it with each version's tree on ``sys.path`` (e.g. a ``git worktree`` of the older
commit) and compare the JSON files: identical scores and maps mean that checkpoints
written by the older version load and score exactly as before.

    python benchmarks/score_checkpoints.py A.pt [B.pt ...] OUT.json
"""

from __future__ import annotations

import json
import sys

import numpy as np

from core.data.images import load_image, read_mvtec
from core.demo import demo_root
from core.registry import load_detector


def main(argv: list[str]) -> int:
    *checkpoints, out = argv
    items = read_mvtec(demo_root()).test
    images = [load_image(it.path) for it in items]
    results = {}
    for path in checkpoints:
        det = load_detector(path, device="cpu")
        preds = det.predict(images)
        results[path] = {
            "scores": [p.score for p in preds],
            "map_sums": [float(p.anomaly_map.astype(np.float64).sum()) for p in preds],
            "image_threshold": det.thresholds.image,
        }
        print(f"{path}: {len(preds)} images scored")
    with open(out, "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
