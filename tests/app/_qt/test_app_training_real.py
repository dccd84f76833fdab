"""The real training job (core.models.draem.train, tiny compact network) in a background Task: finish and cancel."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from app._qt.workers import Task  # noqa: E402
from app.components.training import TrainJob, run_training  # noqa: E402
from core.config import ModelConfig, SimulatorConfig, TrainConfig  # noqa: E402
from core.types import Progress, TrainProgress  # noqa: E402


@pytest.fixture
def job(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        p = tmp_path / f"g{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 255, (40, 48, 3), np.uint8))
        paths.append(str(p))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths.append(str(tmp_path / "broken.png"))

    def make(steps):
        return TrainJob(
            "draem",
            tuple(paths),
            ModelConfig(preset="paper", image_size=(64, 64), recon_width=8, disc_width=8),
            SimulatorConfig(),
            TrainConfig(
                steps=steps, batch_size=2, num_workers=0, device="cpu", preview_every_s=0.01
            ),
            str(tmp_path / "models" / "m.ckpt"),
        )

    return make


def test_tiny_training_finishes_in_the_background(qtbot, job):
    task = Task(run_training, job(3), name="tiny-train")
    reports, results = [], []
    task.progress.connect(reports.append)
    task.succeeded.connect(results.append)
    with qtbot.waitSignal(task.finished, timeout=60_000):
        task.start()
    assert task.outcome == "ok", task.outcome
    out = results[0]
    assert out.status == "finished" and out.steps == 3 and os.path.isfile(out.checkpoint_path)
    assert out.n_images == 4 and [f.reason for f in out.failures][0].startswith("not an image")
    assert any(isinstance(r, Progress) for r in reports)  # loading
    train_reports = [r for r in reports if isinstance(r, TrainProgress)]
    assert train_reports and set(train_reports[-1].losses) >= {"total", "focal"}


def test_tiny_training_cancels_and_keeps_a_checkpoint(qtbot, job):
    task = Task(run_training, job(100_000), name="tiny-train-cancel")
    results = []
    task.succeeded.connect(results.append)
    task.progress.connect(lambda r: task.cancel() if isinstance(r, TrainProgress) else None)
    with qtbot.waitSignal(task.finished, timeout=60_000):
        task.start()
    out = results[0]
    assert out.status == "cancelled" and out.steps < 100_000
    assert os.path.isfile(out.checkpoint_path)


@pytest.mark.slow
def test_patchcore_fit_in_the_background_gives_a_loadable_model(qtbot, job):
    from dataclasses import replace

    from core.models.patchcore.detector import PatchCoreConfig
    from core.registry import load_detector

    pc = replace(job(1), method="patchcore", config=PatchCoreConfig())
    task = Task(run_training, pc, name="tiny-patchcore")
    results = []
    task.succeeded.connect(results.append)
    with qtbot.waitSignal(task.finished, timeout=120_000):
        task.start()
    assert task.outcome == "ok"
    out = results[0]
    assert out.method == "patchcore" and out.status == "finished" and out.n_images == 4
    assert load_detector(out.checkpoint_path).method == "patchcore"
