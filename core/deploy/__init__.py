"""Model export for deployment (ONNX, OpenVINO) and runtimes that score exported folders.

``export_model(detector, out_dir, fmt)`` writes a folder holding the graph
(``model.onnx`` or ``model.xml``/``model.bin``) and ``deploy.json``;
``load_exported(folder, runtime)`` opens it as a :class:`core.types.Detector`;
``available_runtimes()`` lists the runtimes (installed or not, with the install hint).
Both need the optional packages of ``pip install -e ".[deploy]"``. Names are
imported on first use, so ``import core.deploy.cli`` stays cheap (no torch).
"""

from __future__ import annotations

import importlib

_NAMES = {
    "DEPLOY_FORMAT": "core.deploy.export",
    "DEPLOY_VERSION": "core.deploy.export",
    "export_model": "core.deploy.export",
    "read_manifest": "core.deploy.export",
    "RuntimeInfo": "core.deploy.choices",
    "available_runtimes": "core.deploy.choices",
    "check_precision": "core.deploy.choices",
    "runtime_of": "core.deploy.choices",
    "export_for_runtime": "core.deploy.prepare",
    "OnnxDetector": "core.deploy.runtime",
    "OpenVinoDetector": "core.deploy.runtime",
    "is_exported": "core.deploy.runtime",
    "load_exported": "core.deploy.runtime",
}


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'core.deploy' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)


__all__ = sorted(_NAMES)
