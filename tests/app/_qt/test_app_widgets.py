"""Shared widgets and the project page: numpy→Qt conversion, overlays, model table binding."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from app._qt.project_qt import ProjectAdapter  # noqa: E402
from app._qt.settings import Settings  # noqa: E402
from app._qt.widgets.common import ImageView, colorize, outline, to_qimage  # noqa: E402
from app._qt.widgets.project_view import ProjectPage  # noqa: E402
from app.components.project import ModelEntry, Project, TrainingSettings  # noqa: E402


def test_to_qimage_copies_rgb_gray_and_float(qtbot):
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[1, 2] = (10, 20, 30)
    img = to_qimage(rgb)
    rgb[1, 2] = 0  # the QImage is a copy
    assert (img.width(), img.height()) == (7, 5)
    c = img.pixelColor(2, 1)
    assert (c.red(), c.green(), c.blue()) == (10, 20, 30)
    assert to_qimage(np.full((4, 4), 0.5, np.float32)).pixelColor(0, 0).red() == 128
    with pytest.raises(ValueError, match="shape"):
        to_qimage(np.zeros((2, 2, 4), np.uint8))


def test_outline_marks_only_the_boundary():
    img = np.zeros((9, 9, 3), np.uint8)
    mask = np.zeros((9, 9), np.uint8)
    mask[2:7, 2:7] = 1
    out = outline(img, mask, rgb=(255, 0, 0))
    red = (out == (255, 0, 0)).all(axis=2)
    assert red[2, 2:7].all() and red[6, 2:7].all() and not red[4, 4] and not red[0, 0]
    assert img.sum() == 0  # input untouched


def test_colorize_is_monotone_in_brightness():
    heat = colorize(np.linspace(0, 1, 11, dtype=np.float32)[None, :])
    lum = heat[0].astype(int).sum(axis=1)
    assert heat.dtype == np.uint8 and heat.shape == (1, 11, 3) and (np.diff(lum) > 0).all()


def test_image_view_paints(qtbot):
    v = ImageView("cap")
    qtbot.addWidget(v)
    v.resize(120, 140)
    v.set_image(np.full((10, 20, 3), 200, np.uint8))
    assert v.has_image() and v.caption() == "cap"
    assert not v.grab().isNull()


def test_project_page_lists_models_and_activates_on_double_click(qtbot, tmp_path):
    p = Project(tmp_path)
    p.add_model(ModelEntry("draem-1", "models/a.ckpt", steps=10, elapsed_s=65))
    p.add_model(ModelEntry("draem-2", "models/b.ckpt", status="failed", note="loss became NaN"))
    page = ProjectPage(ProjectAdapter(p), Settings(tmp_path / "s.ini"))
    qtbot.addWidget(page)
    assert page.models.rowCount() == 2 and page.models.item(0, 5).text() == "1 min 05 s"
    assert page.models.item(0, 0).font().bold()
    assert page.models.item(1, 7).text().endswith("b.ckpt   loss became NaN")
    activated, messages = [], []
    page.model_activated.connect(activated.append)
    page.status_message.connect(messages.append)
    page._activate_row(1, 0)  # failed model: refused with the reason
    assert p.active_model == "draem-1" and "loss became NaN" in messages[-1]
    p.add_model(ModelEntry("draem-3", "models/c.ckpt"), make_active=False)
    page._activate_row(2, 0)
    assert p.active_model == "draem-3" and activated[-1].name == "draem-3"
    assert page.models.item(2, 0).font().bold() and not page.models.item(0, 0).font().bold()
    page.name.setText("renamed")
    page._rename()
    assert p.name == "renamed" and page.title.text() == "renamed"


def test_loss_plot_shows_the_parts_a_preset_reports(qtbot):
    from app._qt.widgets.training_monitor import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    compact = {"l2": 0.0, "ssim": 0.0, "focal": 0.2, "bce": 0.3, "total": 0.5}
    plot.add(1, compact)
    plot.add(2, {**compact, "focal": 0.1})
    plot.add(2, compact)  # repeated step: ignored
    hist = plot.history()
    assert set(hist) == {"step", "total", "focal", "bce"} and hist["step"] == [1, 2]
    assert hist["focal"] == [0.2, 0.1]
    plot.clear_history()
    assert plot.history() == {"step": []}


def test_training_proposal_shows_every_line(qtbot):
    """With the application's stylesheet a wrapped label in a spanning form row was given
    the height for another width and lost its last line; it now sits in the box layout
    above the form, which sizes it for its own width."""
    from PySide6.QtWidgets import QHBoxLayout, QWidget

    from app._qt.widgets.training_controls import TrainingControls
    from app.main import STYLE

    top = QWidget()
    top.setStyleSheet(STYLE.read_text(encoding="utf-8"))
    c = TrainingControls(
        {"cpu": True, "cuda": False}, labels=dict.fromkeys(("cpu", "cuda", "auto"), "CPU")
    )
    QHBoxLayout(top).addWidget(c)
    c.load(TrainingSettings())
    c.show_proposal("<b>Proposed: DRAEM</b> for a grey surface: " + "a measured figure, " * 30)
    qtbot.addWidget(top)
    top.resize(1100, 700)
    top.show()
    qtbot.waitExposed(top)
    p = c.proposal
    assert p.height() >= p.heightForWidth(p.width()) > 4 * p.fontMetrics().height()
    c.show_proposal("short")
    qtbot.waitUntil(lambda: p.height() < 2 * p.fontMetrics().height() + 8)
