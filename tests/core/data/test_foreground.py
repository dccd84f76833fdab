"""Foreground masks: objects on a plain background get anomalies on the object only;
surfaces and textures (no background) are left alone."""

from __future__ import annotations

import cv2
import numpy as np

from core.config import ModelConfig, SimulatorConfig
from core.data.foreground import foreground_mask, uses_foreground
from core.simulate.defects import CompactSimulator, compact_simulator


def object_image(rng: np.random.Generator, h: int = 120, w: int = 160) -> np.ndarray:
    """A textured, coloured disc (the object) on a dark, slightly noisy plate; RGB uint8."""
    img = np.clip(rng.normal(20, 2, (h, w, 3)), 0, 255)
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h / 2 + rng.uniform(-8, 8), w / 2 + rng.uniform(-8, 8)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= (0.35 * h) ** 2
    texture = rng.normal([150, 110, 60], 25, (h, w, 3))
    img[disc] = texture[disc]
    return img.astype(np.uint8), disc


def texture_image(rng: np.random.Generator, h: int = 120, w: int = 160) -> np.ndarray:
    g = cv2.GaussianBlur(rng.normal(128, 40, (h, w)).astype(np.float32), (0, 0), 1.5)
    return np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, 2)


def brick_image(h: int = 120, w: int = 160) -> np.ndarray:
    """Plain bricks with bright mortar lines: a plain border, but no background."""
    img = np.full((h, w, 3), 90, np.uint8)
    img[::30] = 200
    for r in range(0, h, 30):
        for c in range(15 * ((r // 30) % 2), w, 40):
            img[r : r + 30, c : c + 2] = 200
    return img


def test_object_mask_matches_the_object():
    rng = np.random.default_rng(0)
    img, disc = object_image(rng)
    fg = foreground_mask(img)
    assert fg is not None and fg.dtype == np.uint8 and fg.shape == disc.shape
    iou = (fg.astype(bool) & disc).sum() / (fg.astype(bool) | disc).sum()
    assert iou > 0.9
    assert uses_foreground([object_image(rng)[0] for _ in range(6)])


def test_surfaces_and_bricks_have_no_background():
    rng = np.random.default_rng(1)
    assert foreground_mask(texture_image(rng)) is None
    assert foreground_mask(brick_image()) is None  # mortar cuts the border into pieces
    assert not uses_foreground([texture_image(rng) for _ in range(6)])
    assert not uses_foreground([brick_image()] * 4)
    assert not uses_foreground([])


def test_one_odd_image_does_not_switch_a_data_set():
    rng = np.random.default_rng(2)
    images = [texture_image(rng) for _ in range(7)] + [object_image(rng)[0]]
    assert not uses_foreground(images)


def _sim(images) -> CompactSimulator:
    mc = ModelConfig(
        preset="compact",
        image_size=(96, 96),
        disc_width=16,
        keep_aspect=True,
        work_area=128,
        backbone="efficientnet_lite0",
    )
    return compact_simulator(SimulatorConfig(source="colour"), images, seed=0, model_config=mc)


def test_anomalies_stay_on_the_object():
    rng = np.random.default_rng(3)
    images = [object_image(rng)[0] for _ in range(4)]
    sim = _sim(images)
    assert sim.foreground
    prepared = sim.prepare(images[0])
    assert prepared.shape[2] == 4 and set(np.unique(prepared[..., 3])) <= {0, 1}
    anomalous = 0
    for i in range(60):
        s = sim.sample(prepared, i)
        assert s.good.shape == s.augmented.shape == (96, 96, 3)
        if not s.has_anomaly:
            continue
        anomalous += 1
        # The plate (dark, ~20), 3 px or more away from the object.
        plate = (s.good.max(axis=2) < 45).astype(np.uint8)
        background = cv2.erode(plate, np.ones((7, 7), np.uint8)).astype(bool)
        assert not (s.mask.astype(bool) & background).any()
        assert np.array_equal(s.augmented[background], s.good[background])
    assert anomalous >= 10


def test_surfaces_keep_three_channels_and_full_masks():
    rng = np.random.default_rng(4)
    images = [texture_image(rng) for _ in range(4)]
    sim = _sim(images)
    assert not sim.foreground
    assert sim.prepare(images[0]).shape[2] == 3
