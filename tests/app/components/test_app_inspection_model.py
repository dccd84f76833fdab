"""Qt-free parts of the inspection workflow: state, store, render helpers, jobs."""

from __future__ import annotations

import json
import threading

import cv2
import h5py
import numpy as np
import pytest
from fakes import FakeDetector, write_images

from app.components.inspection import jobs
from app.components.inspection.items import (
    LABEL_DEFECT,
    LABEL_OK,
    UNLABELLED,
    InspectedChunk,
    InspectedItem,
    StateError,
    mask_from_rle,
    mask_to_rle,
)
from app.components.inspection.model import InspectionState
from app.components.inspection.render import (
    contour_polyline,
    defect_mask,
    display_range,
    overlay_lut,
    quantise,
    residual_map,
    score_text,
    threshold_index,
)
from app.components.inspection.store import MAP, RECONSTRUCTION, ArrayStore
from core.config import Thresholds
from core.errors import Cancelled, ExportError
from core.types import Progress


def make_images(folder, n=6, size=(48, 64), spots=(0, 3), seed=0):
    return write_images(folder, n, size, spots, seed, radius=lambda i: 3)


def item(path, score, key=None, shape=(4, 5), label=UNLABELLED):
    return InspectedItem(path, key, score, shape, None, 0.0, 1.0, label)


# --------------------------------------------------------------------- state
def test_verdicts_follow_threshold_vectorised_and_report_changes():
    s = InspectionState()
    events = []
    s.subscribe(lambda k, i: events.append((k, i)))
    s.add_items([item(f"/a/{i}.png", i / 10) for i in range(10)])
    assert events[-1] == ("inserted", (0, 9))
    # NG iff score >= threshold (0.5 itself is NG)
    assert s.verdicts.tolist() == [False] * 5 + [True] * 5
    changed = s.set_thresholds(image=0.25)
    assert changed.tolist() == [3, 4]
    assert s.counts().n_fail == 7 and s.counts().n_pass == 3
    assert events[-1][0] == "verdicts" and events[-1][1].tolist() == [3, 4]
    assert s.thresholds.source == "manual"
    # same value again: nothing changes, no event
    n = len(events)
    assert s.set_thresholds(image=0.25).size == 0 and len(events) == n
    with pytest.raises(ValueError):
        s.verdicts[0] = True  # read-only view


def test_add_same_path_updates_row_and_keeps_label_and_mask():
    store = ArrayStore()
    s = InspectionState(store)
    k1 = store.new_key()
    store.put(k1, MAP, np.zeros((4, 5), np.float32))
    s.add_items([item("/a/x.png", 0.9, key=k1), item("/a/y.png", 0.1)])
    s.set_label(0, LABEL_DEFECT)
    mask = np.zeros((4, 5), np.uint8)
    mask[1, 1] = 1
    s.set_mask(0, mask)
    k2 = store.new_key()
    s.add_items([item("/a/x.png", 0.2, key=k2)])
    assert len(s) == 2 and s.scores[0] == pytest.approx(0.2)
    assert s.labels[0] == LABEL_DEFECT and s.mask(0)[1, 1] == 1
    assert not s.verdicts[0]
    assert not store.has(k1, MAP)  # the stale arrays were discarded
    store.close()


def test_labels_masks_remove_and_errors():
    s = InspectionState()
    s.add_items([item(f"/a/{i}.png", i / 4) for i in range(4)])
    s.set_label([1, 3], LABEL_OK)
    with pytest.raises(StateError):
        s.set_label(0, 7)
    with pytest.raises(StateError, match="does not match"):
        s.set_mask(0, np.ones((2, 2), np.uint8))
    s.set_mask(2, np.ones((4, 5), np.uint8))
    s.remove([0, 1])
    assert s.paths == ("/a/2.png", "/a/3.png")
    assert s.labels.tolist() == [UNLABELLED, LABEL_OK]
    assert s.mask(0) is not None and s.index_of("/a/3.png") == 1
    s.set_mask(0, None)
    assert s.mask(0) is None


def test_rle_round_trip_and_validation():
    rng = np.random.default_rng(1)
    for shape in [(1, 1), (7, 3), (32, 17)]:
        m = (rng.random(shape) > 0.6).astype(np.uint8)
        m[0, 0] = 1  # starts inside
        r = mask_to_rle(m)
        json.dumps(r)
        assert np.array_equal(mask_from_rle(r), m)
    with pytest.raises(StateError):
        mask_from_rle({"shape": [2, 2], "counts": [1, 1]})


