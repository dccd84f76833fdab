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
  context=1          image-level context in the head (see ``_global_context``)
  p_anom=P           = sim.anomaly_probability=P (the preset: 0.5, [official]'s)
  recon=1            a reconstructive branch in feature space (see ``_feature_reconstruction``)
  mix=a,b,c,d,e      anomaly-kind weights (texture, intensity, line, spot, band; the
                     preset 1,1,1,1,0)
  norm=std|none      each image standardised or not (``ModelConfig.standardise``; the
                     preset: std since session 4)
  sim.FIELD=V        a ``SimulatorConfig`` field (e.g. sim.beta_max=0.95, sim.perlin_scale_min=2)
  edge=P             crops snapped to the image's first/last position per axis with
                     probability P (``random_crop``'s ``edge_prob``; the preset: 0)
  fg=0|1             foreground masks off / on (the preset: ``uses_foreground`` decides)

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


def _global_context(cc) -> None:
    """Patch ``CompactHead`` with image-level context (DeepLabv3-style): the stride-16
    features' global mean, projected and added everywhere, so that a region can be
    judged against the whole image (measured in session 3: no gain, not adopted)."""
    from torch import nn

    class AddGlobal(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.proj = nn.Sequential(nn.Conv2d(width, width, 1), nn.ReLU(inplace=True))

        def forward(self, x):
            return x + self.proj(x.mean((2, 3), keepdim=True))

    init = cc.CompactHead.__init__

    def new_init(self, width: int = 64) -> None:
        init(self, width)
        self.lat16 = nn.Sequential(self.lat16, AddGlobal(width))

    cc.CompactHead.__init__ = new_init


def _feature_reconstruction(cc) -> None:
    """Patch ``CompactDraem`` with a DRAEM-style reconstructive branch in feature space.

    A small bottleneck network (stride 16 -> 32 -> 16 / 8) predicts the *clean* image's
    stride-8 and stride-16 encoder features from the (corrupted) input's; the head sees
    the features and their absolute difference to the reconstruction ([paper]'s
    discriminative input, input + reconstruction, moved to feature space).  Trained
    jointly: the loss adds the relative L2 to the clean image's features.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Recon(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Sequential(cc._cbr(112, 64), nn.MaxPool2d(2), cc._cbr(64, 64))
            self.up16 = nn.Sequential(cc._cbr(64, 64), nn.Conv2d(64, 112, 1))
            self.up8 = nn.Sequential(cc._cbr(64, 64), nn.Conv2d(64, 40, 1))

        def forward(self, f8, f16):
            z = self.down(f16)
            z16 = F.interpolate(z, size=f16.shape[-2:], mode="bilinear", align_corners=False)
            z8 = F.interpolate(z, size=f8.shape[-2:], mode="bilinear", align_corners=False)
            return self.up8(z8), self.up16(z16)

    init, head_forward = cc.CompactHead.__init__, cc.CompactHead.forward

    def new_init(self, width: int = 64) -> None:
        init(self, width)
        self.recon = Recon()
        self.lat16 = cc._cbr(224, width, 1)  # features + |features - reconstruction|
        self.lat8 = cc._cbr(80, width, 1)

    def forward(self, f2, f4, f8, f16):
        r8, r16 = self.recon(f8, f16)
        if torch.is_grad_enabled():  # training: the loss takes it (and drops it)
            self._rec = (r8, r16)
        f8, f16 = torch.cat([f8, (f8 - r8).abs()], 1), torch.cat([f16, (f16 - r16).abs()], 1)
        return head_forward(self, f2, f4, f8, f16)

    class Loss(cc.CompactLoss):
        def __init__(self, model) -> None:
            super().__init__()
            self.model = [model]  # not a sub-module

        def forward(self, reconstruction, good, logits, mask):
            out = super().forward(reconstruction, good, logits, mask)
            m = self.model[0]
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=m.bf16):
                t8, t16 = m.encoder(good.contiguous(memory_format=torch.channels_last))[2:]
            r8, r16 = m.head._rec
            del m.head._rec  # a non-leaf tensor attribute would break deepcopy (inference copy)
            rec = sum(
                ((r.float() - t.float()) ** 2).mean() / (t.float() ** 2).mean()
                for r, t in ((r8, t8), (r16, t16))
            )
            out["l2"] = rec
            out["total"] = out["total"] + rec
            return out

    cc.CompactHead.__init__ = new_init
    cc.CompactHead.forward = forward
    cc.CompactDraem.make_loss = lambda self: Loss(self)


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
    if kw.get("context") == "1":
        _global_context(cc)
    if kw.get("recon") == "1":
        _feature_reconstruction(cc)
    sim_kw = {k[4:]: v for k, v in kw.items() if k.startswith("sim.")}
    if "p_anom" in kw:
        sim_kw["anomaly_probability"] = kw["p_anom"]
    if "mix" in kw or "fg" in kw or "edge" in kw or sim_kw:
        import dataclasses

        import core.defects as defects

        make_sim = defects.compact_simulator

        def sim(sim_config, images, seed, model_config=None):
            for k, v in sim_kw.items():  # the field's own type (int or float)
                cur = getattr(sim_config, k)
                sim_config = dataclasses.replace(sim_config, **{k: type(cur)(v)})
            s = make_sim(sim_config, images, seed, model_config)
            if "mix" in kw:
                m = np.array([float(v) for v in kw["mix"].split(",")])
                s.mix = m / m.sum()
            if "fg" in kw:
                s.foreground = kw["fg"] == "1"
            if "edge" in kw:
                s.edge_crop = float(kw["edge"])
            return s

        defects.compact_simulator = sim  # CompactDraem.make_simulator imports it at call time
    model_kw = {}
    if "width" in kw:
        model_kw["disc_width"] = int(kw["width"])
    if "norm" in kw:
        model_kw["standardise"] = kw["norm"] == "std"
    if model_kw:
        import dataclasses

        import core.config as config

        preset = config.model_preset

        def compact_with(name: str):
            mc = preset(name)
            return dataclasses.replace(mc, **model_kw) if name == "compact" else mc

        config.model_preset = compact_with  # core.cli imports it at call time
    from core.cli import main
    from core.detectors import load_detector
    from core.images import read_mvtec
    from core.inspect import evaluate_mvtec
    from core.metrics import image_auroc, image_auroc_per_type

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
    per = {t: round(v, 3) for t, v in image_auroc_per_type(labels, sc, types).items()}
    print(
        f"RESULT {name} {minutes} min {kw} | image AUROC {e.image_auroc:.3f} pixel AUROC "
        f"{e.pixel_auroc:.3f} pixel AP {e.pixel_ap:.3f} AUPRO {e.aupro:.3f} | other scores "
        f"{alt} | per type {per}",
        flush=True,
    )
    return 0


if __name__ == "__main__":  # the simulator's fork-server workers import this module
    raise SystemExit(run(sys.argv[1:]))
