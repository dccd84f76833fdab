"""Device and precision policy: which device a run uses and how it computes there.

The single home of the "which device" and "which precision" decisions. Everything
that places tensors asks :func:`resolve_device`; anything that picks a default by
hardware asks :func:`device_kind`; training asks :func:`policy` for the whole set
(device, autocast dtype, loss scaling, memory format, cuDNN autotuning).

Decisions (:func:`policy`):

* CUDA with bf16 support: bf16 autocast, no loss scaling needed.
* CUDA without bf16: fp16 autocast with a ``GradScaler``.
* CPU: float32 (no autocast, no scaler).
* channels-last memory format on both (the convolutional networks are laid out so).
* ``torch.backends.cudnn.benchmark`` on for CUDA runs, scoped to the run by
  :meth:`DevicePolicy.scope` (the previous value is restored afterwards).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator

import torch

from core.errors import ConfigError

_CUDA = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(name: str = "auto") -> str:
    """``auto`` -> ``cuda`` if a CUDA GPU is usable, else ``cpu``.

    ``cuda`` / ``cuda:N`` must exist, else :class:`ConfigError` with a clear message.
    Returns a string ``torch.device`` accepts.
    """
    if not isinstance(name, str):
        raise ConfigError(f"device must be a string (auto|cpu|cuda[:N]), got {name!r}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    m = _CUDA.match(name)
    if m:
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} was requested but no CUDA GPU is available "
                f"(torch {torch.__version__}); choose 'cpu' or 'auto'"
            )
        index = int(m.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} was requested but only {torch.cuda.device_count()} "
                "CUDA GPU(s) are present"
            )
        return name
    raise ConfigError(f"device must be auto|cpu|cuda[:N], got {name!r}")


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """One device a run can use, for people to read (the GUI's device choice).

    Attributes:
        device: ``"cpu"`` or ``"cuda:N"``.
        kind: ``"cpu"`` or ``"cuda"``.
        name: ``"CPU"`` or the GPU's name (e.g. ``"NVIDIA H200"``).
        memory_bytes: the GPU's total memory; None for the CPU.
        cores: logical CPU cores for the CPU; None for a GPU.
    """

    device: str
    kind: str
    name: str
    memory_bytes: int | None = None
    cores: int | None = None

    def describe(self) -> str:
        """``"NVIDIA H200, 139.8 GiB"`` or ``"CPU, 16 cores"``."""
        if self.memory_bytes is not None:
            return f"{self.name}, {self.memory_bytes / 2**30:.1f} GiB"
        return f"{self.name}, {self.cores} cores" if self.cores else self.name


def available_devices() -> tuple[DeviceInfo, ...]:
    """The CPU, then every usable CUDA GPU (``cuda:0``, ``cuda:1``, ...) with its name
    and memory. Querying a GPU that fails is left out rather than raising."""
    import os

    out = [DeviceInfo("cpu", "cpu", "CPU", cores=os.cpu_count())]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            try:
                props = torch.cuda.get_device_properties(i)
            except (RuntimeError, AssertionError):
                continue
            out.append(DeviceInfo(f"cuda:{i}", "cuda", str(props.name), int(props.total_memory)))
    return tuple(out)


def describe_device(name: str = "auto", devices: tuple[DeviceInfo, ...] | None = None) -> str:
    """What ``name`` (``auto|cpu|cuda[:N]``) runs on, in words: ``"NVIDIA H200, 139.8 GiB"``,
    ``"CPU, 2 cores"``, or ``"not present"`` for a GPU that is not there."""
    devices = available_devices() if devices is None else devices
    gpus = [d for d in devices if d.kind == "cuda"]
    if name == "auto":
        name = "cuda" if gpus else "cpu"
    if name == "cuda":
        name = "cuda:0"
    for d in devices:
        if d.device == name:
            more = f" (+{len(gpus) - 1} more)" if name == "cuda:0" and len(gpus) > 1 else ""
            return d.describe() + more
    return "not present"


def device_kind(device: str) -> str:
    """``"cuda"`` for any CUDA device string, else ``"cpu"`` (for per-hardware defaults)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


@dataclasses.dataclass(frozen=True)
class DevicePolicy:
    """How a run computes: device, mixed precision, memory format, cuDNN autotuning.

    Attributes:
        device: resolved device string (``cpu``, ``cuda``, ``cuda:N``).
        kind: ``cpu`` or ``cuda``.
        amp_dtype: autocast dtype (``torch.bfloat16`` / ``torch.float16``), or None for
            plain float32.
        grad_scaling: whether a ``GradScaler`` is needed (fp16 autocast only).
        channels_last: whether models and inputs use the channels-last memory format.
        cudnn_benchmark: the value :meth:`scope` gives ``torch.backends.cudnn.benchmark``.
    """

    device: str
    kind: str
    amp_dtype: torch.dtype | None
    grad_scaling: bool
    channels_last: bool
    cudnn_benchmark: bool

    @property
    def amp(self) -> bool:
        return self.amp_dtype is not None

    @property
    def precision(self) -> str:
        """``"bf16"``, ``"fp16"`` or ``"fp32"`` (for logs and checkpoint metadata)."""
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "fp32")

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for the forward pass (a no-op context in float32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.kind, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A ``GradScaler``, enabled only where fp16 needs loss scaling."""
        return torch.amp.GradScaler("cuda", enabled=self.grad_scaling)

    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @contextlib.contextmanager
    def scope(self) -> Iterator[DevicePolicy]:
        """Set ``cudnn.benchmark`` for the run; restore the previous value on exit."""
        previous = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        try:
            yield self
        finally:
            torch.backends.cudnn.benchmark = previous

    def on(self, device: str) -> DevicePolicy:
        """The same policy on another device of the same kind (e.g. ``cuda:LOCAL_RANK``)."""
        if device_kind(device) != self.kind:
            raise ConfigError(f"cannot move a {self.kind} policy to device {device!r}")
        return dataclasses.replace(self, device=device)


def policy(device: str = "auto", *, amp: bool = True) -> DevicePolicy:
    """The run's :class:`DevicePolicy` for ``device`` (``auto|cpu|cuda[:N]``).

    ``amp=False`` forces float32 everywhere. Raises :class:`ConfigError` for a device
    that is not available (see :func:`resolve_device`).
    """
    resolved = resolve_device(device)
    kind = device_kind(resolved)
    dtype = None
    if amp and kind == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return DevicePolicy(
        device=resolved,
        kind=kind,
        amp_dtype=dtype,
        grad_scaling=dtype == torch.float16,
        channels_last=True,
        cudnn_benchmark=kind == "cuda",
    )


__all__ = [
    "DeviceInfo",
    "DevicePolicy",
    "available_devices",
    "describe_device",
    "device_kind",
    "policy",
    "resolve_device",
]
