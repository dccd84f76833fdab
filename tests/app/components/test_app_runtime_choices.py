"""The Inspection page's runtime choices and what an export records of the runtime (Qt-free)."""

from __future__ import annotations

import numpy as np
import pytest

from app.components.inspection.jobs import export_snapshot
from app.components.inspection.model import InspectionState
from app.components.inspection.runtime import open_exported_job, runtime_entries, short_label
from core.deploy.choices import RuntimeInfo
from core.errors import ExportError

FAKE_RUNTIMES = [
    RuntimeInfo("torch", "PyTorch (the checkpoint)", True, "", "checkpoint", ("fp32",)),
    RuntimeInfo(
        "onnxruntime", "ONNX Runtime (x)", False, "pip install x", "export", ("fp32", "int8")
    ),
    RuntimeInfo("openvino", "OpenVINO (x)", True, "", "export", ("fp32", "bf16")),
]


def test_entries_disable_missing_runtimes_and_offer_only_measured_precisions():
    entries = runtime_entries("patchcore", "efficientnet_lite0", runtimes=FAKE_RUNTIMES)
    by_spec = {e.spec: e for e in entries}
    # openvino:bf16 is measured safe for PatchCore; onnxruntime:int8 changed AUROC too much
    assert list(by_spec) == ["torch", "onnxruntime", "openvino", "openvino:bf16"]
    assert by_spec["torch"].enabled and by_spec["openvino:bf16"].enabled
    assert not by_spec["onnxruntime"].enabled
    assert "pip install x" in by_spec["onnxruntime"].tip
    assert by_spec["openvino:bf16"].label == "OpenVINO bf16"
    fake = runtime_entries("fake", "", runtimes=FAKE_RUNTIMES)
    assert [e.spec for e in fake] == ["torch", "onnxruntime", "openvino"]  # nothing measured
    folder = runtime_entries("fake", "", has_checkpoint=False, runtimes=FAKE_RUNTIMES)
    assert not folder[0].enabled and "exported folder" in folder[0].tip
    assert short_label("openvino:bf16") == "OpenVINO bf16" and short_label("torch") == "PyTorch"


def _state(n: int) -> InspectionState:
    from app.components.inspection.items import InspectedItem

    state = InspectionState()
    state.add_items(
        InspectedItem(
            path=f"/x/{i}.png",
            key=None,
            score=0.1 * i,
            shape=(4, 4),
            thumbnail=np.zeros((4, 4, 3), np.uint8),
            map_min=0.0,
            map_max=1.0,
        )
        for i in range(n)
    )
    return state


def test_export_records_the_runtime_and_refuses_a_mix(monkeypatch):
    state = _state(3)
    monkeypatch.setattr(state, "has_map", lambda i: True)
    meta = {"method": "fake", "model_config": {}, "checkpoint_path": None}
    assert export_snapshot(state, [0, 1, 2], **meta).runtime == "torch"
    scored = {f"/x/{i}.png": "openvino:bf16" for i in range(3)}
    assert export_snapshot(state, [0, 1, 2], scored_with=scored, **meta).runtime == "openvino:bf16"
    scored["/x/1.png"] = "torch"
    assert export_snapshot(state, [0, 2], scored_with=scored, **meta).runtime == "openvino:bf16"
    with pytest.raises(ExportError, match="different runtimes"):
        export_snapshot(state, [0, 1, 2], scored_with=scored, **meta)


def test_a_folder_that_is_no_export_is_refused_with_one_clear_reason(tmp_path):
    with pytest.raises(ExportError, match="not an exported model folder"):
        open_exported_job(tmp_path)
