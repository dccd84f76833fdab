"""Shared helpers of the command-line commands: exit codes, user errors, Ctrl-C, progress
bars, loading images, checks of inputs and outputs, warnings.

Training output is in :mod:`core.cli.training_report`, result tables in
:mod:`core.cli.tables`. Progress bars (tqdm) and warnings go to stderr; results (tables,
metrics, the ``--json`` line) go to stdout, so ``stdout`` can be piped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import CoreError
from core.types import FailedImage, Progress

__all__ = ["Progress"]

#: exit codes: success, error, bad command line, cancelled by Ctrl-C
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


class UserError(CoreError):
    """A command-line problem worth one ``error:`` line (not a bug)."""


def has_display() -> bool:
    """True if a GUI can be shown: Windows/macOS, or DISPLAY / WAYLAND_DISPLAY / QT_QPA_PLATFORM set."""
    if sys.platform in ("win32", "darwin"):
        return True
    return any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


@contextlib.contextmanager
def stop_on_ctrl_c() -> Iterator[threading.Event]:
    """Yield an Event set by the first Ctrl-C (SIGINT) or SIGTERM; a second one raises
    KeyboardInterrupt."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(_sig, _frame) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()
        print("\nstopping... (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    # SIGTERM (``kill``, a service manager stopping the job) is treated like Ctrl-C
    signals = [s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None]
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield event
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def load_good_images(data: str, stop: threading.Event) -> list[tuple[str, np.ndarray]]:
    """Load a data folder's good images with a progress bar; skipped files are listed."""
    from core.data.images import good_image_paths, load_images

    paths = good_image_paths(data)
    with bar(len(paths), "loading", "img") as on_progress:
        loaded, failed = load_images(paths, on_progress=on_progress, should_stop=stop.is_set)
    from core.data.imagecheck import training_shape_problem

    shaped = [(p, img, training_shape_problem(img.shape)) for p, img in loaded]
    failed = [*failed, *(FailedImage(str(p), why) for p, _, why in shaped if why)]
    loaded = [(p, img) for p, img, why in shaped if not why]
    failures(failed)
    if not loaded:
        raise UserError(f"none of the {len(paths)} images in {data} could be read")
    return loaded


def open_detector(path: str):
    """Load a checkpoint written by ``train`` (CheckpointError for foreign files)."""
    from core.registry import load_detector

    if not Path(path).is_file():
        raise UserError(f"model file not found: {path}")
    return load_detector(path)


def check_out_folder(out: str) -> None:
    parent = Path(out).resolve().parent
    if not parent.is_dir():
        raise UserError(f"output folder does not exist: {parent}")


def run_app(args, name: str, *a, **kw) -> int:
    """Call the front end's ``name`` launcher (``args.frontend``); none is a clear error."""
    fn = getattr(args, "frontend", {}).get(name)
    if fn is None:
        raise UserError(f"the GUI is not available here (no {name!r} front end); run main.py")
    try:
        rc = fn(*a, **kw)
    except ImportError as exc:  # e.g. Qt missing from this installation
        raise UserError(f"the GUI is not available ({exc})") from None
    return rc if isinstance(rc, int) else 0


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (never a traceback)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def failures(failed: Sequence[FailedImage]) -> None:
    """List files that were skipped, one warning line each."""
    for f in failed:
        warn(f"skipped {f.path}: {f.reason}")


@contextlib.contextmanager
def bar(total: int | None, desc: str, unit: str) -> Iterator[Callable[[Progress], None]]:
    """A tqdm bar on stderr; yields an ``on_progress(Progress)`` callback."""
    from tqdm import tqdm

    with tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
        disable=None,  # no bar when stderr is not a terminal
    ) as t:

        def on_progress(p: Progress) -> None:
            if p.total and t.total != p.total:
                t.total = p.total
            if p.message:
                t.set_postfix_str(p.message[:40], refresh=False)
            t.update(p.done - t.n)

        yield on_progress


def data_summary(loaded: Sequence[tuple[str, np.ndarray]], source: str) -> dict[str, Any]:
    """:func:`core.data.images.data_summary` of loaded ``(path, image)`` pairs from ``source``."""
    from core.data.images import data_summary as summarise

    return summarise([img for _, img in loaded], str(Path(source).resolve()))


def write_png(path: Path, img: np.ndarray) -> None:
    """Write (H, W) or (H, W, 3) RGB uint8 as PNG (works with non-ASCII paths)."""
    import cv2

    data = img[:, :, ::-1] if img.ndim == 3 else img
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(data))
    if not ok:
        raise OSError(f"could not encode {path}")
    buf.tofile(path)


def with_threshold(thresholds, image_threshold: float | None):
    """The detector's :class:`Thresholds`, with ``image`` replaced when given."""
    import dataclasses

    if image_threshold is None:
        return thresholds
    return dataclasses.replace(thresholds, image=float(image_threshold), source="command line")
