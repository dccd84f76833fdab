"""Checks for the JSON files a project folder holds, before anything in them is used.

A project folder can be damaged, edited by hand or hostile: every value read from
``project.json`` and from the inspection snapshot is checked here against a small
declarative schema with sane bounds (types, ranges, lengths, nesting depth, file size)
*before* any of it is turned into objects, so a bad file is refused with one readable
line naming the field (``models[2].steps: expected an integer, got 'x'``) and never
makes the application allocate without bound.

Qt-free.  The schema nodes are plain callables ``check(value, where) -> value`` that
raise :class:`SchemaError`; :func:`read_json` reads a file with a size cap and a depth cap.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: deepest nesting any of our files uses is 4; anything much deeper is damage
MAX_DEPTH = 16
#: longest string accepted in any field (paths, names, notes, messages)
MAX_TEXT = 10_000
#: the most entries in any list or mapping (images of a project, items of a batch)
MAX_ITEMS = 1_000_000

Check = Callable[[Any, str], Any]


class SchemaError(ValueError):
    """A value in a file breaks its schema; ``field`` names it, ``str()`` is one line."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field or 'the file'}: {problem}")
        self.field = field
        self.problem = problem


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else str(key)


# --------------------------------------------------------------------- scalar nodes
def integer(lo: int, hi: int) -> Check:
    """An int (not a bool, not a float) in ``[lo, hi]``."""

    def check(v: Any, where: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise SchemaError(where, f"expected an integer, got {_show(v)}")
        if not lo <= v <= hi:
            raise SchemaError(where, f"must be between {lo} and {hi}, got {_show(v)}")
        return v

    return check


def number(lo: float = -math.inf, hi: float = math.inf, *, above: bool = False) -> Check:
    """A finite int or float in ``[lo, hi]`` (``above``: strictly greater than ``lo``)."""

    def check(v: Any, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise SchemaError(where, f"expected a number, got {_show(v)}")
        if isinstance(v, int) and abs(v) > 2**63:
            raise SchemaError(where, "number too large")
        f = float(v)
        if not math.isfinite(f):
            raise SchemaError(where, f"must be a finite number, got {_show(v)}")
        if f < lo or f > hi or (above and f <= lo):
            low = f"> {lo:g}" if above else f">= {lo:g}"
            raise SchemaError(where, f"must be {low} and <= {hi:g}, got {_show(v)}")
        return v

    return check


def text(max_len: int = MAX_TEXT, *, min_len: int = 0) -> Check:
    """A string of ``min_len``..``max_len`` characters."""

    def check(v: Any, where: str) -> str:
        if not isinstance(v, str):
            raise SchemaError(where, f"expected text, got {_show(v)}")
        if len(v) < min_len:
            raise SchemaError(where, "must not be empty")
        if len(v) > max_len:
            raise SchemaError(where, f"longer than {max_len} characters")
        return v

    return check


def one_of(*choices: Any) -> Check:
    """One of the given values (compared by type and value)."""

    def check(v: Any, where: str) -> Any:
        if not any(type(v) is type(c) and v == c for c in choices):
            shown = ", ".join(repr(c) for c in choices)
            raise SchemaError(where, f"must be one of {shown}; got {_show(v)}")
        return v

    return check


def boolean(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise SchemaError(where, f"expected true or false, got {_show(v)}")
    return v


def optional(inner: Check) -> Check:
    """``None`` or ``inner``."""

    def check(v: Any, where: str) -> Any:
        return None if v is None else inner(v, where)

    return check


# --------------------------------------------------------------------- containers
def array(item: Check, *, max_items: int = MAX_ITEMS, length: int | None = None) -> Check:
    """A list whose every element passes ``item``."""

    def check(v: Any, where: str) -> list:
        if not isinstance(v, list):
            raise SchemaError(where, f"expected a list, got {_show(v)}")
        if length is not None and len(v) != length:
            raise SchemaError(where, f"expected {length} entries, got {len(v)}")
        if len(v) > max_items:
            raise SchemaError(where, f"more than {max_items} entries")
        return [item(x, _join(where, i)) for i, x in enumerate(v)]

    return check


def mapping(value: Check, *, key: Check | None = None, max_items: int = MAX_ITEMS) -> Check:
    """A JSON object with any keys (checked by ``key``, default: text) and ``value`` values."""
    key = key or text(MAX_TEXT)

    def check(v: Any, where: str) -> dict:
        if not isinstance(v, dict):
            raise SchemaError(where, f"expected an object, got {_show(v)}")
        if len(v) > max_items:
            raise SchemaError(where, f"more than {max_items} entries")
        out = {}
        for k, x in v.items():
            key(k, _join(where, "<key>"))
            out[k] = value(x, _join(where, k))
        return out

    return check


def record(
    fields: Mapping[str, Check], *, required: tuple[str, ...] = (), extra: bool = False
) -> Check:
    """A JSON object with known fields: ``required`` ones must be there, others are
    optional; unknown fields are refused unless ``extra``."""

    def check(v: Any, where: str) -> dict:
        if not isinstance(v, dict):
            raise SchemaError(where, f"expected an object, got {_show(v)}")
        for name in required:
            if name not in v:
                raise SchemaError(_join(where, name), "missing")
        unknown = sorted(set(v) - set(fields))
        if unknown and not extra:
            raise SchemaError(_join(where, str(unknown[0])[:40]), "unknown field")
        return {k: fields[k](x, _join(where, k)) if k in fields else x for k, x in v.items()}

    return check


# --------------------------------------------------------------------- files
def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of a JSON value (iterative: no recursion limit); stops past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            children = v.values() if isinstance(v, dict) else v
            stack.extend((c, d + 1) for c in children if isinstance(c, dict | list))
    return deepest


def read_json(path: str | os.PathLike, *, max_bytes: int, what: str = "file") -> Any:
    """Parse a JSON file of at most ``max_bytes`` nested at most :data:`MAX_DEPTH` deep.

    Raises:
        SchemaError: too large, unreadable, not JSON, or nested too deeply (field ``""``).
        OSError: the file cannot be opened (the caller names it).
    """
    p = Path(path)
    size = p.stat().st_size
    if size > max_bytes:
        raise SchemaError(
            "", f"the {what} is {size / 2**20:.0f} MiB, over {max_bytes // 2**20} MiB"
        )
    with open(p, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise SchemaError("", f"the {what} is over {max_bytes // 2**20} MiB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise SchemaError("", f"the {what} is nested too deeply") from None
    except UnicodeDecodeError:
        raise SchemaError("", f"the {what} is not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise SchemaError("", f"the {what} is not valid JSON ({exc})") from None
    if depth(data) > MAX_DEPTH:
        raise SchemaError("", f"the {what} is nested more than {MAX_DEPTH} levels deep")
    return data


__all__ = [
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_TEXT",
    "SchemaError",
    "array",
    "boolean",
    "depth",
    "integer",
    "mapping",
    "number",
    "one_of",
    "optional",
    "read_json",
    "record",
    "text",
]
