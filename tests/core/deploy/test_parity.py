"""fp32 exports (onnxruntime, OpenVINO) give the torch detectors' maps and verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import ModelConfig, Thresholds
from core.deploy import export_model, is_exported, load_exported, read_manifest
from core.errors import ExportError

MAP_TOL = 1e-3


def _between(preds) -> Thresholds:
    """A threshold halfway between the two middle scores: verdicts both ways, no ties."""
    s = sorted(p.score for p in preds)
    k = len(s) // 2
    return Thresholds((s[k - 1] + s[k]) / 2, 1.0)


def _compare(ref, got, thresholds: Thresholds, score_tol: float) -> float:
    assert len(ref) == len(got)
    worst = 0.0
    for a, b in zip(ref, got, strict=True):
        assert a.anomaly_map.shape == b.anomaly_map.shape and b.anomaly_map.dtype == np.float32
        worst = max(worst, float(np.abs(a.anomaly_map - b.anomaly_map).max()))
        assert b.score == pytest.approx(a.score, rel=score_tol, abs=score_tol)
        assert (a.score >= thresholds.image) == (b.score >= thresholds.image)
    assert worst <= MAP_TOL
    return worst


def test_compact_onnx_and_openvino_match_torch(compact_detector, demo_images, tmp_path):
    det, ckpt = compact_detector
    _, test = demo_images
    from core.io.checkpoint import file_sha256

    path = export_model(det, tmp_path / "exp", "openvino", checkpoint_sha256=file_sha256(ckpt))
    assert path.name == "model.xml" and is_exported(tmp_path / "exp")
    man = read_manifest(tmp_path / "exp")
    assert man["checkpoint_sha256"] == file_sha256(ckpt)
    assert man["flip_views"] == 3 and man["score_kernel"] == 5
    assert man["standardisation"]["enabled"] and man["config"]["preset"] == "compact"
    ref = det.predict(test, batch_size=4)
    # a threshold between the scores so that verdicts are exercised both ways
    thr = _between(ref)
    for runtime in ("onnxruntime", "openvino"):
        got = load_exported(tmp_path / "exp", runtime, threads=1).predict(test, batch_size=4)
        _compare(ref, got, thr, 1e-4)


def test_paper_network_matches_torch(demo_images, tmp_path):
    import torch

    from core.models.draem.detector import DraemDetector
    from core.models.draem.network import build_model

    cfg = ModelConfig(preset="paper", image_size=(64, 64), recon_width=8, disc_width=8)
    torch.manual_seed(0)
    det = DraemDetector(build_model(cfg), cfg, Thresholds(0.5, 0.5), device="cpu")
    export_model(det, tmp_path / "paper", "onnx")
    _, test = demo_images
    ref = det.predict(test[:3])
    got = load_exported(tmp_path / "paper").predict(test[:3])
    _compare(ref, got, det.thresholds, 1e-4)
    assert all(p.reconstruction is None for p in got)


def test_patchcore_onnx_matches_torch(patchcore_detector, demo_images, tmp_path):
    det = patchcore_detector
    _, test = demo_images
    export_model(det, tmp_path / "pc", "onnx")
    man = read_manifest(tmp_path / "pc")
    assert man["bank_size"] == det.index.bank.shape[0] and man["method"] == "patchcore"
    ref = det.predict(test)
    thr = _between(ref)
    got = load_exported(tmp_path / "pc").predict(test, batch_size=3)
    _compare(ref, got, thr, 1e-4)


def test_export_refuses_existing_folder_and_leaves_nothing_on_failure(patchcore_detector, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="exists"):
        export_model(patchcore_detector, tmp_path / "taken", "onnx")
    with pytest.raises(ExportError, match="format"):
        export_model(patchcore_detector, tmp_path / "x", "tflite")
    ivf = patchcore_detector.with_thresholds(patchcore_detector.thresholds)
    ivf.index = type("Ivf", (), {"n_lists": 4, "bank": patchcore_detector.index.bank})()
    with pytest.raises(ExportError, match="inverted-file"):
        export_model(ivf, tmp_path / "ivf", "onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_exported_detector_refuses_checkpoint_calls(patchcore_detector, tmp_path):
    export_model(patchcore_detector, tmp_path / "pc", "onnx")
    det = load_exported(tmp_path / "pc")
    assert det.method == "patchcore" and det.metadata["runtime"] == "onnxruntime"
    assert det.with_thresholds(Thresholds(9.0, 9.0)).thresholds.image == 9.0
    with pytest.raises(ExportError):
        det.save(str(tmp_path / "m.pt"))
