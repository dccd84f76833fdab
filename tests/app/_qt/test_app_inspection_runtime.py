"""The Inspection page's runtime selector (pytest-qt, offscreen): the entries, a switch to an
exported runtime that scores like PyTorch, failures that keep the results, what exports record."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from fakes import FakeDetector, write_images

from app.components.inspection import runtime as runtime_mod  # noqa: E402
from app.components.inspection.store import MAP  # noqa: E402
from core.deploy.choices import RuntimeInfo  # noqa: E402
from core.errors import ExportError  # noqa: E402
from core.io.export import read_batch  # noqa: E402


def wait_idle(qtbot, panel, timeout=60_000):
    qtbot.waitUntil(lambda: not panel.jobbar.busy and not panel.session.pending, timeout=timeout)


def results(panel):
    s = panel.state
    maps = {s.path(i): s.store.get(s.key(i), MAP) for i in range(len(s))}
    return s.scores.copy(), s.ng.copy() if hasattr(s, "ng") else None, maps


def combo_items(panel):
    c = panel.runtime.combo
    item = c.model().item
    return [(c.itemData(i), item(i).isEnabled()) for i in range(c.count())]


def test_selector_lists_runtimes_and_disables_the_missing_ones(qtbot, panel, monkeypatch):
    fake = [
        RuntimeInfo("torch", "PyTorch (the checkpoint)", True, "", "checkpoint", ("fp32",)),
        RuntimeInfo("onnxruntime", "ONNX Runtime (x)", True, "", "export", ("fp32", "int8")),
        RuntimeInfo("openvino", "OpenVINO (x)", False, "pip install ov", "export", ("fp32",)),
    ]
    monkeypatch.setattr(runtime_mod, "available_runtimes", lambda: fake)
    assert not panel.runtime.combo.isEnabled()  # no model yet
    panel.set_detector(FakeDetector(), None)
    assert combo_items(panel) == [("torch", True), ("onnxruntime", True), ("openvino", False)]
    assert panel.runtime.current == "torch"  # the default: what ran before
    tip = panel.runtime.combo.itemData(2, 3)  # Qt.ToolTipRole
    assert "pip install ov" in tip


def test_a_failing_export_keeps_the_runtime_and_the_results(qtbot, panel, tmp_path, monkeypatch):
    import core.deploy.export as export

    ckpt = tmp_path / "fake.pt"
    ckpt.write_bytes(b"stand-in checkpoint")
    panel.set_detector(FakeDetector(), str(ckpt))
    panel.add_paths(write_images(tmp_path / "imgs", 4, spots=(1,)))
    wait_idle(qtbot, panel)
    before = panel.state.scores.copy()

    def refuse(*_a, **_k):
        raise ExportError("the exported graph differs from the model by 0.5; nothing was written")

    monkeypatch.setattr(export, "export_model", refuse)
    panel.messages.clear()
    assert panel.set_runtime("onnxruntime")  # started in the background
    wait_idle(qtbot, panel)
    failures = [m for m in panel.messages if "failed" in m]
    assert len(failures) == 1 and "differs from the model" in failures[0]
    assert panel.session.runtime == "torch" and panel.runtime.current == "torch"
    assert isinstance(panel.detector, FakeDetector)
    np.testing.assert_array_equal(panel.state.scores, before)
    assert not list(tmp_path.glob("imgs/*.onnx"))
    # cancelled during the export: the runtime and results stay too
    import threading

    go = threading.Event()
    monkeypatch.setattr(export, "export_model", lambda *a, **k: go.wait(10))
    panel.messages.clear()
    assert panel.set_runtime("onnxruntime")
    panel.jobbar.cancel()  # Esc
    go.set()
    wait_idle(qtbot, panel)
    assert any("cancelled" in m for m in panel.messages)
    assert panel.session.runtime == "torch" and panel.runtime.current == "torch"
    np.testing.assert_array_equal(panel.state.scores, before)
    # a broken folder: one message, nothing changes
    panel.messages.clear()
    assert panel.open_exported_model(str(tmp_path / "imgs"))
    wait_idle(qtbot, panel)
    assert any("not an exported model folder" in m for m in panel.messages)
    assert isinstance(panel.detector, FakeDetector) and panel.session.runtime == "torch"


@pytest.mark.slow
def test_onnxruntime_scores_like_torch_and_the_export_records_it(qtbot, panel, tmp_path):
    from core.models.patchcore.detector import PatchCoreConfig, fit_patchcore

    paths = write_images(tmp_path / "imgs", 6, spots=(0, 3))
    # good images apart from the inspected ones: a memorised image's near-zero distances
    # go through a square root that magnifies rounding (its map corners differ by ~0.04)
    train = write_images(tmp_path / "train", 2, seed=1)
    good = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in train]
    cfg = PatchCoreConfig(resolution=64, coreset_ratio=0.5, search="exact", calibration_images=1)
    det = fit_patchcore(good, config=cfg)
    ckpt = tmp_path / "pc.pt"
    det.save(str(ckpt))
    panel.set_detector(det, str(ckpt))
    panel.add_paths(paths)
    wait_idle(qtbot, panel)
    # a threshold between the middle scores: verdicts both ways
    s = np.sort(panel.state.scores)
    panel.set_thresholds(image=float(s[2] + s[3]) / 2)
    torch_scores = panel.state.scores.copy()
    torch_ng = torch_scores >= panel.state.thresholds.image
    torch_maps = {p: m.copy() for p, m in results(panel)[2].items()}
    assert panel.export_to(str(tmp_path / "torch.h5"))
    wait_idle(qtbot, panel)
    assert read_batch(tmp_path / "torch.h5").attrs["runtime"] == "torch"

    assert panel.set_runtime("onnxruntime")
    wait_idle(qtbot, panel)
    assert panel.session.runtime == "onnxruntime" and panel.runtime.current == "onnxruntime"
    assert panel.runtime.combo.currentText() == "ONNX Runtime"  # shown on the page
    np.testing.assert_allclose(panel.state.scores, torch_scores, atol=1e-3)
    assert ((panel.state.scores >= panel.state.thresholds.image) == torch_ng).all()
    for path, amap in results(panel)[2].items():
        assert float(np.abs(amap - torch_maps[path]).max()) <= 1e-3
    out = tmp_path / "onnx.h5"
    assert panel.export_to(str(out))
    wait_idle(qtbot, panel)
    batch = read_batch(out)
    assert batch.attrs["runtime"] == "onnxruntime"
    assert list(batch.verdicts) == ["NG" if v else "OK" for v in torch_ng]
    from core.io.files import file_sha256

    assert batch.attrs["checkpoint_sha256"] == file_sha256(ckpt)

    assert panel.set_runtime("openvino")  # OpenVINO: the same within the tolerance
    wait_idle(qtbot, panel)
    assert panel.session.runtime == "openvino"
    np.testing.assert_allclose(panel.state.scores, torch_scores, atol=1e-3)
    for path, amap in results(panel)[2].items():
        assert float(np.abs(amap - torch_maps[path]).max()) <= 1e-3
    assert panel.set_runtime("onnxruntime")  # its cached export: no second export
    wait_idle(qtbot, panel)
    from pathlib import Path

    assert len(list(Path(panel.session._cache).iterdir())) == 2  # one onnx, one openvino

    # the exported folder opened directly: PyTorch is not offered for it
    folder = panel.session.runtime_folder
    assert panel.open_exported_model(folder)
    wait_idle(qtbot, panel)
    assert panel.session.export_folder == folder and panel.session.runtime == "onnxruntime"
    assert ("torch", False) in combo_items(panel)
    # back to PyTorch is refused for a folder (no checkpoint); the model stays
    assert panel.set_runtime("torch")
    wait_idle(qtbot, panel)
    assert panel.session.runtime == "onnxruntime"
