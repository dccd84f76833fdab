"""Background warm-up at start: load the heavy model code once, then freeze the GC heap.

Why (measured with ``benchmarks/bench_gui_stall.py``, docs/benchmarks.md): the
first training run or model load imports timm, which pulls in ~1,500 modules
(torchvision, sympy, triton, huggingface_hub, ...).  All those allocations
trigger Python's *full* (generation-2) garbage collections, and a full
collection walks every tracked object of the process — torch, Qt, pyqtgraph and
the new modules, ~400,000 objects — in one call that holds the GIL for
270-320 ms on this machine.  The GUI thread cannot run a single slot meanwhile,
so the window froze for up to ~340 ms in the first seconds of a training run.

The fix, in :func:`warm_up` (run in a background :class:`app._qt.workers.Task` by
:func:`start_warm_up` as soon as the window exists):

1. pause the cyclic collector while the backbone code is imported and the
   shipped EfficientNet-Lite0 weights are mapped once (cached per process by
   ``core.models.backbone``), so no full collection runs in the middle of the imports;
2. ``gc.freeze()``: everything alive by then (the start-up heap: modules,
   classes, widgets) moves to the permanent generation, which later
   collections skip.  Full collections afterwards walk only objects created
   since, a few milliseconds.  (Reference counting still frees frozen objects;
   only reference cycles among them that become garbage later are never
   reclaimed, which for start-up objects is a negligible amount of memory.)

Qt-free; the freeze happens once per process.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import threading
import time
from collections.abc import Iterator

from core.types import ProgressCallback, StopCallback, ignore_progress, never_stop

log = logging.getLogger(__name__)

#: core modules a training run, a model load or an inspection needs (imported once).
MODULES = (
    "core.models.draem.train",
    "core.models.draem.compact",
    "core.models.draem.detector",
    "core.models.patchcore.detector",
    "core.evaluate.inspect",
)

_LOCK = threading.Lock()
_PAUSES = 0  # nested/concurrent gc pauses (the collector is process-wide)
_WAS_ENABLED = True
_FROZEN = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block (thread-safe, nestable)."""
    global _PAUSES, _WAS_ENABLED
    with _LOCK:
        if _PAUSES == 0:
            _WAS_ENABLED = gc.isenabled()
        _PAUSES += 1
        gc.disable()
    try:
        yield
    finally:
        with _LOCK:
            _PAUSES -= 1
            if _PAUSES == 0 and _WAS_ENABLED:
                gc.enable()


def freeze_heap() -> bool:
    """Move every object alive now to the GC's permanent generation (once per process)."""
    global _FROZEN
    with _LOCK:
        if _FROZEN:
            return False
        gc.freeze()
        _FROZEN = True
        log.debug("gc heap frozen: %d objects", gc.get_freeze_count())
        return True


def warm_up(
    *,
    backbone: bool = True,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> float:
    """Import the model code (and build the Lite0 backbone once), then freeze the heap.

    Best effort: a missing optional package only means the first run pays the
    import itself.  Returns the seconds it took.  Runs in a worker thread.
    """
    del on_progress  # nothing worth reporting: it takes a few seconds once
    t0 = time.perf_counter()
    with gc_paused():
        for name in MODULES:
            if should_stop():
                break
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - warm-up must never fail the app
                log.info("warm-up: %s not imported (%s)", name, exc)
        if backbone and not should_stop():
            try:
                from core.models.backbone import load_efficientnet_lite0

                load_efficientnet_lite0()  # imports timm; the mapped weights are cached
            except Exception as exc:  # noqa: BLE001
                log.info("warm-up: backbone not loaded (%s)", exc)
        freeze_heap()
    return time.perf_counter() - t0


def start_warm_up(parent=None):
    """Run :func:`warm_up` in a background task (GUI thread); returns the started task."""
    from app._qt.workers import Task

    return Task(warm_up, parent=parent, name="warm-up").start()


__all__ = ["MODULES", "freeze_heap", "gc_paused", "start_warm_up", "warm_up"]
