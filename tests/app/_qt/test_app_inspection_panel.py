"""Inspection panel (pytest-qt, offscreen): drops, background inference, thresholds,
labelling keys, suggestions, mask painting, export and re-open, failures, shutdown."""

from __future__ import annotations

import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from fakes import FakeDetector, write_images
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app._qt.inspection.list_model import COL_LABEL, COL_VERDICT  # noqa: E402
from app._qt.inspection.panel import InspectionPanel  # noqa: E402
from app.components.inspection.items import LABEL_DEFECT, LABEL_OK, UNLABELLED  # noqa: E402
from core.config import Thresholds  # noqa: E402
from core.evaluate import thresholds as core_thresholds  # noqa: E402

SPOTS = (0, 3, 5)


def make_images(folder, n=8, size=(48, 64), seed=0):
    return write_images(folder, n, size, SPOTS, seed, radius=lambda i: 3 + i % 2)


def wait_idle(qtbot, panel, timeout=10_000):
    qtbot.waitUntil(lambda: not panel.jobbar.busy and not panel.session.pending, timeout=timeout)
    QApplication.processEvents()


def inspected(qtbot, panel, tmp_path, n=8, detector=None):
    paths = make_images(tmp_path / "imgs", n=n)
    panel.set_detector(detector or FakeDetector(), None)
    panel.add_paths([str(tmp_path / "imgs")])
    wait_idle(qtbot, panel)
    assert len(panel.state) == n
    return paths


