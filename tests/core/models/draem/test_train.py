"""Training loop: budgets, progress, cancel, resume, NaN guard, thresholds, and that it learns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.config import ModelConfig, SimulatorConfig, TrainConfig
from core.errors import CheckpointError, ConfigError, TrainingError
from core.io.checkpoint import load_checkpoint
from core.models.draem.loss import DraemLoss
from core.models.draem.train import load_training_state, lr_at, resolve_device, train
from core.registry import load_detector
from core.types import TrainProgress

MC = ModelConfig(preset="paper", image_size=(32, 32), recon_width=4, disc_width=4)
SC = SimulatorConfig(image_size=(64, 64))  # deliberately different: the model size wins


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threading overhead dominates on a busy CPU
    yield
    torch.set_num_threads(n)


def _images(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((40, 52, 3)) * 80 + 90).astype(np.uint8) for _ in range(n)]


def _tc(**kw):
    base = dict(steps=6, batch_size=4, num_workers=0, seed=0, lr=1e-3)
    base.update(kw)
    return TrainConfig(**base)


def _run(tmp_path, tc, name="m.pt", **kw):
    return train(
        _images(), model_config=MC, sim_config=SC, train_config=tc, out_path=tmp_path / name, **kw
    )


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ConfigError):
        resolve_device("tpu")


def test_lr_schedule_scaled_to_budget():
    tc = _tc(lr=1e-4)
    assert lr_at(tc, 0.0) == pytest.approx(1e-4)
    assert lr_at(tc, 0.79) == pytest.approx(1e-4)
    assert lr_at(tc, 0.8) == pytest.approx(2e-5)
    assert lr_at(tc, 0.95) == pytest.approx(4e-6)


def test_steps_budget_progress_and_final_checkpoint(tmp_path):
    seen: list[TrainProgress] = []
    res = _run(tmp_path, _tc(steps=10, preview_every_s=1e-6), on_progress=seen.append)
    assert res.status == "finished" and res.steps == 10
    assert set(res.final_losses) == {"l2", "ssim", "focal", "total"}
    assert all(math.isfinite(v) and v >= 0 for v in res.final_losses.values())
    assert res.data_wait_s >= 0 and res.elapsed_s > 0
    steps = [p.step for p in seen]
    assert steps == sorted(steps) and steps[-1] == 10 and seen[-1].total_steps == 10
    assert seen[-1].lr == pytest.approx(1e-3 * 0.2**2)  # after 90 % of the budget
    prev = seen[0].preview
    assert prev is not None and prev.image.shape == (32, 32, 3) and prev.image.dtype == np.uint8
    assert prev.reconstruction.shape == (32, 32, 3)
    assert prev.mask.shape == (32, 32) and prev.prediction.shape == (32, 32)
    assert prev.prediction.min() >= 0 and prev.prediction.max() <= 1
    assert len(res.loss_history["step"]) == len(res.loss_history["total"]) >= 1
    payload = load_checkpoint(res.checkpoint_path)
    assert payload["optimizer"] is None and payload["train_state"]["finished"]
    assert payload["metadata"]["data_summary"]["n_images"] == 6
    assert SimulatorConfig.from_json(payload["sim_config"]).image_size == (32, 32)
    det = load_detector(res.checkpoint_path, device="cpu")
    assert det.thresholds.image == 0.5 and det.thresholds.pixel == 0.5
    (p,) = det.predict([_images(1, seed=5)[0]])
    assert p.anomaly_map.shape == (40, 52)


def test_epochs_and_minutes_budgets(tmp_path):
    res = _run(tmp_path, _tc(steps=None, epochs=2, batch_size=4), name="e.pt")
    assert res.steps == math.ceil(2 * 6 / 4)
    res = _run(tmp_path, _tc(steps=None, minutes=0.5 / 60), name="t.pt")
    assert res.status == "finished" and res.elapsed_s >= 0.5 and res.steps >= 1


def test_cancel_leaves_a_loadable_resumable_checkpoint(tmp_path):
    calls = {"n": 0}

    def stop_after_3():
        calls["n"] += 1
        return calls["n"] > 3

    res = _run(tmp_path, _tc(steps=50, num_workers=1), should_stop=stop_after_3)
    assert res.status == "cancelled" and res.steps == 3
    assert "resume" in res.message
    state = load_training_state(res.checkpoint_path)
    assert state["step"] == 3 and not state["finished"] and state["sample_index"] == 12
    assert load_checkpoint(res.checkpoint_path)["optimizer"] is not None
    load_detector(res.checkpoint_path, device="cpu").predict(_images(1))


def test_resume_continues_and_matches_uninterrupted_run(tmp_path):
    straight = _run(tmp_path, _tc(steps=8), name="a.pt")
    calls = {"n": 0}

    def stop_after_5():
        calls["n"] += 1
        return calls["n"] > 5

    part = _run(tmp_path, _tc(steps=8), name="b.pt", should_stop=stop_after_5)
    assert part.steps == 5
    resumed = _run(tmp_path, _tc(steps=8, checkpoint_every_s=30.0), name="b.pt", resume=True)
    assert resumed.status == "finished" and resumed.steps == 8
    a = load_checkpoint(straight.checkpoint_path)["state_dict"]
    b = load_checkpoint(resumed.checkpoint_path)["state_dict"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
    again = _run(tmp_path, _tc(steps=8), name="b.pt", resume=True)
    assert again.status == "finished" and "already finished" in again.message


def test_resume_refuses_other_settings_or_missing_file(tmp_path):
    calls = {"n": 0}

    def stop_after_2():
        calls["n"] += 1
        return calls["n"] > 2

    _run(tmp_path, _tc(steps=8), should_stop=stop_after_2)
    with pytest.raises(TrainingError, match="lr"):
        _run(tmp_path, _tc(steps=8, lr=5e-4), resume=True)
    with pytest.raises(CheckpointError, match="does not exist"):
        _run(tmp_path, _tc(steps=8), name="missing.pt", resume=True)


def test_nan_guard_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real = DraemLoss.forward
    calls = {"n": 0}

    def nan_at_step_4(self, rec, good, logits, mask):
        calls["n"] += 1
        out = real(self, rec, good, logits, mask)
        if calls["n"] == 4:
            out["total"] = out["total"] * float("nan")
        return out

    monkeypatch.setattr(DraemLoss, "forward", nan_at_step_4)
    path = tmp_path / "m.pt"
    with pytest.raises(
        TrainingError, match=r"NaN/inf at step 4; the last good checkpoint \(step 3\)"
    ):
        _run(tmp_path, _tc(steps=10, checkpoint_every_s=1e-6))
    payload = load_checkpoint(path)
    assert payload["step"] == 3
    load_detector(path, device="cpu")


def test_nan_before_any_checkpoint_says_so(tmp_path, monkeypatch):
    import core.models.draem.train_parts

    monkeypatch.setattr(
        core.models.draem.train_parts, "lr_at", lambda tc, f: 1e30
    )  # a huge rate diverges
    with pytest.raises(TrainingError, match="NaN/inf at step .*no checkpoint had been written"):
        _run(tmp_path, _tc(steps=30))


def test_held_out_good_images_set_thresholds(tmp_path):
    res = train(
        _images(),
        model_config=MC,
        sim_config=SC,
        train_config=_tc(steps=3),
        out_path=tmp_path / "h.pt",
        held_out=_images(4, seed=9),
        data_summary={"source": "unit test"},
    )
    det = load_detector(res.checkpoint_path, device="cpu")
    assert "good-max-plus-spread" in det.thresholds.source
    assert det.thresholds.image == det.thresholds.pixel
    scores = [p.score for p in det.predict(_images(4, seed=9))]
    assert det.thresholds.image > max(scores)  # every held-out good image passes
    assert det.metadata["data_summary"]["source"] == "unit test"


@pytest.mark.slow
def test_tiny_model_learns_synthetic_anomalies(tmp_path):
    """End to end: ~120 CPU steps on striped images; pixel AUROC on unseen anomalies."""
    from sklearn.metrics import roc_auc_score

    from core.simulate.simulator import AnomalySimulator

    rng = np.random.default_rng(0)
    _, xx = np.mgrid[0:96, 0:96]
    imgs = []
    for k in range(8):
        base = 120 + 30 * np.sin((xx + 7 * k) / 5.0)[..., None] + rng.normal(0, 4, (96, 96, 1))
        imgs.append(np.clip(np.repeat(base, 3, 2), 0, 255).astype(np.uint8))
    mc = ModelConfig(preset="paper", image_size=(64, 64), recon_width=8, disc_width=8)
    tc = TrainConfig(steps=120, batch_size=8, num_workers=0, seed=0, lr=1e-3)
    res = train(
        imgs,
        model_config=mc,
        sim_config=SimulatorConfig(),
        train_config=tc,
        out_path=tmp_path / "l.pt",
    )
    assert res.loss_history["total"][-1] < res.loss_history["total"][0]
    det = load_detector(res.checkpoint_path, device="cpu")
    test_sim = AnomalySimulator(
        SimulatorConfig(image_size=(96, 96), anomaly_probability=1.0), seed=99
    )
    samples = [test_sim.sample(imgs[i % 8], 10_000 + i) for i in range(16)]
    preds = det.predict([s.augmented for s in samples])
    y = np.concatenate([s.mask.ravel() for s in samples])
    p = np.concatenate([q.anomaly_map.ravel() for q in preds])
    assert y.any()
    auroc = roc_auc_score(y, p)
    assert auroc > 0.8, auroc