def test_to_dict_load_dict_round_trip():
    s = InspectionState(thresholds=Thresholds(0.3, 0.6, "f1"))
    s.add_items([item(f"/a/{i}.png", i / 5, shape=(6, 8)) for i in range(5)])
    s.set_label([0, 4], LABEL_OK)
    s.set_label(2, LABEL_DEFECT)
    m = np.zeros((6, 8), np.uint8)
    m[2:4, 3:7] = 1
    s.set_mask(2, m)
    s.checkpoint_path = "/models/m.pt"
    from core.types import FailedImage

    s.add_failures([FailedImage("/a/bad.png", "file is empty (0 bytes)")])
    d = json.loads(json.dumps(s.to_dict()))  # survives JSON
    t = InspectionState()
    events = []
    t.subscribe(lambda k, i: events.append(k))
    t.load_dict(d)
    assert events == ["reset"]
    assert t.paths == s.paths
    assert np.allclose(t.scores, s.scores)
    assert t.labels.tolist() == s.labels.tolist()
    assert np.array_equal(t.mask(2), m)
    assert t.thresholds == s.thresholds and t.checkpoint_path == "/models/m.pt"
    assert t.failures == s.failures
    assert t.verdicts.tolist() == s.verdicts.tolist()
    assert not t.has_map(0)  # maps are not part of the project file
    with pytest.raises(StateError):
        t.load_dict({"version": 99})
    with pytest.raises(StateError):
        t.load_dict({"items": [{"path": "x"}]})
    assert t.paths == s.paths  # a failed load changes nothing


# --------------------------------------------------------------------- store
def test_store_round_trip_cache_discard_and_close(tmp_path):
    store = ArrayStore(cache_items=1)
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    keys = [store.new_key() for _ in range(3)]
    assert len(set(keys)) == 3
    for k in keys:
        store.put(k, MAP, a + k)
    assert np.array_equal(store.get(keys[1], MAP), a + keys[1])
    assert np.array_equal(store.get(keys[2], MAP), a + keys[2])  # evicts keys[1] from cache
    assert np.array_equal(store.get(keys[1], MAP), a + keys[1])  # read back from disk
    assert store.get(keys[0], RECONSTRUCTION) is None and store.get(None, MAP) is None
    store.discard(keys[0])
    assert store.get(keys[0], MAP) is None and not store.has(keys[0], MAP)
    root = store.root
    assert store.disk_bytes() > 0
    store.close()
    assert not root.exists()


