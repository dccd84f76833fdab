"""Which runtimes and precisions an exported model can run with (torch-free, Qt-free).

:func:`available_runtimes` lists every runtime, installed or not, with the command that
installs it, for a GUI or the command line. :func:`check_precision` refuses a reduced
precision that was not measured to keep image and pixel AUROC within
:data:`AUROC_TOLERANCE` of fp32 on the demo set and on ``magnetic_tile`` for that
method / variant / runtime (:data:`MEASURED`, filled by
``benchmarks/bench_deploy.py --precision``; figures in docs/deploy.md).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from core.errors import ExportError

INSTALL_HINT = 'pip install -e ".[deploy]"'
AUROC_TOLERANCE = 0.005
PRECISIONS = ("fp32", "bf16", "fp16", "int8")


@dataclass(frozen=True)
class RuntimeInfo:
    """One runtime: ``name`` (the ``--runtime`` value), ``label``, ``installed``,
    ``install_hint`` (empty when installed), ``reads`` (``checkpoint`` or ``export``),
    ``precisions`` it can be asked for (before the measured-precision check)."""

    name: str
    label: str
    installed: bool
    install_hint: str
    reads: str
    precisions: tuple[str, ...]


#: name -> (label, module that must import, reads, precisions)
_RUNTIMES = {
    "torch": ("PyTorch (the checkpoint)", "torch", "checkpoint", ("fp32",)),
    "onnxruntime": ("ONNX Runtime (exported folder)", "onnxruntime", "export", ("fp32", "int8")),
    "openvino": ("OpenVINO (exported folder)", "openvino", "export", ("fp32", "bf16")),
}
RUNTIMES = tuple(_RUNTIMES)

#: (method, variant, runtime, precision) -> largest |AUROC change| vs fp32 (image, pixel)
#: over the demo set and magnetic_tile; only entries within AUROC_TOLERANCE are offered
MEASURED: dict[tuple[str, str, str, str], tuple[float, float]] = {
    # DRAEM compact (short CPU runs: 25 steps on the demo set, 48 on magnetic_tile)
    ("draem", "compact", "openvino", "bf16"): (0.0004, 0.0007),
    ("draem", "compact", "onnxruntime", "int8"): (0.0159, 0.0331),
    # PatchCore, default config: demo (80 train images) and magnetic_tile (154 of 768)
    ("patchcore", "efficientnet_lite0", "openvino", "bf16"): (0.0015, 0.0016),
    ("patchcore", "efficientnet_lite0", "onnxruntime", "int8"): (0.0040, 0.0266),
    # flow, default config (conv subnet): demo (300 steps), magnetic_tile (5 minutes)
    ("flow", "flow-conv", "openvino", "bf16"): (0.0000, 0.0003),
    ("flow", "flow-conv", "onnxruntime", "int8"): (0.0197, 0.0277),
}


def available_runtimes() -> list[RuntimeInfo]:
    """Every runtime in display order, whether its package is installed (no import)."""
    out = []
    for name, (label, module, reads, precisions) in _RUNTIMES.items():
        installed = importlib.util.find_spec(module) is not None
        hint = "" if installed else (INSTALL_HINT if reads == "export" else "pip install torch")
        out.append(RuntimeInfo(name, label, installed, hint, reads, precisions))
    return out


def parse_runtime(value: str) -> tuple[str, str]:
    """``RUNTIME[:PRECISION]`` (``openvino:bf16``) -> (runtime, precision); ``auto`` allowed.
    Raises ValueError with the choices for anything else."""
    name, _, precision = value.partition(":")
    precision = precision or "fp32"
    if name not in ("auto", *RUNTIMES):
        raise ValueError(f"unknown runtime {name!r}; choose auto, {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
    return name, precision


def measured_precisions(method: str, variant: str, runtime: str) -> list[str]:
    """The reduced precisions measured safe for this method / variant / runtime."""
    return [
        p
        for (m, v, r, p), (di, dp) in MEASURED.items()
        if (m, v, r) == (method, variant, runtime) and max(di, dp) <= AUROC_TOLERANCE
    ]


def runtime_spec(runtime: str, precision: str = "fp32") -> str:
    """The ``--runtime`` value that names a run: ``torch``, ``onnxruntime``, ``openvino:bf16``
    (the precision is left out when it is fp32)."""
    return runtime if precision == "fp32" else f"{runtime}:{precision}"


def runtime_of(detector) -> str:
    """:func:`runtime_spec` of the runtime that ``detector`` runs with: an exported
    detector's ``runtime`` / ``precision`` (``core.deploy.runtime``), else ``torch``."""
    runtime = str(getattr(detector, "runtime", "") or "torch")
    return runtime_spec(runtime, str(getattr(detector, "precision", "fp32") or "fp32"))


def check_precision(method: str, variant: str, runtime: str, precision: str) -> None:
    """Return if ``precision`` may be used, else raise :class:`ExportError` saying why."""
    if precision == "fp32":
        return
    offered = _RUNTIMES.get(runtime, ("", "", "", ()))[3]
    if precision not in offered:
        raise ExportError(
            f"{runtime} does not run {precision}; it offers {', '.join(offered) or 'nothing'}"
        )
    key = (method, variant, runtime, precision)
    if key not in MEASURED:
        safe = measured_precisions(method, variant, runtime)
        raise ExportError(
            f"{precision} with {runtime} is not offered for {method} ({variant}): it was not "
            f"measured to keep AUROC within {AUROC_TOLERANCE} of fp32 (measured safe here: "
            f"{', '.join(['fp32', *safe])}); see docs/deploy.md"
        )
    di, dp = MEASURED[key]
    if max(di, dp) > AUROC_TOLERANCE:
        raise ExportError(
            f"{precision} with {runtime} is not offered for {method} ({variant}): it changed "
            f"image / pixel AUROC by {di:.4f} / {dp:.4f} (> {AUROC_TOLERANCE}); use fp32"
        )


__all__ = [
    "AUROC_TOLERANCE",
    "MEASURED",
    "PRECISIONS",
    "RUNTIMES",
    "RuntimeInfo",
    "available_runtimes",
    "check_precision",
    "measured_precisions",
    "parse_runtime",
    "runtime_of",
    "runtime_spec",
]
