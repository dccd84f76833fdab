"""Greedy coreset (k-center) subsampling of a PatchCore memory bank.

[paper] Roth et al., "Towards Total Recall in Industrial Anomaly Detection" (CVPR 2022),
Alg. 1: start from a random point, repeatedly add the point farthest from the current
selection; the distances are taken after a random (Johnson-Lindenstrauss) projection to a
lower dimension to speed the selection up.  The result minimises (2-approximately) the
coverage radius: the largest distance of any bank point to its nearest selected point.

The plain loop (:func:`greedy_coreset`) touches all N points per pick: O(k N d), over 15
minutes for 10 k picks out of 800 k patches on a 2-core CPU.  :func:`fast_greedy_coreset`
makes the *same* choices much faster: the points are grouped into compact partitions
(a few k-means steps), each with a bounding ball (centroid, radius R_j).  A new centre c
can only lower the distance of a point p in partition j if ``|c - mu_j| - R_j < r_j``
(triangle inequality; r_j = the largest current distance inside j), so only the few
partitions passing that test are updated.  The farthest point overall is the farthest
point of the partition with the largest r_j, so the selection is exactly greedy.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import Cancelled, ConfigError
from core.progress import RateGate
from core.types import Progress, ProgressCallback, StopCallback, ignore_progress, never_stop


@dataclass(frozen=True)
class CoresetResult:
    """A selected subset of the bank's rows.

    Attributes:
        indices: (k,) int64 row indices into the input, in selection order.
        radius: coverage radius in the selection space (after the projection): every
            input row lies within this distance of a selected row.
        projection_dim: dimension the distances were computed in (None: no projection).
        n_partitions: partitions used by :func:`fast_greedy_coreset` (1 for plain greedy).
        seconds: wall time of the selection.
    """

    indices: np.ndarray
    radius: float
    projection_dim: int | None
    n_partitions: int
    seconds: float


def projection_matrix(in_dim: int, out_dim: int, seed: int = 0) -> torch.Tensor:
    """Seeded Gaussian (in_dim, out_dim) float32 matrix scaled by 1/sqrt(out_dim) [paper]."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(in_dim, out_dim, generator=g) / math.sqrt(out_dim)


def project(features: torch.Tensor, projection_dim: int | None, seed: int = 0) -> torch.Tensor:
    """Seeded random projection (N, D) -> (N, projection_dim) float32 [paper].

    Returns the features unchanged (as float32) when ``projection_dim`` is None or not
    smaller than D.  Distances are preserved up to a small factor (Johnson-Lindenstrauss).
    """
    x = torch.as_tensor(features).float()
    if x.ndim != 2:
        raise ConfigError(f"coreset features must be (N, D), got {tuple(x.shape)}")
    if projection_dim is None or projection_dim >= x.shape[1]:
        return x
    return x @ projection_matrix(x.shape[1], projection_dim, seed)


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread inside the block: the greedy loop's many small ops lose
    more to OpenMP synchronisation on a busy 2-core CPU than they gain (measured)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _check_k(n: int, n_select: int) -> None:
    if not 1 <= n_select <= n:
        raise ConfigError(f"coreset size must be in [1, {n}], got {n_select}")


