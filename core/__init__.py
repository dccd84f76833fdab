"""Surface-defect detection core: DRAEM and PatchCore, image I/O, metrics, export.

``core`` never imports Qt.  Importing ``core`` itself is cheap: the public names
below are re-exported lazily (PEP 562), so ``from core import load_image`` only
imports :mod:`core.data.images` and ``import core`` imports neither numpy nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # configuration, results, errors
    **dict.fromkeys(
        ["SimulatorConfig", "ModelConfig", "TrainConfig", "Thresholds", "model_preset"], "config"
    ),
    **dict.fromkeys(
        [
            "Progress",
            "TrainProgress",
            "TrainPreview",
            "TrainResult",
            "SyntheticSample",
            "Prediction",
            "FailedImage",
            "InspectionResult",
            "Detector",
            "ignore_progress",
            "never_stop",
        ],
        "types",
    ),
    **dict.fromkeys(
        [
            "CoreError",
            "ConfigError",
            "ImageLoadError",
            "DatasetError",
            "CheckpointError",
            "ExportError",
            "EvaluationError",
            "TrainingError",
            "Cancelled",
        ],
        "errors",
    ),
    # data
    **dict.fromkeys(
        [
            "IMAGE_EXTENSIONS",
            "load_image",
            "load_mask",
            "load_images",
            "list_images",
            "expand_paths",
            "good_image_paths",
            "read_mvtec",
            "is_mvtec",
            "MvtecItem",
            "MvtecCategory",
            "split_held_out",
        ],
        "data.images",
    ),
    "demo_root": "demo",
    "AnomalySimulator": "simulate.simulator",
    # devices, methods, detection, evaluation, export
    "resolve_device": "device",
    "load_detector": "registry",
    "fit_detector": "registry",
    "inspect_paths": "evaluate.inspect",
    "evaluate": "evaluate.metrics",
    "export_batch": "io.export",
    "read_batch": "io.export",
    "ExportRecord": "io.export",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"core.{module}"), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
