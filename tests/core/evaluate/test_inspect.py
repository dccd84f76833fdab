"""core.evaluate.inspect.inspect_paths with a small fake detector (the real ones are tested elsewhere)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import FakeConfig

from core.config import Thresholds
from core.errors import Cancelled, CoreError
from core.evaluate.inspect import inspect_paths
from core.types import Detector, InspectionResult, Prediction, ignore_progress, never_stop


class MeanDetector:
    """Anomaly map = brightness / 255; score = its max. Rejects images narrower than 8 px."""

    method = "fake"
    thresholds = Thresholds(image=0.5, pixel=0.5)
    metadata: dict = {}

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.config = FakeConfig()

    def payload(self) -> dict:  # pragma: no cover - protocol completeness
        return {"method": self.method}

    def with_thresholds(self, thresholds):  # pragma: no cover - protocol completeness
        return self

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


def _mvtec(root: Path) -> None:
    """Good images are dark; defects are a bright square (masked in ground_truth)."""
    for i in range(3):
        _png(root / "train" / "good" / f"{i:03d}.png", 20)
    for i in range(3):
        _png(root / "test" / "good" / f"{i:03d}.png", 20 + i)
    (root / "ground_truth" / "spot").mkdir(parents=True)
    for i in range(3):
        img = np.full((20, 30), 20, np.uint8)
        img[5:10, 5 + i : 12 + i] = 250
        _png(root / "test" / "spot" / f"{i:03d}.png", 0)
        cv2.imwrite(str(root / "test" / "spot" / f"{i:03d}.png"), img)
        cv2.imwrite(
            str(root / "ground_truth" / "spot" / f"{i:03d}_mask.png"),
            (img > 128).astype(np.uint8) * 255,
        )
    (root / "test" / "spot" / "broken.png").write_bytes(b"nope")


def test_evaluate_mvtec_perfect_detector(tmp_path):
    from core.data.images import read_mvtec
    from core.evaluate.inspect import evaluate_mvtec

    _mvtec(tmp_path)
    res = evaluate_mvtec(MeanDetector(), read_mvtec(tmp_path), batch_size=4)
    ev = res.evaluation
    assert ev.n_images == 6 and ev.n_defective == 3 and ev.n_pixel_images == 6
    assert ev.image_auroc == 1.0 and ev.pixel_auroc == 1.0 and ev.f1_max == 1.0
    assert ev.aupro > 0.99
    assert res.labels == (0, 0, 0, 1, 1, 1)
    assert res.defect_types == ("good",) * 3 + ("spot",) * 3
    assert res.masks[3].dtype == np.uint8 and res.masks[3].sum() == 35
    assert [Path(f.path).name for f in res.result.failures] == ["broken.png"]
    assert res.seconds_per_image > 0


def test_evaluate_mvtec_without_test_images(tmp_path):
    from core.data.images import read_mvtec
    from core.errors import DatasetError
    from core.evaluate.inspect import evaluate_mvtec

    _png(tmp_path / "train" / "good" / "0.png", 1)
    with pytest.raises(DatasetError, match="no test images"):
        evaluate_mvtec(MeanDetector(), read_mvtec(tmp_path))


def test_lazy_export_records_round_trip(tmp_path):
    from core.evaluate.inspect import LazyExportRecords
    from core.io.export import export_batch, read_batch

    paths = [_png(tmp_path / f"{i}.png", 60 * i, (10 + i, 12)) for i in range(3)]
    res = inspect_paths(MeanDetector(), paths)
    records = LazyExportRecords(
        res, labels=[0, None, 1], masks=[None, None, np.ones((12, 12), np.uint8)]
    )
    assert len(records) == 3 and records[1].label is None and records[0].image.shape == (10, 12, 3)
    out = tmp_path / "batch.h5"
    export_batch(
        out,
        records,
        thresholds=Thresholds(image=0.2, pixel=0.2),
        method="fake",
        model_config={},
        checkpoint_sha256="0" * 64,
    )
    back = read_batch(out)
    assert [r.path for r in back.records] == [str(p) for p in paths]
    assert back.verdicts == ("OK", "NG", "NG")
    np.testing.assert_allclose(back.records[2].anomaly_map, res.predictions[2].anomaly_map)
    assert back.records[2].gt_mask is not None and back.records[2].label == 1
    with pytest.raises(ValueError):
        LazyExportRecords(res, labels=[0])