def drop(widget, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    args = (
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    enter = QDragEnterEvent(QPoint(40, 40), *args)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    ev = QDropEvent(QPointF(40, 40), *args)
    QApplication.sendEvent(widget, ev)
    return ev


def cell(panel, row, col):
    m = panel.batch.model
    return m.data(m.index(row, col))


# --------------------------------------------------------------------- inspection
def test_drop_folder_and_file_inspects_in_background_and_lists_failures(qtbot, panel, tmp_path):
    paths = make_images(tmp_path / "imgs", n=6)
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG broken")
    det = FakeDetector()
    panel.set_detector(det, None)
    ev = drop(panel, [tmp_path / "imgs", bad])
    assert ev.isAccepted()
    assert panel.jobbar.busy and panel.jobbar.isVisible()  # runs in the background
    wait_idle(qtbot, panel)
    assert threading.get_ident() not in det.threads  # never on the GUI thread
    assert list(panel.state.paths) == paths
    assert panel.batch.proxy.rowCount() == 6
    assert not panel.jobbar.isVisible()
    # failures reach the user with the reason
    assert panel.batch.failed_list.isVisibleTo(panel)
    assert panel.batch.failed_list.count() == 1
    assert "corrupt.png" in panel.batch.failed_list.item(0).text()
    assert any("1 failed" in m for m in panel.messages)
    # the first image is on screen with its map, reconstruction and residual
    assert panel.pane.row == 0
    assert panel.viewer.anomaly_map is not None and panel.viewer.residual is not None
    # a drag without files is refused
    mime = QMimeData()
    mime.setText("hello")
    enter = QDragEnterEvent(
        QPoint(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    enter.ignore()
    panel.dragEnterEvent(enter)
    assert not enter.isAccepted()


def test_paths_wait_for_a_model_and_detector_errors_are_reported(qtbot, panel, tmp_path):
    make_images(tmp_path / "imgs", n=3)
    odd = np.full((48, 50, 3), 70, np.uint8)
    cv2.imwrite(str(tmp_path / "imgs" / "odd.png"), odd)
    panel.add_paths([str(tmp_path / "imgs")])
    assert "once a model is loaded" in panel.messages[-1]
    assert len(panel.state) == 0
    panel.set_detector(FakeDetector(fail_on_width=50), None)
    wait_idle(qtbot, panel)
    assert len(panel.state) == 3
    assert [f.path.endswith("odd.png") for f in panel.state.failures] == [True]
    assert "unsupported image width" in panel.state.failures[0].reason


# --------------------------------------------------------------------- thresholds
def test_image_slider_and_box_change_verdicts_without_rerunning_model(qtbot, panel, tmp_path):
    det = FakeDetector()
    inspected(qtbot, panel, tmp_path, detector=det)
    calls = len(det.threads)
    scores = panel.state.scores.copy()
    row = panel.controls.image
    # slider all the way down: every image is NG
    row.slider.setValue(0)
    assert panel.state.thresholds.image == pytest.approx(row.lo, abs=1e-4)  # box: 4 decimals
    assert panel.state.verdicts.all()
    assert {cell(panel, r, COL_VERDICT) for r in range(8)} == {"NG"}
    assert "0 pass" in panel.controls.readout.text() and "8 fail" in panel.controls.readout.text()
    assert panel.histogram.line.value() == pytest.approx(row.lo, abs=1e-4)  # follows the box
    assert row.spin.value() == pytest.approx(row.lo, abs=1e-4)
    # numeric box between the spot scores and the rest
    t = float((scores[list(SPOTS)].min() + np.delete(scores, SPOTS).max()) / 2)
    row.spin.setValue(t)
    assert np.flatnonzero(panel.state.verdicts).tolist() == list(SPOTS)
    assert [cell(panel, r, COL_VERDICT) for r in range(8)] == [
        "NG" if r in SPOTS else "OK" for r in range(8)
    ]
    assert panel.pane.badge.text().startswith("NG")  # row 0 has a spot
    assert "3 fail" in panel.controls.readout.text()
    # dragging the histogram line is the same control
    panel.histogram.line.setValue(float(scores.max()) + 0.01)
    assert not panel.state.verdicts.any()
    assert row.spin.value() == pytest.approx(float(scores.max()) + 0.01, abs=1e-4)
    assert len(det.threads) == calls and panel.state.scores.tolist() == scores.tolist()


def test_threshold_move_is_one_datachanged_not_a_rebuild(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path)
    model = panel.batch.model
    changes, resets, inserts = [], [], []
    model.dataChanged.connect(
        lambda a, b, _roles: changes.append((a.row(), a.column(), b.row(), b.column()))
    )
    model.modelReset.connect(lambda: resets.append(1))
    model.rowsInserted.connect(lambda *_: inserts.append(1))
    scores = np.sort(panel.state.scores)
    panel.set_thresholds(image=float(scores[2] + scores[3]) / 2)  # verdicts of some rows change
    flipped = np.flatnonzero(panel.state.verdicts != (panel.state.scores >= 0.5))
    assert len(changes) == 1 and not resets and not inserts
    assert changes[0] == (int(flipped.min()), 0, int(flipped.max()), COL_LABEL)  # whole rows: tint
    panel.state.set_label([4], LABEL_OK)
    assert changes[-1] == (4, COL_LABEL, 4, COL_LABEL)


def test_state_changes_reach_widgets(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path)
    panel.state.set_thresholds(image=0.123, pixel=0.4, source="from code")
    assert panel.controls.image.spin.value() == pytest.approx(0.123)
    assert panel.controls.pixel.spin.value() == pytest.approx(0.4)
    assert panel.viewer.pixel_threshold == pytest.approx(0.4)
    assert panel.histogram.line.value() == pytest.approx(0.123)
    assert "from code" in panel.controls.source.text()
    panel.state.set_label(2, LABEL_DEFECT)
    assert cell(panel, 2, COL_LABEL) == "Defect"
    qtbot.waitUntil(lambda: "1 defective" in panel.metrics.auroc.text(), timeout=2000)


def test_pixel_threshold_recolours_overlay_and_outlines(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path)
    panel.batch.select_row(0)  # has a spot
    v = panel.viewer
    panel.controls.pixel.spin.setValue(0.3)
    x, _ = v.contours.getData()
    assert x is not None and np.isfinite(x).sum() > 4  # an outline around the spot
    lut = v.overlay.lut
    first = int(np.ceil(0.3 * 255))
    assert lut[first - 1, 3] == 0 and lut[first + 1, 3] > 0  # transparent below threshold
    panel.controls.pixel.spin.setValue(1.01)  # above every map value
    x, _ = v.contours.getData()
    assert x is None or np.isfinite(x).sum() == 0
    assert v.overlay.lut[:, 3].max() == 0  # nothing at or above the threshold: no overlay
    panel.controls.pixel.spin.setValue(0.3)
    panel.options.opacity.setValue(100)
    assert v.overlay.lut[255, 3] == 255
    panel.options.below.setChecked(True)  # values below the threshold shown faintly
    assert 0 < v.overlay.lut[10, 3] < 255
    panel.options.contours.setChecked(False)
    x, _ = v.contours.getData()
    assert x is None or len(x) == 0


def test_hover_readout_shows_pixel_values(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path)
    v = panel.viewer
    text = v.pixel_text(32, 24)
    assert "x 32  y 24" in text and "RGB" in text and "map" in text and "residual" in text
    assert v.pixel_text(-1, 0) == "" and v.pixel_text(64, 0) == ""
    scene_pos = v.main_vb.mapViewToScene(QPointF(32.5, 24.5))
    v._on_mouse_moved(scene_pos)
    assert panel.pane.readout.text() == text


# --------------------------------------------------------------------- labelling
def test_label_keys_label_and_advance(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path)
    panel.activateWindow()
    panel.batch.select_row(0)
    panel.batch.table.setFocus()
    qtbot.waitUntil(lambda: panel.batch.table.hasFocus(), timeout=2000)
    QTest.keyClick(panel.batch.table, Qt.Key.Key_D)
    assert panel.state.labels[0] == LABEL_DEFECT and panel.pane.row == 1
    QTest.keyClick(panel.batch.table, Qt.Key.Key_G)
    assert panel.state.labels[1] == LABEL_OK and panel.pane.row == 2
    QTest.keyClick(panel.batch.table, Qt.Key.Key_K)
    QTest.keyClick(panel.batch.table, Qt.Key.Key_U)
    assert panel.state.labels[1] == UNLABELLED and panel.pane.row == 1
    # the buttons do the same
    panel.labelbar.buttons[LABEL_OK].click()
    assert panel.state.labels[1] == LABEL_OK and panel.pane.row == 2


def test_suggestion_buttons_apply_core_rules(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path)
    m = panel.metrics
    panel._refresh_now()
    assert not m.btn_f1.isEnabled() and not m.btn_pct.isEnabled()
    labels = np.array([1 if i in SPOTS else 0 for i in range(8)])
    labels[4] = 1  # one defect the model misses: makes the rules differ
    panel.state.set_label(np.flatnonzero(labels == 1), LABEL_DEFECT)
    panel.state.set_label(np.flatnonzero(labels == 0), LABEL_OK)
    panel._refresh_now()
    scores = panel.state.scores
    m.btn_f1.click()
    assert panel.state.thresholds.image == pytest.approx(
        core_thresholds.f1_optimal(labels, scores).value
    )
    assert panel.state.thresholds.source.startswith("f1-optimal")
    m.btn_nomiss.click()
    assert panel.state.thresholds.image == pytest.approx(scores[4])  # lowest defect score
    assert not (panel.state.verdicts[labels == 1] == 0).any()  # no missed defect
    assert m.cells["fn"].text() == "0"
    m.pct.setValue(90.0)
    m.btn_pct.click()
    expect = core_thresholds.from_good_scores(scores[labels == 0], percentile=90.0).value
    assert panel.state.thresholds.image == pytest.approx(expect)
    # confusion matrix follows the threshold
    c = {k: int(m.cells[k].text()) for k in ("tp", "fn", "fp", "tn")}
    assert sum(c.values()) == 8 and c["tp"] + c["fn"] == 4
    # pixel metrics in the background, then apply the suggested pixel threshold
    mask = np.zeros((48, 64), np.uint8)
    cv2.circle(mask, (32, 24), 4, 1, -1)
    panel.state.set_mask(0, mask)
    m.btn_pixel.click()
    wait_idle(qtbot, panel)
    assert "Pixel AUROC: <b>0." in m.pixel.text() or "Pixel AUROC: <b>1." in m.pixel.text()
    assert m.btn_use_pixel.isEnabled()
    m.btn_use_pixel.click()
    assert panel.state.thresholds.pixel == pytest.approx(m._pixel_value)


def test_rule_that_cannot_apply_gives_a_message(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path)
    panel.state.set_label([0, 1], LABEL_OK)
    panel._refresh_now()
    before = panel.state.thresholds
    panel.metrics._suggest("f1")
    assert "defective" in panel.messages[-1]
    assert panel.state.thresholds == before


def test_paint_and_erase_mask_with_the_mouse(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path)
    panel.batch.select_row(1)
    v = panel.viewer
    panel.labelbar.radius.setValue(4)
    panel.labelbar.paint.setChecked(True)
    assert v.brush_mode == "paint"
    vp = v.graphics.viewport()

    def click_at(x, y):
        sp = v.main_vb.mapViewToScene(QPointF(x, y))
        QTest.mouseClick(vp, Qt.MouseButton.LeftButton, pos=v.graphics.mapFromScene(sp))

    click_at(20.5, 20.5)
    qtbot.waitUntil(lambda: panel.state.mask(1) is not None, timeout=2000)
    mask = panel.state.mask(1)
    assert mask[20, 20] == 1 and mask[20, 23] == 1 and mask[20, 26] == 0
    assert panel.state.labels[1] == LABEL_DEFECT  # painting a defect implies the label
    panel.labelbar.erase.setChecked(True)
    assert not panel.labelbar.paint.isChecked() and v.brush_mode == "erase"
    click_at(20.5, 20.5)
    qtbot.waitUntil(lambda: panel.state.mask(1) is None, timeout=2000)
    panel.labelbar.erase.setChecked(False)
    assert v.brush_mode is None


# --------------------------------------------------------------------- export
def test_export_and_reopen_round_trip(qtbot, panel, tmp_path):
    paths = inspected(qtbot, panel, tmp_path)
    panel.state.set_label([0, 3], LABEL_DEFECT)
    panel.state.set_label([1], LABEL_OK)
    mask = np.zeros((48, 64), np.uint8)
    mask[20:28, 28:36] = 1
    panel.state.set_mask(0, mask)
    panel.set_thresholds(image=0.45, pixel=0.35, source="chosen")
    out = tmp_path / "out" / "batch.h5"
    out.parent.mkdir()
    assert panel.export_to(str(out))
    wait_idle(qtbot, panel)
    assert out.exists() and any("Exported 8 image(s)" in m for m in panel.messages)
    scores = panel.state.scores.copy()
    maps = [panel.state.anomaly_map(i).copy() for i in range(8)]

    other = InspectionPanel()
    qtbot.addWidget(other)
    other.show()
    assert other.open_export(str(out))
    wait_idle(qtbot, other)
    s = other.state
    assert list(s.paths) == paths
    assert s.labels.tolist() == [1, 0, -1, 1, -1, -1, -1, -1]
    assert np.array_equal(s.mask(0), mask)
    assert np.allclose(s.scores, scores)
    assert all(np.array_equal(s.anomaly_map(i), maps[i]) for i in range(8))
    assert s.thresholds == Thresholds(0.45, 0.35, "export (chosen)")
    assert other.batch.proxy.rowCount() == 8 and other.pane.row == 0
    assert other.viewer.image is not None  # pixels come from the file
    # the re-opened batch can be exported again (selection only)
    other.batch.select_row(2)
    out2 = tmp_path / "out" / "sel.h5"
    assert other.export_to(str(out2), selection_only=True)
    wait_idle(qtbot, other)
    from core.io.export import read_batch

    again = read_batch(out2)
    assert [r.path for r in again.records] == [paths[2]] and again.attrs["method"] == "fake"
    assert other.shutdown(5000)


def test_restored_state_without_maps_refuses_export_with_reason(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path, n=3)
    d = panel.state.to_dict()
    fresh = InspectionPanel()
    qtbot.addWidget(fresh)
    msgs = []
    fresh.status_message.connect(msgs.append)
    fresh.state.load_dict(d)
    assert fresh.batch.proxy.rowCount() == 3
    assert fresh.pane.row == 0 and "no anomaly map" in fresh.pane.title.text()
    assert not fresh.export_to(str(tmp_path / "x.h5"))
    assert "re-inspect" in msgs[-1]
    fresh.set_detector(FakeDetector(), None)
    fresh.reinspect()
    wait_idle(qtbot, fresh)
    assert len(fresh.state) == 3 and all(fresh.state.has_map(i) for i in range(3))
    assert fresh.shutdown(5000)


def test_shutdown_cancels_a_running_inspection(qtbot, panel, tmp_path):
    make_images(tmp_path / "imgs", n=40)
    panel.set_detector(FakeDetector(delay=0.05), None)
    panel.add_paths([str(tmp_path / "imgs")])
    qtbot.waitUntil(lambda: len(panel.state) > 0, timeout=10_000)
    assert panel.shutdown(5000)
    QApplication.processEvents()
    assert len(panel.state) < 40


def test_every_control_has_a_tooltip(panel):
    from PySide6.QtWidgets import QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox

    controls = [
        w
        for kind in (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox)
        for w in panel.findChildren(kind)
        if not w.objectName().startswith("qt_")  # Qt's own internals (scroll bars, ...)
        and not isinstance(w.parent(), QAbstractSpinBox)
    ]
    controls = [w for w in controls if type(w).__name__ != "QScrollBar"]
    assert len(controls) > 20
    missing = [
        f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}"
        for w in controls
        if not w.toolTip()
    ]
    assert missing == []


def test_paths_added_during_an_export_are_inspected_after_it(qtbot, panel, tmp_path):
    inspected(qtbot, panel, tmp_path, n=4)
    more = make_images(tmp_path / "more", n=2, seed=5)
    assert panel.export_to(str(tmp_path / "b.h5"))
    panel.add_paths(more)  # busy: queued
    assert panel.session.pending == more
    wait_idle(qtbot, panel)
    assert (tmp_path / "b.h5").exists() and len(panel.state) == 6


@pytest.mark.slow
def test_export_of_a_patchcore_batch_carries_its_config(qtbot, panel, tmp_path):
    """The export records the detector's config whichever method it is (PatchCore has no
    ``model_config`` attribute: the identity comes from ``detector.config``)."""
    import json

    from core.io.export import read_batch
    from core.models.patchcore.detector import PatchCoreConfig, fit_patchcore

    paths = make_images(tmp_path / "imgs", n=4)
    good = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths[1:3]]
    det = fit_patchcore(good, config=PatchCoreConfig(resolution=64, coreset_ratio=0.5))
    panel.set_detector(det, None)
    drop(panel, [tmp_path / "imgs"])
    wait_idle(qtbot, panel)
    out = tmp_path / "pc.h5"
    assert panel.export_to(str(out))
    wait_idle(qtbot, panel)
    attrs = read_batch(out).attrs
    cfg = attrs["model_config"]
    cfg = json.loads(cfg) if isinstance(cfg, str) else cfg
    assert attrs["method"] == "patchcore"
    assert cfg["coreset_ratio"] == 0.5 and cfg["resolution"] == 64


def test_histogram_legend_sits_outside_the_plot_so_the_threshold_label_never_covers_it(
    qtbot, panel, tmp_path
):
    inspected(qtbot, panel, tmp_path, n=4)
    panel.state.set_label([0], LABEL_OK)
    panel.state.set_label([1], LABEL_DEFECT)
    h = panel.histogram
    h.set_data(panel.state.scores, panel.state.labels)
    h.set_threshold(float(panel.state.scores.max()))  # the line at the right edge
    assert h.plot.getPlotItem().legend is None  # nothing drawn over the bars' area
    title = h.plot.getAxis("bottom").labelString()
    assert "image score" in title and "OK" in title and "defective" in title
    assert "unlabelled" in title  # two of four are unlabelled
