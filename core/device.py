"""Device policy: which device a run uses (``auto | cpu | cuda[:N]``).

The single home of the "which device" decision; everything that places tensors asks
:func:`resolve_device`, and anything that picks a default by hardware asks
:func:`device_kind`.
"""

from __future__ import annotations

import re

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


def device_kind(device: str) -> str:
    """``"cuda"`` for any CUDA device string, else ``"cpu"`` (for per-hardware defaults)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


__all__ = ["device_kind", "resolve_device"]
