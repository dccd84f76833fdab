"""The command line under ``torchrun``: which rank this process is, and rank-0-only output.

Torch-free on purpose (read from the environment ``torchrun`` sets), so every command,
even ``--help``, can ask without importing torch.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping

#: output lines of a non-zero rank that are still shown (prefixed ``[rank N]``)
_PASSED = ("error:",)
_TRACEBACK = "Traceback (most recent call last):"
_MAX_PENDING = 1 << 16  # a line longer than this without a newline is dropped


def rank_and_world(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` from the environment; ``(0, 1)`` outside torchrun or when
    they are not integers (:func:`core.distributed.detect_env` reports that clearly)."""
    env = os.environ if environ is None else environ
    try:
        return int(env.get("RANK", "0") or 0), int(env.get("WORLD_SIZE", "1") or 1)
    except ValueError:
        return 0, 1


class ErrorsOnly(io.TextIOBase):
    """A text stream that forwards only error lines (``error: ...``) to ``target``, each
    prefixed ``[rank N] ``; from a Python traceback on, everything (a bug must be seen)."""

    def __init__(self, target, rank: int) -> None:
        self._target, self._prefix = target, f"[rank {rank}] "
        self._pending = ""
        self._all = False

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:  # progress bars switch themselves off
        return False

    def write(self, s: str) -> int:
        self._pending += s
        *lines, self._pending = self._pending.split("\n")
        if len(self._pending) > _MAX_PENDING:
            self._pending = ""
        for line in lines:
            line = line.rsplit("\r", 1)[-1]  # the last state of a redrawn line
            self._all = self._all or line.startswith(_TRACEBACK)
            if self._all or line.startswith(_PASSED):
                self._target.write(self._prefix + line + "\n")
                self._target.flush()
        return len(s)

    def flush(self) -> None:
        self._target.flush()


def quiet_other_ranks(environ: Mapping[str, str] | None = None) -> bool:
    """Under torchrun, silence every rank but 0: stdout is dropped and stderr keeps only
    errors (:class:`ErrorsOnly`). Returns True when this process was silenced."""
    rank, world = rank_and_world(environ)
    if world <= 1 or rank == 0:
        return False
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the process's life
    sys.stderr = ErrorsOnly(sys.stderr, rank)
    return True


__all__ = ["ErrorsOnly", "quiet_other_ranks", "rank_and_world"]
