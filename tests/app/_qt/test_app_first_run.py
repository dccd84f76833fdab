"""What a new user meets: the demo project's one-click model, honest workflow steps,
damaged projects and foreign models as plain messages."""

from __future__ import annotations

import os
import pickle

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from fakes import FakeDetector  # noqa: E402

import app._qt.controller as controller_mod  # noqa: E402
from app._qt.main_window import PAGES, MainWindow  # noqa: E402
from app._qt.settings import Settings  # noqa: E402
from app.components import training as tr  # noqa: E402
from app.components.project import ModelEntry, new_project, open_project  # noqa: E402
from core.data.images import read_mvtec  # noqa: E402
from core.demo import DEMO_MINUTES, DEMO_STEPS, demo_root  # noqa: E402


def quick_runner(job, *, on_progress, should_stop):
    """A training run that ends at once, cut short by its time cap (writes a checkpoint)."""
    os.makedirs(os.path.dirname(job.out_path), exist_ok=True)
    with open(job.out_path, "wb") as fh:
        fh.write(b"ckpt")
    steps = (job.train_config.steps or 10) // 3
    return tr.TrainOutcome(job.method, job.out_path, "finished", steps, 2.0, "", len(job.paths))


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(controller_mod, "default_demo_folder", lambda: tmp_path / "demo")
    w = MainWindow(
        Settings(tmp_path / "s.ini"), devices={"cpu": True, "cuda": False}, runner=quick_runner
    )
    w.detector_loader._loader = lambda path: FakeDetector(mode="bright")
    qtbot.addWidget(w)
    w.show()
    return w


def _step_texts(window) -> list[str]:
    return [lab.text() for lab in window.project_page.step_labels]


def test_the_demo_trains_with_one_click_then_shows_its_labelled_batch(qtbot, window):
    assert window.controller.open_demo()
    p = window.adapter.project
    assert p.training.preset == "compact" and p.training.budget_value == DEMO_STEPS
    assert p.training.to_train_config().minutes == DEMO_MINUTES  # the quick budget's cap
    steps = _step_texts(window)
    assert steps[0].startswith("✓") and not any(s.startswith("✓") for s in steps[1:])
    assert "30 image(s) wait for a model" in steps[3]
    quick = window.project_page.quick_train
    assert not quick.isHidden() and "Train a model now" in quick.text()
    assert "about" in quick.text()  # the expected time, from the training page

    quick.click()
    panel = window.inspection
    qtbot.waitUntil(lambda: len(panel.state) == 30 and not panel.jobbar.busy, timeout=30_000)
    qtbot.waitUntil(lambda: window.nav.currentRow() == PAGES.index("Inspection"), timeout=5000)
    truth = {str(t.path): int(t.is_anomalous) for t in read_mvtec(demo_root()).test}
    labels = {panel.state.path(i): int(panel.state.labels[i]) for i in range(len(panel.state))}
    assert labels == truth  # every image labelled from its folder name
    assert window.project_page.quick_train.isHidden()
    steps = _step_texts(window)
    assert steps[2].startswith("✓") and steps[3].startswith("✓ 1 inspected batch")
    assert "cut short by its" in window.training_page.state.text()

    assert window.controller.save()  # the labels are the project's now
    q = open_project(p.root)
    assert sorted(q.batch("inspection").labels.values()).count("defect") == sum(truth.values())


