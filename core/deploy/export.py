"""Export a detector to an ONNX (optionally OpenVINO) graph plus ``deploy.json``.

The exported graph takes one input ``image``: (B, C, H, W) float32, the image
already pre-processed at its working size exactly as the torch detector does it
(resized with the method's rule, DRAEM compact: standardised, scaled to [0, 1]).
B, H and W are dynamic. It returns two outputs:

* ``anomaly_map``: DRAEM (B, H, W) float32 in [0, 1], the view-averaged
  ``softmax(logits)[:, 1]`` at the working size; PatchCore (B, H/s, W/s) float32
  patch distances on the finest stage's grid (s = its stride; the runtime smooths
  and resizes them with ``core.models.patchcore.detector``'s own post-processing).
* ``score``: (B,) float32 image score (DRAEM: max of the ``score_kernel`` mean
  filter, zero padding counted; PatchCore: the reweighted largest patch distance).

PatchCore's nearest-neighbour search is a matrix product and a top-1 with the memory
bank inside the graph; each bank item's ``n_neighbors`` nearest bank items (for the
score reweighting) are precomputed into a table. Folders are written into a
temporary directory beside ``out_dir`` and renamed into place, so a failed export
never leaves a file behind.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ExportError

DEPLOY_FORMAT = "draem-workstation-export"
DEPLOY_VERSION = 1
MANIFEST = "deploy.json"
ONNX_FILE = "model.onnx"
OPENVINO_FILE = "model.xml"
OPSET = 17
INSTALL_HINT = 'pip install -e ".[deploy]"'


def require(module: str):
    """Import an optional deployment package or raise :class:`ExportError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ExportError(f"{module} is not installed; run: {INSTALL_HINT}") from e


# ------------------------------------------------------------------ graphs
class DraemGraph(nn.Module):
    """DRAEM inference as one graph: (B, C, H, W) float32 in [0, 1] -> (map (B, H, W), score (B,)).

    ``net`` is the detector's network in fp32 (its Conv+BN pairs folded);
    ``views`` 1-3 (image, left-right, up-down mirrors; maps mirrored back);
    ``kernel`` the odd score window (``avg_pool2d``, zero padding counted = the torch
    path's ``cv2.boxFilter`` with ``BORDER_CONSTANT``).
    """

    def __init__(self, net: nn.Module, views: int, kernel: int) -> None:
        super().__init__()
        self.net, self.views, self.kernel = net, int(views), int(kernel)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = torch.softmax(self.net(x)[1].float(), dim=1)[:, 1]
        for dims in ((-1,), (-2,))[: self.views - 1]:
            probs = probs + torch.softmax(self.net(x.flip(dims))[1].float(), dim=1)[:, 1].flip(dims)
        maps = probs / self.views
        k = self.kernel
        filt = F.avg_pool2d(maps[:, None], k, stride=1, padding=k // 2, count_include_pad=True)
        return maps, filt.flatten(1).amax(1)


class PatchCoreGraph(nn.Module):
    """PatchCore inference as one graph: (B, 3, H, W) float32 in [0, 1] ->
    (patch distances (B, H/s, W/s), score (B,)).

    ``bank`` (M, D) float32 memory bank; ``support`` (M, b) int64: row m holds m and its
    b - 1 nearest other bank items ([paper] Eq. 7's N_b(m*)); b < 2 scores the plain
    maximum distance.
    """

    def __init__(self, extractor: nn.Module, bank: torch.Tensor, support: torch.Tensor, cfg):
        super().__init__()
        self.extractor = extractor
        self.patch_size, self.embed_dim = cfg.patch_size, cfg.embed_dim
        self.register_buffer("bank", bank.float().contiguous())
        self.register_buffer("bank_t", bank.float().T.contiguous())
        self.register_buffer("norms", (bank.float() ** 2).sum(1))
        self.register_buffer("support", support.long())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from core.models.backbone import patch_features

        e = patch_features(self.extractor(x), self.patch_size, self.embed_dim)  # (B, h, w, D)
        b, h, w, d = e.shape
        q = e.reshape(b, h * w, d)
        d2 = self.norms - 2.0 * torch.matmul(q, self.bank_t)  # (B, N, M) minus |q|^2
        best, idx = torch.topk(d2, 1, dim=2, largest=False)
        dist = (best[..., 0] + (q * q).sum(2)).clamp(min=0).sqrt()  # (B, N)
        top, j = dist.max(1)  # (B,), the most anomalous patch
        nearest = torch.gather(idx[..., 0], 1, j[:, None])[:, 0]  # (B,)
        if self.support.shape[1] < 2:
            return dist.reshape(b, h, w), top
        qj = torch.gather(q, 1, j[:, None, None].expand(b, 1, d))  # (B, 1, D)
        neigh = self.bank[self.support[nearest]]  # (B, b, D)
        dn = ((neigh - qj) ** 2).sum(2).clamp(min=0).sqrt()  # (B, b)
        score = (1.0 - torch.softmax(dn, dim=1)[:, 0]) * top
        return dist.reshape(b, h, w), score


def _bank_support(bank: torch.Tensor, b: int) -> torch.Tensor:
    """(M, D) bank -> (M, b') int64: each item then its b' - 1 nearest other items."""
    m = bank.shape[0]
    b = min(int(b), m)
    norms = (bank * bank).sum(1)
    rows = []
    for start in range(0, m, 1024):
        blk = bank[start : start + 1024]
        d2 = torch.addmm(norms, blk, bank.T, alpha=-2.0)
        ids = torch.arange(start, start + blk.shape[0])
        d2[torch.arange(blk.shape[0]), ids] = -float("inf")  # the item itself first
        rows.append(d2.topk(b, dim=1, largest=False).indices)
    return torch.cat(rows)


# ------------------------------------------------------------------ manifests
def _draem_graph(detector) -> tuple[nn.Module, dict, int]:
    from core.data.geometry import STD_MEAN, STD_SCALE
    from core.models.draem.detector import fuse_for_inference

    cfg = detector.model_config
    net = fuse_for_inference(detector.model).float().cpu()
    if hasattr(net, "bf16"):  # the compact network's CPU autocast: export fp32
        net.bf16 = False
    h, w = tuple(cfg.image_size) if not cfg.keep_aspect else (224, 320)
    info = {
        "working_size": {
            "rule": "draem",
            "keep_aspect": cfg.keep_aspect,
            "image_size": list(cfg.image_size),
            "work_area": cfg.work_area,
            "stride": 16,
            "resize": "INTER_AREA when both sides shrink, else INTER_LINEAR",
        },
        "standardisation": {"enabled": bool(cfg.standardise), "mean": STD_MEAN, "std": STD_SCALE},
        "flip_views": cfg.flip_views,
        "score_kernel": cfg.score_kernel,
        "in_channels": cfg.in_channels,
        "map": "working size, bilinear to the original size, clipped to [0, 1]",
    }
    return DraemGraph(net, cfg.flip_views, cfg.score_kernel).eval(), info, (h, w)


def _patchcore_graph(detector) -> tuple[nn.Module, dict, tuple[int, int]]:
    cfg = detector.config
    if detector.index.n_lists:
        raise ExportError(
            "this PatchCore model searches its memory bank with an inverted-file index "
            "(approximate); the exported graph searches exactly and would score differently. "
            "Refit with search='exact' to export it"
        )
    extractor = detector.embedder.extractor
    bank = detector.index.bank
    support = _bank_support(bank, cfg.n_neighbors)
    info = {
        "working_size": {
            "rule": "patchcore",
            "resolution": cfg.resolution,
            "stride": max(cfg.stages),
            "resize": "INTER_AREA when the area shrinks, else INTER_LINEAR",
        },
        "standardisation": {"enabled": False},
        "flip_views": 1,
        "score_kernel": None,
        "in_channels": 3,
        "feature_stride": min(cfg.stages),
        "sigma": cfg.sigma,
        "bank_size": int(bank.shape[0]),
        "map": "patch grid, bilinear to the working size, Gaussian sigma, bilinear to the original",
    }
    s = max(cfg.stages)
    return PatchCoreGraph(extractor, bank, support, cfg).eval(), info, (4 * s, 6 * s)


def _graph(detector) -> tuple[nn.Module, dict, tuple[int, int]]:
    if detector.method == "draem":
        return _draem_graph(detector)
    if detector.method == "patchcore":
        return _patchcore_graph(detector)
    raise ExportError(f"no exporter for method {detector.method!r}")


def read_manifest(folder: str | os.PathLike) -> dict:
    """The ``deploy.json`` of an exported folder (:class:`ExportError` if absent or foreign)."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ExportError(f"{folder}: not an exported model folder ({e})") from e
    if data.get("format") != DEPLOY_FORMAT or int(data.get("version", 0)) > DEPLOY_VERSION:
        raise ExportError(f"{folder}: not an exported model folder of a supported version")
    return data


def _checkpoint_sha(detector) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return detector.save(os.path.join(tmp, "model.pt"))


# ------------------------------------------------------------------ export
def export_model(
    detector,
    out_dir: str | os.PathLike,
    fmt: str = "onnx",
    *,
    checkpoint_sha256: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Export ``detector`` (DRAEM paper/compact or exact-search PatchCore) to ``out_dir``.

    ``fmt``: ``onnx`` (``model.onnx``) or ``openvino`` (``model.xml`` + ``model.bin``,
    converted from the ONNX graph, fp32 weights; the ONNX file is kept too).
    ``checkpoint_sha256``: digest of the checkpoint file the detector came from (computed
    from a re-saved checkpoint if None). Returns the path of the graph file. Raises
    :class:`ExportError` (missing packages, unsupported model, existing ``out_dir``
    without ``overwrite``); nothing is left at ``out_dir`` on failure.
    """
    if fmt not in ("onnx", "openvino"):
        raise ExportError(f"unknown export format {fmt!r}; choose onnx or openvino")
    require("onnx")
    if fmt == "openvino":
        require("openvino")
    out = Path(out_dir)
    if out.exists() and not (overwrite and (out / MANIFEST).is_file()):
        raise ExportError(f"{out} exists; choose a new folder (or overwrite an exported one)")
    out.parent.mkdir(parents=True, exist_ok=True)
    graph, info, (h, w) = _graph(detector)
    c = info["in_channels"]
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        onnx_path = tmp / ONNX_FILE
        _export_onnx(graph, onnx_path, (1, c, h, w))
        manifest = _manifest(detector, info, checkpoint_sha256 or _checkpoint_sha(detector))
        manifest["files"] = {"onnx": ONNX_FILE}
        if fmt == "openvino":
            ov = require("openvino")
            ov.save_model(ov.convert_model(str(onnx_path)), str(tmp / OPENVINO_FILE), False)
            manifest["files"]["openvino"] = OPENVINO_FILE
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / (OPENVINO_FILE if fmt == "openvino" else ONNX_FILE)


def _export_onnx(graph: nn.Module, path: Path, shape: tuple[int, int, int, int]) -> None:
    x = torch.rand(*shape)
    dyn = {"image": {0: "batch", 2: "height", 3: "width"}, "anomaly_map": {0: "batch"}}
    dyn["score"] = {0: "batch"}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # shape checks traced as constants: working sizes are multiples of the stride
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
            torch.onnx.export(
                graph,
                (x,),
                str(path),
                input_names=["image"],
                output_names=["anomaly_map", "score"],
                dynamic_axes=dyn,
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as e:  # an operator without an ONNX form
        raise ExportError(f"the model could not be exported to ONNX: {str(e)[:300]}") from e


def _manifest(detector, info: dict, sha: str) -> dict[str, Any]:
    cfg = detector.config
    thr = detector.thresholds
    meta = copy.deepcopy(detector.metadata)
    return {
        "format": DEPLOY_FORMAT,
        "version": DEPLOY_VERSION,
        "method": detector.method,
        "input": {
            "name": "image",
            "shape": ["batch", info["in_channels"], "height", "width"],
            "dtype": "float32",
            "range": "[0, 1], RGB, at the working size, after standardisation",
        },
        "outputs": {"anomaly_map": info["map"], "score": "(batch,) float32 image score"},
        **info,
        "thresholds": json.loads(thr.to_json()),
        "config": json.loads(json.dumps(cfg.to_dict())),
        "checkpoint_sha256": sha,
        "metadata": json.loads(json.dumps(meta, default=str)),
    }


__all__ = [
    "DEPLOY_FORMAT",
    "DEPLOY_VERSION",
    "DraemGraph",
    "PatchCoreGraph",
    "export_model",
    "read_manifest",
    "require",
]
