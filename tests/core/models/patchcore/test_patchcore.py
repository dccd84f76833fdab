"""PatchCore detector: features, fit, scoring, thresholds, checkpoint round trip."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from core.config import Thresholds
from core.errors import Cancelled, CheckpointError, ConfigError, DatasetError
from core.models.patchcore.detector import (
    PatchCoreConfig,
    PatchCoreDetector,
    PatchEmbedder,
    fit_patchcore,
    working_size,
)
from core.types import Detector

SMALL = PatchCoreConfig(resolution=96, calibration_images=4)


def surface(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    """A grey, finely textured good surface (RGB uint8), different per seed."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
    grey = np.clip(128 + 60 * noise / (noise.std() + 1e-6), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def with_defect(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A saturated red square (foreign to every good image) and its mask."""
    out, mask = img.copy(), np.zeros(img.shape[:2], np.uint8)
    out[30:60, 50:80] = (255, 0, 0)
    mask[30:60, 50:80] = 1
    return out, mask


@pytest.fixture(scope="module")
def fitted() -> tuple[PatchCoreDetector, list[np.ndarray]]:
    goods = [surface(i) for i in range(6)]
    return fit_patchcore(goods, config=SMALL, seed=0), goods


def test_config_validation_and_json_round_trip():
    with pytest.raises(ConfigError, match="coreset_ratio"):
        PatchCoreConfig(coreset_ratio=0)
    with pytest.raises(ConfigError, match="stages"):
        PatchCoreConfig(stages=(8, 12))
    with pytest.raises(ConfigError, match="search"):
        PatchCoreConfig(search="annoy")  # type: ignore[arg-type]
    cfg = PatchCoreConfig(stages=(8, 16, 32), embed_dim=64)
    assert PatchCoreConfig.from_json(cfg.to_json()) == cfg


def test_working_size_keeps_aspect_ratio():
    cfg = PatchCoreConfig(resolution=320)
    for h, w in [(300, 600), (1024, 1024), (120, 400), (2000, 1000)]:
        H, W = working_size(h, w, cfg)
        assert H % 16 == 0 and W % 16 == 0
        assert abs(math.sqrt(H * W) - 320) < 24
        assert abs((W / H) / (w / h) - 1) < 0.12


def test_feature_shapes():
    emb = PatchEmbedder(SMALL)
    feats = emb([surface(0), surface(1)])
    H, W = working_size(96, 128, SMALL)
    assert feats.shape == (2, H // 8, W // 8, 40 + 112) and feats.dtype == torch.float32
    assert emb.dim == 152
    cfg = PatchCoreConfig(resolution=96, stages=(8, 16, 32), embed_dim=64)
    H, W = working_size(96, 128, cfg)  # sides are multiples of the coarsest stride, 32
    assert (H, W) == (96, 96)
    assert PatchEmbedder(cfg)([surface(0)]).shape == (1, H // 8, W // 8, 64)


def test_foreign_patch_scores_above_all_good_patches(fitted):
    det, goods = fitted
    bad, mask = with_defect(surface(100))
    preds = det.predict([surface(101), surface(102), bad])
    good_max = max(float(p.anomaly_map.max()) for p in preds[:2])
    amap = preds[2].anomaly_map
    assert amap.shape == mask.shape and amap.dtype == np.float32
    assert float(amap[mask == 1].max()) > good_max
    assert preds[2].score > max(p.score for p in preds[:2])
    assert np.unravel_index(amap.argmax(), amap.shape) in set(zip(*np.nonzero(mask), strict=True))
    assert preds[2].score > det.thresholds.image  # calibrated threshold flags the defect
    assert preds[2].reconstruction is None


def test_fit_result_bank_thresholds_and_metadata(fitted):
    det, goods = fitted
    assert isinstance(det, Detector) and det.method == "patchcore"
    n_patches = det.metadata["n_patches"]
    H, W = working_size(96, 128, SMALL)
    assert (H, W) == (80, 112)  # area ~96^2, aspect kept
    assert n_patches == len(goods) * (H // 8) * (W // 8)
    assert det.index.bank.shape == (round(0.1 * n_patches), 152)
    assert math.isfinite(det.thresholds.image) and det.thresholds.image > 0
    assert "leave-one-image-out" in det.thresholds.source
    assert det.metadata["preset"] == "efficientnet_lite0"


def test_predict_any_size_and_order(fitted):
    det, _ = fitted
    imgs = [surface(7, 64, 200), surface(8), surface(9, 150, 90)]
    preds = det.predict(imgs, batch_size=2)
    assert [p.anomaly_map.shape for p in preds] == [(64, 200), (96, 128), (150, 90)]
    again = det.predict([imgs[1]])[0]
    np.testing.assert_allclose(again.anomaly_map, preds[1].anomaly_map, rtol=1e-5, atol=1e-4)
    with pytest.raises(DatasetError, match="uint8"):
        det.predict([imgs[0].astype(np.float32)])
    with pytest.raises(Cancelled):
        det.predict(imgs, should_stop=lambda: True)


def test_checkpoint_round_trip(fitted, tmp_path):
    from core.io.checkpoint import load_checkpoint
    from core.registry import load_detector

    det, _ = fitted
    path = tmp_path / "pc.ckpt"
    digest = det.save(str(path))
    assert len(digest) == 64
    payload = load_checkpoint(path)
    assert payload["method"] == "patchcore"
    assert torch.equal(payload["state_dict"]["memory_bank"], det.index.bank)
    loaded = load_detector(path)
    assert isinstance(loaded, PatchCoreDetector)
    assert loaded.config == det.config and loaded.thresholds == det.thresholds
    img = with_defect(surface(50))[0]
    a, b = det.predict([img])[0], loaded.predict([img])[0]
    np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, rtol=1e-5, atol=1e-4)
    assert a.score == pytest.approx(b.score, rel=1e-5)
    bad = dict(payload, state_dict={"memory_bank": torch.zeros(10, 7)})
    with pytest.raises(CheckpointError, match="features per patch"):
        PatchCoreDetector.from_checkpoint(bad)
    other = loaded.with_thresholds(Thresholds(1.0, 2.0, "manual"))
    assert other.thresholds.pixel == 2.0 and other.index is loaded.index


def test_bounded_candidates_ivf_search_and_cancel():
    goods = [surface(i) for i in range(8)]
    cfg = PatchCoreConfig(
        resolution=96, max_candidates=1000, search="ivf", ivf_min_bank=1000, calibration_images=2
    )
    det = fit_patchcore(goods, config=cfg)  # 8 x 140 patches > 1000: 125 kept per image
    assert det.metadata["n_patches"] == 8 * 140
    assert det.index.bank.shape[0] == 112 and det.index.n_lists > 0
    bad = with_defect(surface(9))[0]
    exact = PatchCoreDetector(
        PatchCoreConfig(resolution=96), type(det.index)(det.index.bank), det.thresholds
    )
    assert det.predict([bad])[0].score == pytest.approx(exact.predict([bad])[0].score, rel=1e-4)
    with pytest.raises(Cancelled):
        fit_patchcore(goods, config=SMALL, should_stop=lambda: True)
    with pytest.raises(DatasetError, match="at least one"):
        fit_patchcore([], config=SMALL)
    one = fit_patchcore(goods[:1], config=SMALL)
    assert "one good image" in one.thresholds.source
