"""Imported first by the data loader's fork server (its preload list, see
:mod:`core.simulate.dataset`): makes that process ignore SIGINT and SIGTERM from its
first moment.

The fork server spends its first seconds importing torch and OpenCV and only then
ignores Ctrl-C itself; a Ctrl-C at the terminal reaches every process of the group,
so one in those seconds printed the server's ``KeyboardInterrupt`` traceback under
the trainer's clean "stopping..." line. The workers it forks inherit the ignored
signals: the trainer decides when they stop. Nothing happens when this module is
imported anywhere else.
"""

from __future__ import annotations

import signal
import sys


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


if in_fork_server():
    ignore_stop_signals()
