"""The flow detector exports to ONNX / OpenVINO with the torch detector's maps and verdicts;
a graph that would export unfaithfully is refused with ExportError and nothing written."""

from __future__ import annotations

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
    sizing = man["working_size"]
    assert (sizing["work_area"], sizing["enlarge"], sizing["stride"]) == (128, False, 16)
    assert man["feature_strides"] == [8, 16]
    assert man["files"] == {"onnx": "model.onnx", "openvino": "model.xml"}
    ref = det.predict(test)
    s = sorted(p.score for p in ref)
    thr = Thresholds((s[len(s) // 2 - 1] + s[len(s) // 2]) / 2, 1.0)
    for runtime in ("onnxruntime", "openvino"):
        got = load_exported(tmp_path / "flow", runtime, threads=1).predict(test, batch_size=3)
        worst = 0.0
        for a, b in zip(ref, got, strict=True):
            assert b.anomaly_map.shape == a.anomaly_map.shape
            worst = max(worst, float(np.abs(a.anomaly_map - b.anomaly_map).max()))
            assert b.score == pytest.approx(a.score, rel=1e-4, abs=1e-4)
            assert (a.score >= thr.image) == (b.score >= thr.image)
        assert worst <= 1e-3, (runtime, worst)
    assert {a.score >= thr.image for a in ref} == {True, False}


class _BakedStatistics(torch.nn.Module):
    """Normalises with statistics read out of the tensor through numpy: a trace keeps them
    as the constants of the example input, so the exported graph would score differently."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats):
        baked = {s: torch.from_numpy(f.detach().numpy().copy()) for s, f in feats.items()}
        return self.model(baked)


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
