"""Laptop screens: every page fits 1366x768 without scrolling; WrapRow; the start-up warm-up."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtWidgets import QPushButton, QWidget  # noqa: E402

import app.components.warmup as warmup  # noqa: E402
from app._qt.main_window import MainWindow  # noqa: E402
from app._qt.settings import Settings  # noqa: E402
from app._qt.widgets.common import WrapRow  # noqa: E402

LAPTOP = (1366, 768)
#: menu bar + status bar + window frame, generously
CHROME_H = 90


def _group(*texts: str) -> QWidget:
    from PySide6.QtWidgets import QHBoxLayout

    g = QWidget()
    lay = QHBoxLayout(g)
    for t in texts:
        lay.addWidget(QPushButton(t))
    return g


def test_wrap_row_stacks_its_groups_when_narrow(qtbot):
    a, b = _group("one long button", "another long button"), _group("third", "fourth button")
    row = WrapRow([a, b])
    qtbot.addWidget(row)
    row.show()
    assert row.minimumSizeHint().width() == max(
        a.minimumSizeHint().width(), b.minimumSizeHint().width()
    )
    row.resize(row.one_row_width() + 50, 40)
    # the direction changes in resizeEvent; the groups move when the layout next runs
    qtbot.waitUntil(lambda: not row.is_stacked() and a.geometry().top() == b.geometry().top())
    row.resize(row.minimumSizeHint().width(), 120)
    qtbot.waitUntil(row.is_stacked)
    qtbot.waitUntil(lambda: b.geometry().top() >= a.geometry().bottom())
    assert row.minimumSizeHint().height() > a.minimumSizeHint().height()


def test_every_page_fits_a_1366x768_laptop(qtbot, tmp_path):
    w = MainWindow(Settings(tmp_path / "s.ini"), devices={"cpu": True, "cuda": False})
    qtbot.addWidget(w)
    assert w.controller.open_demo(tmp_path / "demo")
    w.resize(*LAPTOP)
    w.show()
    too_big = {}
    for page in w.pages:
        need = page.minimumSizeHint()
        if need.width() + w.nav.width() > LAPTOP[0] or need.height() + CHROME_H > LAPTOP[1]:
            too_big[type(page).__name__] = (need.width(), need.height())
    assert too_big == {}
    w.nav.setCurrentRow(4)  # the widest page: no horizontal scroll bar at laptop size
    qtbot.wait(50)
    assert not w.stack.currentWidget().horizontalScrollBar().isVisible()


@pytest.fixture
def fake_freeze(monkeypatch):
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    monkeypatch.setattr(warmup, "_FROZEN", False)
    return calls


def test_gc_paused_restores_the_collector_and_nests(fake_freeze):
    assert gc.isenabled()
    with warmup.gc_paused():
        with warmup.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), warmup.gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_warm_up_imports_model_code_and_freezes_once(fake_freeze):
    secs = warmup.warm_up(backbone=False)
    assert secs >= 0 and gc.isenabled()
    assert fake_freeze == [1]
    warmup.warm_up(backbone=False)
    assert fake_freeze == [1]  # once per process
    import sys

    assert all(m in sys.modules for m in warmup.MODULES)
