"""Progress reporting at a human rate: one gate that opens at most every so often.

Long work reports progress far more often than anybody can read it (every image, every
training step).  :class:`RateGate` is the one rule for thinning such reports; every
loop that reports progress (loading, inspection, export, coreset selection, training
loops, the GUI's worker signals) asks one instead of keeping its own clock.
"""

from __future__ import annotations

import math
import time

from core.types import Progress, ProgressCallback

#: the usual reporting interval: about 10 reports per second
REPORT_INTERVAL_S = 0.1


class RateGate:
    """Opens at most once per ``interval`` seconds (monotonic clock).

    ``gate()`` returns True and restarts the interval when at least ``interval`` seconds
    have passed since it last opened (the first call always opens), or when ``force``
    is given (e.g. the last item of a loop).  ``interval <= 0`` opens on every call.
    """

    def __init__(self, interval: float = REPORT_INTERVAL_S) -> None:
        self.interval = float(interval)
        self._last = -math.inf

    def __call__(self, force: bool = False, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if force or now - self._last >= self.interval:
            self._last = now
            return True
        return False

    def restart(self, now: float | None = None) -> None:
        """Start a new interval now (the next opening is ``interval`` seconds away)."""
        self._last = time.monotonic() if now is None else now


class ProgressThrottle:
    """Forward :class:`Progress` at most every ``interval`` seconds (and always the last)."""

    def __init__(self, callback: ProgressCallback, interval: float = REPORT_INTERVAL_S) -> None:
        self._cb = callback
        self._gate = RateGate(interval)

    def __call__(self, done: int, total: int, message: str = "", *, force: bool = False) -> None:
        if self._gate(force or done >= total):
            self._cb(Progress(done=done, total=total, message=message))


__all__ = ["REPORT_INTERVAL_S", "ProgressThrottle", "RateGate"]
