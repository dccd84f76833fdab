"""Checkpoint files: round trip, atomic save, refusal of foreign and malicious files."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from core.errors import CheckpointError
from core.io import checkpoint as ckpt
from core.io.checkpoint import FORMAT, SCHEMA_VERSION, file_sha256, load_checkpoint, save_checkpoint


def _payload(**extra):
    return {
        "method": "draem",
        "state_dict": {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
        "model_config": "{}",
        "metadata": {"preset": "compact", "image_size": [32, 32], "data_summary": {"n_images": 3}},
        "step": 7,
        "optimizer": None,
        **extra,
    }


def test_round_trip_and_sha(tmp_path):
    path = tmp_path / "sub" / "model.pt"
    digest = save_checkpoint(path, _payload())
    assert digest == file_sha256(path) and len(digest) == 64
    data = load_checkpoint(path)
    assert data["format"] == FORMAT and data["schema_version"] == SCHEMA_VERSION
    assert torch.equal(data["state_dict"]["w"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    assert data["metadata"]["image_size"] == [32, 32] and data["step"] == 7
    assert not list(tmp_path.glob("sub/.*tmp"))  # no temp file left behind


class _Evil:
    """Pickles into a call that would create a marker file if it were ever executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "schema_version": 1, "method": "draem", "x": _Evil(marker)}, bad)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(bad)
    assert not marker.exists()
    # the same with a plain (non-torch) pickle file
    bad2 = tmp_path / "evil.pkl"
    bad2.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError):
        load_checkpoint(bad2)
    assert not marker.exists()


def test_non_torch_file_and_missing_file_are_refused(tmp_path):
    txt = tmp_path / "notes.pt"
    txt.write_text("hello, I am not a checkpoint\n")
    with pytest.raises(CheckpointError, match="not a"):
        load_checkpoint(txt)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_foreign_torch_file_and_newer_schema_are_refused(tmp_path):
    plain = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(2)}, plain)  # a valid torch file, but not ours
    with pytest.raises(CheckpointError, match="not a checkpoint of this application"):
        load_checkpoint(plain)
    newer = tmp_path / "newer.pt"
    torch.save({**_payload(), "format": FORMAT, "schema_version": SCHEMA_VERSION + 1}, newer)
    with pytest.raises(CheckpointError, match="newer version"):
        load_checkpoint(newer)


def test_unstorable_payload_is_refused_before_writing(tmp_path):
    path = tmp_path / "m.pt"
    with pytest.raises(CheckpointError, match="only tensors"):
        save_checkpoint(path, _payload(extra=object()))
    with pytest.raises(CheckpointError, match="method"):
        save_checkpoint(path, {"state_dict": {}})
    assert not path.exists()


def test_interrupted_save_keeps_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    good_digest = save_checkpoint(path, _payload())

    real_save = torch.save

    def save_then_crash(obj, f, *a, **k):
        real_save(obj, f, *a, **k)  # bytes are half-way to disk ...
        raise OSError("disk full")  # ... when the write fails

    monkeypatch.setattr(ckpt.torch, "save", save_then_crash)
    with pytest.raises(CheckpointError, match="disk full"):
        save_checkpoint(path, _payload(step=99))
    monkeypatch.undo()
    assert file_sha256(path) == good_digest
    assert load_checkpoint(path)["step"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # temp file cleaned up


def test_keyboard_interrupt_mid_write_keeps_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    good_digest = save_checkpoint(path, _payload())

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _payload(step=99))
    monkeypatch.undo()
    assert file_sha256(path) == good_digest
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]
