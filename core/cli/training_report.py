"""The command line's training output: budgets, the training progress bar and the
summary of a finished (or stopped) training.

The bar goes to stderr; the summary lines go to stdout.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from core.types import TrainProgress


def proposal_note(images: Sequence[np.ndarray], method: str) -> None:
    """Say which method the data kind of the good (H, W, 3) uint8 images proposes
    (:func:`core.registry.propose_method`) when it is not ``method``."""
    from core.data.kind import data_kind
    from core.registry import get_method, propose_method

    if not images:
        return
    kind = data_kind(images)
    proposed, measured = propose_method(kind.kind)
    if proposed != method:
        print(
            f"note: these good images look like a {kind.label} ({kind.reason}); "
            f"{get_method(proposed).title} is proposed for them ({measured}): "
            f"add --method {proposed} to use it",
            flush=True,
        )


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
