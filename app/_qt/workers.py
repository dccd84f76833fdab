"""Generic background-work plumbing: run a core function in a ``QThread``.

Long work never runs on the GUI thread.  A :class:`Task` wraps one call of a
Qt-free core function that follows the core convention::

    fn(*args, on_progress=callback, should_stop=callable, **kwargs) -> result

and runs it in its own ``QThread``.  The GUI talks to it only through Qt signals
(queued across threads automatically), and cancels it through a
``threading.Event`` (thread-safe; the core function polls ``should_stop``).
Only numpy arrays and frozen dataclasses should cross the thread boundary.

The worker never emits Qt signals itself (see :class:`_Thread` for why): it
puts messages on a queue that the task drains on the GUI thread every
``poll_ms`` (25 ms), and re-emits them as the signals below.

Usage (from the GUI thread)::

    task = Task(core.evaluate.inspect.inspect_paths, detector, paths, parent=self, name="inspect")
    task.progress.connect(self._on_progress)     # Progress / TrainProgress, throttled
    task.succeeded.connect(self._on_result)      # the function's return value
    task.failed.connect(self.status_bar.showMessage)   # readable message (str)
    task.cancelled.connect(...)                  # fn raised core.errors.Cancelled
    task.finished.connect(...)                   # always last, exactly once
    task.start()
    ...
    task.cancel()            # sets the stop flag; returns at once
    task.wait(5000)          # optional: block until the thread ends (e.g. on close),
                             # then deliver its last signals

Signals, in order: any number of ``progress(object)``, then exactly one of
``succeeded(object)`` / ``failed(str)`` / ``cancelled()``, then ``finished()``.

Progress throttling: ``progress`` is emitted at most ``progress_hz`` times per
second; in between only the newest report is kept and it is delivered with the
next report that passes the throttle or just before the outcome signal (so the
final state is never lost).  Reports for which ``keep(report)`` is True (default:
those carrying a ``preview``) always go through.

Errors: ``core.errors.CoreError`` messages are user-readable and passed as is;
any other exception becomes ``"<Type>: <message>"`` and its traceback is logged.

Lifetime: a started task keeps itself alive (module-level registry) until its
thread has finished, so dropping the Python reference is safe.  Use
:func:`cancel_all` / :func:`running_tasks` when the window closes.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from app.components.messages import plain_text
from core.errors import Cancelled, CoreError
from core.progress import RateGate

log = logging.getLogger(__name__)

_RUNNING: set[Task] = set()

#: Nice increment of every worker thread (and of what it starts: torch's compute threads,
#: data-loader processes).  On a CPU busy with training the GUI thread must still get a
#: core at once; at equal priority a repaint waited behind 4-5 busy threads
#: (docs/benchmarks.md, "GUI responsiveness").  Costs nothing when the CPU is otherwise idle.
BACKGROUND_NICE = 10


def lower_thread_priority(increment: int | None = None) -> bool:
    """Raise the nice value of the calling thread (Linux: per thread) by ``increment``
    (default :data:`BACKGROUND_NICE`). True if it worked."""
    increment = BACKGROUND_NICE if increment is None else increment
    if increment <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + increment))
    except OSError:
        return False
    return True


def _has_preview(report: object) -> bool:
    return getattr(report, "preview", None) is not None


def readable_error(exc: BaseException) -> str:
    """A message for the user: core errors as is, others prefixed with their type."""
    if isinstance(exc, CoreError):
        return plain_text(str(exc) or type(exc).__name__)
    if isinstance(exc, MemoryError):
        return "Out of memory: try a smaller preset, batch size or fewer images."
    text = plain_text(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Thread(QThread):
    """The worker thread: runs the function once and posts messages to a queue.

    The worker never calls into Qt: messages go through a plain ``queue.Queue``
    that the :class:`Task` drains on the GUI thread with a ``QTimer``.  This
    keeps the worker thread independent of the binding's cross-thread
    machinery (PySide6 6.12.0 on Python 3.11 mis-counts references on every
    ``Signal.emit``; see ``app.main.check_qt_binding``).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple,
        kwargs: dict,
        stop: threading.Event,
        progress_hz: float,
        keep: Callable[[object], bool],
        pass_callbacks: bool,
    ) -> None:
        super().__init__()
        self.messages: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._stop = stop
        self._gate = RateGate(0.0 if progress_hz <= 0 else 1.0 / progress_hz)
        self._keep = keep
        self._pass_callbacks = pass_callbacks
        self._pending: object | None = None

    def _on_progress(self, report: object) -> None:
        """Called by the core function (worker thread); throttles to ``progress_hz``."""
        if self._gate(self._keep(report)):
            self._pending = None
            self.messages.put(("progress", report))
        else:
            self._pending = report

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.messages.put(("progress", pending))

    def run(self) -> None:  # runs in the worker thread
        lower_thread_priority()
        kwargs = dict(self._kwargs)
        if self._pass_callbacks:
            kwargs.setdefault("on_progress", self._on_progress)
            kwargs.setdefault("should_stop", self._stop.is_set)
        try:
            result = self._fn(*self._args, **kwargs)
        except Cancelled:
            self._flush()
            self.messages.put(("cancelled", None))
        except BaseException as exc:  # noqa: BLE001 - everything must reach the user
            log.exception("background task failed")
            self._flush()
            self.messages.put(("failed", readable_error(exc)))
        else:
            self._flush()
            self.messages.put(("ok", result))
        finally:
            self._fn = None  # drop references to large inputs early
            self._args = ()
            self._kwargs = {}


