"""Tests of core.simulate.simulator.AnomalySimulator (shapes, blending, determinism, statistics, errors)."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import SimulatorConfig
from core.errors import ConfigError, DatasetError
from core.simulate.simulator import AnomalySimulator
from core.simulate.textures import ColourSource
from core.types import SyntheticSample

SIZE = (48, 64)


def _image(seed: int = 0, shape=(60, 90, 3)) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = (yy * 2 + xx)[..., None] + np.random.default_rng(seed).integers(0, 30, shape)
    return (base % 256).astype(np.uint8)


def _sim(seed: int = 0, **kw) -> AnomalySimulator:
    return AnomalySimulator(SimulatorConfig(image_size=SIZE, **kw), seed=seed)


def _anomalous(sim: AnomalySimulator, image: np.ndarray, start: int = 0) -> SyntheticSample:
    for i in range(start, start + 200):
        s = sim.sample(image, i)
        if s.has_anomaly:
            return s
    raise AssertionError("no anomalous sample in 200")


def test_sample_shapes_dtypes_and_ranges():
    sim = _sim()
    for i in range(20):
        s = sim.sample(_image(), i)
        assert isinstance(s, SyntheticSample) and s.index == i
        assert s.good.shape == s.augmented.shape == (*SIZE, 3)
        assert s.good.dtype == s.augmented.dtype == s.mask.dtype == np.uint8
        assert s.mask.shape == SIZE and set(np.unique(s.mask)) <= {0, 1}
        assert s.has_anomaly == bool(s.mask.any())
        if s.has_anomaly:
            assert 0.0 <= s.beta <= 0.8
        else:
            assert s.beta == 0.0
            np.testing.assert_array_equal(s.augmented, s.good)


def test_anomaly_only_inside_mask_and_blended_with_beta():
    sim = AnomalySimulator(
        SimulatorConfig(image_size=SIZE, n_augmentations=0, rotate_image_prob=0.0, source="colour"),
        seed=2,
        source=ColourSource(),
    )
    s = _anomalous(sim, _image())
    outside = s.mask == 0
    np.testing.assert_array_equal(s.augmented[outside], s.good[outside])
    # inside: (1 - beta) * colour + beta * good, with one homogeneous colour
    inside = s.mask == 1
    colour = (s.augmented[inside].astype(float) - s.beta * s.good[inside]) / (1 - s.beta)
    assert np.ptp(colour, axis=0).max() <= 2.0 / (1 - s.beta) + 1e-6  # uint8 rounding only


def test_same_seed_and_index_give_identical_samples():
    img = _image()
    a, b = _sim(seed=5), _sim(seed=5)
    for i in (0, 1, 17, 10_000):
        sa, sb = a.sample(img, i), b.sample(img, i)
        for f in ("good", "augmented", "mask"):
            np.testing.assert_array_equal(getattr(sa, f), getattr(sb, f))
        assert (sa.has_anomaly, sa.beta) == (sb.has_anomaly, sb.beta)
    # order independence: a sample does not depend on what was drawn before
    np.testing.assert_array_equal(a.sample(img, 3).augmented, _sim(seed=5).sample(img, 3).augmented)


def test_different_index_or_seed_gives_different_samples():
    img = _image()
    sim = _sim(seed=1)
    anomalous = [s for s in (sim.sample(img, i) for i in range(30)) if s.has_anomaly]
    assert len(anomalous) >= 5
    masks = {s.mask.tobytes() for s in anomalous}
    assert len(masks) == len(anomalous)
    s0 = _anomalous(sim, img)
    other = _sim(seed=2).sample(img, s0.index)
    assert not np.array_equal(other.augmented, s0.augmented)


def test_about_half_clean():
    sim = AnomalySimulator(SimulatorConfig(image_size=(32, 32)), seed=0, source=ColourSource())
    img = _image(shape=(32, 32, 3))
    flags = [sim.sample(img, i).has_anomaly for i in range(400)]
    frac = np.mean(flags)
    assert 0.35 < frac < 0.6  # 0.5 minus the few empty Perlin masks


def test_anomaly_probability_extremes():
    img = _image()
    never = _sim(anomaly_probability=0.0)
    assert not any(never.sample(img, i).has_anomaly for i in range(30))
    always = _sim(anomaly_probability=1.0)
    assert np.mean([always.sample(img, i).has_anomaly for i in range(30)]) > 0.8


def test_rotation_of_good_image():
    img = _image(shape=SIZE + (3,))
    plain = _sim(rotate_image_prob=0.0)
    assert all(np.array_equal(plain.sample(img, i).good, img) for i in range(10))
    rotating = _sim(rotate_image_prob=1.0)
    goods = [rotating.sample(img, i).good for i in range(10)]
    assert sum(not np.array_equal(g, img) for g in goods) >= 9


def test_resizes_any_input_and_accepts_grey():
    sim = _sim(rotate_image_prob=0.0)
    for shape in [(300, 200, 3), (20, 25, 3), (48, 64)]:
        img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        s = sim.sample(img, 0)
        assert s.good.shape == (*SIZE, 3)
    grey = sim.sample(np.full(SIZE, 77, np.uint8), 0).good
    assert (grey == 77).all()


def test_bad_inputs():
    sim = _sim()
    with pytest.raises(DatasetError, match="uint8"):
        sim.sample(np.zeros((10, 10, 3), np.float32), 0)
    with pytest.raises(DatasetError, match="shape"):
        sim.sample(np.zeros((10, 10, 4), np.uint8), 0)
    with pytest.raises(DatasetError, match="index"):
        sim.sample(_image(), -1)
    with pytest.raises(DatasetError, match="seed"):
        AnomalySimulator(SimulatorConfig(), seed=-3)
    with pytest.raises(TypeError):
        AnomalySimulator({"image_size": (32, 32)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"perlin_scale_min": 3, "perlin_scale_max": 3}, "perlin_scale"),
        ({"rotation_deg": 200}, "rotation_deg"),
        ({"threshold": 1.5}, "threshold"),
        ({"beta_min": 0.9, "beta_max": 0.1}, "beta"),
        ({"anomaly_probability": -0.1}, "anomaly_probability"),
        ({"n_augmentations": 11}, "n_augmentations"),
        ({"source": "dtd"}, "source"),
        ({"image_size": (8, 8)}, "image_size"),
        ({"rotate_image_prob": 1.5}, "rotate_image_prob"),
    ],
)
def test_config_validation(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        SimulatorConfig(**kw)


def test_config_defaults_are_the_papers():
    c = SimulatorConfig()
    assert (c.perlin_scale_min, c.perlin_scale_max, c.threshold) == (0, 6, 0.5)
    assert (c.beta_min, c.beta_max, c.anomaly_probability, c.n_augmentations) == (0.0, 0.8, 0.5, 3)
    assert (c.rotation_deg, c.rotate_image_prob) == (90.0, 0.3)
    assert SimulatorConfig.from_json(c.to_json()) == c


def test_batch_matches_single_samples():
    sim = _sim(seed=4)
    imgs = [_image(k) for k in range(3)]
    out = sim.batch(imgs, [7, 8, 9])
    for k, s in enumerate(out):
        np.testing.assert_array_equal(s.augmented, sim.sample(imgs[k], 7 + k).augmented)
    with pytest.raises(DatasetError, match="as many"):
        sim.batch(imgs, [1])
