"""Sharded inspection: under ``torchrun`` each rank inspects a share of the inputs and
rank 0 merges the shares, in input order, into one result for one export.

Who does what:

* **share**: rank ``r`` of ``N`` inspects inputs ``r, r + N, r + 2N, ...`` (interleaved,
  so folders of large and small images spread evenly over the ranks);
* **shard file**: each rank writes its anomaly maps, reconstructions and scores to a
  hidden shard file next to the target (``.<name>.rank<r>.<pid>-<random>.tmp``, HDF5,
  LZF-compressed, lossless);
* **outcome**: each rank then reports a small :class:`RankOutcome` (status, error
  message, the shard's path, per image its input index, path and score, per failed
  file its reason) through the process group (:func:`core.distributed.gather_plain`);
  that one exchange is the only collective, and every rank reaches it, failed or not,
  so no rank is left waiting on another;
* **merge**: if every rank succeeded, rank 0 opens the shards (:class:`ShardSet`) and
  builds one :class:`~core.types.InspectionResult` in input order whose predictions
  read their arrays from the shards on access (one image at a time), then deletes the
  shards. Otherwise every rank deletes its own shard and nothing is exported;
* **stale shards**: a rank killed mid-run leaves its shard behind. Only the shards the
  ranks report are ever opened, so such a file is never merged; each rank removes its
  own rank's stale shards before it starts and rank 0 every rank's once the run is over
  (:func:`clean_stale_shards`: those whose writing process no longer runs).

Why files and not object collectives for the arrays: the maps of a large batch are
gigabytes; ``gather_object`` would pickle a rank's whole share into one message and
hold every rank's share in rank 0's memory at once (twice, pickled and unpickled), and a
message that large stalls or exceeds the collective's timeout. Through files each rank's
memory holds only its own share, rank 0 reads one record at a time while exporting,
and the process group carries only paths, scores and status (about 100 bytes an image). The price: the target's folder must be
on storage every rank can reach (always true on one machine; on several nodes a shared
file system), which :meth:`ShardSet.open` checks with a clear error.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from core.errors import CoreError
from core.types import FailedImage, InspectionResult

OK, FAILED, CANCELLED = "ok", "failed", "cancelled"
_LZF = {"compression": "lzf"}


class ShardError(CoreError):
    """A rank failed, or rank 0 cannot read another rank's shard (one line)."""


def share(n: int, rank: int, world_size: int) -> list[int]:
    """Input indices rank ``rank`` of ``world_size`` inspects: ``rank::world_size``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return list(range(rank, n, world_size))


def shard_path(target: str | os.PathLike, rank: int) -> Path:
    """A fresh shard path next to ``target`` naming this rank and process.

    Its name has the temporary-file form of :mod:`core.io.files`, but not the
    target's suffix, so an export's stale-file sweep never takes a live shard of
    another node for a dead process's file (pids are per machine).
    """
    from core.io.files import temp_path

    t = Path(target)
    return temp_path(t.with_name(f"{t.name}.rank{rank}"))


def clean_stale_shards(target: str | os.PathLike, rank: int | None = None) -> list[Path]:
    """Remove the shards of ``target`` that killed runs left behind (their process no
    longer runs): rank ``rank``'s, or every rank's when None; return the paths removed."""
    from core.io.files import clean_stale

    t = Path(target)
    which = r"\d+" if rank is None else str(int(rank))
    return clean_stale(t.parent, base=re.compile(rf"{re.escape(t.name)}\.rank{which}"))


@dataclasses.dataclass(frozen=True)
class RankOutcome:
    """What one rank reports after inspecting its share (plain data only).

    Attributes:
        rank: the rank.
        status: ``ok``, ``failed`` or ``cancelled``.
        message: the error (``failed``) or cancel message, else empty.
        shard: path of the shard file (``ok`` only).
        items: per inspected image ``(input index, path, score)``, in input order.
        failures: per file that could not be inspected ``(input index, path, reason)``.
    """

    rank: int
    status: str
    message: str = ""
    shard: str = ""
    items: tuple[tuple[int, str, float], ...] = ()
    failures: tuple[tuple[int, str, str], ...] = ()

    def to_plain(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> RankOutcome:
        return cls(
            rank=int(d["rank"]),
            status=str(d["status"]),
            message=str(d["message"]),
            shard=str(d["shard"]),
            items=tuple((int(i), str(p), float(s)) for i, p, s in d["items"]),
            failures=tuple((int(i), str(p), str(r)) for i, p, r in d["failures"]),
        )


def write_shard(
    target: str | os.PathLike,
    rank: int,
    indices: Sequence[int],
    files: Sequence[str],
    result: InspectionResult,
) -> RankOutcome:
    """Write a rank's :class:`InspectionResult` of ``files`` (its share, input indices
    ``indices``) to a shard file next to ``target``; return its ``ok`` outcome.

    Each inspected image is one group ``/<input index>`` holding ``anomaly_map``
    (H, W) float32 and, where the method has one, ``reconstruction`` (H, W, 3) uint8,
    with the attributes ``score`` (float64) and ``path``. The file is removed if
    writing fails.
    """
    where = {str(f): k for k, f in reversed(list(enumerate(files)))}
    items: list[tuple[int, str, float]] = []
    path = shard_path(target, rank)
    try:
        with h5py.File(path, "w-") as f:
            f.attrs["rank"] = rank
            pos = 0
            for p, pred in zip(result.paths, result.predictions, strict=True):
                while pos < len(files) and str(files[pos]) != p:  # result keeps input order
                    pos += 1
                k = pos if pos < len(files) else where[p]
                index = int(indices[k])
                g = f.create_group(f"{index:010d}")
                g.create_dataset(
                    "anomaly_map", data=np.asarray(pred.anomaly_map, np.float32), **_LZF
                )
                if pred.reconstruction is not None:
                    g.create_dataset("reconstruction", data=np.asarray(pred.reconstruction), **_LZF)
                g.attrs["score"] = float(pred.score)
                g.attrs["path"] = p
                items.append((index, p, float(pred.score)))
                pos += 1
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    last = int(indices[-1]) if len(indices) else 0  # a failure under another spelling
    failures = tuple(
        (int(indices[where[f.path]]) if f.path in where else last, f.path, f.reason)
        for f in result.failures
    )
    return RankOutcome(rank, OK, shard=os.fspath(path), items=tuple(items), failures=failures)


def remove_shards(outcomes: Sequence[RankOutcome]) -> None:
    """Delete the shard files named in ``outcomes`` (missing ones are ignored)."""
    for o in outcomes:
        if o.shard:
            Path(o.shard).unlink(missing_ok=True)


def first_problem(outcomes: Sequence[RankOutcome]) -> RankOutcome | None:
    """The first failed rank's outcome, else the first cancelled one, else None."""
    for status in (FAILED, CANCELLED):
        for o in outcomes:
            if o.status == status:
                return o
    return None


