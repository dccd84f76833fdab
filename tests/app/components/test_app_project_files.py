"""Damaged project folders: every kind of damage is refused with one line naming the field.

A table of damaged ``project.json`` files and inspection snapshots (wrong types, out of
range values, absurd sizes, deep nesting, run-length masks that claim more pixels than
exist); none may raise anything but ``ProjectError`` / ``StateError``, none may allocate
what it claims.  Qt-free.
"""

from __future__ import annotations

import json
import tracemalloc

import pytest

from app.components.inspection.items import (
    MAX_MASK_PIXELS,
    StateError,
    check_state,
    mask_from_rle,
    mask_to_rle,
)
from app.components.inspection.model import InspectionState
from app.components.project import (
    BatchEntry,
    ModelEntry,
    Project,
    ProjectError,
    open_project,
)
from app.components.schema import MAX_DEPTH, depth
from core.config import Thresholds


def _good(root) -> dict:
    p = Project(root, "tiles")
    p.add_good_images([root / "a.png"])
    p.add_model(ModelEntry(name="m", path=str(root / "models" / "m.ckpt"), steps=3))
    p.set_batch(BatchEntry(name="b", paths=(str(root / "t.png"),), labels={"t.png": "good"}))
    p.set_thresholds("m", Thresholds(0.4, 0.5, "f1"))
    return p.to_dict()


def _set(d: dict, path: str, value) -> dict:
    """``d`` with the value at a dotted path (``models.0.steps``) replaced (``...`` deletes)."""
    *parents, last = path.split(".")
    node = d
    for k in parents:
        node = node[int(k)] if isinstance(node, list) else node[k]
    key = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return d


#: (dotted field, bad value, words the message must contain)
DAMAGE = [
    ("version", "1", "version"),
    ("version", None, "version"),
    ("version", 1.5, "version"),
    ("version", 99, "newer version"),
    ("version", ..., "version"),
    ("format", "something else", "not a project file"),
    ("name", 12, "name"),
    ("name", "", "name"),
    ("name", "x" * 5000, "name"),
    ("good_images", "a.png", "good_images"),
    ("good_images", [1, 2], "good_images[0]"),
    ("good_images", [None], "good_images[0]"),
    ("simulator", [], "simulator"),
    ("simulator.threshold", 5, "simulator"),
    ("simulator.threshold", "high", "simulator"),
    ("simulator.image_size", [10**12, 10**12], "simulator"),
    ("simulator.image_size", "big", "simulator"),
    ("simulator.bogus", 1, "simulator.bogus"),
    ("simulator_seed", 1e999, "simulator_seed"),
    ("simulator_seed", -1, "simulator_seed"),
    ("simulator_seed", 2**64, "simulator_seed"),
    ("training", None, "training"),
    ("training.batch_size", 8.5, "training.batch_size"),
    ("training.batch_size", 10**9, "training.batch_size"),
    ("training.batch_size", True, "training.batch_size"),
    ("training.seed", 1e999, "training.seed"),
    ("training.method", "evil", "training.method"),
    ("training.budget_value", float("nan"), "training.budget_value"),
    ("training.budget_value", 0, "training.budget_value"),
    ("training.budget_kind", "hours", "training.budget_kind"),
    ("models", {"m": 1}, "models"),
    ("models.0", "m", "models[0]"),
    ("models.0.name", ..., "models[0].name"),
    ("models.0.steps", "x", "models[0].steps"),
    ("models.0.steps", -5, "models[0].steps"),
    ("models.0.elapsed_s", 1e999, "models[0].elapsed_s"),
    ("models.0.status", "pwned", "models[0].status"),
    ("models.0.extra", 1, "models[0].extra"),
    ("active_model", 7, "active_model"),
    ("batches.0.paths", "t.png", "batches[0].paths"),
    ("batches.0.labels", [], "batches[0].labels"),
    ("batches.0.labels.t.png", "maybe", "batches[0].labels"),
    ("batches.0.state_path", 3, "batches[0].state_path"),
    ("thresholds", [0.5, 0.5], "thresholds"),
    ("thresholds.m", 0.5, "thresholds.m"),
    ("thresholds.m.image", "0.5", "thresholds.m.image"),
    ("thresholds.m.image", 1e999, "thresholds.m.image"),
    ("thresholds.m.pixel", None, "thresholds.m.pixel"),
]


@pytest.mark.parametrize(
    ("field", "value", "words"), DAMAGE, ids=[f"{f}={v!r}"[:40] for f, v, _ in DAMAGE]
)
def test_damaged_project_is_refused_naming_the_field(tmp_path, field, value, words):
    d = _good(tmp_path)
    if field == "batches.0.labels.t.png":
        d["batches"][0]["labels"]["t.png"] = value
    else:
        _set(d, field, value)
    (tmp_path / "project.json").write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(ProjectError) as info:
        open_project(tmp_path)
    message = str(info.value)
    assert words in message
    assert "\n" not in message and "\x1b" not in message and "Traceback" not in message


