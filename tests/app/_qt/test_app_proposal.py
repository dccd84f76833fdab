"""The method proposed for the kind of good images: selected and explained on the
training page, never over the user's own choice."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from app._qt.main_window import MainWindow  # noqa: E402
from app._qt.settings import Settings  # noqa: E402
from core.registry import get_method  # noqa: E402
from tests.core.data.test_foreground import object_image, texture_image  # noqa: E402


def _write(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(str(folder / f"g{i:02d}.png"))
        cv2.imwrite(paths[-1], img[..., ::-1])
    return paths


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(Settings(tmp_path / "s.ini"), devices={"cpu": True, "cuda": False})
    qtbot.addWidget(w)
    w.show()
    w.controller.new(tmp_path / "proj", "caps")
    yield w
    w.good_page.shutdown()


def _add_and_wait(qtbot, window, paths):
    window.adapter.project.add_good_images(paths)
    page = window.good_page
    qtbot.waitUntil(lambda: page._task is None and page.proposal is not None, timeout=10_000)


def test_object_images_select_patchcore_and_say_why(qtbot, window, tmp_path):
    rng = np.random.default_rng(0)
    _add_and_wait(
        qtbot, window, _write(tmp_path / "good", [object_image(rng)[0] for _ in range(6)])
    )
    controls = window.training_page.controls
    patchcore = get_method("patchcore")
    assert window.adapter.project.training.method == patchcore.name
    assert controls.method.currentData() == patchcore.name
    text = controls.proposal.text()
    assert controls.proposal.isVisibleTo(controls)
    assert "Proposed: PatchCore" in text and "colour object" in text and "AUROC" in text
    assert not window.adapter.project.training.method_chosen


def test_an_explicit_choice_is_not_overridden(qtbot, window, tmp_path):
    controls = window.training_page.controls
    flow = get_method("flow").name
    controls.method.setCurrentIndex(controls.method.findData(flow))
    assert window.adapter.project.training.method_chosen  # the user picked the flow
    rng = np.random.default_rng(1)
    _add_and_wait(
        qtbot, window, _write(tmp_path / "good", [object_image(rng)[0] for _ in range(6)])
    )
    assert window.adapter.project.training.method == flow
    assert controls.method.currentData() == flow
    assert "Proposed: PatchCore</b> (you chose Flow)" in controls.proposal.text()


def test_surfaces_keep_draem(qtbot, window, tmp_path):
    rng = np.random.default_rng(2)
    _add_and_wait(qtbot, window, _write(tmp_path / "good", [texture_image(rng) for _ in range(5)]))
    assert window.adapter.project.training.method == get_method("draem").name
    assert "Proposed: DRAEM</b> for a grey surface" in window.training_page.controls.proposal.text()


def test_another_project_drops_the_last_proposal(qtbot, window, tmp_path):
    rng = np.random.default_rng(3)
    _add_and_wait(
        qtbot, window, _write(tmp_path / "good", [object_image(rng)[0] for _ in range(4)])
    )
    assert window.training_page.controls.proposal.isVisibleTo(window.training_page)
    window.controller.new(tmp_path / "empty", "empty")
    assert window.good_page.proposal is None
    assert not window.training_page.controls.proposal.isVisibleTo(window.training_page)
    assert window.adapter.project.training.method == get_method("draem").name


def test_long_parts_get_a_larger_working_area_and_say_why(qtbot, window, tmp_path):
    rng = np.random.default_rng(4)
    long_parts = [cv2.resize(texture_image(rng), (500, 1250)) for _ in range(3)]  # H 1250
    _add_and_wait(qtbot, window, _write(tmp_path / "good", long_parts))
    page, project = window.training_page, window.adapter.project
    assert "Working area 416 px" in page.controls.proposal.text()
    assert page.controls.work_area.value() == 416
    assert project.training.work_area is None  # not the user's: it follows the images
    assert page.resolve_method(project.training)[1].work_area == 416
