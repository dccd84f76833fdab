"""The schema of ``project.json`` (see :mod:`app.components.schema`).

:func:`check_project` runs before :meth:`app.components.project.Project.from_dict` builds
anything: every field's type and range is checked here, the configs' own validation runs
on the result, and the first problem becomes one line naming the field.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from app.components.project_entries import WORK_AREA_RANGE
from app.components.schema import (
    MAX_TEXT,
    SchemaError,
    array,
    boolean,
    integer,
    mapping,
    number,
    one_of,
    optional,
    record,
    text,
)
from core.config import SimulatorConfig, Thresholds
from core.errors import ConfigError

#: the largest ``project.json`` opened (a project of 100 000 images is ~10 MiB)
MAX_PROJECT_BYTES = 64 * 2**20
#: seeds are stored as unsigned 32-bit numbers by every random generator used
MAX_SEED = 2**32 - 1
MAX_NAME = 200
MAX_PATH = 4096
#: the largest training batch the GUI offers
MAX_BATCH = 256
#: a project keeps at most this many models and batches
MAX_MODELS = 10_000
MAX_BATCHES = 10_000
MAX_STEPS = 10**9

_name = text(MAX_NAME, min_len=1)
_path = text(MAX_PATH, min_len=1)


def _scalar(v: Any, where: str) -> Any:
    """A config value: a JSON scalar, or a short list of them (e.g. ``image_size``)."""
    if isinstance(v, list):
        if len(v) > 8:
            raise SchemaError(where, "more than 8 entries")
        return [_scalar(x, f"{where}[{i}]") for i, x in enumerate(v)]
    if v is None or isinstance(v, bool | str):
        return text(MAX_PATH)(v, where) if isinstance(v, str) else v
    return number()(v, where)


def _config(cls) -> Any:
    """A frozen config dataclass stored by ``to_dict``: known fields, scalars, its own checks."""
    fields = {f.name: _scalar for f in dataclasses.fields(cls)}
    shape = record(fields)

    def check(v: Any, where: str) -> Any:
        d = shape(v, where)
        try:
            return cls.from_dict(d)
        except (ConfigError, TypeError, ValueError) as exc:
            raise SchemaError(where, str(exc).splitlines()[0] if str(exc) else "invalid") from None

    return check


def _training(methods: tuple[str, ...]) -> Any:
    return record(
        {
            "method": one_of(*methods),
            "preset": one_of("auto", "paper", "compact"),
            "device": one_of("auto", "cpu", "cuda"),
            "budget_kind": one_of("steps", "epochs", "minutes"),
            "budget_value": number(0, 1_000_000, above=True),
            "batch_size": integer(1, MAX_BATCH),
            "seed": integer(0, 2**31 - 1),
            "backbone": text(MAX_NAME),
            "backbone_weights": text(MAX_PATH),
            "max_minutes": optional(number(0, 1_000_000, above=True)),
            "method_chosen": boolean,
            "work_area": optional(integer(*WORK_AREA_RANGE)),
        }
    )


_model = record(
    {
        "name": _name,
        "path": _path,
        "method": text(MAX_NAME, min_len=1),
        "preset": text(MAX_NAME),
        "status": one_of("finished", "cancelled", "failed"),
        "steps": integer(0, MAX_STEPS),
        "elapsed_s": number(0, 1e9),
        "created": text(MAX_NAME),
        "note": text(MAX_TEXT),
    },
    required=("name", "path"),
)

_batch = record(
    {
        "name": _name,
        "paths": array(_path),
        "model": optional(text(MAX_NAME)),
        "export_path": optional(_path),
        "labels": mapping(one_of("good", "defect"), key=_path),
        "state_path": optional(_path),
    },
    required=("name",),
)


def _thresholds(v: Any, where: str) -> Thresholds:
    d = record(
        {"image": number(-1e12, 1e12), "pixel": number(-1e12, 1e12), "source": text(MAX_TEXT)}
    )(v, where)
    return Thresholds.from_dict(d)


def check_project(d: Any, *, file_format: str, version: int, methods: tuple[str, ...]) -> dict:
    """Check a parsed ``project.json``; returns it with configs built (``simulator``:
    :class:`SimulatorConfig`, ``thresholds`` values: :class:`Thresholds`).

    Raises:
        SchemaError: the first field that breaks the schema (``field`` names it).
    """
    if not isinstance(d, dict):
        raise SchemaError("", "not a JSON object")
    if d.get("format") != file_format:
        raise SchemaError("format", "not a project file of this application")
    v = d.get("version")
    integer(1, 10**6)(v, "version")
    if v > version:
        raise SchemaError(
            "version", f"written by a newer version (format {v}, this one reads {version})"
        )
    schema = record(
        {
            "format": text(MAX_NAME),
            "version": integer(1, version),
            "name": _name,
            "good_images": array(_path),
            "simulator": _config(SimulatorConfig),
            "simulator_seed": integer(0, MAX_SEED),
            "training": _training(methods),
            "models": array(_model, max_items=MAX_MODELS),
            "active_model": optional(text(MAX_NAME)),
            "batches": array(_batch, max_items=MAX_BATCHES),
            "thresholds": mapping(_thresholds, key=text(MAX_NAME), max_items=MAX_MODELS),
        },
        required=("format", "version"),
    )
    out = schema(d, "")
    seen: set[str] = set()
    for i, m in enumerate(out.get("models", ())):  # models are found by name: no duplicates
        if m["name"] in seen:
            raise SchemaError(f"models[{i}].name", f"{m['name']!r} is used twice")
        seen.add(m["name"])
    return out


__all__ = ["MAX_PROJECT_BYTES", "check_project"]