class Task(QObject):
    """One background call of ``fn``; see the module docstring for the protocol.

    Args:
        fn: the function to run in the worker thread.
        *args, **kwargs: passed to ``fn``.  ``on_progress`` / ``should_stop`` are
            added unless ``pass_callbacks=False`` or already given.
        parent: Qt parent (the task is also kept alive while it runs).
        name: a label for logs and :func:`running_tasks`.
        progress_hz: maximum ``progress`` signal rate (default 10 Hz; 0 = no limit).
        keep: predicate on a report that bypasses throttling (default: has a preview).
        pass_callbacks: False for functions that take neither callback.
        poll_ms: how often the GUI thread collects the worker's messages.
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        parent: QObject | None = None,
        name: str = "",
        progress_hz: float = 10.0,
        keep: Callable[[object], bool] = _has_preview,
        pass_callbacks: bool = True,
        poll_ms: int = 25,
        **kwargs: Any,
    ) -> None:
        super().__init__(parent)
        self.name = name or getattr(fn, "__name__", "task")
        self._stop = threading.Event()
        self._thread: _Thread | None = _Thread(
            fn, args, kwargs, self._stop, progress_hz, keep, pass_callbacks
        )
        self._thread.setObjectName(f"task-{self.name}")
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, int(poll_ms)))
        self._timer.timeout.connect(self.deliver)
        self._started = False
        self._done = False
        self._delivering = False
        self.outcome: str | None = None  # "ok" | "failed" | "cancelled" once known

    # ----------------------------------------------------------------- control
    def start(self) -> Task:
        """Start the worker thread (once). Returns self for chaining."""
        if self._started:
            raise RuntimeError(f"task {self.name!r} was already started")
        self._started = True
        _RUNNING.add(self)
        assert self._thread is not None
        self._thread.start()
        self._timer.start()
        return self

    def cancel(self) -> None:
        """Ask the function to stop (thread-safe, returns immediately)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def is_running(self) -> bool:
        """True from :meth:`start` until ``finished`` has been emitted."""
        return self._started and not self._done

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until the worker thread ends (at most ``timeout_ms``); True if it did.

        When it ended, its remaining signals (progress, outcome, ``finished``) are
        delivered before this returns, so callers see the final state at once.
        """
        if not self._started or self._done:
            return True
        assert self._thread is not None
        ended = bool(self._thread.wait(int(timeout_ms)))
        if ended:
            self.deliver()
        return ended

    # ----------------------------------------------------------------- delivery (GUI thread)
    @Slot()
    def deliver(self) -> None:
        """Emit the signals for every message the worker posted so far."""
        if self._thread is None or self._delivering:
            return
        self._delivering = True
        try:
            thread = self._thread
            while True:
                try:
                    kind, payload = thread.messages.get_nowait()
                except queue.Empty:
                    break
                if kind == "progress":
                    if self.outcome is None:
                        self.progress.emit(payload)
                    continue
                self.outcome = kind
                if kind == "ok":
                    self.succeeded.emit(payload)
                elif kind == "cancelled":
                    self.cancelled.emit()
                else:
                    self.failed.emit(str(payload))
            if self.outcome is not None and not self._done:
                thread.wait()  # run() has returned; the thread is finishing
                self._finish()
            elif self.outcome is None and thread.isFinished():
                self.outcome = "failed"
                self.failed.emit(f"task {self.name!r} ended unexpectedly")
                self._finish()
        finally:
            self._delivering = False

    def _finish(self) -> None:
        self._done = True
        self._timer.stop()
        self._thread = None
        _RUNNING.discard(self)
        self.finished.emit()


def running_tasks() -> list[Task]:
    """Tasks started and not yet finished."""
    return [t for t in _RUNNING if t.is_running()]


def cancel_all(wait_ms: int = 10_000) -> bool:
    """Cancel every running task and wait for their threads; True if all ended."""
    tasks = running_tasks()
    for t in tasks:
        t.cancel()
    deadline = time.monotonic() + wait_ms / 1000.0
    ok = True
    for t in tasks:
        left = max(0, int((deadline - time.monotonic()) * 1000))
        ok = t.wait(left) and ok
    return ok


__all__ = ["Task", "cancel_all", "readable_error", "running_tasks"]
