"""Synthetic-anomaly browser: controls → project config → regenerated preview, and back."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from app._qt.project_qt import ProjectAdapter  # noqa: E402
from app._qt.settings import Settings  # noqa: E402
from app._qt.widgets.simulator_view import SimulatorPage  # noqa: E402
from app.components.project import Project, TrainingSettings  # noqa: E402
from app.components.sim_preview import make_previews  # noqa: E402
from core.config import SimulatorConfig, model_preset  # noqa: E402
from core.models.flow import FlowConfig  # noqa: E402


@pytest.fixture
def page(qtbot, tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(3):
        p = tmp_path / f"g{i}.png"
        cv2.imwrite(str(p), rng.integers(60, 200, (48, 64, 3), np.uint8))
        paths.append(p)
    project = Project(tmp_path / "proj")
    project.add_good_images(paths)
    project.set_simulator(SimulatorConfig(image_size=(64, 64), anomaly_probability=1.0))
    # these tests drive [official]'s simulator
    project.set_training(TrainingSettings(preset="paper"))
    w = SimulatorPage(ProjectAdapter(project), Settings(tmp_path / "s.ini"))
    qtbot.addWidget(w)
    w.controls.count.setValue(4)
    w.resize(1200, 800)
    w.show()
    yield w
    w.shutdown()


def _wait_preview(qtbot, page, check=lambda r: True):
    results = []
    page.preview_ready.connect(results.append)
    qtbot.waitUntil(
        lambda: bool(results) and check(results[-1]) and page._task is None, timeout=5000
    )
    return results[-1]


def test_threshold_control_changes_config_and_preview(qtbot, page):
    first = _wait_preview(qtbot, page, lambda r: len(r.items) == 4)
    area = np.mean([it.sample.mask.mean() for it in first.items])
    assert all(it.sample.has_anomaly for it in first.items)
    assert sum(c.isVisibleTo(page) for c in page.cards) == 4
    page.controls.fields["threshold"].setValue(0.8)  # widget → model (debounced)
    qtbot.waitUntil(lambda: page.adapter.project.simulator.threshold == 0.8, timeout=3000)
    later = _wait_preview(qtbot, page, lambda r: r.config.threshold == 0.8)
    area_high = np.mean([it.sample.mask.mean() for it in later.items])
    assert area_high < area  # a higher threshold gives smaller anomalies
    assert page.cards[0].caption.text().startswith("#0 · g0.png")


def test_model_change_updates_controls_and_next_samples(qtbot, page):
    _wait_preview(qtbot, page)
    page.adapter.project.set_simulator(page.adapter.project.simulator, seed=42)  # model → widget
    assert page.controls.seed.value() == 42
    page.next_samples()
    res = _wait_preview(qtbot, page, lambda r: r.start == 4)
    assert [it.sample.index for it in res.items] == [4, 5, 6, 7] and res.seed == 42


def test_invalid_range_is_reported_not_applied(qtbot, page):
    _wait_preview(qtbot, page)
    page.controls.fields["beta_min"].setValue(0.9)  # > beta_max 0.8
    qtbot.waitUntil(lambda: "beta" in page.controls.message.text(), timeout=3000)
    assert page.adapter.project.simulator.beta_min == 0.0


def test_make_previews_is_deterministic_and_skips_bad_files(tmp_path):
    good = tmp_path / "g.png"
    cv2.imwrite(str(good), np.full((40, 40), 128, np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    cfg = SimulatorConfig(image_size=(32, 32))
    paper = model_preset("paper")
    a = make_previews([good, bad], cfg, 3, 0, 4, method_config=paper)
    b = make_previews([good, bad], cfg, 3, 0, 4, method_config=paper)
    assert [it.sample.index for it in a.items] == [0, 2] and len(a.failures) == 1
    assert all(
        np.array_equal(x.sample.augmented, y.sample.augmented)
        for x, y in zip(a.items, b.items, strict=True)
    )


def test_compact_preview_shows_what_the_compact_preset_trains_on(tmp_path):
    rng = np.random.default_rng(2)
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), rng.integers(60, 200, (300, 260), np.uint8))
    cfg = SimulatorConfig(anomaly_probability=1.0)
    res = make_previews([grey], cfg, 0, 0, 8, method_config=model_preset("compact"))
    assert res.variant == "compact" and len(res.items) == 8
    for it in res.items:
        s = it.sample
        assert s.augmented.shape == (224, 224, 3)  # crops of the compact preset's size
        # a grey surface never gets a coloured anomaly
        assert np.array_equal(s.augmented[..., 0], s.augmented[..., 1])
        assert np.array_equal(s.augmented[..., 1], s.augmented[..., 2])
    kinds = {it.sample.kind for it in res.items}
    assert kinds <= {"texture", "intensity", "line", "spot"} and len(kinds) >= 2  # seeded mix
    paper = make_previews([grey], cfg, 0, 0, 2, method_config=model_preset("paper"))
    assert {it.sample.kind for it in paper.items} == {"texture"}
    assert paper.items[0].sample.augmented.shape == (256, 256, 3)  # [official]: resized


def test_compact_preview_keeps_anomalies_on_an_object(tmp_path):
    """Objects on a plain plate: the preview says so and no anomaly touches the plate."""
    rng = np.random.default_rng(5)
    paths = []
    for i in range(4):
        img = np.clip(rng.normal(20, 2, (240, 300)), 0, 255)
        img[60:180, 70:230] = rng.normal(150, 25, (120, 160))  # the object
        paths.append(tmp_path / f"obj{i}.png")
        cv2.imwrite(str(paths[-1]), img.astype(np.uint8))
    compact = model_preset("compact")
    res = make_previews(
        paths, SimulatorConfig(anomaly_probability=1.0), 0, 0, 8, method_config=compact
    )
    assert res.object_only
    for it in res.items:
        s = it.sample
        plate = (s.good[..., 0] < 45).astype(np.uint8)
        plate = cv2.erode(plate, np.ones((7, 7), np.uint8)).astype(bool)
        assert not (s.mask.astype(bool) & plate).any()
    surface = tmp_path / "surface.png"
    cv2.imwrite(str(surface), rng.integers(60, 200, (300, 260), np.uint8))
    assert not make_previews(
        [surface], SimulatorConfig(), 0, 0, 2, method_config=model_preset("compact")
    ).object_only


def test_page_follows_the_training_preset(qtbot, page):
    _wait_preview(qtbot, page, lambda r: r.variant == "paper")
    assert "paper" in page.preset_note.text()
    page.adapter.project.set_training(TrainingSettings(preset="compact"))
    res = _wait_preview(qtbot, page, lambda r: r.variant == "compact")
    assert "compact" in page.preset_note.text()
    assert res.items[0].sample.augmented.shape[:2] == (224, 224)
    captions = [c.caption.text() for c in page.cards if c.isVisibleTo(page)]
    names = ("texture patch", "intensity change", "thin line", "spots", "clean")
    assert all(any(n in c for n in names) for c in captions)


def test_flow_previews_are_the_crops_and_blends_it_trains_on(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"s{i}.png")
        cv2.imwrite(str(paths[-1]), rng.integers(60, 200, (200, 240), np.uint8))
    config = FlowConfig(crop_size=64)
    res = make_previews(paths, SimulatorConfig(), 1, 0, 6, method="flow", method_config=config)
    again = make_previews(paths, SimulatorConfig(), 1, 0, 6, method="flow", method_config=config)
    assert res.method == "flow" and "normalizing flow" in res.note and len(res.items) == 6
    for a, b in zip(res.items, again.items, strict=True):
        s = a.sample
        assert s.augmented.shape == (64, 64, 3) and s.mask.shape == (64, 64)
        assert s.has_anomaly == (s.index % 2 == 0)  # half of each training batch is clean
        assert s.has_anomaly == bool(s.mask.any())
        if s.has_anomaly:  # the blend changed the pixels under the mask only
            changed = np.any(s.augmented != s.good, axis=2)
            assert changed.any() and not (changed & (s.mask == 0)).any()
        assert np.array_equal(s.augmented, b.sample.augmented)  # seeded


def test_page_shows_the_flow_samples_and_says_patchcore_has_none(qtbot, page):
    _wait_preview(qtbot, page)
    page.adapter.project.set_training(TrainingSettings(method="flow"))
    res = _wait_preview(qtbot, page, lambda r: r.method == "flow")
    assert res.items and "normalizing flow" in page.preset_note.text()
    # the flow uses the anomaly source only: the Perlin settings are not offered
    assert page.controls.source.isEnabled() and not page.controls.fields["threshold"].isEnabled()
    page.adapter.project.set_training(TrainingSettings(method="patchcore"))
    res = _wait_preview(qtbot, page, lambda r: r.method == "patchcore")
    assert res.items == () and "no synthetic anomalies" in page.preset_note.text()
    assert not any(c.isVisibleTo(page) for c in page.cards)
    assert not page.controls.source.isEnabled()
    page.adapter.project.set_training(TrainingSettings(preset="paper"))
    _wait_preview(qtbot, page, lambda r: r.variant == "paper")
    assert page.controls.fields["threshold"].isEnabled()
