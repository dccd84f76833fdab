"""Argument types of the command line: numbers are checked where they are parsed, so a
bad value is a one-line usage error instead of a traceback deep inside the work."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys

#: seeds are handed to NumPy and torch, which take 0 .. 2**32 - 1
MAX_SEED = 2**32 - 1


def seed(text: str) -> int:
    """An integer seed in 0 .. 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {text}")
    return value


def positive_minutes(text: str) -> float:
    """A finite number of minutes > 0 (``inf`` and ``nan`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def finite_float(text: str) -> float:
    """Any finite number (``inf`` and ``nan`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def device_name(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; whether that device exists is checked
    later (:func:`core.device.resolve_device`), with a clear error without CUDA."""
    name = text.strip().lower()
    head, _, index = name.partition(":")
    if name in ("auto", "cpu", "cuda") or (head == "cuda" and index.isdigit()):
        return name
    raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text!r}")


def safe_stdio() -> None:
    """Never abort on a character the console cannot show (e.g. a CJK file name on a
    cp1252 console): unencodable characters are replaced."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # a detached or closed stream
                reconfigure(errors="replace")


__all__ = ["MAX_SEED", "device_name", "finite_float", "positive_minutes", "safe_stdio", "seed"]
