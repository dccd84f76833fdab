"""Detectors that run an exported folder (``core.deploy.export``) with onnxruntime or OpenVINO.

They implement :class:`core.types.Detector`'s ``predict`` with the torch detectors'
own pre- and post-processing, through the method's ``Processing`` hook
(``MethodSpec.deploy``, e.g. ``core/models/draem/export.py``): only the network itself
runs in the other runtime. Reduced precisions (onnxruntime ``int8``, OpenVINO ``bf16``)
are opened only where :mod:`core.deploy.choices` lists them as measured.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.config import Thresholds
from core.deploy.choices import RUNTIMES, check_precision
from core.deploy.export import MANIFEST, read_manifest, require
from core.errors import ExportError
from core.models.batching import BatchedDetector
from core.types import (
    Prediction,
)


def is_exported(path: str | os.PathLike) -> bool:
    """True if ``path`` is a folder holding a ``deploy.json``."""
    return (Path(path) / MANIFEST).is_file()


class ExportedDetector(BatchedDetector):
    """Common part of the runtimes: manifest, config, pre/post-processing, batching.

    Subclasses implement ``_run(x) -> (maps, scores)`` for x (B, C, H, W) float32.
    """

    runtime = ""
    work_label = "prediction"

    def __init__(
        self,
        folder: str | os.PathLike,
        threads: int | None = None,
        precision: str = "fp32",
        *,
        unmeasured: bool = False,
    ) -> None:
        from core.errors import ConfigError
        from core.registry import deploy_hooks

        self.folder = Path(folder)
        self.manifest = read_manifest(folder)
        self.method = self.manifest["method"]
        self.thresholds = Thresholds.from_dict(self.manifest["thresholds"])
        self.threads = threads
        self.precision = precision
        if not unmeasured:  # ``unmeasured``: only to measure a precision
            check_precision(self.method, self.variant, self.runtime, precision)
        try:
            self.processing = deploy_hooks(self.method).Processing(self.manifest)
        except (ConfigError, ImportError) as e:
            raise ExportError(f"{folder}: cannot run method {self.method!r} ({e})") from e
        self.config = self.processing.config

    @property
    def variant(self) -> str:
        """The exported model's variant (DRAEM preset, PatchCore backbone, flow subnet)."""
        return str(self.manifest.get("variant", ""))

    # ------------------------------------------------------------ Detector API
    @property
    def metadata(self) -> dict:
        """The exported model's checkpoint metadata plus runtime and checkpoint digest."""
        return {
            **self.manifest.get("metadata", {}),
            "runtime": self.runtime,
            "precision": self.precision,
            "checkpoint_sha256": self.manifest.get("checkpoint_sha256"),
        }

    def payload(self) -> dict:
        raise ExportError("an exported model holds no checkpoint; use the original .pt file")

    def save(self, path: str) -> str:
        raise ExportError("an exported model holds no checkpoint; use the original .pt file")

    # ------------------------------------------------------------ processing
    def working_size(self, h: int, w: int) -> tuple[int, int]:
        """(H, W) at which the network sees an (h, w) image (the torch detector's rule)."""
        return self.processing.working_size(h, w)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (h, w, 3) -> (C, H, W) float32 in [0, 1] at the working size."""
        return self.processing.preprocess(image)

    def postprocess(self, amap: np.ndarray, score: float, image: np.ndarray) -> Prediction:
        """Graph output of one image -> :class:`Prediction` at the image's size."""
        return self.processing.postprocess(amap, score, image)

    def predict_batch(self, images: list[np.ndarray], size: tuple[int, int]) -> list[Prediction]:
        """Images of one working ``size`` through the exported graph -> predictions:
        ``anomaly_map`` (h, w) float32 at each image's size, ``score`` float,
        ``reconstruction`` None."""
        maps, scores = self._run(np.stack([self.preprocess(im) for im in images]))
        return [self.postprocess(maps[j], scores[j], img) for j, img in enumerate(images)]

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class OnnxDetector(ExportedDetector):
    """An exported folder run by onnxruntime on the CPU (``threads``: intra-op threads;
    ``precision``: ``fp32`` or ``int8``, the dynamically quantised graph written by
    ``export-model --precision int8``). All graph optimisations are on."""

    runtime = "onnxruntime"

    def __init__(self, folder, threads=None, precision="fp32", *, unmeasured=False) -> None:
        super().__init__(folder, threads, precision, unmeasured=unmeasured)
        ort = require("onnxruntime")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        files = self.manifest["files"]
        key = "onnx_int8" if precision == "int8" else "onnx"
        if key not in files:
            raise ExportError(f"{folder} holds no int8 graph; export with --precision int8")
        self.session = ort.InferenceSession(
            str(self.folder / files[key]), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps, scores = self.session.run(["anomaly_map", "score"], {"image": x})
        return maps, scores


class OpenVinoDetector(ExportedDetector):
    """An exported folder run by OpenVINO on the CPU (``threads``: inference threads;
    ``precision``: ``fp32`` or ``bf16``, OpenVINO's inference-precision hint; latency hint)."""

    runtime = "openvino"

    def __init__(self, folder, threads=None, precision="fp32", *, unmeasured=False) -> None:
        super().__init__(folder, threads, precision, unmeasured=unmeasured)
        ov = require("openvino")
        files = self.manifest["files"]
        name = files.get("openvino") or files["onnx"]  # OpenVINO also reads the ONNX file
        cfg = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            cfg["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        self.compiled = core.compile_model(str(self.folder / name), "CPU", cfg)
        self.request = self.compiled.create_infer_request()
        self._outs = self.compiled.output("anomaly_map"), self.compiled.output("score")

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        res = self.request.infer({0: x})
        return np.array(res[self._outs[0]]), np.array(res[self._outs[1]])


def load_exported(
    folder: str | os.PathLike,
    runtime: str = "onnxruntime",
    threads: int | None = None,
    precision: str = "fp32",
    *,
    unmeasured: bool = False,
):
    """Open an exported folder with ``runtime`` (``onnxruntime`` or ``openvino``) at
    ``precision`` (:class:`ExportError` for one not measured safe for the model)."""
    classes = {"onnxruntime": OnnxDetector, "openvino": OpenVinoDetector}
    if runtime not in classes:
        raise ExportError(f"unknown runtime {runtime!r}; choose onnxruntime or openvino")
    return classes[runtime](folder, threads, precision, unmeasured=unmeasured)


__all__ = [
    "RUNTIMES",
    "ExportedDetector",
    "OnnxDetector",
    "OpenVinoDetector",
    "is_exported",
    "load_exported",
]