def test_store_concurrent_writers():
    store = ArrayStore()

    def write(offset):
        for i in range(20):
            k = store.new_key()
            store.put(k, MAP, np.full((8, 8), offset + i, np.float32))

    threads = [threading.Thread(target=write, args=(100 * t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(store.root.glob("*.npy"))) == 80
    store.close()


# --------------------------------------------------------------------- render helpers
def test_score_text_keeps_four_significant_digits_at_every_methods_scale():
    cases = {
        0.0: "0.0000",
        0.43125: "0.4313",
        0.0007: "0.0007",
        5.1234: "5.123",
        59.71: "59.71",
        109.71: "109.7",
        1234.4: "1234",
        -12.5: "-12.50",
    }
    assert {v: score_text(v) for v in cases} == cases
    assert score_text(float("nan")) == "nan"


def test_quantise_lut_threshold_index_and_contours():
    amap = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    q = quantise(amap, 0.0, 1.0)
    assert q.dtype == np.uint8 and q.min() == 0 and q.max() == 255
    first = threshold_index(0.5, 0.0, 1.0)
    assert first == 128  # index 128 is 0.502 >= 0.5, index 127 is 0.498
    lut = overlay_lut(np.zeros((256, 3), np.uint8), 0.6, first)
    assert lut.shape == (256, 4) and lut[127, 3] == 0 and lut[128, 3] == 153
    assert display_range(0.0, 0.3) == (0.0, 1.0) and display_range(0.0, 7.0) == (0.0, 7.0)
    m = np.zeros((20, 30), np.uint8)
    m[5:10, 4:12] = 1
    m[14:17, 20:25] = 1
    x, y = contour_polyline(m)
    assert np.isnan(x).sum() == 2  # two closed outlines
    fx, fy = x[np.isfinite(x)], y[np.isfinite(y)]
    assert fx.min() == 4.5 and fx.max() == 24.5 and fy.min() == 5.5 and fy.max() == 16.5
    assert contour_polyline(np.zeros((3, 3), np.uint8))[0].size == 0
    assert defect_mask(amap, 0.5).sum() == (amap >= 0.5).sum()


def test_residual_map_resizes_and_scales():
    img = np.full((10, 12, 3), 100, np.uint8)
    rec = np.full((5, 6, 3), 151, np.uint8)
    r = residual_map(img, rec)
    assert r.shape == (10, 12) and r.dtype == np.float32
    assert np.allclose(r, 51 / 255)


# --------------------------------------------------------------------- jobs
def test_inspect_stream_streams_chunks_and_reports_failures(tmp_path):
    paths = make_images(tmp_path, n=5)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    store = ArrayStore()
    reports = []
    summary = jobs.inspect_stream(
        FakeDetector(), [str(tmp_path)], store, chunk_size=2, on_progress=reports.append
    )
    chunks = [r for r in reports if isinstance(r, InspectedChunk)]
    assert len(chunks) == 3  # 6 files in chunks of 2
    items = [it for c in chunks for it in c.items]
    fails = [f for c in chunks for f in c.failures]
    assert [it.path for it in items] == paths
    assert len(fails) == 1 and fails[0].path.endswith("broken.png") and fails[0].reason
    assert summary.n_inspected == 5 and summary.n_failed == 1
    spot, plain = items[0], items[1]
    assert spot.score > 0.5 > plain.score
    assert spot.shape == (48, 64) and spot.thumbnail.shape == (48, 64, 3)  # never upscaled
    amap = store.get(spot.key, MAP)
    assert amap.dtype == np.float32 and amap.shape == (48, 64)
    assert store.get(spot.key, RECONSTRUCTION).shape == (48, 64, 3)
    assert any(isinstance(r, Progress) and r.done == r.total == 6 for r in reports)
    store.close()


def test_inspect_stream_cancels_between_chunks(tmp_path):
    make_images(tmp_path, n=6)
    store = ArrayStore()
    stop = threading.Event()
    got = []

    def on_progress(r):
        if isinstance(r, InspectedChunk):
            got.append(r)
            stop.set()

    with pytest.raises(Cancelled):
        jobs.inspect_stream(
            FakeDetector(),
            [str(tmp_path)],
            store,
            chunk_size=2,
            on_progress=on_progress,
            should_stop=stop.is_set,
        )
    assert len(got) == 1 and len(got[0].items) == 2  # streamed results survive the cancel
    store.close()


def _inspected_state(tmp_path, n=4):
    paths = make_images(tmp_path, n=n)
    s = InspectionState()
    reports = []
    jobs.inspect_stream(FakeDetector(), paths, s.store, chunk_size=3, on_progress=reports.append)
    for r in reports:
        if isinstance(r, InspectedChunk):
            s.add_items(r.items)
    return s, paths


def test_export_and_reopen_round_trip(tmp_path):
    s, paths = _inspected_state(tmp_path)
    s.set_label(0, LABEL_DEFECT)
    s.set_label(1, LABEL_OK)
    mask = np.zeros((48, 64), np.uint8)
    mask[20:28, 28:36] = 1
    s.set_mask(0, mask)
    s.set_thresholds(image=0.4, pixel=0.3, source="test rule")
    snap = jobs.export_snapshot(
        s, range(len(s)), method="fake", model_config={"a": 1}, checkpoint_path=None
    )
    out = tmp_path / "batch.h5"
    progress = []
    assert jobs.export_job(str(out), snap, s.store, on_progress=progress.append) == str(out)
    with h5py.File(out, "r") as f:  # plain h5py can read it
        assert int(f.attrs["n_images"]) == 4
    store2 = ArrayStore()
    opened = jobs.open_export_job(str(out), store2)
    assert opened.thresholds == Thresholds(0.4, 0.3, "test rule")
    assert [it.path for it in opened.items] == paths
    assert [it.label for it in opened.items] == [1, 0, -1, -1]
    assert np.array_equal(opened.items[0].gt_mask, mask)
    for i, it in enumerate(opened.items):
        assert it.score == pytest.approx(s.scores[i])
        assert np.array_equal(store2.get(it.key, MAP), s.anomaly_map(i))  # maps exact
        assert np.array_equal(store2.get(it.key, "image"), cv2.imread(paths[i])[:, :, ::-1])
    t = InspectionState(store2)
    t.add_items(opened.items)
    assert np.array_equal(t.image(0), s.image(0))  # from the store, not the file
    s.store.close()
    store2.close()


def test_export_refuses_items_without_maps_and_missing_sources(tmp_path):
    s = InspectionState()
    s.add_items([item("/nowhere/a.png", 0.3)])
    with pytest.raises(ExportError, match="re-inspect"):
        jobs.export_snapshot(s, [0], method="fake", model_config={}, checkpoint_path=None)
    with pytest.raises(ExportError, match="nothing to export"):
        jobs.export_snapshot(s, [], method="fake", model_config={}, checkpoint_path=None)
    s2, paths = _inspected_state(tmp_path, n=2)
    snap = jobs.export_snapshot(s2, [0, 1], method="fake", model_config={}, checkpoint_path=None)
    (tmp_path / "img_01.png").unlink()  # the source vanished before export
    out = tmp_path / "x.h5"
    with pytest.raises(ExportError, match="img_01.png"):
        jobs.export_job(str(out), snap, s2.store)
    assert not out.exists()
    s2.store.close()


def test_pixel_metrics_job(tmp_path):
    s, _ = _inspected_state(tmp_path)  # images 0 and 3 have a bright spot
    s.set_label([1, 2], LABEL_OK)
    s.set_label([0, 3], LABEL_DEFECT)
    mask = np.zeros((48, 64), np.uint8)
    cv2.circle(mask, (32, 24), 3, 1, -1)
    s.set_mask(0, mask)  # image 3 has no mask: left out of pixel AUROC
    refs = tuple((s.key(i), int(s.labels[i]), s.mask(i)) for i in range(len(s)))
    res = jobs.pixel_metrics_job(refs, s.store)
    assert res.n_images == 3 and res.n_defect_masks == 1
    assert res.pixel_auroc > 0.9
    assert res.pixel_threshold is not None and 0.0 < res.pixel_threshold < 1.0
    s.store.close()


def test_real_draem_detector_through_inspection_and_export(tmp_path):
    """A tiny untrained DRAEM network: real Predictions (maps, reconstructions) flow through."""
    torch = pytest.importorskip("torch")
    from core.config import ModelConfig
    from core.io.export import read_batch
    from core.models.draem.detector import DraemDetector
    from core.models.draem.network import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(preset="paper", image_size=(32, 32), recon_width=4, disc_width=4)
    det = DraemDetector(build_model(cfg), cfg, Thresholds(0.5, 0.5, "t"), device="cpu")
    make_images(tmp_path, n=3, size=(40, 56))
    s = InspectionState()
    reports = []
    summary = jobs.inspect_stream(det, [str(tmp_path)], s.store, on_progress=reports.append)
    for r in reports:
        if isinstance(r, InspectedChunk):
            s.add_items(r.items)
    assert summary.n_inspected == 3 and len(s) == 3
    amap, recon = s.anomaly_map(0), s.reconstruction(0)
    assert amap.shape == (40, 56) and amap.dtype == np.float32
    assert amap.min() >= 0.0 and amap.max() <= 1.0
    assert recon.shape == (40, 56, 3) and recon.dtype == np.uint8
    snap = jobs.export_snapshot(
        s, range(3), method=det.method, model_config=cfg.to_dict(), checkpoint_path=None
    )
    out = tmp_path / "real.h5"
    jobs.export_job(str(out), snap, s.store)
    batch = read_batch(out)
    assert batch.attrs["method"] == "draem" and batch.model_config["recon_width"] == 4
    assert np.array_equal(batch.records[0].reconstruction, recon)
    s.store.close()


def test_fit_thumbnail_keeps_aspect_and_never_upscales():
    from app.components.inspection.render import fit_thumbnail

    assert fit_thumbnail(np.zeros((300, 400, 3), np.uint8), 96).shape == (72, 96, 3)
    assert fit_thumbnail(np.zeros((500, 50, 3), np.uint8), 96).shape == (96, 10, 3)
    assert fit_thumbnail(np.zeros((20, 30, 3), np.uint8), 96).shape == (20, 30, 3)
