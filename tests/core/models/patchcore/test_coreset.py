"""Greedy coreset selection and memory-bank nearest-neighbour search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import Cancelled, ConfigError
from core.models.patchcore.coreset import (
    MemoryIndex,
    coverage_radius,
    exact_nearest,
    fast_greedy_coreset,
    greedy_coreset,
    project,
)


def clustered(n: int = 6000, d: int = 48, centres: int = 40, seed: int = 0) -> torch.Tensor:
    """Points around a few centres with different spreads (like patch features)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(centres, d, generator=g) * 4
    which = torch.randint(0, centres, (n,), generator=g)
    spread = torch.rand(centres, generator=g)[which, None] + 0.2
    return c[which] + torch.randn(n, d, generator=g) * spread


def test_size_and_determinism_for_a_seed():
    x = clustered()
    a = fast_greedy_coreset(x, 300, seed=3)
    b = fast_greedy_coreset(x, 300, seed=3)
    c = fast_greedy_coreset(x, 300, seed=4)
    assert a.indices.shape == (300,) and a.indices.dtype == np.int64
    assert len(set(a.indices.tolist())) == 300  # no point picked twice
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.radius == b.radius
    assert not np.array_equal(a.indices, c.indices)
    p = greedy_coreset(x, 50, seed=3)
    np.testing.assert_array_equal(p.indices, greedy_coreset(x, 50, seed=3).indices)


def test_every_point_lies_within_the_selection_radius():
    x = clustered()
    for result in (greedy_coreset(x, 200, seed=1), fast_greedy_coreset(x, 200, seed=1)):
        exact = coverage_radius(x, result.indices)  # d = 48 < 128: no projection
        assert result.projection_dim is None
        assert exact <= result.radius + 1e-3
        assert exact >= result.radius - 1e-3  # the tracked radius is tight


def test_radius_is_measured_in_the_projected_space():
    x = clustered(2000, d=256)
    r = fast_greedy_coreset(x, 100, seed=0, projection_dim=32)
    assert r.projection_dim == 32
    px = project(x, 32, seed=0)
    assert coverage_radius(px, r.indices) <= r.radius + 1e-3


def test_fast_greedy_without_update_limit_equals_plain_greedy():
    x = clustered(4000)
    plain = greedy_coreset(x, 150, seed=2)
    exact = fast_greedy_coreset(x, 150, seed=2, partition_size=256, max_updates=None)
    assert exact.n_partitions > 4
    np.testing.assert_array_equal(exact.indices, plain.indices)
    fast = fast_greedy_coreset(x, 150, seed=2, partition_size=256)
    assert 0.8 * plain.radius <= fast.radius <= 1.2 * plain.radius  # both approximate k-center


def test_greedy_finds_every_separated_cluster():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(12, 16, generator=g) * 100
    x = centres.repeat_interleave(50, 0) + torch.randn(600, 16, generator=g)
    r = fast_greedy_coreset(x, 12, seed=0, partition_size=100)
    assert sorted((r.indices // 50).tolist()) == list(range(12))


def test_projection_is_seeded_and_keeps_distances_roughly():
    x = clustered(500, d=512)
    a, b = project(x, 128, seed=5), project(x, 128, seed=5)
    assert a.shape == (500, 128) and torch.equal(a, b)
    ratio = torch.pdist(a[:100]) / torch.pdist(x[:100])
    assert float(ratio.min()) > 0.6 and float(ratio.max()) < 1.4
    assert project(x, None).shape == (500, 512)


def test_bad_size_progress_and_cancel():
    x = clustered(1000)
    with pytest.raises(ConfigError, match="coreset size"):
        fast_greedy_coreset(x, 0)
    with pytest.raises(ConfigError, match="coreset size"):
        greedy_coreset(x, 1001)
    seen = []
    fast_greedy_coreset(x, 200, on_progress=seen.append)
    assert seen and seen[-1].done == seen[-1].total == 200
    with pytest.raises(Cancelled):
        fast_greedy_coreset(x, 500, should_stop=lambda: True)


def test_exact_nearest_matches_cdist_and_honours_exclude():
    bank, q = clustered(3000, seed=1), clustered(400, seed=2)
    nn = exact_nearest(q, bank)
    d = torch.cdist(q, bank)
    torch.testing.assert_close(nn.distance, d.min(1).values, atol=1e-3, rtol=1e-4)
    assert (nn.index == d.argmin(1)).float().mean() > 0.99
    exclude = torch.zeros(3000, dtype=torch.bool)
    exclude[nn.index] = True
    again = exact_nearest(q, bank, exclude=exclude)
    assert not exclude[again.index].any()
    assert (again.distance >= nn.distance - 1e-4).all()


def test_ivf_index_is_close_to_exact_and_never_below():
    bank, q = clustered(20000, seed=3), clustered(1000, seed=4)
    exact = exact_nearest(q, bank)
    ivf = MemoryIndex(bank, n_lists=64, n_probe=8, seed=0)
    assert ivf.n_lists == 64
    got = ivf.search(q)
    assert (got.distance >= exact.distance - 1e-3).all()
    assert (got.distance <= exact.distance + 1e-3).float().mean() > 0.95
    torch.testing.assert_close(
        got.distance, torch.linalg.norm(q - bank[got.index], dim=1), atol=1e-3, rtol=1e-4
    )
    again = MemoryIndex.from_state(ivf.state(), n_probe=8)
    torch.testing.assert_close(again.search(q).distance, got.distance)
    flat = MemoryIndex(bank)
    assert flat.n_lists == 0 and "ivf_labels" not in flat.state()
    torch.testing.assert_close(flat.search(q).distance, exact.distance)
