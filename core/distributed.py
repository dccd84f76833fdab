"""Data-parallel training across processes (``torchrun``), Qt-free.

Under ``torchrun --nproc_per_node N main.py train ...`` every process reads its place
from the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, plus ``MASTER_ADDR`` /
``MASTER_PORT``); :func:`session` joins the process group (``nccl`` on CUDA, ``gloo``
on CPU) and leaves it again. Without those variables a run is a single process:
world size 1, backend ``"none"``, and nothing here does any communication.

Conventions used by :mod:`core.models.draem.train`:

* every rank builds the same model (same seed); ``DistributedDataParallel`` also
  broadcasts rank 0's weights at wrap time and averages gradients every step, so the
  weights stay identical on all ranks;
* each rank's simulator and sample stream are seeded with ``seed + rank``, so ranks
  train on different synthetic samples;
* a step budget counts global optimizer steps (one step uses ``batch_size`` samples
  on every rank, ``world_size * batch_size`` in all); the stop decision (budget,
  time, cancel) is agreed by all ranks every step so none waits on the others;
* rank 0 alone reports progress and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
from collections.abc import Iterator, Mapping

import torch
import torch.distributed as dist
from torch import nn

from core.errors import ConfigError

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclasses.dataclass(frozen=True)
class DistEnv:
    """This process's place in a run: ``rank`` of ``world_size``, ``backend``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "none"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistEnv()


def detect_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """The run's :class:`DistEnv` from ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``.

    No ``WORLD_SIZE`` (or ``WORLD_SIZE=1``): a single process. The backend is decided
    later by :func:`session` and reads ``"none"`` here.
    """
    env = os.environ if environ is None else environ
    if int(env.get("WORLD_SIZE", "1") or 1) <= 1:
        return SINGLE
    try:
        rank, world, local = (int(env[k]) for k in _ENV)
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"distributed run needs integer RANK, WORLD_SIZE and LOCAL_RANK ({exc})"
        ) from None
    if not 0 <= rank < world:
        raise ConfigError(f"RANK must be in [0, {world}), got {rank}")
    return DistEnv(rank, world, local)


def backend_for(kind: str) -> str:
    """``nccl`` for CUDA, ``gloo`` for CPU."""
    return "nccl" if kind == "cuda" else "gloo"


@contextlib.contextmanager
def session(
    kind: str,
    environ: Mapping[str, str] | None = None,
    *,
    backend: str | None = None,
    timeout: _dt.timedelta = _dt.timedelta(minutes=10),
) -> Iterator[DistEnv]:
    """Join the process group for a run on device kind ``kind`` (``cpu`` / ``cuda``).

    Single process: yields :data:`SINGLE`. An already initialised group (e.g. set up
    by the caller) is used as is and left open; a group this opened is destroyed on
    exit. On CUDA each rank's current device becomes ``cuda:LOCAL_RANK``.

    ``backend`` overrides :func:`backend_for` (``gloo`` for a run that only exchanges
    small plain data, even on GPUs); ``timeout`` bounds how long a collective waits
    for the slowest rank.
    """
    env = detect_env(environ)
    if not env.distributed:
        yield SINGLE
        return
    owned = not dist.is_initialized()
    if owned:
        if kind == "cuda":
            torch.cuda.set_device(env.local_rank)
        dist.init_process_group(backend or backend_for(kind), timeout=timeout)
    env = dataclasses.replace(
        env, rank=dist.get_rank(), world_size=dist.get_world_size(), backend=dist.get_backend()
    )
    try:
        yield env
    finally:
        if owned:
            dist.destroy_process_group()


def rank_device(env: DistEnv, device: str) -> str:
    """``cuda`` -> ``cuda:LOCAL_RANK`` in a distributed run; anything else unchanged.

    Raises:
        ConfigError: ``cuda:N`` in a distributed run with ``N`` not this process's
            ``LOCAL_RANK`` (every rank would share one GPU).
    """
    if env.distributed and device == "cuda":
        return f"cuda:{env.local_rank}"
    if env.distributed and device.startswith("cuda:") and device != f"cuda:{env.local_rank}":
        raise ConfigError(
            f"device {device!r} under torchrun: each process uses its own GPU "
            f"(cuda:LOCAL_RANK, here cuda:{env.local_rank}); pass --device cuda"
        )
    return device


def wrap(model: nn.Module, env: DistEnv, device: str) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` for a distributed run, else itself."""
    if not env.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index or 0] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def agree(env: DistEnv, *flags: bool, device: str = "cpu") -> tuple[bool, ...]:
    """Each flag True on every rank if it is True on any rank (one all-reduce)."""
    if not env.distributed:
        return tuple(bool(f) for f in flags)
    dev = device if env.backend == "nccl" else "cpu"
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v > 0) for v in t.tolist())


def sync_buffers(model: nn.Module, env: DistEnv) -> None:
    """Copy rank 0's buffers (e.g. batch-norm running statistics) to every rank.

    DDP broadcasts buffers before each forward pass, so after the last step each rank
    holds statistics of its own last batch; this makes the final model identical.
    """
    if env.distributed:
        for b in model.buffers():
            dist.broadcast(b.data, src=0)


def gather_plain(env: DistEnv, obj: object) -> list[object]:
    """Every rank's ``obj`` (small plain data: numbers, strings, lists, dicts), in rank
    order, on every rank; ``[obj]`` in a single process.

    Pickled through the process group (``all_gather_object``), so it is meant for
    status and summaries, not for arrays of a whole batch.
    """
    if not env.distributed:
        return [obj]
    out: list[object] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op in a single process)."""
    if env.distributed:
        dist.barrier()


__all__ = [
    "SINGLE",
    "DistEnv",
    "agree",
    "backend_for",
    "barrier",
    "detect_env",
    "gather_plain",
    "rank_device",
    "session",
    "sync_buffers",
    "wrap",
]