def test_the_undamaged_table_base_opens(tmp_path):
    (tmp_path / "project.json").write_text(json.dumps(_good(tmp_path)), encoding="utf-8")
    assert open_project(tmp_path).thresholds["m"].image == 0.4


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,  # deeper than the parser's recursion limit
        '{"a":' * 50 + "1" + "}" * 50,  # parses, but deeper than any project file
        '{"format": "draem-workstation-project", "version": ' + "9" * 5000 + "}",
        "\xff\xfe not utf-8",
        "",
        "null",
        "[]",
        '"text"',
    ],
    ids=["deep-list", "deep-object", "huge-int", "bytes", "empty", "null", "list", "string"],
)
def test_unparseable_project_files_are_refused(tmp_path, raw):
    data = raw.encode("latin-1") if raw.startswith("\xff") else raw.encode()
    (tmp_path / "project.json").write_bytes(data)
    with pytest.raises(ProjectError, match="damaged project file"):
        open_project(tmp_path)


def test_depth_is_measured_without_recursion():
    value: list = []
    for _ in range(100_000):
        value = [value]
    assert depth(value) > MAX_DEPTH  # stops early, no RecursionError
    assert depth({"a": [1, {"b": 2}]}) == 3


def test_an_oversized_project_file_is_not_read(tmp_path, monkeypatch):
    import app.components.project as project

    monkeypatch.setattr(project, "MAX_PROJECT_BYTES", 1000)
    (tmp_path / "project.json").write_text(json.dumps(_good(tmp_path)) + " " * 2000)
    with pytest.raises(ProjectError, match="over"):
        open_project(tmp_path)


# --------------------------------------------------------------------- inspection snapshots
def _state() -> dict:
    import numpy as np

    mask = np.zeros((4, 5), np.uint8)
    mask[1:3, 2:4] = 1
    return {
        "version": 1,
        "thresholds": {"image": 0.5, "pixel": 0.5, "source": "model"},
        "checkpoint_path": None,
        "items": [
            {
                "path": "a.png",
                "score": 0.3,
                "label": 1,
                "shape": [4, 5],
                "map_range": [0.0, 1.0],
                "mask": mask_to_rle(mask),
            }
        ],
        "failures": [{"path": "b.png", "reason": "unreadable"}],
    }


STATE_DAMAGE = [
    ("version", "1", "version"),
    ("version", 7, "newer"),
    ("items", {"a": 1}, "items"),
    ("items.0.score", "high", "items[0].score"),
    ("items.0.score", 1e999, "items[0].score"),
    ("items.0.label", 5, "items[0].label"),
    ("items.0.shape", [4], "items[0].shape"),
    ("items.0.shape", [100_000, 100_000], "items[0].shape"),
    ("items.0.shape", [-4, 5], "items[0].shape"),
    ("items.0.path", None, "items[0].path"),
    ("items.0.mask", "rle", "items[0].mask"),
    ("items.0.mask.shape", [10**6, 10**6], "items[0].mask"),
    ("items.0.mask.counts", [10**12], "items[0].mask"),
    ("items.0.mask.counts", [-1, 21], "items[0].mask"),
    ("items.0.mask.counts", "1,2", "items[0].mask"),
    ("thresholds.image", [0.5], "thresholds.image"),
    ("failures.0", "b.png", "failures[0]"),
]


@pytest.mark.parametrize(
    ("field", "value", "words"), STATE_DAMAGE, ids=[f"{f}={v!r}"[:40] for f, v, _ in STATE_DAMAGE]
)
def test_damaged_inspection_state_is_refused_and_leaves_the_state_alone(
    tmp_path, field, value, words
):
    state = InspectionState()
    state.load_dict(_state())
    d = _set(_state(), field, value)
    tracemalloc.start()
    try:
        with pytest.raises(StateError) as info:
            state.load_dict(d)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert words in str(info.value)
    assert peak < 50 * 2**20  # nothing the file claims is allocated
    assert len(state) == 1 and state.labels[0] == 1  # the previous batch is untouched
    state.store.close()


def test_masks_are_bounded_one_by_one_and_together():
    with pytest.raises(StateError, match="over the limit"):
        mask_from_rle({"shape": [MAX_MASK_PIXELS, 2], "counts": [2 * MAX_MASK_PIXELS]})
    big = {"shape": [10_000, 10_000], "counts": [10**8]}
    items = [
        {"path": f"{i}.png", "score": 0.1, "shape": [10_000, 10_000], "mask": big}
        for i in range(12)
    ]
    with pytest.raises(StateError, match="in all"):
        check_state({"version": 1, "items": items})
    assert mask_from_rle({"shape": [2, 3], "counts": [1, 2, 3]}).tolist() == [[0, 1, 1], [0, 0, 0]]
