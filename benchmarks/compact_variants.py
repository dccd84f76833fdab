"""Compact-preset variants on an MVTec-layout data set (issue 5 exploration).

Trains the compact preset through the CLI (``main.py train``) with one variant, then
evaluates every test image and prints the metrics, the image AUROC of other image
scores computed on the same maps (plain maximum, k x k mean filter at the original
size) and the image AUROC per defect type.

Variants (``key=value`` arguments):
  trainable_from=N   unfreeze EfficientNet-Lite0 ``blocks[i]`` for i >= N (5 = frozen,
                     the preset; 3 or 4 = partial fine-tuning)
  width=W            head width (``ModelConfig.disc_width``; the preset: 32)
  seed=S             training seed (default 0)

Run:  flock /tmp/cpu.lock python benchmarks/compact_variants.py NAME MINUTES [key=value ...]
      [--data DIR] [--source DIR]   (default: ../shared/data/magnetic_tile, anomaly_source)
Writes the checkpoint to /tmp/compact_variants/NAME.pt.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def run(argv: list[str]) -> int:
    import cv2
    import numpy as np

    args = list(argv)
    data, source = str(SHARED / "magnetic_tile"), str(SHARED / "anomaly_source")
    for flag in ("--data", "--source"):
        if flag in args:
            i = args.index(flag)
            value = args[i + 1]
            del args[i : i + 2]
            data, source = (value, source) if flag == "--data" else (data, value)
    name, minutes = args[0], args[1]
    kw = dict(a.split("=", 1) for a in args[2:])

    import core.compact as cc

    frozen_from = int(kw.get("trainable_from", 5))
    original_init = cc.CompactEncoder.__init__

    def init(self, trainable_from: int = frozen_from) -> None:
        original_init(self, trainable_from)

    cc.CompactEncoder.__init__ = init  # the trainer builds the network in this process
    if "width" in kw:
        import dataclasses

        import core.config as config

        preset = config.model_preset

        def wide(name: str):
            mc = preset(name)
            return dataclasses.replace(mc, disc_width=int(kw["width"])) if name == "compact" else mc

        config.model_preset = wide  # core.cli imports it at call time
    from core.cli import main
    from core.detectors import load_detector
    from core.images import read_mvtec
    from core.inspect import evaluate_mvtec
    from core.metrics import image_auroc

    out = Path("/tmp/compact_variants")
    out.mkdir(parents=True, exist_ok=True)
    ckpt = str(out / f"{name}.pt")
    t0 = time.time()
    cmd = ["train", "--data", data, "--out", ckpt, "--preset", "compact", "--minutes", minutes]
    cmd += ["--seed", kw.get("seed", "0")]
    cmd += ["--anomaly-source", source] if source != "builtin" else []
    rc = main(cmd)
    print(f"train rc {rc} in {time.time() - t0:.0f} s", flush=True)
    if rc:
        return rc
    ev = evaluate_mvtec(load_detector(ckpt), read_mvtec(data))
    e, preds = ev.evaluation, ev.result.predictions
    labels, types = np.array(ev.labels), np.array(ev.defect_types)

    def auroc(scores) -> float:
        return round(image_auroc(labels, np.asarray(scores)), 3)

    alt = {"max": auroc([p.anomaly_map.max() for p in preds])}
    for k in (5, 9, 21):
        alt[f"mean{k}"] = auroc(
            [cv2.blur(p.anomaly_map.astype(np.float32), (k, k)).max() for p in preds]
        )
    sc = np.array([p.score for p in preds])
    per = {
        t: round(
            image_auroc(labels[(types == t) | (labels == 0)], sc[(types == t) | (labels == 0)]), 3
        )
        for t in sorted(set(types) - {"good"})
    }
    print(
        f"RESULT {name} {minutes} min {kw} | image AUROC {e.image_auroc:.3f} pixel AUROC "
        f"{e.pixel_auroc:.3f} pixel AP {e.pixel_ap:.3f} AUPRO {e.aupro:.3f} | other scores "
        f"{alt} | per type {per}",
        flush=True,
    )
    return 0


if __name__ == "__main__":  # the simulator's fork-server workers import this module
    raise SystemExit(run(sys.argv[1:]))
