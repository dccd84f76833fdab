"""DraemDetector inference, the 21x21 image score, checkpoint round trip, load_detector."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.config import ModelConfig, Thresholds
from core.errors import Cancelled, CheckpointError, ConfigError, DatasetError
from core.io.checkpoint import load_checkpoint
from core.models.draem.detector import DraemDetector, anomaly_score, fuse_for_inference
from core.models.draem.network import build_model
from core.registry import load_detector
from core.types import Detector, Progress


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threading overhead dominates on a busy CPU
    yield
    torch.set_num_threads(n)


def _detector(in_channels=3, thresholds=None, score_kernel=21, flip_views=1) -> DraemDetector:
    cfg = ModelConfig(
        preset="paper",
        image_size=(32, 48),
        recon_width=4,
        disc_width=4,
        in_channels=in_channels,
        score_kernel=score_kernel,
        flip_views=flip_views,
    )
    torch.manual_seed(0)
    model = build_model(cfg)
    # give BN non-trivial running stats so fusion is really tested
    model.train()
    with torch.no_grad():
        model(torch.rand(4, in_channels, 32, 48))
    meta = {"data_summary": {"n_images": 4, "sizes": [[32, 48]], "channels": 3, "source": "test"}}
    return DraemDetector(model, cfg, thresholds or Thresholds(0.3, 0.4, "test"), meta, device="cpu")


def _images(seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (32, 48, 3), dtype=np.uint8),
        rng.integers(0, 256, (70, 45, 3), dtype=np.uint8),  # non-square, upscale one axis
        rng.integers(0, 256, (120, 200, 3), dtype=np.uint8),  # shrink
        rng.integers(0, 256, (50, 50), dtype=np.uint8),  # greyscale 2-D
    ]


def test_anomaly_score_matches_official_avg_pool():
    rng = np.random.default_rng(1)
    amap = rng.random((40, 56)).astype(np.float32)
    amap[3:9, 40:50] = 1.0  # a hot spot near the border: padding matters
    ref = F.avg_pool2d(torch.from_numpy(amap)[None, None], 21, stride=1, padding=10).max()
    assert anomaly_score(amap) == pytest.approx(float(ref), abs=1e-6)
    assert anomaly_score(np.ones((64, 64), np.float32)) == pytest.approx(1.0)
    assert anomaly_score(np.zeros((30, 30), np.float32)) == 0.0
    with pytest.raises(ValueError):
        anomaly_score(amap, kernel=4)


def test_predict_shapes_ranges_and_protocol():
    det = _detector()
    assert isinstance(det, Detector) and det.method == "draem"
    imgs = _images()
    seen: list[Progress] = []
    preds = det.predict(imgs, batch_size=3, on_progress=seen.append)
    assert len(preds) == 4
    for img, p in zip(imgs, preds, strict=True):
        h, w = img.shape[:2]
        assert p.anomaly_map.shape == (h, w) and p.anomaly_map.dtype == np.float32
        assert p.anomaly_map.min() >= 0.0 and p.anomaly_map.max() <= 1.0
        assert 0.0 <= p.score <= 1.0
        assert p.reconstruction.shape == (h, w, 3) and p.reconstruction.dtype == np.uint8
    assert [s.done for s in seen] == [3, 4] and seen[-1].total == 4


def test_score_is_computed_at_model_resolution():
    det = _detector()
    img = _images()[0]  # already at the model size (32, 48): map is not resized
    (p,) = det.predict([img])
    assert p.score == pytest.approx(anomaly_score(p.anomaly_map), abs=1e-5)


def test_score_kernel_from_the_model_config():
    img = _images()[0]
    (p1,) = _detector(score_kernel=1).predict([img])
    (p21,) = _detector(score_kernel=21).predict([img])
    np.testing.assert_allclose(p1.anomaly_map, p21.anomaly_map)  # same network, same map
    assert p1.score == pytest.approx(float(p1.anomaly_map.max()), abs=1e-5)  # plain maximum
    assert p21.score == pytest.approx(anomaly_score(p21.anomaly_map, 21), abs=1e-5)
    assert p21.score < p1.score
    for bad in (0, 4, 65):
        with pytest.raises(ConfigError, match="score_kernel"):
            ModelConfig(score_kernel=bad)
    assert ModelConfig().score_kernel == 21  # [paper]


def test_flip_views_average_the_mirrored_maps():
    img = _images()[2]  # 120x200: shrunk to the working size, then the map back up
    (one,) = _detector().predict([img])
    lr = _detector().predict([np.ascontiguousarray(img[:, ::-1])])[0].anomaly_map[:, ::-1]
    ud = _detector().predict([np.ascontiguousarray(img[::-1])])[0].anomaly_map[::-1]
    assert np.abs(lr - one.anomaly_map).max() > 1e-3  # the network is not symmetric
    (two,) = _detector(flip_views=2).predict([img])
    (three,) = _detector(flip_views=3).predict([img])
    # averaged at the working size, then resized: equal to averaging the resized maps
    np.testing.assert_allclose(two.anomaly_map, (one.anomaly_map + lr) / 2, atol=2e-5)
    np.testing.assert_allclose(three.anomaly_map, (one.anomaly_map + lr + ud) / 3, atol=2e-5)
    for bad in (0, 4):
        with pytest.raises(ConfigError, match="flip_views"):
            ModelConfig(flip_views=bad)
    assert ModelConfig().flip_views == 1  # [paper]: no test-time augmentation


def test_fused_network_equals_eval_model_and_batches_are_independent():
    det = _detector()
    x = torch.rand(3, 3, 32, 48)
    with torch.no_grad():
        ref = det.model.eval()(x)
        fused = fuse_for_inference(det.model)(x)
    assert not any(
        isinstance(m, torch.nn.BatchNorm2d) for m in fuse_for_inference(det.model).modules()
    )
    for a, b in zip(ref, fused, strict=True):
        assert torch.allclose(a, b, atol=1e-4)
    imgs = _images()
    one = det.predict(imgs, batch_size=1)
    many = det.predict(imgs, batch_size=8)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, atol=1e-5)
        assert a.score == pytest.approx(b.score, abs=1e-5)


def test_grayscale_model_returns_rgb_reconstruction():
    det = _detector(in_channels=1)
    (p,) = det.predict([_images()[1]])
    assert p.reconstruction.shape == (70, 45, 3)
    assert np.array_equal(p.reconstruction[..., 0], p.reconstruction[..., 2])


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    det = _detector()
    path = tmp_path / "draem.pt"
    digest = det.save(str(path))
    assert len(digest) == 64
    loaded = load_detector(path, device="cpu")
    assert isinstance(loaded, DraemDetector)
    assert loaded.thresholds == Thresholds(0.3, 0.4, "test")
    assert loaded.metadata["data_summary"]["n_images"] == 4
    assert loaded.metadata["preset"] == "paper" and loaded.metadata["image_size"] == [32, 48]
    imgs = _images()
    for a, b in zip(det.predict(imgs), loaded.predict(imgs), strict=True):
        np.testing.assert_array_equal(a.anomaly_map, b.anomaly_map)
        assert a.score == b.score
        np.testing.assert_array_equal(a.reconstruction, b.reconstruction)


def test_with_thresholds_returns_a_copy(tmp_path):
    det = _detector()
    other = det.with_thresholds(Thresholds(0.9, 0.8, "manual"))
    assert det.thresholds.image == 0.3 and other.thresholds.image == 0.9
    other.save(str(tmp_path / "o.pt"))
    assert load_detector(tmp_path / "o.pt", device="cpu").thresholds.source == "manual"


def test_cancel_and_bad_input():
    det = _detector()
    with pytest.raises(Cancelled):
        det.predict(_images(), batch_size=2, should_stop=lambda: True)
    with pytest.raises(DatasetError, match="image 1"):
        det.predict([_images()[0], np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(DatasetError, match="shape"):
        det.predict([np.zeros((8, 8, 4), np.uint8)])
    assert det.predict([]) == []


def test_mismatched_weights_give_checkpoint_error(tmp_path):
    det = _detector()
    payload = det.payload()
    payload["model_config"] = ModelConfig(
        preset="paper", image_size=(32, 48), recon_width=8, disc_width=4
    ).to_json()
    with pytest.raises(CheckpointError, match="do not match"):
        DraemDetector.from_checkpoint(payload)
    with pytest.raises(CheckpointError, match="not a DRAEM"):
        DraemDetector.from_checkpoint({**payload, "method": "patchcore"})


def test_load_detector_dispatches_patchcore_lazily(tmp_path, monkeypatch):
    det = _detector()
    path = tmp_path / "pc.pt"
    from core.io.checkpoint import save_checkpoint

    save_checkpoint(path, {**det.payload(), "method": "patchcore"})
    fake = types.ModuleType("core.models.patchcore.detector")

    class PatchCoreDetector:
        @classmethod
        def from_checkpoint(cls, payload):
            inst = cls()
            inst.payload = payload
            return inst

    fake.PatchCoreDetector = PatchCoreDetector
    fake.PatchCoreConfig = type("PatchCoreConfig", (), {})
    monkeypatch.setitem(sys.modules, "core.models.patchcore.detector", fake)
    monkeypatch.delitem(sys.modules, "core.models.patchcore", raising=False)  # re-imported
    got = load_detector(path)
    assert isinstance(got, PatchCoreDetector) and got.payload["method"] == "patchcore"
    assert load_checkpoint(path)["format"] == "draem-workstation-checkpoint"


def test_load_detector_refuses_foreign_file(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"\x89PNG not a model")
    with pytest.raises(CheckpointError):
        load_detector(bad)
