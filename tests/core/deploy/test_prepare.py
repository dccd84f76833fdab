"""A checkpoint's detector exported once into a cache folder and opened with a runtime."""

from __future__ import annotations

import pytest

from core.deploy.choices import runtime_of
from core.deploy.prepare import cache_folder, export_for_runtime
from core.errors import Cancelled, ExportError


def test_export_is_cached_per_checkpoint_and_reused(patchcore_detector, tmp_path, monkeypatch):
    import core.deploy.export as export

    ckpt = tmp_path / "pc.pt"
    sha = patchcore_detector.save(str(ckpt))
    calls, real = [], export.export_model
    monkeypatch.setattr(export, "export_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    reports = []
    cache = tmp_path / "cache"
    det = export_for_runtime(
        patchcore_detector,
        "onnxruntime",
        "fp32",
        cache,
        checkpoint_path=ckpt,
        on_progress=reports.append,
    )
    assert runtime_of(det) == "onnxruntime" and runtime_of(patchcore_detector) == "torch"
    assert det.folder == cache_folder(cache, "patchcore", sha, "onnxruntime")
    assert [r.done for r in reports] == [0, 1, 2, 3]
    again = export_for_runtime(
        patchcore_detector, "onnxruntime", "fp32", cache, checkpoint_path=ckpt
    )
    assert len(calls) == 1 and again.folder == det.folder  # the cached export is reused


def test_unmeasured_precision_and_cancel_write_nothing(patchcore_detector, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ExportError, match="int8 with onnxruntime is not offered"):
        export_for_runtime(patchcore_detector, "onnxruntime", "int8", cache)
    with pytest.raises(Cancelled):
        export_for_runtime(
            patchcore_detector, "onnxruntime", "fp32", cache, should_stop=lambda: True
        )
    with pytest.raises(ExportError, match="unknown export runtime"):
        export_for_runtime(patchcore_detector, "torch", "fp32", cache)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_detector_on_another_device_is_exported_from_a_cpu_copy():
    from types import SimpleNamespace

    import torch

    from core.deploy.prepare import on_cpu

    det = SimpleNamespace(device="cuda:0", model=torch.nn.Linear(2, 2), _fast=object())
    cpu = on_cpu(det)
    assert cpu.device == "cpu" and cpu._fast is None and cpu.model is not det.model
    assert det.device == "cuda:0" and det._fast is not None  # the caller's keeps its device
    here = SimpleNamespace(device="cpu", model=det.model)
    assert on_cpu(here) is here
