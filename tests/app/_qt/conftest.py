"""Fixtures of the Qt view tests: an Inspection panel shown offscreen."""

from __future__ import annotations

import pytest


@pytest.fixture
def panel(qtbot):
    """A shown :class:`InspectionPanel` (1400x850) whose status messages are collected in
    ``panel.messages``; shut down (workers joined) after the test."""
    from app._qt.inspection.panel import InspectionPanel

    w = InspectionPanel()
    qtbot.addWidget(w)
    w.resize(1400, 850)
    w.show()
    w.messages = []
    w.status_message.connect(w.messages.append)
    yield w
    assert w.shutdown(5000)
