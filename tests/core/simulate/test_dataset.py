"""Tests of core.simulate.dataset: SyntheticDataset items and the background make_loader stream."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
import torch

from core.config import SimulatorConfig
from core.errors import DatasetError
from core.simulate.dataset import SampleStream, SyntheticDataset, make_loader
from core.simulate.simulator import AnomalySimulator

SIZE = (32, 48)


def _images(n: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (40 + k, 50, 3), dtype=np.uint8) for k in range(n)]


def _sim(seed: int = 0) -> AnomalySimulator:
    return AnomalySimulator(SimulatorConfig(image_size=SIZE), seed=seed)


def _equal_batches(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_item_tensors_shapes_dtypes_ranges():
    ds = SyntheticDataset(_images(), _sim())
    assert len(ds) == 5
    seen_anomaly = False
    for i in range(12):
        item = ds[i]
        assert set(item) == {"image", "augmented", "mask", "has_anomaly"}
        assert item["image"].shape == item["augmented"].shape == (3, *SIZE)
        assert item["mask"].shape == (1, *SIZE)
        assert item["has_anomaly"].shape == ()
        assert all(v.dtype == torch.float32 for v in item.values())
        for k in ("image", "augmented"):
            assert item[k].min() >= 0.0 and item[k].max() <= 1.0
        assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
        assert item["has_anomaly"].item() == float(item["mask"].any())
        seen_anomaly |= bool(item["has_anomaly"])
    assert seen_anomaly


def test_item_equals_simulator_sample_of_permuted_image():
    images = _images()
    sim = _sim(seed=3)
    ds = SyntheticDataset(images, sim)
    for i in (0, 4, 5, 13):
        s = sim.sample(images[ds.image_index(i)], i)
        np.testing.assert_allclose(
            ds[i]["augmented"].permute(1, 2, 0).numpy(), s.augmented / 255.0, atol=1e-6
        )


def test_epoch_permutations_cover_all_images_and_are_seeded():
    ds = SyntheticDataset(_images(7), _sim(seed=1))
    for epoch in range(3):
        idx = [ds.image_index(epoch * 7 + k) for k in range(7)]
        assert sorted(idx) == list(range(7))
    orders = {tuple(ds.image_index(e * 7 + k) for k in range(7)) for e in range(4)}
    assert len(orders) > 1  # reshuffled per epoch
    other = SyntheticDataset(_images(7), _sim(seed=1))
    assert [other.image_index(i) for i in range(30)][::-1] == [
        ds.image_index(i) for i in range(30)
    ][::-1]


def test_dataset_deterministic():
    a = SyntheticDataset(_images(), _sim(seed=2))
    b = SyntheticDataset(_images(), _sim(seed=2))
    for i in (11, 0, 3):  # any access order
        assert _equal_batches(a[i], b[i])
    c = SyntheticDataset(_images(), _sim(seed=2), seed=99)
    assert any(a.image_index(i) != c.image_index(i) for i in range(5))


def test_dataset_errors():
    with pytest.raises(DatasetError, match="no good images"):
        SyntheticDataset([], _sim())
    with pytest.raises(IndexError):
        SyntheticDataset(_images(), _sim())[-1]


def test_loader_in_process_batches_and_wait_time():
    with make_loader(_images(), _sim(), batch_size=4, num_workers=0, seed=0) as stream:
        assert isinstance(stream, SampleStream)
        batches = [next(stream) for _ in range(3)]
        assert stream.batches == 3 and stream.wait_s > 0.0
    b = batches[0]
    assert b["image"].shape == b["augmented"].shape == (4, 3, *SIZE)
    assert b["mask"].shape == (4, 1, *SIZE) and b["has_anomaly"].shape == (4,)
    ds = SyntheticDataset(_images(), _sim(), seed=0)
    assert torch.equal(batches[2]["augmented"][1], ds[2 * 4 + 1]["augmented"])
    with pytest.raises(StopIteration):
        next(stream)  # closed


def test_loader_workers_match_in_process_and_resume():
    images = _images()
    ref = make_loader(images, _sim(seed=7), batch_size=3, num_workers=0, seed=7)
    expected = [next(ref) for _ in range(4)]
    ref.close()
    with make_loader(images, _sim(seed=7), batch_size=3, num_workers=2, seed=7) as stream:
        got = [next(stream) for _ in range(4)]
    assert all(_equal_batches(e, g) for e, g in zip(expected, got, strict=True))
    # resume the stream at batch 2: start_index = step * batch_size
    with make_loader(
        images, _sim(seed=7), batch_size=3, num_workers=2, seed=7, start_index=6
    ) as stream:
        resumed = [next(stream) for _ in range(2)]
    assert all(_equal_batches(e, g) for e, g in zip(expected[2:], resumed, strict=True))


def test_loader_argument_errors():
    with pytest.raises(DatasetError, match="batch_size"):
        make_loader(_images(), _sim(), batch_size=0, num_workers=0, seed=0)
    with pytest.raises(DatasetError, match="num_workers"):
        make_loader(_images(), _sim(), batch_size=2, num_workers=-1, seed=0)
    with pytest.raises(DatasetError, match="start_index"):
        make_loader(_images(), _sim(), batch_size=2, num_workers=0, seed=0, start_index=-2)


class _UnstartableContext(mp.context.SpawnContext):
    """A start method whose worker processes cannot start (as with an unguarded main script)."""

    class Process(mp.context.SpawnProcess):
        def start(self):
            raise OSError("cannot start worker (test)")


def test_loader_falls_back_in_process_when_workers_cannot_start(caplog):
    images = _images()
    with make_loader(images, _sim(seed=5), batch_size=2, num_workers=2, seed=5) as ok:
        expected = [next(ok) for _ in range(2)]
        assert not ok.in_process
    broken = make_loader(
        images, _sim(seed=5), 2, 2, 5, multiprocessing_context=_UnstartableContext()
    )
    got = [next(broken) for _ in range(2)]
    assert broken.in_process
    assert any("generating samples in-process" in r.getMessage() for r in caplog.records)
    assert all(_equal_batches(e, g) for e, g in zip(expected, got, strict=True))
    broken.close()
