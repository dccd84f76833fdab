"""Export a detector to an ONNX (optionally OpenVINO) graph plus ``deploy.json``.

Each method builds its own graph and pre/post-processing in the module named by its
``MethodSpec.deploy`` (``core/models/<method>/export.py``): ``export_graph(detector) ->
(graph, info, (h, w))`` (an ``nn.Module``, the manifest entries it needs, an example
working size) and ``Processing(manifest)`` for the runtimes (``working_size``,
``preprocess``, ``postprocess``). Nothing here branches on a method.

The exported graph takes one input ``image``: (B, C, H, W) float32, the image
already pre-processed at its working size exactly as the torch detector does it
(resized with the method's rule, scaled to [0, 1]). B, H and W are dynamic. It
returns ``anomaly_map`` (B, h, w) float32 (the method's raw map; its module's
docstring says which) and ``score`` (B,) float32. Before anything is written the ONNX
file is run by onnxruntime at two sizes and batch sizes and compared with the torch
graph (:func:`verify_onnx`): a graph that does not export faithfully raises
:class:`ExportError`. Folders are written into a
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

import numpy as np
import torch
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


def graph_for(detector) -> tuple[nn.Module, dict, tuple[int, int]]:
    """``(graph, info, (h, w))`` from the method's own hooks (``MethodSpec.deploy``)."""
    from core.errors import ConfigError
    from core.registry import deploy_hooks

    try:
        hooks = deploy_hooks(detector.method)
    except (ConfigError, ImportError) as e:
        raise ExportError(f"no exporter for method {detector.method!r}: {e}") from e
    return hooks.export_graph(detector)


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
#: an export is refused unless the ONNX graph reproduces the torch graph this closely
#: (absolute, plus relative to the largest output) on random images at two sizes
VERIFY_ATOL, VERIFY_RTOL = 1e-3, 1e-4
INT8_FILE = "model.int8.onnx"


def export_model(
    detector,
    out_dir: str | os.PathLike,
    fmt: str = "onnx",
    *,
    checkpoint_sha256: str | None = None,
    overwrite: bool = False,
    int8: bool = False,
) -> Path:
    """Export ``detector`` (any method whose ``MethodSpec.deploy`` hooks build a graph) to
    ``out_dir``.

    ``fmt``: ``onnx`` (``model.onnx``) or ``openvino`` (``model.xml`` + ``model.bin``,
    converted from the ONNX graph, fp32 weights; the ONNX file is kept too).
    ``checkpoint_sha256``: digest of the checkpoint file the detector came from (computed
    from a re-saved checkpoint if None). ``int8``: also write ``model.int8.onnx``
    (onnxruntime dynamic quantisation; :mod:`core.deploy.precision` says where it is
    measured to be safe). The traced graph is run by onnxruntime on random images at two
    sizes and batch sizes and compared with the torch graph before anything is written.
    Returns the path of the graph file. Raises :class:`ExportError` (missing packages,
    unsupported model, a graph that exports unfaithfully, existing ``out_dir`` without
    ``overwrite``); nothing is left at ``out_dir`` on failure.
    """
    if fmt not in ("onnx", "openvino"):
        raise ExportError(f"unknown export format {fmt!r}; choose onnx or openvino")
    require("onnx")
    require("onnxruntime")
    if fmt == "openvino":
        require("openvino")
    out = Path(out_dir)
    if out.exists() and not (overwrite and (out / MANIFEST).is_file()):
        raise ExportError(f"{out} exists; choose a new folder (or overwrite an exported one)")
    out.parent.mkdir(parents=True, exist_ok=True)
    graph, info, (h, w) = graph_for(detector)
    c = info["in_channels"]
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        onnx_path = tmp / ONNX_FILE
        _export_onnx(graph, onnx_path, (1, c, h, w))
        verify_onnx(graph, onnx_path, [(1, c, h, w), (2, c, w, h)])
        manifest = _manifest(detector, info, checkpoint_sha256 or _checkpoint_sha(detector))
        manifest["files"] = {"onnx": ONNX_FILE}
        if int8:
            quantize_int8(onnx_path, tmp / INT8_FILE)
            manifest["files"]["onnx_int8"] = INT8_FILE
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


def verify_onnx(graph: nn.Module, path: Path, shapes: list[tuple[int, int, int, int]]) -> float:
    """Run the ONNX file at each (B, C, H, W) in ``shapes`` on seeded random images and
    compare both outputs with ``graph``; returns the largest difference or raises
    :class:`ExportError` (shapes traced as constants, operators exported with other
    semantics). ``graph`` runs in fp32 on the CPU."""
    ort = require("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"the exported ONNX graph does not load: {str(e)[:300]}") from e
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for shape in shapes:
        x = torch.rand(*shape, generator=gen)
        with torch.no_grad():
            ref = [t.float().numpy() for t in graph(x)]
        try:
            got = sess.run(["anomaly_map", "score"], {"image": x.numpy()})
        except Exception as e:
            raise ExportError(
                f"the exported graph fails on a {shape[2]}x{shape[3]} batch of {shape[0]} "
                f"(a size traced as a constant?): {str(e)[:200]}"
            ) from e
        for name, a, b in zip(("anomaly_map", "score"), ref, got, strict=True):
            if a.shape != b.shape:
                raise ExportError(
                    f"the exported graph gives {name} of shape {b.shape} instead of {a.shape} "
                    f"for a {shape[2]}x{shape[3]} batch of {shape[0]}; not exported"
                )
            diff = float(np.abs(a - b).max()) if a.size else 0.0
            tol = VERIFY_ATOL + VERIFY_RTOL * float(np.abs(a).max() if a.size else 0.0)
            if not diff <= tol:  # also refuses NaN
                raise ExportError(
                    f"the exported graph differs from the model by {diff:.3g} (> {tol:.3g}) in "
                    f"{name} for a {shape[2]}x{shape[3]} batch of {shape[0]}: an operation is "
                    "not exported faithfully; nothing was written"
                )
            worst = max(worst, diff)
    return worst


def quantize_int8(src: Path, dst: Path) -> None:
    """onnxruntime dynamic int8 quantisation (weights int8, activations quantised per call)."""
    require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    except Exception as e:
        raise ExportError(f"int8 quantisation failed: {str(e)[:300]}") from e


def _export_onnx(graph: nn.Module, path: Path, shape: tuple[int, int, int, int]) -> None:
    x = torch.rand(*shape)
    dyn = {"image": {0: "batch", 2: "height", 3: "width"}, "anomaly_map": {0: "batch"}}
    dyn["score"] = {0: "batch"}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # shape checks traced as constants: working sizes are multiples of the stride
            # (verify_onnx runs the file at a second size and batch to catch the others)
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
    "export_model",
    "graph_for",
    "quantize_int8",
    "read_manifest",
    "require",
    "verify_onnx",
]