def test_a_damaged_project_is_refused_with_a_message_and_the_window_keeps_working(window, tmp_path):
    good = new_project(tmp_path / "good", "good")
    assert window.controller.open(good.root)
    bad = new_project(tmp_path / "bad", "bad")
    text = bad.file.read_text().replace('"batch_size": 8', '"batch_size": "eight"')
    bad.file.write_text(text)
    assert window.controller.open(bad.root) is False
    message = window.statusBar().currentMessage()
    assert "training.batch_size" in message and "\x1b" not in message
    assert window.adapter.project.root == good.root  # nothing half-opened
    (tmp_path / "bad" / "project.json").write_text("[" * 50_000)
    assert window.controller.open(bad.root) is False
    assert "nested too deeply" in window.statusBar().currentMessage()


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_foreign_pickle_as_active_model_is_a_plain_message(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(controller_mod, "default_demo_folder", lambda: tmp_path / "demo")
    w = MainWindow(Settings(tmp_path / "s.ini"), devices={"cpu": True, "cuda": False})
    qtbot.addWidget(w)
    p = new_project(tmp_path / "proj", "proj")
    evil = p.models_dir / "evil.ckpt"
    evil.parent.mkdir(parents=True)
    evil.write_bytes(pickle.dumps({"state_dict": _Payload()}))
    p.add_model(ModelEntry("evil", str(evil)))
    p.save()
    assert w.controller.open(p.root)
    qtbot.waitUntil(
        lambda: "Cannot load the model" in w.statusBar().currentMessage(), timeout=60_000
    )
    message = w.statusBar().currentMessage()
    assert "refused" in message and "Traceback" not in message and "\x1b" not in message
    assert "\n" not in message


def test_f1_on_four_labels_warns_that_they_are_too_few(qtbot):
    import numpy as np

    from app._qt.inspection.metrics_box import MetricsBox

    box = MetricsBox()
    qtbot.addWidget(box)
    messages = []
    box.message.connect(messages.append)
    box.update_labels(np.array([0.1, 0.2, 0.8, 0.3]), np.array([0, 0, 1, 0]), 0.5)
    with qtbot.waitSignal(box.image_suggested) as sig:
        box.btn_f1.click()
    assert "unreliable: only 3 OK and 1 defective" in sig.args[1]
    assert messages and "unreliable" in messages[-1]
    scores = np.linspace(0, 1, 40)
    box.update_labels(scores, (scores > 0.5).astype(np.int8), 0.5)
    messages.clear()
    box.btn_f1.click()
    assert not messages  # enough labels of each kind: no warning


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)])
def test_inspection_and_training_pages_show_names_wide_sliders_and_whole_labels(
    qtbot, window, size
):
    window.resize(*size)
    assert window.controller.open_demo()
    window.nav.setCurrentRow(PAGES.index("Inspection"))
    qtbot.wait(50)
    panel = window.inspection
    slider = panel.controls.image.slider
    assert slider.width() >= 300  # a 30 px drag moves it by at most a tenth of the range
    from app._qt.inspection.list_model import COL_IMAGE

    table = panel.batch.table
    name_px = table.columnWidth(COL_IMAGE) - table.iconSize().width() - 24  # cell padding
    assert name_px >= table.fontMetrics().horizontalAdvance("scratch/000.png")
    window.nav.setCurrentRow(PAGES.index("Training"))
    qtbot.wait(50)
    combo = window.training_page.controls.method
    assert combo.sizeHint().width() <= combo.width()  # every registry label fits its box
    assert "trained on synthetic anomalies" in combo.currentText()


def test_training_page_shows_only_the_previews_a_method_has(qtbot, window):
    from app.components.project import TrainingSettings
    from core.registry import get_method

    assert window.controller.open_demo()
    page = window.training_page
    assert page.preview.isHidden()  # nothing to preview before a run
    page.runner = lambda job, *, on_progress, should_stop: quick_runner(
        job, on_progress=on_progress, should_stop=should_stop
    )
    assert page.start()
    assert not page.preview.isHidden()
    assert page.preview.views["reconstruction"].isHidden()  # until a preview carries one
    qtbot.waitUntil(lambda: not page.is_running(), timeout=10_000)
    window.adapter.project.set_training(TrainingSettings(method="patchcore"))
    assert not get_method("patchcore").trains and page.plot.isHidden()


def test_an_untouched_or_damaged_demo_project_is_created_afresh(window, tmp_path):
    from app._qt.controller import make_demo_project

    folder = tmp_path / "old-demo"
    old = new_project(folder, "old demo")  # e.g. written by an older version: no model, no labels
    assert make_demo_project(folder).training.budget_value == DEMO_STEPS
    (folder / "project.json").write_text("{damaged")
    assert len(make_demo_project(folder).batch("inspection").labels) == 30
    p = open_project(folder)
    p.add_model(ModelEntry("mine", str(folder / "models" / "mine.ckpt")))
    p.set_training(p.training.__class__(budget_value=5))
    p.save()
    assert make_demo_project(folder).training.budget_value == 5  # work on the demo is kept
    assert old.root == p.root


def test_a_damaged_inspection_snapshot_is_a_message_not_an_allocation(window, tmp_path):
    import json

    from app.components.project import BatchEntry

    p = new_project(tmp_path / "proj", "proj")
    state = p.batches_dir / "inspection.json"
    state.parent.mkdir(parents=True)
    huge = {"shape": [10**6, 10**6], "counts": [10**12]}  # claims 931 GiB once decoded
    item = {"path": "a.png", "score": 0.5, "label": 1, "shape": [10**6, 10**6], "mask": huge}
    state.write_text(json.dumps({"version": 1, "items": [item]}))
    p.set_batch(BatchEntry("inspection", ("a.png",), state_path=str(state)))
    p.save()
    assert window.controller.open(p.root)
    assert "could not be restored" in window.statusBar().currentMessage()
    assert "items[0].mask" in window.statusBar().currentMessage()
    assert len(window.inspection.state) == 0  # nothing restored, the window works on
