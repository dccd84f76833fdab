"""Tests of core.simulate.perlin: shape, range, reproducibility and equality with the [official] formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import ConfigError
from core.simulate.perlin import fade, fractal_perlin_2d, rand_perlin_2d


def _official_rand_perlin_2d_np(shape, res, angles):
    """Reference: [official] perlin.py::rand_perlin_2d_np with the gradient angles given."""
    delta = (res[0] / shape[0], res[1] / shape[1])
    d = (shape[0] // res[0], shape[1] // res[1])
    grid = np.mgrid[0 : res[0] : delta[0], 0 : res[1] : delta[1]].transpose(1, 2, 0) % 1
    gradients = np.stack((np.cos(angles), np.sin(angles)), axis=-1)

    def tile(s1, s2):
        g = gradients[s1[0] : s1[1], s2[0] : s2[1]]
        return np.repeat(np.repeat(g, d[0], axis=0), d[1], axis=1)

    def dot(g, shift):
        xy = np.stack((grid[..., 0] + shift[0], grid[..., 1] + shift[1]), axis=-1)
        return (xy * g).sum(axis=-1)

    def lerp(x, y, w):
        return (y - x) * w + x

    n00 = dot(tile([0, -1], [0, -1]), [0, 0])
    n10 = dot(tile([1, None], [0, -1]), [-1, 0])
    n01 = dot(tile([0, -1], [1, None]), [0, -1])
    n11 = dot(tile([1, None], [1, None]), [-1, -1])
    t = 6 * grid**5 - 15 * grid**4 + 10 * grid**3
    return math.sqrt(2) * lerp(lerp(n00, n10, t[..., 0]), lerp(n01, n11, t[..., 0]), t[..., 1])


@pytest.mark.parametrize("res", [(1, 1), (2, 8), (32, 4), (16, 32)])
def test_matches_official_formula(res):
    shape = (64, 128)
    angles = 2 * math.pi * np.random.default_rng(7).random((res[0] + 1, res[1] + 1))
    ref = _official_rand_perlin_2d_np(shape, res, angles)
    ours = rand_perlin_2d(shape, res, np.random.default_rng(7))
    assert ours.shape == shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_range_and_zero_on_lattice():
    noise = rand_perlin_2d((128, 128), (8, 8), np.random.default_rng(0))
    assert -1.0001 <= noise.min() < -0.3 and 0.3 < noise.max() <= 1.0001
    assert np.abs(noise[::16, ::16]).max() < 1e-6  # gradient noise vanishes on lattice points


def test_seeded_reproducible_and_varies():
    a = rand_perlin_2d((40, 50), (4, 2), np.random.default_rng(3))
    b = rand_perlin_2d((40, 50), (4, 2), np.random.default_rng(3))
    c = rand_perlin_2d((40, 50), (4, 2), np.random.default_rng(4))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize(
    ("shape", "res"), [((100, 37), (32, 16)), ((17, 300), (3, 7)), ((5, 5), (8, 8))]
)
def test_shapes_not_divisible_by_res(shape, res):
    noise = rand_perlin_2d(shape, res, np.random.default_rng(0))
    assert noise.shape == shape and noise.dtype == np.float32
    assert np.isfinite(noise).all() and np.abs(noise).max() <= 1.0001


def test_invalid_arguments():
    with pytest.raises(ConfigError, match="positive"):
        rand_perlin_2d((0, 10), (1, 1), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="positive"):
        rand_perlin_2d((10, 10), (0, 1), np.random.default_rng(0))


def test_fade_curve():
    t = np.linspace(0, 1, 11)
    f = fade(t)
    assert f[0] == 0 and f[-1] == pytest.approx(1.0) and f[5] == pytest.approx(0.5)
    assert np.all(np.diff(f) > 0)


def test_fractal_octaves():
    one = fractal_perlin_2d((64, 64), (2, 2), np.random.default_rng(1), octaves=1)
    base = rand_perlin_2d((64, 64), (2, 2), np.random.default_rng(1))
    np.testing.assert_array_equal(one, base)
    four = fractal_perlin_2d((64, 64), (2, 2), np.random.default_rng(1), octaves=4)
    assert four.dtype == np.float32 and np.abs(four).max() < 2.0
    # higher octaves add high-frequency detail: larger neighbour differences
    assert np.abs(np.diff(four, axis=1)).mean() > np.abs(np.diff(one, axis=1)).mean()