class ShardPrediction:
    """A :class:`core.types.Prediction` whose arrays stay in a shard file until read.

    ``score`` is held; ``anomaly_map`` (H, W) float32 and ``reconstruction`` (H, W, 3)
    uint8 or None are read on access (the last one read is kept, so building one export
    record reads each array once).
    """

    __slots__ = ("_key", "_shards", "score")

    def __init__(self, shards: ShardSet, key: tuple[int, str], score: float) -> None:
        self._shards, self._key, self.score = shards, key, float(score)

    @property
    def anomaly_map(self) -> np.ndarray:
        return self._shards.read(self._key, "anomaly_map")

    @property
    def reconstruction(self) -> np.ndarray | None:
        return self._shards.read(self._key, "reconstruction")


class ShardSet:
    """Rank 0's view of every rank's shard: :meth:`merged` result, then :meth:`close`."""

    def __init__(self, outcomes: Sequence[RankOutcome]) -> None:
        self.outcomes = list(outcomes)
        self._files: dict[int, h5py.File] = {}
        self._last: dict[str, tuple[tuple[int, str], Any]] = {}

    @classmethod
    def open(cls, outcomes: Sequence[RankOutcome]) -> ShardSet:
        """Open every rank's shard for reading.

        Raises:
            ShardError: a shard is missing or unreadable here (e.g. the ranks ran on
                nodes that do not share the target's folder).
        """
        self = cls(outcomes)
        try:
            for o in self.outcomes:
                if not Path(o.shard).is_file():
                    raise ShardError(
                        f"rank {o.rank}'s results are not visible here ({o.shard}): on "
                        "several nodes, --out must be in a folder every node shares"
                    )
                try:
                    self._files[o.rank] = h5py.File(o.shard, "r")
                except OSError as exc:
                    raise ShardError(f"rank {o.rank}'s results are unreadable: {exc}") from None
        except BaseException:
            self.close()
            raise
        return self

    def read(self, key: tuple[int, str], name: str) -> np.ndarray | None:
        last = self._last.get(name)
        if last is not None and last[0] == key:
            return last[1]
        rank, group = key
        try:
            g = self._files[rank][group]
            value = g[name][()] if name in g else None
        except (KeyError, OSError, ValueError) as exc:
            raise ShardError(f"rank {rank}'s results are damaged ({group}/{name}): {exc}") from None
        self._last[name] = (key, value)
        return value

    def merged(self) -> InspectionResult:
        """Every rank's inspected images and failures in input order; predictions are
        :class:`ShardPrediction`\\ s (arrays read on access)."""
        items = sorted(
            (index, rank, path, score)
            for rank, o in enumerate(self.outcomes)
            for index, path, score in o.items
        )
        preds = tuple(
            ShardPrediction(self, (self.outcomes[r].rank, f"{i:010d}"), s) for i, r, _, s in items
        )
        failures = sorted(f for o in self.outcomes for f in o.failures)
        return InspectionResult(
            paths=tuple(p for _, _, p, _ in items),
            predictions=preds,  # type: ignore[arg-type]  # duck-typed Prediction
            failures=tuple(FailedImage(path=p, reason=r) for _, p, r in failures),
        )

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._last.clear()

    def __enter__(self) -> ShardSet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def inspect_share(
    inspect: Callable[[list[str]], InspectionResult],
    files: Sequence[str],
    target: str | os.PathLike,
    rank: int,
    world_size: int,
) -> RankOutcome:
    """Inspect rank ``rank``'s share of ``files`` with ``inspect(paths)`` and write its
    shard next to ``target``; errors propagate (the caller turns them into an outcome)."""
    clean_stale_shards(target, rank)
    indices = share(len(files), rank, world_size)
    mine = [str(files[i]) for i in indices]
    result = inspect(mine) if mine else InspectionResult(paths=(), predictions=())
    return write_shard(target, rank, indices, mine, result)


__all__ = [
    "CANCELLED",
    "FAILED",
    "OK",
    "RankOutcome",
    "ShardError",
    "ShardPrediction",
    "ShardSet",
    "clean_stale_shards",
    "first_problem",
    "inspect_share",
    "remove_shards",
    "share",
    "shard_path",
    "write_shard",
]
