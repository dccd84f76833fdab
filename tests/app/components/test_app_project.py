"""app.components.project (Qt-free model) and app._qt.project_qt (adapter): round trip, events, errors."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from app.components.project import (  # noqa: E402
    BatchEntry,
    ModelEntry,
    Project,
    ProjectError,
    TrainingSettings,
    new_project,
    open_project,
)
from core.config import SimulatorConfig, Thresholds  # noqa: E402
from core.errors import ConfigError  # noqa: E402


def _filled(root, outside):
    p = new_project(root, "tiles")
    inside = root / "data" / "a.png"
    p.add_good_images([inside, outside / "b.png", inside])  # duplicate ignored
    p.set_simulator(SimulatorConfig(threshold=0.3, beta_max=0.6), seed=7)
    p.set_training(TrainingSettings(preset="compact", budget_kind="minutes", budget_value=1.5))
    p.add_model(ModelEntry(name="draem-1", path=str(root / "models" / "draem-1.ckpt"), steps=12))
    p.set_batch(
        BatchEntry(
            name="batch-1",
            paths=(str(outside / "t1.png"), str(root / "t2.png")),
            model="draem-1",
            export_path=str(root / "exports" / "batch-1.h5"),
            labels={str(outside / "t1.png"): "defect", str(root / "t2.png"): "good"},
        )
    )
    p.set_thresholds("draem-1", Thresholds(image=0.42, pixel=0.3, source="f1"))
    return p


def test_save_open_round_trip(tmp_path):
    root, outside = tmp_path / "proj", tmp_path / "elsewhere"
    p = _filled(root, outside)
    assert p.dirty
    p.save()
    assert not p.dirty
    q = open_project(root)
    assert q.to_dict() == p.to_dict()
    assert q.good_images == ["data/a.png", str((outside / "b.png").resolve())]
    assert q.active().name == "draem-1" and q.active().path == "models/draem-1.ckpt"
    assert q.simulator.threshold == 0.3 and q.simulator_seed == 7
    assert q.thresholds["draem-1"].image == 0.42
    assert q.batches[0].labels == {str((outside / "t1.png").resolve()): "defect", "t2.png": "good"}
    assert q.training.to_train_config().minutes == 1.5
    assert open_project(root / "project.json").name == "tiles"


def test_save_as_keeps_paths_valid(tmp_path):
    root, outside = tmp_path / "proj", tmp_path / "elsewhere"
    p = _filled(root, outside)
    before = [str(x) for x in p.good_image_paths()]
    p.save_as(tmp_path / "copy")
    q = open_project(tmp_path / "copy")
    assert [str(x) for x in q.good_image_paths()] == before
    assert q.abs(q.active().path) == (root / "models" / "draem-1.ckpt").resolve()


def test_events_and_removal(tmp_path):
    p = Project(tmp_path)
    events = []
    unsubscribe = p.subscribe(events.append)
    p.add_good_images([tmp_path / "x.png", tmp_path / "y.png"])
    assert p.remove_good_images(["x.png"]) == 1
    assert p.remove_good_images([tmp_path / "nothing.png"]) == 0
    p.set_simulator(p.simulator)  # unchanged: no event
    p.set_active_model(None)  # unchanged: no event
    unsubscribe()
    p.set_name("other")
    assert events == ["good_images", "good_images"]
    assert p.good_images == ["y.png"]


def test_bad_files_give_readable_errors(tmp_path):
    with pytest.raises(ProjectError, match="no project found"):
        open_project(tmp_path)
    (tmp_path / "project.json").write_text("{not json")
    with pytest.raises(ProjectError, match="not valid JSON"):
        open_project(tmp_path)
    (tmp_path / "project.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(ProjectError, match="not a project file"):
        open_project(tmp_path)
    d = Project(tmp_path).to_dict()
    d["simulator"]["threshold"] = 5
    (tmp_path / "project.json").write_text(json.dumps(d))
    with pytest.raises(ProjectError, match="damaged.*threshold"):
        open_project(tmp_path)
    d["version"] = 99
    (tmp_path / "project.json").write_text(json.dumps(d))
    with pytest.raises(ProjectError, match="newer version"):
        open_project(tmp_path)
    with pytest.raises(ProjectError, match="already holds"):
        new_project(tmp_path)
    with pytest.raises(ConfigError, match="budget"):
        TrainingSettings(budget_value=0)
    with pytest.raises(ProjectError, match="labels"):
        Project(tmp_path).set_batch(BatchEntry(name="b", labels={"a.png": "maybe"}))


def test_new_model_names_are_unique(tmp_path):
    p = Project(tmp_path)
    assert p.new_model_name("draem") == "draem-1"
    p.add_model(ModelEntry(name="draem-1", path="m1.ckpt"))
    p.add_model(ModelEntry(name="draem-2", path="m2.ckpt", status="failed"))
    assert p.active_model == "draem-1"  # a failed model never becomes active
    assert p.new_model_name("draem") == "draem-3"
    assert p.new_model_name("patchcore") == "patchcore-1"


def test_adapter_forwards_events(qtbot, tmp_path):
    from app._qt.project_qt import ProjectAdapter

    adapter = ProjectAdapter()
    events, replaced, dirty = [], [], []
    adapter.changed.connect(events.append)
    adapter.project_replaced.connect(replaced.append)
    adapter.dirty_changed.connect(dirty.append)
    p = Project(tmp_path)
    adapter.set_project(p)
    p.add_good_images([tmp_path / "a.png"])
    p.save()
    q = Project(tmp_path / "q")
    adapter.set_project(q)
    p.add_good_images([tmp_path / "b.png"])  # old project: no longer forwarded
    assert replaced == [p, q]
    assert events == ["good_images", "saved"]
    assert dirty == [True, False]


def test_working_area_round_trip_and_old_files(tmp_path):
    p = Project(tmp_path / "p")
    p.set_training(TrainingSettings(method="flow", work_area=448))
    p.save()
    assert open_project(tmp_path / "p").training.work_area == 448
    assert open_project(tmp_path / "p").training.method_config("cpu").work_area == 448
    d = json.loads((tmp_path / "p" / "project.json").read_text())
    del d["training"]["work_area"]  # a file written before the setting existed
    (tmp_path / "p" / "project.json").write_text(json.dumps(d))
    old = open_project(tmp_path / "p").training
    assert old.work_area is None and old.method_config("cpu").work_area == 256  # the flow's
    for bad in (5000, 448.5, "big"):
        d["training"]["work_area"] = bad
        (tmp_path / "p" / "project.json").write_text(json.dumps(d))
        with pytest.raises(ProjectError, match="damaged.*work_area"):
            open_project(tmp_path / "p")
    with pytest.raises(ConfigError, match="working area"):
        TrainingSettings(work_area=64)


def test_working_area_goes_only_where_the_method_takes_it():
    s = TrainingSettings(method="draem", preset="compact", work_area=448)
    assert s.work_area_default("cpu") == 320 and s.method_config("cpu").work_area == 448
    paper = TrainingSettings(method="draem", preset="paper", work_area=448)
    assert paper.work_area_default("cpu") is None  # a fixed-size preset takes none
    assert paper.method_config("cpu").preset == "paper"  # built without it, not refused
    pc = TrainingSettings(method="patchcore", work_area=448)
    assert pc.work_area_default("cpu") is None and not hasattr(pc.method_config("cpu"), "work_area")


def test_an_unset_working_area_follows_the_good_images():
    long_parts = [(1250, 500)] * 4
    s = TrainingSettings(method="flow")
    assert s.work_area_default("cpu", long_parts) == 416
    assert s.method_config("cpu", long_parts).work_area == 416
    assert "0.32" in s.fitted_config("cpu", long_parts)[1]
    assert s.method_config("cpu").work_area == 256  # sizes unknown: the method's default
    mine = TrainingSettings(method="flow", work_area=256)
    assert mine.method_config("cpu", long_parts).work_area == 256  # the user's setting wins
    assert mine.fitted_config("cpu", long_parts)[1] == ""
