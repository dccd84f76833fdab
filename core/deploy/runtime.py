"""Detectors that run an exported folder (``core.deploy.export``) with onnxruntime or OpenVINO.

They implement :class:`core.types.Detector`'s ``predict`` with the torch detectors'
own pre- and post-processing (imported from ``core.models.draem.detector``, ``core.data.geometry`` and
``core.models.patchcore.detector``): only the network itself runs in the other runtime.
"""

from __future__ import annotations

import copy
import os
import types
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from core.config import ModelConfig, Thresholds
from core.deploy.export import MANIFEST, read_manifest, require
from core.errors import Cancelled, ExportError
from core.types import (
    Prediction,
    Progress,
    ProgressCallback,
    StopCallback,
    ignore_progress,
    never_stop,
)

RUNTIMES = ("torch", "onnxruntime", "openvino")


def is_exported(path: str | os.PathLike) -> bool:
    """True if ``path`` is a folder holding a ``deploy.json``."""
    return (Path(path) / MANIFEST).is_file()


class ExportedDetector:
    """Common part of the runtimes: manifest, config, pre/post-processing, batching.

    Subclasses implement ``_run(x) -> (maps, scores)`` for x (B, C, H, W) float32.
    """

    runtime = ""

    def __init__(self, folder: str | os.PathLike, threads: int | None = None) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(folder)
        self.method = self.manifest["method"]
        self.thresholds = Thresholds.from_dict(self.manifest["thresholds"])
        self.threads = threads
        if self.method == "draem":
            self.config = ModelConfig.from_dict(self.manifest["config"])
        elif self.method == "patchcore":
            from core.models.patchcore.detector import PatchCoreConfig

            self.config = PatchCoreConfig.from_dict(self.manifest["config"])
        else:
            raise ExportError(f"{folder}: unknown method {self.method!r}")

    # ------------------------------------------------------------ Detector API
    @property
    def metadata(self) -> dict:
        """The exported model's checkpoint metadata plus runtime and checkpoint digest."""
        return {
            **self.manifest.get("metadata", {}),
            "runtime": self.runtime,
            "checkpoint_sha256": self.manifest.get("checkpoint_sha256"),
        }

    def with_thresholds(self, thresholds: Thresholds):
        """A detector sharing this session with other thresholds."""
        other = copy.copy(self)
        other.thresholds = thresholds
        return other

    def payload(self) -> dict:
        raise ExportError("an exported model holds no checkpoint; use the original .pt file")

    def save(self, path: str) -> str:
        raise ExportError("an exported model holds no checkpoint; use the original .pt file")

    # ------------------------------------------------------------ processing
    def working_size(self, h: int, w: int) -> tuple[int, int]:
        """(H, W) at which the network sees an (h, w) image (the torch detector's rule)."""
        if self.method == "draem":
            from core.data.geometry import working_size

            return working_size(h, w, self.config)
        from core.models.patchcore.detector import working_size

        return working_size(h, w, self.config)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (h, w, 3) -> (C, H, W) float32 in [0, 1] at the working size."""
        if self.method == "draem":
            from core.data.geometry import standardise
            from core.models.draem.detector import resize_like_simulator

            small = resize_like_simulator(image, self.working_size(*image.shape[:2]))
            if self.config.standardise:
                small = standardise(small)
            if self.config.in_channels == 1:
                small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)[..., None]
        else:
            from core.models.patchcore.detector import PatchEmbedder

            small = PatchEmbedder.resize(types.SimpleNamespace(config=self.config), image)
        return np.ascontiguousarray(small.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)

    def postprocess(self, amap: np.ndarray, score: float, image: np.ndarray) -> Prediction:
        """Graph output of one image -> :class:`Prediction` at the image's size."""
        shape = image.shape[:2]
        if self.method == "draem":
            from core.data.geometry import to_original

            out = amap if amap.shape == shape else np.clip(to_original(amap, shape), 0.0, 1.0)
        else:
            from core.models.patchcore.detector import _smooth_map

            size = self.working_size(*shape)
            out = _smooth_map(amap, size, shape, self.config.sigma)
        return Prediction(np.ascontiguousarray(out, dtype=np.float32), float(score), None)

    def predict(
        self,
        images: Sequence[np.ndarray],
        *,
        batch_size: int = 8,
        on_progress: ProgressCallback = ignore_progress,
        should_stop: StopCallback = never_stop,
    ) -> list[Prediction]:
        """One :class:`Prediction` per RGB uint8 (H, W, 3) image, in input order:
        ``anomaly_map`` (H, W) float32 at the image's size, ``score`` float,
        ``reconstruction`` None. Consecutive images of one working size are batched."""
        from core.models.batching import check_image as _check_image

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        checked = [_check_image(img, i) for i, img in enumerate(images)]
        sizes = [self.working_size(*im.shape[:2]) for im in checked]
        out: list[Prediction] = []
        n, start = len(checked), 0
        while start < n:
            stop = start + 1
            while stop < n and stop - start < batch_size and sizes[stop] == sizes[start]:
                stop += 1
            if should_stop():
                raise Cancelled(f"prediction cancelled after {start} of {n} images")
            x = np.stack([self.preprocess(im) for im in checked[start:stop]])
            maps, scores = self._run(x)
            for j, img in enumerate(checked[start:stop]):
                out.append(self.postprocess(maps[j], scores[j], img))
            on_progress(Progress(len(out), n, f"predicted {len(out)}/{n} images"))
            start = stop
        return out

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class OnnxDetector(ExportedDetector):
    """An exported folder run by onnxruntime on the CPU (``threads``: intra-op threads)."""

    runtime = "onnxruntime"

    def __init__(self, folder: str | os.PathLike, threads: int | None = None) -> None:
        super().__init__(folder, threads)
        ort = require("onnxruntime")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        path = self.folder / self.manifest["files"]["onnx"]
        self.session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps, scores = self.session.run(["anomaly_map", "score"], {"image": x})
        return maps, scores


class OpenVinoDetector(ExportedDetector):
    """An exported folder run by OpenVINO on the CPU in fp32 (``threads``: inference threads)."""

    runtime = "openvino"

    def __init__(self, folder: str | os.PathLike, threads: int | None = None) -> None:
        super().__init__(folder, threads)
        ov = require("openvino")
        files = self.manifest["files"]
        name = files.get("openvino") or files["onnx"]  # OpenVINO also reads the ONNX file
        cfg = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            cfg["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        self.compiled = core.compile_model(str(self.folder / name), "CPU", cfg)

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        res = self.compiled(x)
        return res[self.compiled.output("anomaly_map")], res[self.compiled.output("score")]


def load_exported(
    folder: str | os.PathLike, runtime: str = "onnxruntime", threads: int | None = None
):
    """Open an exported folder with ``runtime`` (``onnxruntime`` or ``openvino``)."""
    if runtime == "onnxruntime":
        return OnnxDetector(folder, threads)
    if runtime == "openvino":
        return OpenVinoDetector(folder, threads)
    raise ExportError(f"unknown runtime {runtime!r}; choose onnxruntime or openvino")


__all__ = [
    "RUNTIMES",
    "ExportedDetector",
    "OnnxDetector",
    "OpenVinoDetector",
    "is_exported",
    "load_exported",
]
