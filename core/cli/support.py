"""Helpers of the command line (:mod:`core.cli.commands`): Ctrl-C, progress bars, tables, summaries.

Progress bars (tqdm) and warnings go to stderr; results (tables, metrics, the
``--json`` line) go to stdout, so ``stdout`` can be piped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import CoreError
from core.types import FailedImage, InspectionResult, Progress, TrainProgress

__all__ = ["Progress"]


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


def train_budget(steps: int | None, minutes: float | None) -> dict[str, Any]:
    """TrainConfig budget keyword from the command line; empty: the method's default."""
    if steps is not None:
        return {"steps": steps}
    if minutes is not None:
        return {"minutes": minutes}
    return {}


def describe_budget(budget: dict[str, Any]) -> str:
    """``30 minutes`` / ``300 steps``; several limits (the first to run out ends
    training) are joined by ``or``."""
    return " or ".join(f"{value:g} {key}" for key, value in budget.items())


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) of a non-negative number of seconds."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def train_status(p: TrainProgress, budget: dict[str, Any]) -> str:
    """The text after a training bar: elapsed and remaining time for a time budget
    (``1:05 of 30:00, 28:55 left``), then the step, the total loss and the speed."""
    parts = []
    if "minutes" in budget:
        total = budget["minutes"] * 60
        parts.append(f"{clock(p.elapsed_s)} of {clock(total)}, {clock(total - p.elapsed_s)} left")
    parts.append(f"step {p.step}")
    loss = p.losses.get("total")
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    parts.append(f"{p.samples_per_s:.1f} img/s")
    return " · ".join(parts)


@contextlib.contextmanager
def train_bar(budget: dict[str, Any]) -> Iterator[Callable[[TrainProgress], None]]:
    """A tqdm bar for training; yields ``on_progress``.

    A step budget counts steps (``120/300 [01:05<01:40]``); a time budget fills with the
    time used and reads ``1:05 of 30:00, 28:55 left`` (no step rate extrapolated to a
    step count the budget never had).
    """
    from tqdm import tqdm

    by_time = "minutes" in budget
    tty = sys.stderr.isatty()
    kw: dict[str, Any] = {"total": budget.get("steps"), "unit": "step"}
    if by_time:
        kw = {"total": max(1, round(budget["minutes"] * 60)), "unit": "s",
              "bar_format": "{desc}: {percentage:3.0f}%|{bar}| {postfix}"}  # fmt: skip
    with tqdm(
        desc="training",
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.1 if tty else 15.0,  # a log file gets a line every 15 s
        **kw,
    ) as t:

        def on_progress(p: TrainProgress) -> None:
            if not by_time and p.total_steps and t.total != p.total_steps:
                t.total = p.total_steps
            now = min(int(p.elapsed_s), t.total) if by_time else p.step
            t.set_postfix_str(train_status(p, budget), refresh=False)
            t.update(now - t.n)

        yield on_progress


def budget_note(budget: dict[str, Any], steps_done: int) -> str:
    """Say when a time budget, not the step count, ended a finished training ("" if not).

    ``budget``: ``{"steps": N}``, ``{"minutes": M}``, ``{"epochs": E}`` or steps with a
    time cap (``{"steps": N, "minutes": M}``: whichever runs out first).
    """
    minutes = budget.get("minutes")
    if not minutes:
        return ""
    steps = budget.get("steps")
    if steps is None:
        return f"training stopped by its time budget ({minutes:g} min) after {steps_done} steps"
    if steps_done < steps:
        return f"training stopped at {steps_done} of {steps} steps: time cap {minutes:g} min"
    return ""


def train_result(result, budget: dict[str, Any] | None = None, thresholds=None) -> int:
    """Print a :class:`core.types.TrainResult` (its loss terms, in the order the method
    reports them), whether the time budget ended it, and the stored ``thresholds``
    (:class:`core.config.Thresholds`); return the exit code."""
    losses = " ".join(f"{k}={v:.4f}" for k, v in result.final_losses.items())
    if result.status == "finished":
        print(
            f"finished: {result.steps} steps in {result.elapsed_s:.0f} s"
            + (f" ({losses})" if losses else "")
        )
        note = budget_note(budget or {}, result.steps)
        if note:
            print(note)
        if thresholds is not None:
            print(stored_threshold(thresholds))
        print(f"model written to {result.checkpoint_path}")
        return 0
    if result.status == "cancelled":
        print(f"cancelled at step {result.steps} after {result.elapsed_s:.0f} s")
        print(f"checkpoint written to {result.checkpoint_path} (continue with --resume)")
        return 130
    print(f"error: training failed: {result.message or 'unknown reason'}", file=sys.stderr)
    return 1


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


