"""A checkpoint's detector made ready for an export runtime (onnxruntime, OpenVINO).

:func:`export_for_runtime` exports the detector once into a cache folder (one folder per
checkpoint digest and graph format, reused while the digest matches) with
:func:`core.deploy.export.export_model`, whose parity check against PyTorch runs as it
does for ``export-model``, then opens the folder with the runtime
(:func:`core.deploy.runtime.load_exported`). The GUI's Inspection page runs it in a
worker thread when the user picks a runtime. Reduced precisions are refused before any
work unless :mod:`core.deploy.choices` lists them as measured for the model.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from core.errors import Cancelled, ConfigError, ExportError
from core.types import Progress, ProgressCallback, StopCallback, ignore_progress, never_stop

EXPORT_RUNTIMES = ("onnxruntime", "openvino")


def variant_of(detector) -> str:
    """The model's variant tag (DRAEM preset, PatchCore backbone, flow subnet; the key of
    :data:`core.deploy.choices.MEASURED`); empty for an unregistered method."""
    if hasattr(detector, "variant"):  # an exported detector knows it from its manifest
        return str(detector.variant)
    from core.registry import get_method

    try:
        return str(get_method(detector.method).variant(detector.config))
    except (ConfigError, AttributeError, KeyError):
        return ""


def on_cpu(detector):
    """``detector`` with its network on the CPU, where graphs are traced (a copy when it
    runs elsewhere, so the caller's detector keeps its device)."""
    if getattr(detector, "device", "cpu") != "cpu" and hasattr(detector, "model"):
        detector = copy.copy(detector)
        detector.model = copy.deepcopy(detector.model).cpu()
        detector.device, detector._fast = "cpu", None
    return detector


def cache_folder(cache_dir: str | os.PathLike, method: str, sha256: str, runtime: str) -> Path:
    """Where :func:`export_for_runtime` keeps the export of a checkpoint for ``runtime``."""
    fmt = "openvino" if runtime == "openvino" else "onnx"
    return Path(cache_dir) / f"{method}-{sha256[:16]}-{fmt}"


def _reusable(folder: Path, sha256: str, precision: str) -> bool:
    from core.deploy.export import read_manifest

    try:
        manifest = read_manifest(folder)
    except ExportError:
        return False
    files = manifest.get("files", {})
    return manifest.get("checkpoint_sha256") == sha256 and (
        precision != "int8" or "onnx_int8" in files
    )


def export_for_runtime(
    detector,
    runtime: str,
    precision: str,
    cache_dir: str | os.PathLike,
    *,
    checkpoint_path: str | os.PathLike | None = None,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
):
    """``detector`` (a checkpoint's torch detector) exported and opened with ``runtime``
    (``onnxruntime`` or ``openvino``) at ``precision``.

    The export goes to :func:`cache_folder` under ``cache_dir`` and is reused while it
    records the checkpoint's digest (that of ``checkpoint_path`` when given, else of the
    detector re-saved). Progress: three :class:`Progress` steps (digest, export and its
    parity check, opening); ``should_stop`` is polled between them (an export in
    progress runs to its end; it is atomic and kept for the next time).

    Returns the :class:`core.deploy.runtime.ExportedDetector`. Raises
    :class:`ExportError` (runtime not installed, unmeasured precision, unexportable or
    unfaithful graph: nothing is written then) or :class:`Cancelled`.
    """
    from core.deploy.choices import check_precision
    from core.deploy.export import _checkpoint_sha, export_model, require
    from core.deploy.runtime import load_exported

    if runtime not in EXPORT_RUNTIMES:
        raise ExportError(f"unknown export runtime {runtime!r}; choose onnxruntime or openvino")
    require(runtime)
    check_precision(detector.method, variant_of(detector), runtime, precision)

    def step(done: int, message: str) -> None:
        if should_stop():
            raise Cancelled("switching the runtime was cancelled; the model in use is kept")
        on_progress(Progress(done, 3, message))

    step(0, "checkpoint digest")
    if checkpoint_path is not None and Path(checkpoint_path).is_file():
        from core.io.files import file_sha256

        sha = file_sha256(checkpoint_path)
    else:
        sha = _checkpoint_sha(detector)
    folder = cache_folder(cache_dir, detector.method, sha, runtime)
    if not _reusable(folder, sha, precision):
        step(1, f"exporting for {runtime} and checking it against PyTorch")
        export_model(
            on_cpu(detector),
            folder,
            "openvino" if runtime == "openvino" else "onnx",
            checkpoint_sha256=sha,
            overwrite=True,
            int8=precision == "int8",
        )
    step(2, f"opening the export with {runtime}")
    exported = load_exported(folder, runtime, None, precision)
    step(3, f"{runtime} ready")
    return exported


__all__ = ["EXPORT_RUNTIMES", "cache_folder", "export_for_runtime", "on_cpu", "variant_of"]
