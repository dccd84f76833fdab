"""Scores of every method's scale read whole on the inspection page: the table's score
column and the verdict badge (pytest-qt, offscreen, laptop and full-HD sizes)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtWidgets import QApplication, QStyle  # noqa: E402

from app._qt.inspection.list_model import COL_SCORE  # noqa: E402
from app._qt.inspection.panel import InspectionPanel  # noqa: E402
from app.components.inspection.items import InspectedItem  # noqa: E402

#: DRAEM maps in [0, 1], flow NLL scores of units to tens (negative ones too), PatchCore
#: distances of tens to hundreds
SCORES = (59.71, 0.4312, 0.0007, 3.257, 29.9996, -12.5, 109.71, 1234.5, -0.5)
#: the panel's size inside the main window at 1366x768 and at 1920x1080 (less the page list)
SIZES = ((1140, 713), (1694, 1025))


@pytest.mark.parametrize("size", SIZES)
def test_patchcore_sized_scores_show_whole_in_the_table_and_the_badge(qtbot, size):
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    panel.state.add_items(
        InspectedItem(f"/nonexistent/img_{i:02d}.png", None, s, (64, 48), None)
        for i, s in enumerate(SCORES)
    )
    panel.set_thresholds(image=50.0, pixel=50.0)
    QApplication.processEvents()

    table, model = panel.batch.table, panel.batch.model
    texts = [model.data(model.index(r, COL_SCORE)) for r in range(len(SCORES))]
    assert texts[0] == "59.71" and texts[6] == "109.7" and texts[1] == "0.4312"
    # a cell elides its text when it is wider than the column less the style's margins
    margin = table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    room = table.columnWidth(COL_SCORE) - 2 * margin - 1  # the grid line
    fm = table.fontMetrics()
    assert all(fm.horizontalAdvance(t) <= room for t in texts), (texts, room)
    assert panel.controls.image.slider.width() >= 300

    badge = panel.pane.badge
    for row in (0, 1, 5, 6):  # NG at two magnitudes, OK small and negative
        panel.batch.select_row(row)
        QApplication.processEvents()
        assert badge.text().startswith("NG" if SCORES[row] >= 50 else "OK")
        assert badge.isVisible()
        assert badge.parentWidget().rect().contains(badge.geometry()), badge.geometry()
        text_px = badge.fontMetrics().horizontalAdvance(badge.text())
        assert text_px <= badge.contentsRect().width(), (badge.text(), badge.contentsRect())
    # the title ends in "…" when narrow but keeps the whole name for tests and tooltips
    title = panel.pane.title.text()
    assert "img_06.png   48×64" in title and title.endswith("(Ctrl+R re-inspects)")
    assert np.isclose(panel.state.thresholds.image, 50.0)
