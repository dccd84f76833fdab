"""Which runtime the Inspection page inspects with (Qt-free; jobs run in a worker thread).

:func:`runtime_entries` lists the page's choices from
``core.deploy.choices.available_runtimes()``: every runtime, those not installed disabled
with their install command, reduced precisions only where
``core.deploy.choices.measured_precisions`` offers them for the model. A choice is named
as ``--runtime`` takes it (``torch``, ``onnxruntime``, ``openvino:bf16``).

:func:`runtime_job` gets the detector for a choice: a checkpoint's detector is exported
once into a cache folder (``core.deploy.prepare.export_for_runtime``, the export's parity
check included); an exported folder is opened with the runtime directly.
:func:`open_exported_job` opens a folder written by ``export-model``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from core.deploy.choices import (
    available_runtimes,
    measured_precisions,
    parse_runtime,
    runtime_spec,
)
from core.errors import ExportError
from core.types import Progress, ProgressCallback, StopCallback, ignore_progress, never_stop

TORCH = "torch"
#: what each runtime does, for the selector's tooltips
_WHAT = {
    "torch": "Run the checkpoint with PyTorch, as training did",
    "onnxruntime": "Export the model once (checked against PyTorch) and inspect with ONNX "
    "Runtime, as a line PC running the exported folder does",
    "openvino": "Export the model once (checked against PyTorch) and inspect with OpenVINO, "
    "as a line PC running the exported folder does",
}


@dataclass(frozen=True)
class RuntimeEntry:
    """One choice of the selector: ``spec`` (``openvino:bf16``), ``label``, ``enabled``, ``tip``."""

    spec: str
    label: str
    enabled: bool
    tip: str


def _label(info) -> str:
    """A runtime's label without its remark (``OpenVINO (exported folder)`` -> ``OpenVINO``)."""
    return info.label.split(" (")[0]


def short_label(spec: str) -> str:
    """``openvino:bf16`` -> ``OpenVINO bf16`` (the runtime's label without its remark)."""
    runtime, precision = parse_runtime(spec)
    labels = {r.name: _label(r) for r in available_runtimes()}
    label = labels.get(runtime, runtime)
    return label if precision == "fp32" else f"{label} {precision}"


def runtime_entries(
    method: str, variant: str, *, has_checkpoint: bool = True, runtimes=None
) -> list[RuntimeEntry]:
    """The selector's entries for a model of ``method`` / ``variant``.

    ``has_checkpoint``: False for a model opened from an exported folder (PyTorch needs
    the checkpoint). ``runtimes``: ``available_runtimes()`` unless given (tests).
    """
    out = []
    for info in available_runtimes() if runtimes is None else runtimes:
        label = _label(info)
        if not info.installed:
            enabled, tip = False, f"{label} is not installed; run: {info.install_hint}"
        elif info.reads == "checkpoint" and not has_checkpoint:
            enabled, tip = False, f"{label} runs a checkpoint; this model is an exported folder"
        else:
            enabled, tip = True, _WHAT.get(info.name, label)
        out.append(RuntimeEntry(info.name, label, enabled, tip))
        for precision in info.precisions:
            if precision != "fp32" and precision in measured_precisions(method, variant, info.name):
                out.append(
                    RuntimeEntry(
                        runtime_spec(info.name, precision),
                        f"{label} {precision}",
                        enabled,
                        tip
                        if not enabled
                        else f"{tip}, in {precision} (measured to keep "
                        "AUROC within 0.005 of fp32 for this model, docs/deploy.md)",
                    )
                )
    return out


@dataclass(frozen=True)
class RuntimeSwitch:
    """A detector ready for a runtime: ``spec`` it runs with, the exported ``folder`` (or None)."""

    detector: Any
    spec: str
    folder: str | None


def runtime_job(
    spec: str,
    *,
    torch_detector: Any = None,
    checkpoint_path: str | None = None,
    export_folder: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> RuntimeSwitch:
    """The detector for ``spec``: ``torch_detector`` itself for ``torch``; for an export
    runtime, ``export_folder`` opened with it, else ``torch_detector`` exported into
    ``cache_dir`` first (``core.deploy.prepare.export_for_runtime``).

    Raises:
        ExportError: not installed, unmeasured precision, unfaithful export, broken folder.
        Cancelled: ``should_stop()`` became True.
    """
    runtime, precision = parse_runtime(spec)
    if runtime == TORCH:
        if torch_detector is None:
            raise ExportError("PyTorch runs a checkpoint; this model is an exported folder")
        return RuntimeSwitch(torch_detector, TORCH, None)
    if export_folder is not None:
        return open_exported_job(
            export_folder, spec, on_progress=on_progress, should_stop=should_stop
        )
    if torch_detector is None or cache_dir is None:
        raise ExportError("no model to export")
    from core.deploy.prepare import export_for_runtime

    det = export_for_runtime(
        torch_detector,
        runtime,
        precision,
        cache_dir,
        checkpoint_path=checkpoint_path,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    return RuntimeSwitch(det, runtime_spec(runtime, precision), str(det.folder))


def open_exported_job(
    folder: str | os.PathLike,
    spec: str = "onnxruntime",
    *,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> RuntimeSwitch:
    """Open a folder written by ``export-model`` with ``spec`` (an export runtime).

    Raises:
        ExportError: not such a folder (no or a foreign ``deploy.json``), runtime not
            installed, precision not measured for it, graph that does not load.
    """
    from core.deploy.runtime import load_exported

    runtime, precision = parse_runtime(spec)
    if runtime == TORCH:
        runtime = "onnxruntime"
    on_progress(Progress(0, 1, f"opening {os.path.basename(str(folder))} with {runtime}"))
    try:
        det = load_exported(folder, runtime, None, precision)
    except ExportError:
        raise
    except Exception as exc:  # the runtime's own error for a damaged graph file
        raise ExportError(f"{folder}: the exported graph does not load ({exc})") from exc
    on_progress(Progress(1, 1, f"{runtime} ready"))
    return RuntimeSwitch(det, runtime_spec(runtime, precision), str(folder))


__all__ = [
    "TORCH",
    "RuntimeEntry",
    "RuntimeSwitch",
    "open_exported_job",
    "runtime_entries",
    "runtime_job",
    "short_label",
]
