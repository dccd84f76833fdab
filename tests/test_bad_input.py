"""Bad input on the command line: a clear one-line error, nothing lost, never a hang.

Fuzz-style parametrised cases over bad output paths, bad images, bad numbers and
signals.  No model is trained here: commands that need one get the conftest
``FakeDetector`` (``report.open_detector`` is replaced), so the module runs in seconds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.cli import commands as cli
from core.cli import support as report
from tests.conftest import FakeDetector


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error(rc: int, err: str, *words: str) -> str:
    assert rc != 0, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def folder(tmp_path) -> Path:
    """Four small good PNGs in ``tmp_path/good``."""
    good = tmp_path / "good"
    good.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(good / f"{i}.png"), rng.integers(60, 200, (24, 32), dtype=np.uint8))
    return good


@pytest.fixture
def fake_model(tmp_path, monkeypatch) -> Path:
    """A model file path whose loading yields the conftest FakeDetector."""
    path = tmp_path / "model.pt"
    path.write_bytes(b"fake model")
    monkeypatch.setattr(report, "open_detector", lambda _p: FakeDetector())
    return path


def own_checkpoint(path: Path) -> Path:
    import torch

    from core.io.checkpoint import FORMAT

    torch.save({"format": FORMAT, "method": "draem"}, path)
    return path


def own_export(path: Path) -> Path:
    import h5py

    from core.io.export import FORMAT

    with h5py.File(path, "w") as f:
        f.attrs["format"] = FORMAT
    return path


# --------------------------------------------------------------------- output paths
def _special_out(tmp_path: Path, kind: str) -> str:
    if kind == "devnull":
        return os.devnull
    if kind == "fifo":
        p = tmp_path / "pipe.out"
        os.mkfifo(p)
        return str(p)
    if kind == "folder":
        p = tmp_path / "adir"
        p.mkdir()
        return str(p)
    if kind == "dangling":
        p = tmp_path / "dangling.out"
        p.symlink_to(tmp_path / "nowhere")
        return str(p)
    if kind == "foreign":
        p = tmp_path / "notes.txt"
        p.write_text("precious")
        return str(p)
    if kind == "no_parent":
        return str(tmp_path / "missing" / "deeper" / "x.out")
    raise AssertionError(kind)


SPECIAL = ["devnull", "fifo", "folder", "dangling", "foreign"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.parametrize("kind", [*SPECIAL, "no_parent"])
def test_inspect_refuses_bad_out_before_work(capsys, tmp_path, folder, fake_model, kind):
    out = _special_out(tmp_path, kind)
    before = Path(out).read_bytes() if kind == "foreign" else None
    rc, stdout, err = run(
        capsys, "inspect", "--model", fake_model, "--images", folder, "--out", out
    )
    one_error(rc, err)
    assert "inspected" not in stdout  # refused before any image was scored
    if before is not None:
        assert Path(out).read_bytes() == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.parametrize("kind", SPECIAL)
def test_train_refuses_bad_out_before_work(capsys, tmp_path, folder, kind):
    out = _special_out(tmp_path, kind)
    rc, stdout, err = run(capsys, "train", "--data", folder, "--out", out, "--steps", "1")
    one_error(rc, err)
    assert "training" not in stdout


@pytest.mark.parametrize("which", ["image", "model", "image_via_symlink"])
def test_inspect_out_may_not_be_an_input_even_with_force(
    capsys, tmp_path, folder, fake_model, which
):
    target = {"image": folder / "1.png", "model": fake_model}.get(which)
    if which == "image_via_symlink":
        target = tmp_path / "alias.h5"
        target.symlink_to(folder / "2.png")
    before = Path(target).read_bytes()
    for extra in ([], ["--force"]):
        rc, _, err = run(
            capsys, "inspect", "--model", fake_model, "--images", folder, "--out", target, *extra
        )
        one_error(rc, err, "input")
    assert Path(target).read_bytes() == before


def test_train_out_may_not_be_a_training_image(capsys, folder):
    target = folder / "0.png"
    before = target.read_bytes()
    rc, _, err = run(capsys, "train", "--data", folder, "--out", target, "--force", "--steps", "1")
    one_error(rc, err, "input")
    assert target.read_bytes() == before


def test_inspect_replaces_own_export_and_foreign_file_only_with_force(
    capsys, tmp_path, folder, fake_model
):
    from core.io.export import read_batch

    own = own_export(tmp_path / "old.h5")
    rc, _, err = run(capsys, "inspect", "--model", fake_model, "--images", folder, "--out", own)
    assert rc == 0, err
    assert len(read_batch(own).records) == 4
    foreign = tmp_path / "foreign.h5"
    foreign.write_text("keep me")
    rc, _, err = run(capsys, "inspect", "--model", fake_model, "--images", folder, "--out", foreign)
    one_error(rc, err, "--force")
    assert foreign.read_text() == "keep me"
    rc, _, err = run(
        capsys, "inspect", "--model", fake_model, "--images", folder, "--out", foreign, "--force"
    )
    assert rc == 0, err
    assert len(read_batch(foreign).records) == 4


def test_own_file_markers(tmp_path):
    from core.io.outputs import is_own_checkpoint, is_own_export

    ckpt, exp = own_checkpoint(tmp_path / "c.pt"), own_export(tmp_path / "e.h5")
    other = tmp_path / "o.pt"
    other.write_bytes(b"PK\x03\x04 not really a zip")
    assert is_own_checkpoint(ckpt) and not is_own_checkpoint(exp) and not is_own_checkpoint(other)
    assert is_own_export(exp) and not is_own_export(ckpt) and not is_own_export(other)


def test_demo_and_simulate_refuse_bad_out_folders(capsys, tmp_path, folder):
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, _, err = run(capsys, "demo", "--headless", "--out", afile, "--steps", "1")
    one_error(rc, err, "not a folder")
    taken = tmp_path / "demo"
    taken.mkdir()
    (taken / "demo_results.h5").write_text("someone else's")
    rc, _, err = run(capsys, "demo", "--headless", "--out", taken, "--steps", "1")
    one_error(rc, err, "demo_results.h5")
    rc, _, err = run(capsys, "simulate", "--data", folder, "--out", afile, "--count", "1")
    one_error(rc, err, "not a folder")
    rc, _, err = run(capsys, "simulate", "--data", folder, "--out", folder, "--count", "1")
    one_error(rc, err, "input")
    assert sorted(p.name for p in folder.iterdir()) == ["0.png", "1.png", "2.png", "3.png"]


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_folder_is_refused_up_front(capsys, tmp_path, folder, fake_model):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, _, err = run(
            capsys, "inspect", "--model", fake_model, "--images", folder, "--out", locked / "r.h5"
        )
        one_error(rc, err, "not writable")
    finally:
        locked.chmod(0o700)


# --------------------------------------------------------------------- bad input files
def _bad_input(folder: Path, kind: str) -> Path:
    p = folder / f"bad_{kind}.png"
    if kind == "dangling":
        p.symlink_to(folder / "gone.png")
    elif kind == "loop":
        p.symlink_to(p)
    elif kind == "fifo":
        os.mkfifo(p)  # opening it for reading would block forever
    elif kind == "huge":  # a valid PNG header declaring 20000 x 20000 pixels
        ok, buf = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
        data = bytearray(buf.tobytes())
        data[16:24] = (20000).to_bytes(4, "big") * 2
        p.write_bytes(bytes(data))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "garbage":
        p.write_bytes(os.urandom(64))
    else:
        raise AssertionError(kind)
    return p


BAD_FILES = ["dangling", "loop", "fifo", "huge", "empty", "garbage"]
REASONS = {
    "dangling": "dangling",
    "loop": "loop",
    "fifo": "FIFO",
    "huge": "megapixels",
    "empty": "empty",
    "garbage": "not an image",
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.parametrize("kind", BAD_FILES)
def test_load_image_names_the_problem(tmp_path, kind):
    from core.data.images import load_image
    from core.errors import ImageLoadError

    p = _bad_input(tmp_path, kind)
    with pytest.raises(ImageLoadError) as info:
        load_image(p)
    assert REASONS[kind] in info.value.reason


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.parametrize("kind", BAD_FILES)
def test_inspect_skips_bad_file_and_exports_the_rest(capsys, tmp_path, folder, fake_model, kind):
    from core.io.export import read_batch

    bad = _bad_input(folder, kind)
    out = tmp_path / "r.h5"
    rc, stdout, err = run(
        capsys, "inspect", "--model", fake_model, "--images", folder, bad, "--out", out
    )
    assert rc == 0, err
    assert f"skipped {bad}" in err and REASONS[kind] in err
    assert "4 inspected" in stdout
    assert len(read_batch(out).records) == 4


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.parametrize("kind", ["dangling", "loop", "fifo"])
def test_training_images_skip_special_files(tmp_path, folder, kind):
    from core.data.images import good_image_paths, load_images

    _bad_input(folder, kind)
    loaded, failed = load_images(good_image_paths(folder))
    assert len(loaded) == 4 and len(failed) == 1


@pytest.mark.parametrize(
    "ext,shape", [(".png", (30, 50)), (".jpg", (31, 17)), (".bmp", (9, 40)), (".tif", (12, 7))]
)
def test_header_size_matches_the_image(ext, shape):
    from core.data.imagecheck import header_size

    ok, buf = cv2.imencode(ext, np.full((*shape, 3), 128, np.uint8))
    assert ok and header_size(buf) == (shape[1], shape[0])


def test_image_deleted_before_export_loses_only_itself(
    capsys, tmp_path, folder, fake_model, monkeypatch
):
    import core.evaluate.inspect
    from core.io.export import read_batch

    real = core.evaluate.inspect.inspect_paths

    def inspect_then_delete(*a, **kw):
        result = real(*a, **kw)
        (folder / "1.png").unlink()
        return result

    monkeypatch.setattr(core.evaluate.inspect, "inspect_paths", inspect_then_delete)
    out = tmp_path / "r.h5"
    rc, _, err = run(capsys, "inspect", "--model", fake_model, "--images", folder, "--out", out)
    assert rc == 0, err
    assert "not exported" in err and "1.png" in err
    paths = [Path(r.path).name for r in read_batch(out).records]
    assert paths == ["0.png", "2.png", "3.png"]


def test_image_replaced_during_export_loses_only_itself(tmp_path, folder, fake_model):
    from core.evaluate.inspect import inspect_paths
    from core.io.export import export_batch, read_batch
    from core.io.outputs import export_inspection

    result = inspect_paths(FakeDetector(), sorted(folder.iterdir()))
    cv2.imwrite(str(folder / "2.png"), np.zeros((5, 5), np.uint8))  # another size now
    skipped = []
    out, kept = export_inspection(
        tmp_path / "r.h5",
        result,
        lambda recs: export_batch(
            tmp_path / "r.h5",
            recs,
            thresholds=FakeDetector().thresholds,
            method="fake",
            model_config={},
            checkpoint_sha256="0",
        ),
        on_skip=lambda p, why: skipped.append(Path(p).name),
    )
    assert skipped == ["2.png"] and len(kept.paths) == 3
    assert len(read_batch(out).records) == 3


# --------------------------------------------------------------------- bad numbers
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "d", "--out", "m.pt", "--seed", str(2**64)],
        ["train", "--data", "d", "--out", "m.pt", "--seed", "-1"],
        ["simulate", "--data", "d", "--out", "o", "--count", "1", "--seed", str(2**32)],
        ["train", "--data", "d", "--out", "m.pt", "--minutes", "inf"],
        ["train", "--data", "d", "--out", "m.pt", "--minutes", "nan"],
        ["train", "--data", "d", "--out", "m.pt", "--minutes", "0"],
        ["train", "--data", "d", "--out", "m.pt", "--minutes", "-3"],
        ["inspect", "--model", "m", "--images", "i", "--out", "o.h5", "--threshold", "nan"],
    ],
)
def test_bad_numbers_are_usage_errors(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == cli.EXIT_USAGE
    one_error(1, err)


def test_largest_seed_is_accepted():
    from core.cli.args import MAX_SEED, seed

    assert seed(str(MAX_SEED)) == MAX_SEED == 2**32 - 1


@pytest.mark.parametrize("steps", ["0", "-1"])
def test_demo_refuses_nonpositive_steps(capsys, tmp_path, steps):
    rc, _, err = run(capsys, "demo", "--headless", "--steps", steps, "--out", tmp_path / "d")
    one_error(rc, err, "--steps")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("shape", [(1, 4000), (4000, 1), (20, 20), (40, 2000)])
def test_training_shape_problem(shape):
    from core.data.imagecheck import training_shape_problem

    assert training_shape_problem(shape)
    assert training_shape_problem((40, 48)) is None and training_shape_problem((32, 1024)) is None


def test_train_on_extreme_aspect_ratios_is_one_error(capsys, tmp_path):
    thin = tmp_path / "thin"
    thin.mkdir()
    for i in range(3):
        cv2.imwrite(str(thin / f"{i}.png"), np.full((1, 4000), 100 + i, np.uint8))
    rc, _, err = run(capsys, "train", "--data", thin, "--out", tmp_path / "m.pt", "--steps", "1")
    one_error(rc, err, "none of the 3 images")
    assert err.count("to train on") == 3
    assert not (tmp_path / "m.pt").exists()


# --------------------------------------------------------------------- bad checkpoints
@pytest.fixture(scope="module")
def payload() -> dict:
    """The checkpoint payload of a real (untrained, tiny) DRAEM network."""
    from core.config import ModelConfig
    from core.models.draem.detector import DraemDetector
    from core.models.draem.network import build_model

    cfg = ModelConfig(preset="paper", image_size=(32, 32), recon_width=4, disc_width=4)
    return DraemDetector(build_model(cfg), cfg, device="cpu").payload()


def _tamper(payload: dict, how: str) -> dict:
    import json

    p = dict(payload)
    cfg = json.loads(p["model_config"])
    if how == "huge_width":
        cfg["disc_width"] = 10**6
    elif how == "huge_size":
        cfg["image_size"] = [2**20, 2**20]
    elif how == "width_is_text":
        cfg["disc_width"] = "wide"
    elif how == "config_is_list":
        p["model_config"] = "[1, 2, 3]"
        return p
    elif how == "config_not_json":
        p["model_config"] = "{not json"
        return p
    elif how == "metadata_is_text":
        p["metadata"] = "not a mapping"
        return p
    elif how == "thresholds_wrong":
        p["thresholds"] = json.dumps({"image": "high"})
        return p
    elif how == "no_weights":
        return {k: v for k, v in p.items() if k != "state_dict"}
    elif how == "wrong_weights":
        p["state_dict"] = {k: v[..., :1] if v.ndim else v for k, v in p["state_dict"].items()}
        return p
    p["model_config"] = json.dumps(cfg)
    return p


TAMPER = [
    "huge_width",
    "huge_size",
    "width_is_text",
    "config_is_list",
    "config_not_json",
    "metadata_is_text",
    "thresholds_wrong",
    "no_weights",
    "wrong_weights",
]


def test_intact_payload_loads(tmp_path, payload):
    from core.io.checkpoint import save_checkpoint
    from core.registry import load_detector

    save_checkpoint(tmp_path / "ok.pt", payload)
    assert load_detector(tmp_path / "ok.pt", "cpu").method == "draem"


@pytest.mark.parametrize("how", TAMPER)
def test_damaged_checkpoint_is_a_checkpoint_error(tmp_path, payload, how):
    from core.errors import CheckpointError
    from core.io.checkpoint import save_checkpoint
    from core.registry import load_detector

    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, _tamper(payload, how))
    with pytest.raises(CheckpointError):
        load_detector(bad, "cpu")


def test_absurd_network_is_one_cli_error(capsys, tmp_path, folder, payload):
    from core.io.checkpoint import save_checkpoint

    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, _tamper(payload, "huge_width"))
    out = tmp_path / "r.h5"
    rc, _, err = run(capsys, "inspect", "--model", bad, "--images", folder, "--out", out)
    one_error(rc, err, "disc_width")
    assert not out.exists()


# --------------------------------------------------------------------- console encoding
def test_cjk_file_name_on_a_cp1252_console(tmp_path, folder, fake_model, monkeypatch):
    import io

    from core.io.export import read_batch

    cv2.imencode(".png", np.full((24, 32), 90, np.uint8))[1].tofile(str(folder / "检查图像.png"))
    raw = io.BytesIO()
    console = io.TextIOWrapper(raw, encoding="cp1252", errors="strict", newline="\n")
    monkeypatch.setattr(sys, "stdout", console)
    out = tmp_path / "r.h5"
    rc = cli.main(
        ["inspect", "--model", str(fake_model), "--images", str(folder), "--out", str(out)]
    )
    console.flush()
    assert rc == 0
    assert "5 inspected" in raw.getvalue().decode("cp1252")
    assert any(Path(r.path).name == "检查图像.png" for r in read_batch(out).records)


# --------------------------------------------------------------------- bad ground truth
def _gt_category(root: Path) -> Path:
    """An MVTec category with one good and four defect test images, each with a different
    ground-truth problem (or none)."""
    rng = np.random.default_rng(3)
    for sub in ("train/good", "test/good", "test/spot", "ground_truth/spot"):
        (root / sub).mkdir(parents=True)
    img = lambda: rng.integers(60, 200, (24, 32), np.uint8)  # noqa: E731
    cv2.imwrite(str(root / "train/good/0.png"), img())
    cv2.imwrite(str(root / "test/good/0.png"), img())
    mask = np.zeros((24, 32), np.uint8)
    mask[5:10, 5:10] = 255
    for name in ("ok", "nomask", "small", "dim"):
        cv2.imwrite(str(root / "test/spot" / f"{name}.png"), img())
    gt = root / "ground_truth/spot"
    cv2.imwrite(str(gt / "ok_mask.png"), mask)
    cv2.imwrite(str(gt / "small_mask.png"), mask[:12, :16])
    cv2.imwrite(str(gt / "dim_mask.png"), (mask > 0).astype(np.uint8) * 100)
    return root


@pytest.mark.parametrize(
    "name,kind",
    [("ok", None), ("nomask", "missing"), ("small", "wrong_size"), ("dim", "low_defect_value")],
)
def test_ground_truth_problems_are_named(tmp_path, name, kind):
    from core.data.images import read_mvtec
    from core.evaluate.groundtruth import load_ground_truth

    cat = read_mvtec(_gt_category(tmp_path / "cat"))
    item = next(t for t in cat.test if t.path.stem == name)
    mask, problems = load_ground_truth(item.path, item.mask_path, (24, 32))
    assert [p.kind for p in problems] == ([kind] if kind else [])
    if kind != "missing":
        assert mask.shape == (24, 32) and mask.sum() == (100 if name == "small" else 25)


def test_evaluate_warns_and_counts_bad_ground_truth(capsys, tmp_path, fake_model):
    import json

    root = _gt_category(tmp_path / "cat")
    rc, out, err = run(capsys, "evaluate", "--model", fake_model, "--data", root, "--json")
    assert rc == 0, err
    for name in ("nomask.png", "small_mask.png", "dim_mask.png"):
        assert name in err
    counts = json.loads(out.strip().splitlines()[-1])["ground_truth_problems"]
    assert counts == {
        "missing": 1,
        "unreadable": 0,
        "wrong_size": 1,
        "low_defect_value": 1,
        "empty": 0,
    }


# --------------------------------------------------------------------- signals, full disk
def _tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_first_signal_asks_to_stop_second_aborts(sig):
    import signal

    from core.cli.support import stop_on_ctrl_c

    with stop_on_ctrl_c() as stop:
        os.kill(os.getpid(), getattr(signal, sig))
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), getattr(signal, sig))
    assert signal.getsignal(signal.SIGTERM) is not None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_during_export_cancels_and_keeps_target(
    capsys, tmp_path, folder, fake_model, monkeypatch, sig
):
    import signal

    import core.io.export

    target = own_export(tmp_path / "r.h5")
    before = target.read_bytes()
    real = core.io.export.LazyRecords.__getitem__

    def interrupted(self, i):
        if i == 1:
            os.kill(os.getpid(), getattr(signal, sig))
        return real(self, i)

    monkeypatch.setattr(core.io.export.LazyRecords, "__getitem__", interrupted)
    rc, _, err = run(capsys, "inspect", "--model", fake_model, "--images", folder, "--out", target)
    assert rc == cli.EXIT_CANCELLED, err
    assert "Traceback" not in err
    assert target.read_bytes() == before
    assert _tmp_files(tmp_path) == []


def test_full_disk_during_export_is_one_error(capsys, tmp_path, folder, fake_model, monkeypatch):
    import errno

    import core.io.export

    target = own_export(tmp_path / "r.h5")
    before = target.read_bytes()
    calls = []

    def full(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(core.io.export, "_write_record", full)
    rc, _, err = run(capsys, "inspect", "--model", fake_model, "--images", folder, "--out", target)
    one_error(rc, err, "disk is full")
    assert target.read_bytes() == before
    assert _tmp_files(tmp_path) == []


def test_stale_temp_files_are_removed_by_the_next_export(capsys, tmp_path, folder, fake_model):
    from core.io.files import OLD_FORM_AGE_S

    dead = tmp_path / ".r.h5.4194399-0123456789ab.tmp"  # above Linux's largest pid
    live = tmp_path / f".r.h5.{os.getpid()}-0123456789ab.tmp"
    old = tmp_path / ".r.h5.abcdefabcdef.tmp"
    young = tmp_path / ".x.h5.fedcbafedcba.tmp"
    other = tmp_path / ".notes.txt.4194399-0123456789ab.tmp"
    for p in (dead, live, old, young, other):
        p.write_bytes(b"partial")
    stamp = old.stat().st_mtime - OLD_FORM_AGE_S - 10
    os.utime(old, (stamp, stamp))
    rc, _, err = run(
        capsys, "inspect", "--model", fake_model, "--images", folder, "--out", tmp_path / "r.h5"
    )
    assert rc == 0, err
    assert err.count("left by an interrupted export") == 2
    assert _tmp_files(tmp_path) == sorted([live.name, young.name, other.name])


# --------------------------------------------------------------------- export schema additions
def test_export_explains_values_and_stores_relative_paths(capsys, tmp_path, folder, fake_model):
    import h5py

    (folder / "sub").mkdir()
    cv2.imwrite(str(folder / "sub" / "9.png"), np.full((24, 32), 90, np.uint8))
    out = tmp_path / "r.h5"
    rc, _, err = run(capsys, "inspect", "--model", fake_model, "--images", folder, "--out", out)
    assert rc == 0, err
    with h5py.File(out, "r") as f:
        assert "-1" in f.attrs["label_values"] and "1 = defect" in f.attrs["mask_values"]
        root = f.attrs["source_root"]
        rel = list(f["relative_paths"].asstr()[:])
        given = list(f["paths"].asstr()[:])
        assert f["images/000004"].attrs["relative_path"] == rel[4]
    assert Path(root) == folder.resolve() or Path(root) == folder.absolute()
    assert sorted(rel) == ["0.png", "1.png", "2.png", "3.png", "sub/9.png"]
    for g, r in zip(given, rel, strict=True):
        assert Path(os.path.abspath(g)) == Path(root) / r
