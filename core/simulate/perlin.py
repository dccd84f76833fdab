"""2-D Perlin (gradient) noise, vectorised with numpy.

A port of [official] ``perlin.py::rand_perlin_2d_np``: one random unit gradient
per lattice point of a ``res[0] x res[1]`` grid, the quintic fade
``6t^5 - 15t^4 + 10t^3`` and the ``sqrt(2)`` scaling.  Unlike the original, the
gradients come from a caller-supplied :class:`numpy.random.Generator` (seeded,
reproducible), the computation is separable (row/column gathers instead of
``np.repeat`` of full grids) in float32, and shapes that are not a multiple of
``res`` work: the noise is generated on the next multiple and cropped.
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import ConfigError

__all__ = ["fade", "fractal_perlin_2d", "rand_perlin_2d"]


def fade(t: np.ndarray) -> np.ndarray:
    """Quintic fade curve ``6t^5 - 15t^4 + 10t^3`` ([official]); maps [0, 1] onto [0, 1]."""
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def _axis(n: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell index (int, (n,)) and in-cell fraction (float32, (n,), in [0, 1)) along one axis.

    The axis is padded to ``ceil(n / r) * r`` samples (``d`` per cell) and cropped
    to ``n`` -- the [official] grid ``mgrid[0:r:r/n] % 1`` when ``r`` divides ``n``.
    """
    d = -(-n // r)
    pos = np.arange(n)
    return pos // d, ((pos % d) / d).astype(np.float32)


def rand_perlin_2d(
    shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Perlin noise of ``shape`` with ``res`` lattice cells per axis ([official] ``rand_perlin_2d_np``).

    Args:
        shape: (H, W) of the output, each >= 1.
        res: (cells along H, cells along W), each >= 1; need not divide ``shape``.
        rng: source of the random gradient angles.

    Returns:
        float32 array (H, W), values in about [-1, 1] (zero on lattice points).
    """
    h, w = (int(s) for s in shape)
    ry, rx = (int(r) for r in res)
    if h < 1 or w < 1 or ry < 1 or rx < 1:
        raise ConfigError(f"perlin shape and res must be positive, got shape={shape}, res={res}")
    # Random unit gradients on the (ry+1, rx+1) lattice; component 0 runs along H [official].
    angles = 2.0 * math.pi * rng.random((ry + 1, rx + 1))
    g0 = np.cos(angles).astype(np.float32)
    g1 = np.sin(angles).astype(np.float32)

    iy, fy = _axis(h, ry)
    ix, fx = _axis(w, rx)
    fy_c, fx_r = fy[:, None], fx[None, :]

    def grad(dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
        # Gather gradients of the corner (iy+dy, ix+dx): rows first (cheap), then columns.
        rows = iy + dy
        cols = ix + dx
        return g0[rows][:, cols], g1[rows][:, cols]

    def dot(dy: int, dx: int) -> np.ndarray:
        a, b = grad(dy, dx)
        return (fy_c - dy) * a + (fx_r - dx) * b

    n00, n10, n01, n11 = dot(0, 0), dot(1, 0), dot(0, 1), dot(1, 1)
    ty = fade(fy_c)
    tx = fade(fx_r)
    n0 = n00 + ty * (n10 - n00)  # lerp along H first, as [official]
    n1 = n01 + ty * (n11 - n01)
    out = n0 + tx * (n1 - n0)
    out *= np.float32(math.sqrt(2.0))
    return out.astype(np.float32, copy=False)


def fractal_perlin_2d(
    shape: tuple[int, int],
    res: tuple[int, int],
    rng: np.random.Generator,
    octaves: int = 4,
    persistence: float = 0.5,
) -> np.ndarray:
    """Sum of ``octaves`` Perlin layers, doubling ``res`` and scaling by ``persistence`` each time.

    As [official] ``rand_perlin_2d_octaves``; used by the procedural textures.

    Returns:
        float32 array (H, W); the range grows with ``octaves`` (about ±2 for 4 octaves).
    """
    out = np.zeros(shape, np.float32)
    amp = 1.0
    ry, rx = res
    for _ in range(octaves):
        out += np.float32(amp) * rand_perlin_2d(shape, (ry, rx), rng)
        ry, rx, amp = ry * 2, rx * 2, amp * persistence
    return out