def inspection_table(result: InspectionResult, threshold: float) -> None:
    """Print ``score  verdict  path`` per image (NG iff score >= threshold) and a summary."""
    width = max((len(p) for p in result.paths), default=4)
    print(f"{'score':>10}  verdict  {'path':<{width}}")
    n_ng = 0
    for path, pred in zip(result.paths, result.predictions, strict=True):
        ng = pred.score >= threshold
        n_ng += ng
        print(f"{pred.score:>10.4f}  {'NG' if ng else 'OK':<7}  {path}")
    n = len(result.predictions)
    print(
        f"{n} inspected: {n - n_ng} OK, {n_ng} NG (threshold {threshold:.4g}); {len(result.failures)} skipped"
    )


_KEYS = ("image_auroc", "pixel_auroc", "image_ap", "pixel_ap", "aupro", "f1_max", "threshold_f1")


def evaluation(
    ev,
    seconds_per_image: float,
    *,
    as_json: bool,
    per_type: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
    operating=None,
    threshold_source: str = "",
) -> None:
    """Print a :class:`core.evaluate.metrics.Evaluation` (and the image AUROC per defect type,
    and with ``operating`` (:class:`core.evaluate.operating_point.OperatingPoint`) the false
    alarms and escapes at its threshold); with ``as_json`` the last line is one JSON object."""
    d = ev.to_dict()
    labels = {"aupro": "AUPRO (FPR<=0.3)", "threshold_f1": "threshold at F1-max"}
    print(
        f"images: {d['n_images']} ({d['n_defective']} defective), pixel metrics on {d['n_pixel_images']}"
    )
    for k in _KEYS:
        v = d.get(k)
        print(f"  {labels.get(k, k):22s} {'n/a' if v is None else f'{v:.4f}'}")
    print(f"  {'seconds per image':22s} {seconds_per_image:.4f}")
    per_type = {k: (None if math.isnan(v) else v) for k, v in (per_type or {}).items()}
    if per_type:
        print("image AUROC per defect type (against all good images):")
        for k, v in per_type.items():
            print(f"  {k:22s} {'n/a' if v is None else f'{v:.4f}'}")
    if operating is not None:
        operating_table(operating, "given" if threshold_source == "command line" else "model's")
    if as_json:
        out = {k: d.get(k) for k in _KEYS}
        if per_type:
            out["image_auroc_per_type"] = per_type
        if operating is not None:
            out["operating_point"] = {
                **operating.to_dict(),
                "threshold_source": threshold_source,
            }
        out["seconds_per_image"] = None if math.isnan(seconds_per_image) else seconds_per_image
        out.update(extra or {})
        print(json.dumps(out))


def _count(wrong: int, n: int) -> str:
    rate = f"{100.0 * wrong / n:.1f} %" if n else "n/a"
    return f"{wrong:>4} of {n:<4} ({rate})"


def operating_table(op, whose: str = "model's") -> None:
    """Print false alarms and escapes at ``op.threshold``, overall and per test type."""
    print(f"at the {whose} image threshold {op.threshold:.4g}:")
    print(f"  {'false alarms (good -> NG)':30s} {_count(op.good.wrong, op.good.n)}")
    print(f"  {'escapes (defective -> OK)':30s} {_count(op.defective.wrong, op.defective.n)}")
    if op.per_type:
        print("  per test type:")
        for k, o in op.per_type.items():
            what = "false alarms" if k in op.good_types else "escapes"
            print(f"    {k:18s} {what:12s} {_count(o.wrong, o.n)}")


def verdict_counts(op) -> str:
    """One line of pass/fail counts at ``op.threshold``: how many good images pass (OK)
    and how many defective images fail (NG)."""
    good_pass = op.good.n - op.good.wrong
    bad_fail = op.defective.n - op.defective.wrong
    return (
        f"at the stored threshold {op.threshold:.4g}: good images {good_pass} of {op.good.n} pass, "
        f"defective images {bad_fail} of {op.defective.n} fail"
    )


def stored_threshold(thresholds) -> str:
    """One line naming the image threshold a model stored and how it was chosen."""
    return f"image threshold {thresholds.image:.4g} stored ({thresholds.source})"


def default_budgets_text() -> str:
    """The default training budget of every registered method, for ``train --help``
    (e.g. ``draem: 30 minutes on a CPU (compact), 700 epochs on CUDA (paper)``)."""
    from core.registry import get_method, method_names

    parts = []
    for name in method_names():
        spec = get_method(name)
        if not spec.trains:
            parts.append(f"{name}: none (fitted in one pass)")
            continue
        by_kind = {}
        for kind in ("cpu", "cuda"):
            config = spec.default_config(kind)
            variant = spec.variant(config)
            text = describe_budget(spec.default_budget(config))
            by_kind[kind] = (text, variant)
        cpu, cuda = by_kind["cpu"], by_kind["cuda"]
        if cpu == cuda:
            parts.append(f"{name}: {cpu[0]}")
        else:
            tag = {k: f" ({v})" if v else "" for k, (_, v) in by_kind.items()}
            parts.append(f"{name}: {cpu[0]} on a CPU{tag['cpu']}, {cuda[0]} on CUDA{tag['cuda']}")
    return "; ".join(parts)
