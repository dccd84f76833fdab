"""Good images page: drag-and-drop (synthetic QMimeData), model→widget binding, corrupt files."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402

from app._qt.project_qt import ProjectAdapter  # noqa: E402
from app._qt.settings import Settings  # noqa: E402
from app._qt.widgets.good_images import GoodImagesPage  # noqa: E402
from app.components.imagescan import scan_images, summarize  # noqa: E402
from app.components.project import Project  # noqa: E402


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "good"
    (d / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(d / f"g{i}.png"), rng.integers(0, 255, (40, 60), np.uint8))
    cv2.imwrite(str(d / "sub" / "c.png"), rng.integers(0, 255, (50, 50, 3), np.uint8))
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return d


@pytest.fixture
def page(qtbot, tmp_path):
    adapter = ProjectAdapter(Project(tmp_path / "proj"))
    w = GoodImagesPage(adapter, Settings(tmp_path / "settings.ini"))
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    yield w
    w.shutdown()


def _drop(widget, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(50, 50)
    enter = QDragEnterEvent(
        QPoint(50, 50),  # PySide6 < 6.12 has no QPointF overload
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(drop)
    return drop


def test_drop_folder_fills_grid_and_lists_corrupt_file(qtbot, page, images):
    messages = []
    page.status_message.connect(messages.append)
    _drop(page, [images])
    project = page.adapter.project
    qtbot.waitUntil(lambda: len(project.good_images) == 5, timeout=5000)  # widget → model
    qtbot.waitUntil(lambda: page._task is None and len(page.model.infos) == 4, timeout=5000)
    assert page.model.rowCount() == 5
    assert list(page.model.failures) == [str(images / "broken.png")]
    assert "corrupt" in page.model.failures[str(images / "broken.png")]
    assert page.problems.count() == 1 and page.problems.isVisibleTo(page)
    assert page.summary.text().startswith("4 images · mixed")
    assert "Mixed sizes" in page.warnings.text() and "Mixed channels" in page.warnings.text()
    assert messages[0] == "Added 5 image(s)"
    page.remove_failed()
    assert len(project.good_images) == 4 and page.model.rowCount() == 4
    assert not page.problems.isVisibleTo(page)


def test_model_changes_reach_the_widget_and_selection_removal(qtbot, page, images):
    project = page.adapter.project
    project.add_good_images([images / "g0.png", images / "g1.png"])  # model → widget
    qtbot.waitUntil(lambda: len(page.model.infos) == 2, timeout=5000)
    assert page.summary.text() == "2 images · grayscale · 60×40 (2)"
    assert not page.warnings.isVisibleTo(page)
    page.view.selectionModel().select(
        page.model.index(0), page.view.selectionModel().SelectionFlag.Select
    )
    page.remove_selected()
    assert project.good_images == [project.rel(images / "g1.png")]
    assert page.model.rowCount() == 1
    # dropping something that is not an image folder gives a readable message
    messages = []
    page.status_message.connect(messages.append)
    empty = images.parent / "empty"
    empty.mkdir()
    _drop(page, [empty])
    qtbot.waitUntil(lambda: messages == ["No images found in what was added."], timeout=5000)


def test_switching_project_resets_the_grid(qtbot, page, images, tmp_path):
    page.add_paths([images])
    other = Project(tmp_path / "other")
    page.adapter.set_project(other)  # before the folder listing came back
    qtbot.waitUntil(
        lambda: page._listing is not None and not page._listing.is_running(), timeout=5000
    )
    assert other.good_images == [] and page.model.rowCount() == 0
    assert page.summary.text() == "no images"


def test_scan_reports_every_item_once(images):
    reports = []
    paths = sorted(str(p) for p in images.rglob("*.png"))
    result = scan_images(paths, on_progress=reports.append, report_every_s=0.0)
    assert sum(len(r.infos) for r in reports) == 4 and sum(len(r.failures) for r in reports) == 1
    assert [i.path for i in result.infos] == [p for p in paths if "broken" not in p]
    assert max(result.infos[0].thumbnail.shape[:2]) <= 112
    assert summarize([])[0] == "no images"