def _sqdist(x: torch.Tensor, xn: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared distances (n,) of rows of x (n, d) with norms xn (n,) to c (d,)."""
    return torch.addmv(xn, x, c, alpha=-2.0).add_(c.dot(c)).clamp_(min=0.0)


class _Ticker:
    """Throttled progress (~10 Hz) and cancellation checks for a selection loop."""

    def __init__(self, total: int, on_progress: ProgressCallback, should_stop: StopCallback):
        self.total, self.on_progress, self.should_stop = total, on_progress, should_stop
        self.gate = RateGate()

    def __call__(self, done: int) -> None:
        if done % 64 and done != self.total:
            return
        if self.should_stop():
            raise Cancelled(f"coreset selection cancelled after {done} of {self.total} picks")
        if self.gate(done == self.total):
            self.on_progress(Progress(done, self.total, "selecting coreset"))


def greedy_coreset(
    features: torch.Tensor | np.ndarray,
    n_select: int,
    *,
    seed: int = 0,
    projection_dim: int | None = 128,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> CoresetResult:
    """Plain greedy coreset [paper] Alg. 1 / [anomalib] ``KCenterGreedy``: the reference.

    Args:
        features: (N, D) float; n_select: k in [1, N]; seed: picks the random start and
        the projection.  Cost O(k N d): use :func:`fast_greedy_coreset` for large banks.
    """
    t0 = time.perf_counter()
    x = project(features, projection_dim, seed)
    n = x.shape[0]
    _check_k(n, n_select)
    xn = (x * x).sum(1)
    rng = np.random.default_rng(seed)
    idx = [int(rng.integers(n))]
    mind = _sqdist(x, xn, x[idx[0]])
    tick = _Ticker(n_select, on_progress, should_stop)
    with single_thread():
        for done in range(1, n_select):
            tick(done)
            i = int(torch.argmax(mind))
            idx.append(i)
            torch.minimum(mind, _sqdist(x, xn, x[i]), out=mind)
    tick(n_select)
    return CoresetResult(
        indices=np.asarray(idx, np.int64),
        radius=math.sqrt(float(mind.max())),
        projection_dim=x.shape[1] if x.shape[1] != np.shape(features)[1] else None,
        n_partitions=1,
        seconds=time.perf_counter() - t0,
    )


def _kmeans_labels(x: torch.Tensor, m: int, seed: int, iters: int = 6) -> torch.Tensor:
    """(N,) int64 labels of a few Lloyd steps (seeded init; fit on <= 65536 rows)."""
    g = torch.Generator().manual_seed(int(seed) + 1)
    sample = x[torch.randperm(x.shape[0], generator=g)[: max(65536, m)]]
    cent = sample[torch.randperm(sample.shape[0], generator=g)[:m]].clone()

    def assign(rows: torch.Tensor) -> torch.Tensor:
        out = []
        cn = (cent * cent).sum(1)
        for chunk in rows.split(65536):
            out.append(torch.addmm(cn, chunk, cent.T, alpha=-2.0).argmin(1))
        return torch.cat(out)

    for _ in range(iters):
        lab = assign(sample)
        sums = torch.zeros_like(cent).index_add_(0, lab, sample)
        counts = torch.bincount(lab, minlength=m).unsqueeze(1)
        cent = torch.where(counts > 0, sums / counts.clamp(min=1), cent)
    return assign(x)


def fast_greedy_coreset(
    features: torch.Tensor | np.ndarray,
    n_select: int,
    *,
    seed: int = 0,
    projection_dim: int | None = 128,
    partition_size: int = 2048,
    max_updates: int | None = 8,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> CoresetResult:
    """Exact greedy coreset with partition pruning (see module docstring).

    Same contract as :func:`greedy_coreset` (same start point for a seed; the picks agree
    with it up to float rounding of ties).  ``partition_size`` sets the number of
    k-means partitions to about ``N / partition_size``.
    """
    t0 = time.perf_counter()
    x = project(features, projection_dim, seed)
    n = x.shape[0]
    _check_k(n, n_select)
    m = max(1, min(1024, round(n / max(1, partition_size))))
    labels = _kmeans_labels(x, m, seed) if m > 1 else torch.zeros(n, dtype=torch.int64)
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=m)
    parts_idx = [p for p in order.split(counts.tolist()) if p.numel()]
    parts = [x[p].contiguous() for p in parts_idx]
    norms = [(p * p).sum(1) for p in parts]
    cent = torch.stack([p.mean(0) for p in parts])
    ball = torch.tensor(
        [float((p - c).norm(dim=1).max()) for p, c in zip(parts, cent, strict=True)]
    )
    m = len(parts)
    mind = [torch.full((p.shape[0],), math.inf) for p in parts]
    r2 = torch.full((m,), math.inf)  # largest current squared distance per partition

    def add(j0: int, center: torch.Tensor) -> None:
        gap = (cent - center).norm(dim=1) - ball  # lower bound of |center - p| in each part
        gap[j0] = -math.inf  # the centre's own partition is always updated
        gap[(gap > 0) & (gap * gap >= r2)] = math.inf  # pruned: no point there can improve
        n_hit = int((gap < math.inf).sum())
        if max_updates is not None and n_hit > max_updates:
            n_hit = max_updates  # keep the nearest partitions: approximate, still a bound
        for j in torch.topk(gap, n_hit, largest=False).indices.tolist():
            torch.minimum(mind[j], _sqdist(parts[j], norms[j], center), out=mind[j])
            r2[j] = mind[j].max()

    rng = np.random.default_rng(seed)
    start = int(rng.integers(n))
    first = next(
        (j, int(i)) for j, p in enumerate(parts_idx) for i in torch.nonzero(p == start).flatten()
    )
    picks = [first]
    tick = _Ticker(n_select, on_progress, should_stop)
    with single_thread():
        add(first[0], parts[first[0]][first[1]])
        for done in range(1, n_select):
            tick(done)
            j = int(torch.argmax(r2))
            if math.isinf(float(r2[j])):  # never touched (max_updates): start at its medoid
                i = int(_sqdist(parts[j], norms[j], cent[j]).argmin())
            else:
                i = int(torch.argmax(mind[j]))
            picks.append((j, i))
            add(j, parts[j][i])
    tick(n_select)
    indices = np.asarray([int(parts_idx[j][i]) for j, i in picks], np.int64)
    return CoresetResult(
        indices=indices,
        radius=math.sqrt(max(0.0, float(r2.max()))),
        projection_dim=x.shape[1] if x.shape[1] != np.shape(features)[1] else None,
        n_partitions=m,
        seconds=time.perf_counter() - t0,
    )


def coverage_radius(
    features: torch.Tensor | np.ndarray, indices: np.ndarray, *, chunk: int = 8192
) -> float:
    """Exact coverage radius: max over rows of (N, D) ``features`` of the distance to the
    nearest row in ``features[indices]`` (use the projected features to check a result)."""
    x = torch.as_tensor(features).float()
    sel = x[torch.as_tensor(np.asarray(indices, np.int64))]
    sn = (sel * sel).sum(1)
    worst = 0.0
    for rows in x.split(chunk):
        d2 = torch.addmm(sn, rows, sel.T, alpha=-2.0).add_((rows * rows).sum(1, keepdim=True))
        worst = max(worst, float(d2.min(1).values.clamp(min=0).max()))
    return math.sqrt(worst)


# ----------------------------------------------------------------- nearest-neighbour search
@dataclass(frozen=True)
class Neighbours:
    """Nearest memory-bank item per query: ``distance`` (Q,) float32 (Euclidean) and
    ``index`` (Q,) int64 into the bank."""

    distance: torch.Tensor
    index: torch.Tensor


def exact_nearest(
    queries: torch.Tensor,
    bank: torch.Tensor,
    *,
    exclude: torch.Tensor | None = None,
    bank_norms: torch.Tensor | None = None,
) -> Neighbours:
    """Brute-force nearest neighbour of each (Q, D) query in the (M, D) bank.

    Batched matrix products bounded to ~16 M distances at a time.  ``exclude``: (M,)
    bool, bank items never returned (leave-one-image-out calibration); ``bank_norms``:
    the (M,) squared row norms of ``bank`` if already known.
    """
    bn = (bank * bank).sum(1) if bank_norms is None else bank_norms
    if exclude is not None:
        bn = bn.masked_fill(exclude, math.inf)
    step = max(1, (1 << 24) // max(1, bank.shape[0]))
    dist, index = [], []
    for q in queries.split(step):
        d2 = torch.addmm(bn, q, bank.T, alpha=-2.0)
        best = d2.min(1)
        dist.append((best.values + (q * q).sum(1)).clamp_(min=0).sqrt_())
        index.append(best.indices)
    return Neighbours(torch.cat(dist), torch.cat(index))


class MemoryIndex:
    """Nearest-neighbour search over a memory bank (M, D) float32.

    ``n_lists == 0``: exact (:func:`exact_nearest`).  Otherwise an inverted-file index
    (the idea of faiss ``IndexIVFFlat``, in torch): the bank is split into ``n_lists``
    k-means cells; a query is compared only with the items of its ``n_probe`` nearest
    cells.  Approximate: a returned distance is never below the true one.
    """

    def __init__(self, bank: torch.Tensor, *, n_lists: int = 0, n_probe: int = 8, seed: int = 0):
        self.bank = bank.float().contiguous()
        self.norms = (self.bank * self.bank).sum(1)  # (M,) squared norms, reused by every search
        self.n_probe = int(n_probe)
        self.n_lists = int(n_lists) if 0 < n_lists < bank.shape[0] // 4 else 0
        if self.n_lists:
            labels = _kmeans_labels(self.bank, self.n_lists, seed, iters=8)
            self._build(labels)

    def _build(self, labels: torch.Tensor) -> None:
        self.labels = labels
        self.order = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels, minlength=self.n_lists)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
        sums = torch.zeros(self.n_lists, self.bank.shape[1]).index_add_(0, labels, self.bank)
        self.centroids = sums / counts.clamp(min=1).unsqueeze(1).float()
        self.centroids[counts == 0] = 0.0
        self.centroid_norms = (self.centroids * self.centroids).sum(1)
        self.centroid_norms[counts == 0] = math.inf  # empty cells are never probed
        self.sorted_bank = self.bank[self.order]
        self.sorted_norms = self.norms[self.order]

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to store in a checkpoint (the cell of every bank item)."""
        return {"memory_bank": self.bank, **({"ivf_labels": self.labels} if self.n_lists else {})}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], *, n_probe: int = 8) -> MemoryIndex:
        index = cls(state["memory_bank"], n_lists=0, n_probe=n_probe)
        labels = state.get("ivf_labels")
        if labels is not None:
            index.n_lists = int(labels.max()) + 1
            index._build(labels.long())
        return index

    def search(self, queries: torch.Tensor, exclude: torch.Tensor | None = None) -> Neighbours:
        """Nearest bank item of each (Q, D) float32 query, never one of ``exclude`` (M,) bool."""
        if not self.n_lists:
            return exact_nearest(queries, self.bank, exclude=exclude, bank_norms=self.norms)
        norms = self.sorted_norms
        if exclude is not None:
            norms = norms.masked_fill(exclude[self.order], math.inf)
        q = queries.float()
        probe = min(self.n_probe, self.n_lists)
        cells = torch.addmm(self.centroid_norms, q, self.centroids.T, alpha=-2.0)
        cells = cells.topk(probe, dim=1, largest=False).indices.flatten()
        pair_query = torch.arange(q.shape[0]).repeat_interleave(probe)
        by_cell = torch.argsort(cells, stable=True)
        per_cell = torch.bincount(cells, minlength=self.n_lists).tolist()
        best_d = torch.full((cells.numel(),), math.inf)
        best_i = torch.zeros(cells.numel(), dtype=torch.int64)
        start = 0
        for c, n in enumerate(per_cell):
            if not n:
                continue
            pairs = by_cell[start : start + n]
            start += n
            lo, hi = int(self.offsets[c]), int(self.offsets[c + 1])
            sub = q[pair_query[pairs]]
            d2 = torch.addmm(norms[lo:hi], sub, self.sorted_bank[lo:hi].T, alpha=-2.0)
            m = d2.min(1)
            best_d[pairs] = m.values
            best_i[pairs] = m.indices + lo
        best_d = best_d.view(-1, probe)
        which = best_d.argmin(1, keepdim=True)
        d2 = best_d.gather(1, which).squeeze(1) + (q * q).sum(1)
        index = self.order[best_i.view(-1, probe).gather(1, which).squeeze(1)]
        return Neighbours(d2.clamp_(min=0).sqrt_(), index)


__all__ = [
    "CoresetResult",
    "MemoryIndex",
    "Neighbours",
    "exact_nearest",
    "projection_matrix",
    "single_thread",
    "coverage_radius",
    "fast_greedy_coreset",
    "greedy_coreset",
    "project",
]
