"""Torch dataset and background loader of synthetic DRAEM samples.

:class:`SyntheticDataset` turns good images into training samples with an
:class:`~core.simulate.simulator.AnomalySimulator`; :func:`make_loader` streams batches
endlessly from background worker processes (torch ``DataLoader`` with persistent
workers and prefetching) so the trainer never waits for the simulator.  Tensors
stay inside ``core`` (the trainer); nothing here is shown to the GUI.

Stream layout: sample ``i`` of the stream uses image ``perm_e[i % n]`` where
``e = i // n`` is the epoch and ``perm_e`` a permutation seeded by ``(seed, e)``,
and simulator index ``i``.  Batch ``b`` holds samples ``start_index + b * B``
... ``+ B - 1``, so training resumes exactly with ``start_index = step * B``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing as mp
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from core.errors import DatasetError
from core.simulate.server_signals import ignore_stop_signals
from core.simulate.simulator import AnomalySimulator

__all__ = ["SampleStream", "SyntheticDataset", "make_loader", "sample_to_tensors"]

log = logging.getLogger(__name__)


def sample_to_tensors(
    good: np.ndarray, augmented: np.ndarray, mask: np.ndarray, has_anomaly: bool
) -> dict:
    """Convert one sample to float32 tensors: image/augmented (3, H, W) in [0, 1], mask (1, H, W), has_anomaly ()."""

    def chw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float().div_(255.0)

    return {
        "image": chw(good),
        "augmented": chw(augmented),
        "mask": torch.from_numpy(mask[None].astype(np.float32)),
        "has_anomaly": torch.tensor(1.0 if has_anomaly else 0.0, dtype=torch.float32),
    }


class SyntheticDataset(Dataset):
    """Synthetic anomalies over good images (a torch ``Dataset``).

    Item ``i`` (any ``i >= 0``; ``len`` is one epoch = the number of images) uses image
    ``perm[i % n]`` (a permutation seeded per epoch by ``(seed, i // n)``) and simulator
    index ``i``. Items are dicts of float32 tensors:

    * ``image``: (3, H, W) in [0, 1], the good image (possibly rotated);
    * ``augmented``: (3, H, W) in [0, 1], with the pasted anomaly;
    * ``mask``: (1, H, W) in {0, 1};
    * ``has_anomaly``: scalar, 0.0 or 1.0.

    Args:
        images: good images, (h, w, 3) uint8 RGB of any size (resized once here).
        simulator: the simulator (its ``image_size`` is the sample size).
        seed: seed of the per-epoch permutations; default ``simulator.seed``.
    """

    def __init__(
        self, images: Sequence[np.ndarray], simulator: AnomalySimulator, seed: int | None = None
    ) -> None:
        if len(images) == 0:
            raise DatasetError("no good images to train on")
        self.simulator = simulator
        self.seed = simulator.seed if seed is None else int(seed)
        # Resize once so each sample does not (the simulator's resize is then a no-op).
        self.images = [simulator.prepare(img) for img in images]
        self._perm_epoch = -1
        self._perm = np.arange(len(self.images))

    def __len__(self) -> int:
        return len(self.images)

    def image_index(self, i: int) -> int:
        """Which image item ``i`` uses: ``perm_{i // n}[i % n]``."""
        n = len(self.images)
        epoch = i // n
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(n)
            self._perm_epoch = epoch
        return int(self._perm[i % n])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        i = int(i)
        if i < 0:
            raise IndexError(f"sample index must be >= 0, got {i}")
        s = self.simulator.sample(self.images[self.image_index(i)], i)
        return sample_to_tensors(s.good, s.augmented, s.mask, s.has_anomaly)


class _CountingSampler(Sampler[int]):
    """Yields ``start, start + 1, ...`` forever."""

    def __init__(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self) -> Iterator[int]:
        i = self.start
        while True:
            yield i
            i += 1


def _worker_init(trainer_pid: int, _worker_id: int) -> None:
    """Set up a worker process (``worker_init_fn``, bound to the trainer's pid).

    * One thread per worker: the worker processes are the parallelism.
    * SIGINT and SIGTERM are ignored: a Ctrl-C at the terminal (or a ``kill`` of the
      process group) reaches the workers too, but the trainer decides when they stop
      (it still needs batches while it saves its checkpoint).
    * The worker exits as soon as the trainer is gone (:func:`watch_parent`), even after
      ``kill -9`` of the trainer, when nothing shuts the workers down.
    """
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    ignore_stop_signals()
    watch_parent(trainer_pid)


def _linux_parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _gone(pid: int) -> bool:
    """True if process ``pid`` has ended (also when it is a zombie nobody has reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, another user's
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return False  # no /proc (macOS): the signal test above decides


def watch_parent(trainer_pid: int, poll_s: float = 0.5) -> str:
    """End this process (``os._exit``) as soon as process ``trainer_pid`` ends.

    Data-loader workers are started by a fork server, so their parent is the fork
    server, not the trainer: torch's own check (``getppid`` unchanged) and
    ``PR_SET_PDEATHSIG`` both watch the fork server, which in turn lives as long as any
    worker does, so after ``kill -9`` of the trainer every one of them lived on. This
    watches the trainer itself from a daemon thread:

    * Linux: a pidfd of the trainer (``os.pidfd_open``) becomes readable the moment the
      trainer ends; the thread waits on it without polling;
    * elsewhere: every ``poll_s`` seconds, the trainer's pid or this process's parent
      (for ``spawn`` workers, the trainer) is checked;
    * where the trainer is the direct parent (``spawn`` / ``fork`` workers on Linux),
      ``PR_SET_PDEATHSIG`` also has the kernel kill the worker with its parent.

    Returns how it watches: ``"pidfd"`` or ``"poll"``; exits at once if the trainer is
    already gone.
    """
    parent = os.getppid()
    if parent == trainer_pid:
        _linux_parent_death_signal()
    pidfd = None
    with contextlib.suppress(OSError, AttributeError):
        pidfd = os.pidfd_open(trainer_pid)
    if _gone(trainer_pid):
        os._exit(0)

    def wait_pidfd() -> None:
        select.select([pidfd], [], [])
        os._exit(0)

    def poll() -> None:
        while not _gone(trainer_pid) and os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(0)

    how = "pidfd" if pidfd is not None else "poll"
    watcher = wait_pidfd if pidfd is not None else poll
    threading.Thread(target=watcher, name="watch-trainer", daemon=True).start()
    return how


#: Modules the fork server imports once, so each worker starts in ~0.1 s; the first
#: makes the server ignore Ctrl-C before the slow imports (see its docstring).
_PRELOAD = ["core.simulate.server_signals", "numpy", "cv2", "torch", "core.simulate.dataset"]


def _default_context() -> Any:
    """``forkserver`` where available (Linux), else the platform default (spawn).

    Plain ``fork`` is not safe here: forking a process whose OpenCV thread pool has
    run (or a Qt GUI's threads) can deadlock the worker (seen with cv2's pthreads
    pool: ``cv2.setNumThreads`` in the child waits forever on a copied condition
    variable).  A fork server is a clean single-threaded process, so workers are
    safe and still start fast.  As with ``spawn``, the main script must guard its
    entry point with ``if __name__ == "__main__":``.
    """
    if "forkserver" not in mp.get_all_start_methods():
        return None
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)  # only effective before the server's first start
    _start_fork_server()
    return ctx


def _start_fork_server() -> None:
    """Start the fork server with SIGINT and SIGTERM ignored, so it ignores them from
    its first instruction (an ignored signal stays ignored across ``exec``, and Python
    then installs no Ctrl-C handler of its own).

    A Ctrl-C at the terminal reaches every process of the group; one during the
    server's first seconds (interpreter start, importing torch and OpenCV) killed it
    with a traceback, and the trainer then failed with ``EOFError``. This process
    ignores the two signals only while it forks and executes the server (a few
    milliseconds). Outside the main thread, where signal handlers cannot change, the
    server's first preloaded module (:mod:`core.simulate.server_signals`) does it,
    after the interpreter has started.
    """
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    stops = [s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None]
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in stops}
    try:
        forkserver.ensure_running()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class SampleStream:
    """Endless iterator of batches (dicts of stacked tensors, see :class:`SyntheticDataset`).

    ``wait_s`` accumulates the seconds the consumer spent blocked in ``next()``
    (the trainer's idle time waiting for data); ``batches`` counts batches served.
    Call :meth:`close` (or use as a context manager) to stop the worker processes.

    If the worker processes cannot start (the first batch fails with an OS or
    worker error, e.g. an unguarded main script under ``spawn``), the stream logs
    a warning and generates in the calling thread instead (``fallback``); the
    batches are the same, only slower. ``in_process`` tells which is running.
    """

    def __init__(
        self, loader: DataLoader, fallback: Callable[[], DataLoader] | None = None
    ) -> None:
        self.loader = loader
        self._fallback = fallback
        self.wait_s = 0.0
        self.batches = 0
        self._it: Any = None
        try:
            self._it = iter(loader)
        except (OSError, RuntimeError, EOFError) as exc:  # EOFError: the fork server died
            self._use_fallback(exc)

    @property
    def in_process(self) -> bool:
        """True when batches are generated in the calling thread (no workers)."""
        return self.loader.num_workers == 0

    def _use_fallback(self, exc: BaseException) -> None:
        if self._fallback is None:
            raise exc
        log.warning("simulator workers failed to start (%s); generating samples in-process", exc)
        self.close()
        self.loader, self._fallback = self._fallback(), None
        self._it = iter(self.loader)

    def __iter__(self) -> SampleStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self._it is None:
            raise StopIteration
        t0 = time.perf_counter()
        try:
            batch = next(self._it)
        except (OSError, RuntimeError, EOFError) as exc:  # worker start-up failure
            if self.batches or self._fallback is None:
                raise
            self._use_fallback(exc)
            batch = next(self._it)
        self.wait_s += time.perf_counter() - t0
        self.batches += 1
        return batch

    def close(self) -> None:
        """Shut the workers down (idempotent)."""
        it, self._it = self._it, None
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()

    def __enter__(self) -> SampleStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()


def make_loader(
    images: Sequence[np.ndarray],
    simulator: AnomalySimulator,
    batch_size: int,
    num_workers: int,
    seed: int,
    start_index: int = 0,
    *,
    prefetch_factor: int = 4,
    pin_memory: bool = False,
    multiprocessing_context: Any = None,
) -> SampleStream:
    """An endless stream of training batches generated in background workers.

    Args:
        images: good images, (h, w, 3) uint8 RGB.
        simulator: the simulator.
        batch_size: samples per batch (>= 1).
        num_workers: worker processes (0 = generate in the calling thread, for tests).
        seed: seed of the per-epoch image permutations.
        start_index: index of the first sample (``step * batch_size`` to resume).
        prefetch_factor: batches each worker prepares ahead.
        pin_memory: pin batches (for CUDA training).
        multiprocessing_context: start method name or context for the workers;
            default ``forkserver`` where available, else ``spawn`` (never plain
            ``fork``: see :func:`_default_context`).

    Returns:
        :class:`SampleStream` yielding dicts: image/augmented (B, 3, H, W), mask
        (B, 1, H, W), has_anomaly (B,), all float32.
    """
    if batch_size < 1:
        raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise DatasetError(f"num_workers must be >= 0, got {num_workers}")
    if start_index < 0:
        raise DatasetError(f"start_index must be >= 0, got {start_index}")
    dataset = SyntheticDataset(images, simulator, seed=seed)

    def loader(workers: int) -> DataLoader:
        extra: dict[str, Any] = {}
        if workers > 0:
            extra = dict(
                persistent_workers=True,
                prefetch_factor=prefetch_factor,
                worker_init_fn=functools.partial(_worker_init, os.getpid()),
                multiprocessing_context=multiprocessing_context or _default_context(),
            )
        sampler = _CountingSampler(start_index)
        return DataLoader(
            dataset,
            batch_size,
            sampler=sampler,
            num_workers=workers,
            pin_memory=pin_memory,
            **extra,
        )

    return SampleStream(
        loader(num_workers), fallback=(lambda: loader(0)) if num_workers > 0 else None
    )
