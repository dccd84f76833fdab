"""Imported first by the data loader's fork server (its preload list, see
:mod:`core.simulate.dataset`): makes that process ignore SIGINT and SIGTERM before
its slow imports.

The fork server is normally started with both signals already ignored
(:func:`core.simulate.dataset._start_fork_server`); where that cannot be done (a
trainer outside the main thread, e.g. the GUI's) this covers all but the interpreter's
own start: the server spends seconds importing torch and OpenCV before it ignores
Ctrl-C itself, and a Ctrl-C at the terminal reaches every process of the group, so one
in those seconds killed the server with a traceback. The workers it forks inherit the
ignored signals: the trainer decides when they stop.

It also quiets the one traceback a stopped trainer could still leave: a worker the
server was forking when the trainer aborted (a second Ctrl-C) fails to read its start
data (the trainer's pipes and semaphores are gone) and printed that failure. A start
failure is now printed only if the trainer is still running a moment later.

Nothing happens when this module is imported anywhere else.
"""

from __future__ import annotations

import os
import signal
import sys
import time

#: the process that started the fork server (the trainer), recorded in the server
TRAINER_PID: int | None = None


def in_fork_server() -> bool:
    """True in multiprocessing's fork server process (started as ``python -c``)."""
    main = sys.modules.get("__main__")
    return (
        sys.argv[:1] == ["-c"]
        and getattr(main, "__file__", None) is None
        and ("multiprocessing.forkserver" in sys.modules)
    )


def ignore_stop_signals() -> None:
    """Ignore SIGINT and SIGTERM in this process (and the processes it forks)."""
    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)


def _trainer_ended(pid: int, grace_s: float = 5.0) -> bool:
    """True if process ``pid`` ends (or has ended) within ``grace_s`` seconds."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                    return True
        except FileNotFoundError:
            return True
        except (OSError, IndexError):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except OSError:
                return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _quiet_when_orphaned(kind, value, tb) -> None:
    """``sys.excepthook`` of the server's children: silent if the trainer has ended."""
    if TRAINER_PID is not None and _trainer_ended(TRAINER_PID):
        return
    sys.__excepthook__(kind, value, tb)


if in_fork_server():
    ignore_stop_signals()
    TRAINER_PID = os.getppid()
    sys.excepthook = _quiet_when_orphaned
