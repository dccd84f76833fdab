"""core.demo: the demo data are present and the headless demo's training budget is capped."""

from __future__ import annotations

import pytest

import core.demo as demo
from core.errors import Cancelled
from core.types import TrainResult


def test_demo_root_has_mvtec_layout():
    root = demo.demo_root()
    assert (root / "train" / "good").is_dir()
    assert any((root / "test").iterdir())


def _capture_train(monkeypatch) -> dict:
    """Replace core.models.draem.train.train by a stub that records its TrainConfig and reports a cancel."""
    import core.models.draem.train

    seen: dict = {}

    def fake_train(images, *, train_config, out_path, **kwargs):
        seen["config"] = train_config
        seen["n_images"] = len(images)
        return TrainResult(out_path, "cancelled", 0, 0.0, {}, "stub")

    monkeypatch.setattr(core.models.draem.train, "train", fake_train)
    return seen


def test_run_demo_caps_training_by_steps_and_minutes(monkeypatch, tmp_path):
    seen = _capture_train(monkeypatch)
    with pytest.raises(Cancelled):
        demo.run_demo(tmp_path, device="cpu")
    tc = seen["config"]
    assert tc.steps == demo.DEMO_STEPS
    assert tc.minutes == demo.DEMO_MINUTES  # whichever runs out first stops training
    assert 0 < demo.DEMO_MINUTES <= 2
    assert seen["n_images"] > 0


def test_run_demo_time_cap_can_be_lifted(monkeypatch, tmp_path):
    seen = _capture_train(monkeypatch)
    with pytest.raises(Cancelled):
        demo.run_demo(tmp_path, steps=5, minutes=None, device="cpu")
    assert seen["config"].steps == 5 and seen["config"].minutes is None
