"""Model export for deployment (ONNX, OpenVINO) and runtimes that score exported folders.

``export_model(detector, out_dir, fmt)`` writes a folder holding the graph
(``model.onnx`` or ``model.xml``/``model.bin``) and ``deploy.json``;
``load_exported(folder, runtime)`` opens it as a :class:`core.types.Detector`.
Both need the optional packages of ``pip install -e ".[deploy]"``.
"""

from core.deploy.export import DEPLOY_FORMAT, DEPLOY_VERSION, export_model, read_manifest
from core.deploy.runtime import OnnxDetector, OpenVinoDetector, is_exported, load_exported

__all__ = [
    "DEPLOY_FORMAT",
    "DEPLOY_VERSION",
    "OnnxDetector",
    "OpenVinoDetector",
    "export_model",
    "is_exported",
    "load_exported",
    "read_manifest",
]
