"""Main window and entry point: start/quit, first start, navigation, closing during work, batch round trip."""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from fakes import FakeDetector
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

import app._qt.controller as controller_mod  # noqa: E402
from app._qt.main_window import MainWindow  # noqa: E402
from app._qt.settings import Settings  # noqa: E402
from app.components import training as tr  # noqa: E402
from app.components.project import ModelEntry, TrainingSettings, new_project, open_project  # noqa: E402
from app.main import check_qt_binding, open_initial_project, run_gui  # noqa: E402


def slow_runner(job, *, on_progress, should_stop):
    """A training run that only stops when cancelled (writes its checkpoint then)."""
    while not should_stop():
        time.sleep(0.01)
    os.makedirs(os.path.dirname(job.out_path), exist_ok=True)
    with open(job.out_path, "wb") as fh:
        fh.write(b"ckpt")
    return tr.TrainOutcome(job.method, job.out_path, "cancelled", 7, 1.0, "", len(job.paths))


@pytest.fixture
def demo_dir(tmp_path, monkeypatch):
    folder = tmp_path / "demo-project"
    monkeypatch.setattr(controller_mod, "default_demo_folder", lambda: folder)
    return folder


@pytest.fixture
def window(qtbot, tmp_path, demo_dir):
    w = MainWindow(Settings(tmp_path / "s.ini"), devices={"cpu": True, "cuda": False})
    qtbot.addWidget(w)
    w.show()
    return w


def _images(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = np.full((32, 40, 3), 40, np.uint8)
        if i % 2:
            img[10:14, 10:14] = 250
        p = folder / f"t{i}.png"
        cv2.imwrite(str(p), img)
        paths.append(str(p))
    return paths


def test_binding_is_usable():
    assert check_qt_binding() is None


def test_run_gui_starts_and_quits(qtbot, tmp_path, demo_dir):
    project = new_project(tmp_path / "p", "smoke")
    assert (
        run_gui(project=str(project.root), settings_path=tmp_path / "s.ini", quit_after_ms=300) == 0
    )
    assert Settings(tmp_path / "s.ini").recent_projects() == [str(project.root)]


def test_first_start_opens_the_demo_then_the_recent_project(window, tmp_path, demo_dir):
    open_initial_project(window)
    p = window.adapter.project
    assert p is not None and p.root == demo_dir.resolve() and len(p.good_images) > 10
    assert window.windowTitle().startswith("Demo")
    other = new_project(tmp_path / "other", "other")
    assert window.controller.open(other.root)
    w2 = MainWindow(window.settings, devices={"cpu": True, "cuda": False})
    open_initial_project(w2)
    assert w2.adapter.project.root == other.root
    w2.close()


def test_navigation_shortcuts_and_title(qtbot, window, tmp_path):
    window.controller.new(tmp_path / "proj", "bolts")
    for i in range(5):
        qtbot.keyClick(window, Qt.Key.Key_1 + i, Qt.KeyboardModifier.ControlModifier)
        assert window.stack.currentIndex() == i
    window.adapter.project.set_name("bolts-2")
    assert window.windowTitle().startswith("bolts-2 *")
    qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not window.adapter.project.dirty and open_project(tmp_path / "proj").name == "bolts-2"
    assert window.controller.open(tmp_path / "missing") is False  # readable message, no crash
    assert "no project found" in window.statusBar().currentMessage()


def test_closing_during_training_stops_it_and_records_the_model(qtbot, window, tmp_path):
    window.controller.new(tmp_path / "proj")
    p = window.adapter.project
    p.add_good_images(_images(tmp_path / "good"))
    p.set_training(TrainingSettings(budget_value=10**6))
    window.training_page.runner = slow_runner
    assert window.training_page.start()
    qtbot.wait(100)
    window.close()
    q = open_project(tmp_path / "proj")
    assert [(m.name, m.status) for m in q.models] == [("draem-1", "cancelled")]
    assert window.settings.geometry() is not None


def test_inspected_batch_survives_save_and_reopen(qtbot, window, tmp_path):
    panel = window.inspection
    if not hasattr(panel, "state"):
        pytest.skip("inspection panel not available")
    window.controller.new(tmp_path / "proj")
    p = window.adapter.project
    ckpt = tmp_path / "proj" / "models" / "fake.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    p.add_model(ModelEntry("fake-1", str(ckpt), method="fake"))
    window.link.on_detector_loaded(FakeDetector(mode="bright"), str(ckpt))
    panel.add_paths(_images(tmp_path / "batch"))
    qtbot.waitUntil(lambda: len(panel.state) == 4 and not panel.jobbar.busy, timeout=10_000)
    panel.batch.select_row(1)
    panel.label_current(1)  # defective
    panel.set_thresholds(image=0.7, source="manual")
    assert window.controller.save()
    q = open_project(tmp_path / "proj")
    assert list(q.batches[0].labels.values()) == ["defect"]
    assert q.thresholds["fake-1"].image == pytest.approx(0.7)
    # open another project and come back: the batch (scores, labels) is restored
    window.controller.new(tmp_path / "other")
    assert len(panel.state) == 0
    window.controller.open(tmp_path / "proj")
    assert len(panel.state) == 4 and int((panel.state.labels == 1).sum()) == 1


def test_every_control_of_my_pages_has_a_tooltip(window, tmp_path):
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
    )

    window.controller.new(tmp_path / "proj")
    kinds = (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QAbstractItemView)
    missing = []
    for page in window.pages[:4]:  # the inspection panel is engineer E2's
        for w in page.findChildren(QWidget):
            if not isinstance(w, kinds) or w.toolTip():
                continue
            ancestor, inner = w.parentWidget(), False
            while ancestor is not None and ancestor is not page:
                # editors of spin/combo boxes, combo popups, table headers are parts of one control
                inner = inner or isinstance(
                    ancestor, (QAbstractSpinBox, QComboBox, QAbstractItemView)
                )
                inner = inner or ancestor.inherits("QComboBoxPrivateContainer")
                ancestor = ancestor.parentWidget()
            if not inner:
                missing.append(f"{type(page).__name__}: {type(w).__name__} {w.objectName()}")
    assert not missing, missing
