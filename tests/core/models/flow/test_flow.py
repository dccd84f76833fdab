"""The normalizing-flow detector: invertibility, log-determinant, training, checkpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.errors import CheckpointError, ConfigError
from core.models.flow import SPEC, FlowConfig
from core.models.flow.detector import FlowDetector
from core.models.flow.network import FlowModel, build_flow, position_log_jac
from core.models.flow.synthetic import synthesize
from core.registry import FitRequest

TINY = FlowConfig(work_area=96, crop_size=64, n_blocks=2, batch_size=4, lr=2e-3, sigma=2.0)


def stripes(rng: np.random.Generator, size: int = 96, vertical: bool = True) -> np.ndarray:
    """(size, size, 3) uint8: sine stripes of period 8 px plus noise."""
    x = np.arange(size, dtype=np.float32)
    wave = 128 + 50 * np.sin(2 * np.pi * x / 8)
    grid = np.broadcast_to(wave[None, :] if vertical else wave[:, None], (size, size))
    img = grid + rng.normal(0, 6, (size, size))
    return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _perturbed(flow) -> None:
    with torch.no_grad():
        for name, p in flow.named_parameters():
            if "subnet" in name:
                p.mul_(3.0)


@pytest.mark.parametrize("subnet", ["conv", "conv_attn"])
def test_flow_is_invertible(subnet):
    torch.manual_seed(0)
    flow = build_flow(8, 4, 1.0, subnet, 2.0)
    _perturbed(flow)
    x = torch.randn(2, 8, 6, 5)
    z, _ = flow(x)
    back, _ = flow(z, rev=True)
    assert not torch.allclose(z, x, atol=1e-2)
    assert torch.allclose(back, x, atol=1e-4)


def test_channel_permutations_follow_the_seed():
    def perms(seed):
        flow = build_flow(16, 3, 1.0, "conv", 2.0, seed)
        return [b.w_perm.flatten().argmax(0) for b in flow.module_list]

    state = np.random.get_state()[1].copy()
    assert all(torch.equal(a, b) for a, b in zip(perms(3), perms(3), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(perms(3), perms(4), strict=True))
    assert np.array_equal(np.random.get_state()[1], state)  # numpy's global state untouched


def test_synthetic_anomaly_kinds_mark_their_cells():
    from core.models.flow.synthetic import anomalous_cells, feature_mask, make_anomaly

    rng = np.random.default_rng(0)
    crop = stripes(rng, 64)
    for kind in ("patch", "intensity", "line", "spot"):
        out, mask = make_anomaly(crop, stripes(rng, 64, vertical=False), kind, rng)
        assert out.shape == crop.shape and out.dtype == np.uint8
        assert mask.shape == (64, 64) and mask.sum() > 0
        # thin kinds still mark at least one stride-8 cell for the synthetic term
        assert anomalous_cells(feature_mask(mask, 8)[None]).any()
        assert np.abs(out.astype(int) - crop.astype(int))[mask > 0].mean() > 0


@pytest.mark.parametrize("shape", [(1, 2, 1, 1), (1, 2, 2, 2)])
def test_log_determinant_matches_numerical_jacobian(shape):
    torch.manual_seed(1)
    flow = build_flow(2, 3, 2.0, "conv", 2.0).double()
    _perturbed(flow)
    x = torch.randn(*shape, dtype=torch.float64)

    def f(v):
        return flow(v.reshape(shape))[0].reshape(-1)

    jac = torch.autograd.functional.jacobian(f, x.reshape(-1))
    with torch.no_grad():
        _, log_det = flow(x)
    expected = torch.linalg.slogdet(jac)[1]
    assert abs(float(log_det[0]) - float(expected)) < 1e-6
    # the per-position log-determinants add up to the flow's total
    assert abs(float(position_log_jac(flow).sum()) - float(log_det[0])) < 1e-6


def test_config_is_validated():
    with pytest.raises(ConfigError, match="subnet"):
        FlowConfig(subnet="transformer")
    with pytest.raises(ConfigError, match="ssl_weight"):
        FlowConfig(ssl_weight=-1.0)
    with pytest.raises(ConfigError, match="stages"):
        FlowConfig(stages=(2,))
    with pytest.raises(ConfigError, match="anomalies"):
        FlowConfig(anomalies=("scratch",))
    assert FlowConfig.from_dict(TINY.to_dict()) == TINY


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = np.random.default_rng(0)
    images = [stripes(rng) for _ in range(12)]
    path = tmp_path_factory.mktemp("flow") / "flow.pt"
    seen = []
    req = FitRequest(out_path=str(path), seed=0, budget={"steps": 40}, on_progress=seen.append)
    det, result = SPEC.fit(images, TINY, req)
    return det, result, path, seen


def test_tiny_flow_separates_synthetic_anomalies(trained):
    from core.evaluate.metrics import pixel_auroc

    det, result, _path, seen = trained
    assert result.status == "finished" and result.steps == 40
    terms = ["nll_normal", "nll_synthetic", "total"]
    assert list(seen[-1].losses) == list(result.final_losses) == terms
    rng = np.random.default_rng(42)
    tests, masks = [], []
    for _ in range(6):
        patch = stripes(rng, vertical=False)  # the same stripes turned by 90 degrees
        img, mask = synthesize(stripes(rng), patch, rng)
        tests.append(img)
        masks.append(mask.astype(np.uint8))
    preds = det.predict(tests, batch_size=3)
    assert all(p.anomaly_map.shape == (96, 96) and p.anomaly_map.dtype == np.float32 for p in preds)
    assert pixel_auroc(masks, [p.anomaly_map for p in preds]) > 0.7


def test_checkpoint_round_trip_gives_the_same_scores(trained):
    from core.io.checkpoint import load_checkpoint

    det, _result, path, _seen = trained
    rng = np.random.default_rng(5)
    imgs = [stripes(rng), stripes(rng, size=80)]
    payload = load_checkpoint(path)
    assert payload["method"] == "flow" and isinstance(payload["state_dict"], dict)
    assert {"preset", "image_size", "created", "data_summary"} <= set(payload["metadata"])
    loaded = FlowDetector.from_checkpoint(payload, device="cpu")
    assert loaded.config == det.config and loaded.thresholds == det.thresholds
    a, b = det.predict(imgs), loaded.predict(imgs)
    for p, q in zip(a, b, strict=True):
        assert p.score == pytest.approx(q.score, rel=1e-5)
        np.testing.assert_allclose(p.anomaly_map, q.anomaly_map, rtol=1e-4, atol=1e-5)
    assert det.with_thresholds(det.thresholds).predict(imgs[:1])[0].score == pytest.approx(
        a[0].score
    )


def test_foreign_or_damaged_payload_is_refused(trained):
    det = trained[0]
    payload = det.payload()
    with pytest.raises(CheckpointError, match="not a flow checkpoint"):
        FlowDetector.from_checkpoint({**payload, "method": "draem"})
    with pytest.raises(CheckpointError):
        FlowDetector.from_checkpoint({**payload, "state_dict": {"x": torch.zeros(1)}})
    with pytest.raises(CheckpointError):
        FlowDetector.from_checkpoint({**payload, "model_config": {"subnet": "nope"}})


def test_cancel_leaves_a_loadable_checkpoint(tmp_path):
    from core.registry import load_detector

    rng = np.random.default_rng(3)
    images = [stripes(rng) for _ in range(4)]
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    req = FitRequest(out_path=str(tmp_path / "c.pt"), budget={"steps": 1000}, should_stop=stop)
    _det, result = SPEC.fit(images, TINY, req)
    assert result.status == "cancelled" and result.steps == 3
    loaded = load_detector(tmp_path / "c.pt", device="cpu")
    assert isinstance(loaded, FlowDetector)
    assert np.isfinite(loaded.predict(images[:1])[0].score)


def test_without_the_synthetic_term_only_the_trained_terms_are_reported(tmp_path, capsys):
    from core.cli.training_report import train_result

    rng = np.random.default_rng(4)
    images = [stripes(rng) for _ in range(4)]
    seen = []
    cfg = dataclasses.replace(TINY, ssl_weight=0.0)
    req = FitRequest(out_path=str(tmp_path / "u.pt"), budget={"steps": 3}, on_progress=seen.append)
    _det, result = SPEC.fit(images, cfg, req)
    assert seen and all(list(p.losses) == ["nll_normal", "total"] for p in seen)
    assert list(result.final_losses) == ["nll_normal", "total"]
    assert set(result.loss_history) == {"nll_normal", "total"}
    assert train_result(result, {"steps": 3}) == 0
    summary = capsys.readouterr().out.splitlines()[0]
    assert "nll_normal=" in summary and "nll_synthetic" not in summary


def test_model_state_has_no_backbone():
    model = FlowModel(TINY, {8: 40, 16: 112})
    assert all(k.startswith(("flows.", "mean_", "std_", "map_")) for k in model.state_dict())


def test_each_scale_is_standardised_on_the_calibration_images(trained):
    from core.models.flow.detector import scale_maps, smooth
    from core.models.flow.features import prepare
    from core.models.flow.train import set_map_statistics

    det = trained[0]
    norm = det.model.map_norm()
    assert set(norm) == {8, 16}
    assert all(
        float(scale) > 0 and (float(loc), float(scale)) != (0.0, 1.0)
        for loc, scale in norm.values()
    )
    rng = np.random.default_rng(11)
    good = [stripes(rng) for _ in range(3)]
    set_map_statistics(det, good)
    with torch.no_grad():
        per_scale = {s: [] for s in norm}
        for img in good:
            p = prepare(img, det.config)
            for s, m in scale_maps(det.model(det.features([p])), p.shape[:2]).items():
                per_scale[s].append(smooth(m[0].numpy(), det.config.sigma).ravel())
    for s, (loc, scale) in det.model.map_norm().items():
        z = (np.concatenate(per_scale[s]) - float(loc)) / float(scale)
        assert np.median(z) == pytest.approx(0.0, abs=1e-5)
        assert np.percentile(z, 99) == pytest.approx(1.0, abs=1e-4)


def test_fused_map_averages_the_standardised_scales():
    from core.models.flow.detector import nll_map

    coarse = torch.full((1, 2, 2), 100.0)  # a scale whose good NLL is simply larger
    fine = torch.zeros((1, 4, 4))
    fine[0, 1, 1] = 8.0
    out = {8: (None, fine), 16: (None, coarse)}
    norm = {8: (torch.tensor(0.0), torch.tensor(2.0)), 16: (torch.tensor(100.0), torch.tensor(5.0))}
    fused = nll_map(out, (4, 4), norm)
    assert fused.shape == (1, 4, 4)
    assert float(fused[0, 1, 1]) == pytest.approx(2.0)  # (8 / 2 + 0) / 2
    assert float(nll_map(out, (4, 4))[0, 0, 0]) == pytest.approx(50.0)  # raw mean


def test_checkpoint_without_map_statistics_keeps_the_plain_mean(trained):
    det = trained[0]
    payload = det.payload()
    payload["state_dict"] = {
        k: v for k, v in payload["state_dict"].items() if not k.startswith("map_")
    }
    old = FlowDetector.from_checkpoint(payload, device="cpu")
    assert all((float(a), float(b)) == (0.0, 1.0) for a, b in old.model.map_norm().values())
    img = stripes(np.random.default_rng(2))
    assert np.isfinite(old.predict([img])[0].score)
