"""HDF5 export: round trip with variable sizes, atomic/interrupted writes, plain-h5py access."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from core.config import Thresholds
from core.errors import Cancelled, ExportError
from core.io import export
from core.io.export import ExportRecord, export_batch, read_batch

TH = Thresholds(image=0.5, pixel=0.6, source="percentile-99 of 3 good")
SHA = "ab" * 32


def _records():
    rng = np.random.default_rng(0)
    out = []
    # (H, W, grayscale-origin, label, with gt, with reconstruction)
    specs = [
        ((40, 64), True, 0, False, True),
        ((33, 21), False, 1, True, True),
        ((50, 50), False, None, False, False),
        ((17, 90), True, 1, True, False),
    ]
    for i, ((h, w), gray, label, gt, recon) in enumerate(specs):
        if gray:
            img = np.repeat(rng.integers(0, 256, (h, w, 1), dtype=np.uint8), 3, axis=2)
        else:
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        amap = rng.random((h, w), dtype=np.float32)
        out.append(
            ExportRecord(
                path=f"/data/tile_{i}_é.png",
                image=img,
                anomaly_map=amap,
                score=[0.2, 0.8, 0.5, 0.45][i],  # OK, NG, NG (== threshold), OK
                label=label,
                gt_mask=(amap > 0.9).astype(np.uint8) if gt else None,
                reconstruction=rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if recon else None,
            )
        )
    return out


def _export(path, records, **kw):
    args = dict(
        thresholds=TH,
        method="draem",
        model_config={"preset": "compact", "image_size": [128, 128]},
        checkpoint_sha256=SHA,
        app_version="9.9.9",
    )
    args.update(kw)
    return export_batch(path, records, **args)


def test_round_trip_variable_sizes(tmp_path):
    recs = _records()
    progress = []
    out = _export(
        tmp_path / "batch.h5",
        recs,
        extra_attrs={"operator": "kim", "lot": [1, 2]},
        on_progress=progress.append,
    )
    assert out == str(tmp_path / "batch.h5")
    assert progress and progress[-1].done == progress[-1].total == len(recs)
    back = read_batch(out)
    assert len(back.records) == len(recs)
    for a, b in zip(recs, back.records, strict=True):
        assert b.path == a.path
        np.testing.assert_array_equal(b.image, a.image)
        assert b.image.dtype == np.uint8 and b.image.shape == a.image.shape
        np.testing.assert_array_equal(b.anomaly_map, a.anomaly_map)
        assert b.anomaly_map.dtype == np.float32
        assert b.score == a.score and b.label == a.label
        if a.gt_mask is None:
            assert b.gt_mask is None
        else:
            np.testing.assert_array_equal(b.gt_mask, a.gt_mask)
        if a.reconstruction is None:
            assert b.reconstruction is None
        else:
            np.testing.assert_array_equal(b.reconstruction, a.reconstruction)
    assert back.thresholds == TH
    assert back.verdicts == ("OK", "NG", "NG", "OK")
    assert back.model_config == {"preset": "compact", "image_size": [128, 128]}
    at = back.attrs
    assert at["schema_version"] == export.SCHEMA_VERSION and at["n_images"] == 4
    assert at["method"] == "draem" and at["checkpoint_sha256"] == SHA
    assert at["app_version"] == "9.9.9" and at["created"].endswith("Z")
    assert at["operator"] == "kim" and json.loads(at["lot"]) == [1, 2]


def test_file_is_plain_hdf5_chunked_compressed_and_without_objects(tmp_path):
    recs = _records()
    path = _export(tmp_path / "b.h5", recs)
    seen = []

    def check(name, obj):
        if isinstance(obj, h5py.Dataset):
            seen.append(name)
            assert obj.dtype.kind in "uif" or h5py.check_string_dtype(obj.dtype), name
        for key, val in obj.attrs.items():
            dt = np.asarray(val).dtype
            assert dt.kind in "uifSb" or isinstance(val, str), (name, key, dt)

    with h5py.File(path, "r") as f:
        f.visititems(check)
        check("/", f)
        img = f["images/000001/image"]
        assert img.shape == (33, 21, 3) and img.compression == "gzip"
        assert img.shuffle and img.chunks is not None and img.compression_opts == 4
        assert f["images/000000/image"].shape == (40, 64)  # grayscale origin stored once
        assert f["images/000000/image"].attrs["IMAGE_SUBCLASS"] == b"IMAGE_GRAYSCALE"
        # plain h5py table access, as documented in docs/hdf5_schema.md
        np.testing.assert_array_equal(f["scores"][:], [r.score for r in recs])
        assert list(f["labels"][:]) == [0, 1, -1, 1]
        assert list(f["paths"].asstr()[:]) == [r.path for r in recs]
        assert f["shapes"][2].tolist() == [50, 50]
        mask = f["images/000001/defect_mask"][:]
        np.testing.assert_array_equal(mask, (recs[1].anomaly_map >= TH.pixel).astype(np.uint8))
        assert "gt_mask" not in f["images/000000"] and "gt_mask" in f["images/000001"]
        assert f["images/000003"].attrs["verdict"] == f["verdicts"].asstr()[3]
    assert len(seen) >= 5 * 4


def test_large_images_are_chunked_in_bands_of_whole_rows(tmp_path):
    h, w = 1500, 1200  # 5.4 MB RGB: several ~1 MiB chunks, each whole rows x all channels
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = 255
    rec = ExportRecord("big.png", img, np.zeros((h, w), np.float32), 0.1)
    path = _export(tmp_path / "big.h5", [rec])
    with h5py.File(path, "r") as f:
        chunks = f["images/000000/image"].chunks
        assert chunks[1:] == (w, 3) and 1 < chunks[0] < h
        assert chunks[0] * w * 3 <= 1 << 20
    np.testing.assert_array_equal(read_batch(path).records[0].image, img)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_failure_mid_write_leaves_existing_file_identical(tmp_path, monkeypatch):
    target = tmp_path / "batch.h5"
    _export(target, _records()[:2])
    before = target.read_bytes()
    calls = {"n": 0}
    real = export._write_record

    def flaky(group, rec, th):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        real(group, rec, th)

    monkeypatch.setattr(export, "_write_record", flaky)
    with pytest.raises(ExportError, match="disk full"):
        _export(target, _records())
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []
    assert len(read_batch(target).records) == 2


def test_cancel_raises_cancelled_and_changes_nothing(tmp_path):
    target = tmp_path / "batch.h5"
    _export(target, _records()[:1])
    before = target.read_bytes()
    polls = iter([False, False, True, True, True])
    with pytest.raises(Cancelled):
        _export(target, _records(), should_stop=lambda: next(polls))
    assert target.read_bytes() == before and _leftovers(tmp_path) == []
    new = tmp_path / "new.h5"
    with pytest.raises(Cancelled):
        _export(new, _records(), should_stop=lambda: True)
    assert not new.exists() and _leftovers(tmp_path) == []


def test_reader_refuses_foreign_and_damaged_files(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not HDF5 at all")
    with pytest.raises(ExportError, match="not an HDF5 file"):
        read_batch(junk)
    with pytest.raises(ExportError, match="does not exist"):
        read_batch(tmp_path / "missing.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ExportError, match="not an export"):
        read_batch(other)
    newer = tmp_path / "newer.h5"
    _export(newer, _records()[:1])
    with h5py.File(newer, "r+") as f:
        f.attrs["schema_version"] = export.SCHEMA_VERSION + 1
    with pytest.raises(ExportError, match="schema version"):
        read_batch(newer)
    broken = tmp_path / "broken.h5"
    _export(broken, _records()[:2])
    with h5py.File(broken, "r+") as f:
        del f["images/000001"]
    with pytest.raises(ExportError, match="damaged"):
        read_batch(broken)


def test_export_reader_reads_one_record_at_a_time(tmp_path):
    from core.io.export import ExportReader

    recs = _records()
    path = tmp_path / "batch.h5"
    _export(path, recs)
    with ExportReader(path) as r:
        assert len(r) == 4 and r.thresholds == TH and r.verdicts == ("OK", "NG", "NG", "OK")
        rec = r[1]  # random access, nothing else is read
        np.testing.assert_array_equal(rec.image, recs[1].image)
        np.testing.assert_array_equal(rec.anomaly_map, recs[1].anomaly_map)
        assert rec.label == 1 and rec.path == recs[1].path
        with pytest.raises(IndexError):
            r[4]
    # a damaged record is reported with its index; the others stay readable
    with h5py.File(path, "r+") as f:
        del f["images/000002/anomaly_map"]
    with ExportReader(path) as r:
        assert r[3].score == pytest.approx(0.45)
        with pytest.raises(ExportError, match=r"damaged or incomplete \(image 2\)"):
            r[2]


def test_bad_input_is_refused_clearly(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ExportError, match="anomaly_map"):
        ExportRecord("a", img, np.zeros((8, 9), np.float32), 0.1)
    with pytest.raises(ExportError, match="image must be"):
        ExportRecord("a", np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.float32), 0.1)
    with pytest.raises(ExportError, match="label"):
        ExportRecord("a", img, np.zeros((8, 8), np.float32), 0.1, label=2)
    with pytest.raises(ExportError, match="score"):
        ExportRecord("a", img, np.zeros((8, 8), np.float32), float("nan"))
    with pytest.raises(ExportError, match="nothing to export"):
        _export(tmp_path / "e.h5", [])
    with pytest.raises(ExportError, match="does not exist"):
        _export(tmp_path / "nope" / "e.h5", _records())
    with pytest.raises(ExportError, match="reserved"):
        _export(tmp_path / "e.h5", _records(), extra_attrs={"n_images": 3})
    with pytest.raises(ExportError, match="JSON"):
        _export(tmp_path / "e.h5", _records(), model_config={"x": object()})
    assert list(tmp_path.iterdir()) == []
