"""core.inspect.inspect_paths with a small fake detector (the real ones are tested elsewhere)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.config import Thresholds
from core.errors import Cancelled, CoreError
from core.inspect import inspect_paths
from core.types import Detector, InspectionResult, Prediction, ignore_progress, never_stop


class MeanDetector:
    """Anomaly map = brightness / 255; score = its max. Rejects images narrower than 8 px."""

    method = "fake"
    thresholds = Thresholds(image=0.5, pixel=0.5)
    metadata: dict = {}

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, images, *, batch_size=8, on_progress=ignore_progress, should_stop=never_stop):
        self.batches.append(len(images))
        out = []
        for img in images:
            if should_stop():
                raise Cancelled("stopped")
            if img.shape[1] < 8:
                raise CoreError("image too small")
            amap = img.mean(axis=2).astype(np.float32) / 255.0
            out.append(Prediction(anomaly_map=amap, score=float(amap.max())))
        return out

    def save(self, path: str) -> str:  # pragma: no cover - protocol completeness
        raise NotImplementedError


def _png(path: Path, value: int, shape=(20, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full(shape, value, np.uint8))
    return path


def test_fake_is_a_detector():
    assert isinstance(MeanDetector(), Detector)


def test_inspects_files_and_folders_in_order_and_skips_corrupt(tmp_path):
    a = _png(tmp_path / "a.png", 10)
    folder = tmp_path / "batch"
    b = _png(folder / "b.png", 100, (12, 17))
    c = _png(folder / "sub" / "c.png", 255)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    missing = tmp_path / "missing.png"
    det = MeanDetector()
    items = []
    progress = []
    res = inspect_paths(
        det,
        [a, folder, missing],
        batch_size=2,
        on_progress=progress.append,
        on_item=lambda p, img, pred: items.append((p, img.shape, pred.score)),
    )
    assert isinstance(res, InspectionResult)
    assert res.paths == (str(a), str(b), str(c))
    assert [round(p.score, 3) for p in res.predictions] == [
        round(10 / 255, 3),
        round(100 / 255, 3),
        1.0,
    ]
    assert res.predictions[1].anomaly_map.shape == (12, 17)
    assert res.predictions[1].anomaly_map.dtype == np.float32
    assert [f.path for f in res.failures] == [str(folder / "broken.png"), str(missing)]
    assert "corrupt" in res.failures[0].reason and "not found" in res.failures[1].reason
    assert [i[0] for i in items] == list(res.paths) and items[1][1] == (12, 17, 3)
    assert max(det.batches) <= 2
    assert progress[0].done == 0 and progress[-1].done == progress[-1].total == 5


def test_rejected_image_fails_alone(tmp_path):
    paths = [_png(tmp_path / f"{i}.png", 50, (20, 4 if i == 1 else 30)) for i in range(3)]
    res = inspect_paths(MeanDetector(), paths, batch_size=8)
    assert res.paths == (str(paths[0]), str(paths[2]))
    assert len(res.failures) == 1 and res.failures[0].path == str(paths[1])
    assert "too small" in res.failures[0].reason


def test_empty_input_gives_empty_result(tmp_path):
    res = inspect_paths(MeanDetector(), [tmp_path])
    assert res.paths == () and res.predictions == () and res.failures == ()


def test_cancel(tmp_path):
    paths = [_png(tmp_path / f"{i}.png", 50) for i in range(5)]
    calls = {"n": 0}

    def stop_after_some() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Cancelled):
        inspect_paths(MeanDetector(), paths, batch_size=2, should_stop=stop_after_some)


def test_bad_batch_size(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        inspect_paths(MeanDetector(), [tmp_path], batch_size=0)
