"""Command line (core.cli.commands): every command, its --help, and bad input -> one-line error, rc != 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import write_stripes_category

from core.cli import commands as cli
from core.cli.support import stop_on_ctrl_c

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = ["train", "simulate", "inspect", "evaluate", "demo", "gui", "screenshots"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture(scope="module")
def mvtec(tmp_path_factory) -> Path:
    """A tiny MVTec category: 6 good train, 2 good + 2 defective test images with masks."""
    return write_stripes_category(tmp_path_factory.mktemp("mvtec") / "stripes", 6, 2, 20)


@pytest.fixture(scope="module")
def model(mvtec, tmp_path_factory) -> Path:
    """A DRAEM checkpoint trained for 2 steps through the CLI."""
    out = tmp_path_factory.mktemp("model") / "m.pt"
    rc = cli.main(
        ["train", "--data", str(mvtec), "--out", str(out), "--steps", "2", "--device", "cpu"]
    )
    assert rc == 0 and out.is_file()
    return out


# --------------------------------------------------------------------- parser
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: main.py {command}" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    rc, _, err = run(capsys)
    assert rc == 2 and "usage: main.py" in err


def test_bad_arguments_give_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--data", "x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "--out" in err
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", "x", "--out", "y", "--steps", "3", "--minutes", "1"])
    assert "not allowed with" in capsys.readouterr().err


# --------------------------------------------------------------------- train
def test_train_missing_folder(capsys, tmp_path):
    rc, _, err = run(
        capsys, "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m.pt")
    )
    assert_one_line_error(rc, err, "folder not found")


def test_train_empty_folder(capsys, tmp_path):
    rc, _, err = run(capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt"))
    assert_one_line_error(rc, err, "no images found")


def test_train_only_corrupt_files(capsys, tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_text("not a jpeg")
    rc, _, err = run(capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt"))
    assert_one_line_error(rc, err, "could be read")
    assert err.count("warning: skipped") == 2


def test_train_bad_budget(capsys, mvtec, tmp_path):
    rc, _, err = run(
        capsys, "train", "--data", str(mvtec), "--out", str(tmp_path / "m.pt"), "--steps", "0"
    )
    assert_one_line_error(rc, err, "steps")


def test_trained_model_loads(model):
    from core.registry import load_detector

    det = load_detector(str(model))
    assert det.method == "draem"
    assert det.metadata["data_summary"]["n_images"] >= 1


def test_train_score_kernel_is_saved_and_validated(capsys, mvtec, tmp_path):
    from core.registry import load_detector

    out = tmp_path / "k5.pt"
    args = ["train", "--data", str(mvtec), "--out", str(out), "--steps", "1"]
    rc, _, err = run(capsys, *args, "--device", "cpu", "--score-kernel", "5", "--flip-views", "2")
    assert rc == 0, err
    mc = load_detector(str(out)).model_config
    assert (mc.score_kernel, mc.flip_views) == (5, 2)
    rc, _, err = run(capsys, *args, "--score-kernel", "4")
    assert rc != 0 and "score_kernel must be an odd integer" in err


def test_train_patchcore_then_inspect(capsys, mvtec, tmp_path):
    from core.registry import load_detector

    out = tmp_path / "pc.pt"
    rc, stdout, err = run(
        capsys, "train", "--method", "patchcore", "--data", str(mvtec), "--out", str(out)
    )
    assert rc == 0, err
    assert "PatchCore model written" in stdout
    # stripes fill the frame: the data kind proposes DRAEM, and the note says how
    assert "look like a grey surface" in stdout and "add --method draem" in stdout
    det = load_detector(str(out))
    assert det.method == "patchcore"
    rc, stdout, err = run(
        capsys,
        "inspect",
        "--model",
        str(out),
        "--images",
        str(mvtec / "test"),
        "--out",
        str(tmp_path / "r.h5"),
    )
    assert rc == 0, err
    assert "4 inspected" in stdout


def test_train_patchcore_with_a_local_backbone_file(capsys, mvtec, tmp_path):
    """--backbone / --backbone-weights: a torchvision network from a local file; the model
    records the file's digest and refuses a different file later."""
    import torch
    import torchvision

    from core.models.backbone import BackboneWeightsError
    from core.registry import load_detector

    weights = tmp_path / "r18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    out = tmp_path / "pc_r18.pt"
    base = ["train", "--method", "patchcore", "--data", str(mvtec), "--out", str(out)]
    rc, _, err = run(capsys, *base, "--backbone", "torchvision:resnet18")
    assert rc != 0 and "needs a local ImageNet weights file" in err and not out.exists()
    rc, _, err = run(capsys, *base, "--backbone-weights", str(tmp_path / "missing.pth"))
    assert rc != 0 and "backbone weights file not found" in err
    rc, _, err = run(capsys, *base, "--coreset-ratio", "1.5")
    assert rc != 0 and "coreset_ratio must be in (0, 1]" in err
    rc, _, err = run(
        capsys, "train", "--data", str(mvtec), "--out", str(out), "--coreset-ratio", "0.5"
    )
    assert rc != 0 and "only with --method patchcore" in err
    opts = ["--backbone", "torchvision:resnet18", "--backbone-weights", str(weights)]
    rc, stdout, err = run(capsys, *base, *opts, "--coreset-ratio", "0.25")
    assert rc == 0, err
    det = load_detector(str(out))
    assert det.config.backbone == "torchvision:resnet18" and det.config.coreset_ratio == 0.25
    assert det.embedder.dim == 128 + 256  # resnet18 layer2 + layer3 (strides 8 and 16)
    torch.manual_seed(1)  # other weights at the same path: refused, not silently used
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    with pytest.raises(BackboneWeightsError, match="not the file this model was fitted with"):
        load_detector(str(out))


def test_train_flow_with_a_local_backbone_file(capsys, mvtec, tmp_path):
    """--backbone / --backbone-weights work for the flow as for PatchCore."""
    import timm
    import torch

    from core.registry import load_detector

    weights = tmp_path / "r10t.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet10t", pretrained=False).state_dict(), weights)
    out = tmp_path / "flow_r10t.pt"
    base = ["train", "--method", "flow", "--data", str(mvtec), "--out", str(out)]
    small = ["--steps", "2", "--work-area", "64", "--device", "cpu"]
    rc, _, err = run(capsys, *base, *small, "--backbone", "timm:resnet10t")
    assert_one_line_error(rc, err, "needs a local ImageNet weights file")
    assert not out.exists()
    rc, _, err = run(capsys, *base, *small, "--backbone", "caffe:alexnet")
    assert_one_line_error(rc, err, "backbone must be")
    opts = ["--backbone", "timm:resnet10t", "--backbone-weights", str(weights)]
    rc, stdout, err = run(capsys, *base, *small, *opts)
    assert rc == 0, err
    det = load_detector(str(out), "cpu")
    assert det.config.backbone == "timm:resnet10t" and det.config.backbone_weights == str(weights)
    assert det.metadata["backbone_sha256"] and det.features.channels == {8: 128, 16: 256}


def test_train_fits_the_working_area_to_large_good_images(capsys, tmp_path):
    """Unset, the working area keeps large good images at half scale or more, and says so."""
    from core.registry import load_detector

    rng = np.random.default_rng(0)
    good = tmp_path / "long"
    good.mkdir()
    for i in range(3):  # 1024 x 640 (H x W): half of sqrt(h * w) = 405 -> 416 > 256
        cv2.imwrite(str(good / f"g{i}.png"), rng.integers(90, 160, (1024, 640), dtype=np.uint8))
    base = ["train", "--method", "flow", "--data", str(good), "--steps", "1", "--device", "cpu"]
    rc, stdout, err = run(capsys, *base, "--out", str(tmp_path / "auto.pt"))
    assert rc == 0, err
    assert "note: working area 416 px" in stdout and "640 x 1024 px" in stdout
    assert load_detector(str(tmp_path / "auto.pt"), "cpu").config.work_area == 416
    rc, stdout, err = run(capsys, *base, "--out", str(tmp_path / "own.pt"), "--work-area", "256")
    assert rc == 0, err
    assert "note: working area" not in stdout  # the user's area is kept
    assert load_detector(str(tmp_path / "own.pt"), "cpu").config.work_area == 256


# --------------------------------------------------------------------- inspect
def test_inspect_writes_hdf5_and_skips_corrupt(capsys, model, mvtec, tmp_path):
    from core.io.export import read_batch

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nxx")
    out = tmp_path / "res.h5"
    rc, stdout, err = run(
        capsys, "inspect", "--model", str(model), "--images", str(mvtec / "test"), str(broken),
        "--out", str(out), "--threshold", "0.25",
    )  # fmt: skip
    assert rc == 0, err
    assert "warning: skipped" in err and "broken.png" in err
    assert "4 inspected" in stdout and "threshold 0.25" in stdout
    batch = read_batch(out)
    assert len(batch.records) == 4
    assert batch.thresholds.image == 0.25
    assert batch.records[0].anomaly_map.shape == (40, 48)


def test_inspect_foreign_model(capsys, mvtec, tmp_path):
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    rc, _, err = run(
        capsys,
        "inspect",
        "--model",
        str(foreign),
        "--images",
        str(mvtec / "test"),
        "--out",
        str(tmp_path / "r.h5"),
    )
    assert_one_line_error(rc, err)


def test_inspect_bad_paths(capsys, model, tmp_path):
    out = str(tmp_path / "r.h5")
    rc, _, err = run(
        capsys, "inspect", "--model", str(model), "--images", str(tmp_path / "nope"), "--out", out
    )
    assert_one_line_error(rc, err, "not found")
    rc, _, err = run(
        capsys, "inspect", "--model", str(model), "--images", str(tmp_path), "--out", out
    )
    assert_one_line_error(rc, err, "no images")
    rc, _, err = run(
        capsys,
        "inspect",
        "--model",
        str(tmp_path / "x.pt"),
        "--images",
        str(tmp_path),
        "--out",
        out,
    )
    assert_one_line_error(rc, err)


# --------------------------------------------------------------------- evaluate
def test_evaluate_json_last_line(capsys, model, mvtec):
    rc, out, err = run(capsys, "evaluate", "--model", str(model), "--data", str(mvtec), "--json")
    assert rc == 0, err
    last = json.loads(out.strip().splitlines()[-1])
    keys = {
        "image_auroc",
        "pixel_auroc",
        "image_ap",
        "pixel_ap",
        "aupro",
        "f1_max",
        "threshold_f1",
        "seconds_per_image",
    }
    assert keys <= set(last)
    assert 0.0 <= last["image_auroc"] <= 1.0 and 0.0 <= last["pixel_auroc"] <= 1.0
    assert last["seconds_per_image"] > 0
    # one defect type ("spot"): its AUROC against the good images is the overall one
    assert set(last["image_auroc_per_type"]) == {"spot"}
    assert last["image_auroc_per_type"]["spot"] == pytest.approx(last["image_auroc"])
    assert "image AUROC per defect type" in out


def test_evaluate_not_mvtec(capsys, model, tmp_path):
    rc, _, err = run(capsys, "evaluate", "--model", str(model), "--data", str(tmp_path))
    assert_one_line_error(rc, err, "not an MVTec")


def test_evaluate_foreign_model(capsys, mvtec, tmp_path):
    foreign = tmp_path / "f.pt"
    foreign.write_text("hello")
    rc, _, err = run(capsys, "evaluate", "--model", str(foreign), "--data", str(mvtec))
    assert_one_line_error(rc, err)


# --------------------------------------------------------------------- simulate
def test_simulate_writes_deterministic_pngs(capsys, mvtec, tmp_path):
    args = ["simulate", "--data", str(mvtec), "--count", "4", "--seed", "3", "--size", "64"]
    rc, out, err = run(capsys, *args, "--out", str(tmp_path / "a"))
    assert rc == 0, err
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(files) == 12 and files[:3] == [
        "00000_augmented.png",
        "00000_good.png",
        "00000_mask.png",
    ]
    assert run(capsys, *args, "--out", str(tmp_path / "b"))[0] == 0
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    mask = cv2.imread(str(tmp_path / "a" / "00000_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255}


def test_simulate_bad_input(capsys, tmp_path):
    rc, _, err = run(
        capsys, "simulate", "--data", str(tmp_path / "x"), "--out", str(tmp_path), "--count", "2"
    )
    assert_one_line_error(rc, err, "not found")
    rc, _, err = run(
        capsys, "simulate", "--data", str(tmp_path), "--out", str(tmp_path), "--count", "0"
    )
    assert_one_line_error(rc, err, "--count")


# --------------------------------------------------------------------- demo / gui routing
def test_demo_headless(capsys, tmp_path):
    rc, out, err = run(capsys, "demo", "--headless", "--steps", "2", "--out", str(tmp_path))
    assert rc == 0, err
    assert (tmp_path / "demo_model.pt").is_file() and (tmp_path / "demo_results.h5").is_file()
    assert "image_auroc" in out and str(tmp_path / "demo_results.h5") in out
    assert "(compact preset, 2 steps)" in out  # an explicit --steps has no time cap

    from core.io.export import read_batch

    batch = read_batch(tmp_path / "demo_results.h5")
    assert len(batch.records) == 30
    assert sum(r.label == 1 for r in batch.records) == 21


def _fake_app(monkeypatch, module: str, **funcs) -> list:
    calls: list = []
    mod = types.ModuleType(f"app.{module}")
    for name in funcs:
        setattr(mod, name, lambda *a, _n=name, **kw: calls.append((_n, a, kw)) or 0)
    monkeypatch.setitem(sys.modules, f"app.{module}", mod)
    return calls


def run_with_gui(capsys, *argv: str) -> tuple[int, str, str]:
    """The command line as main.py runs it: core's commands plus the app's front end."""
    from app import cli as app_cli

    rc = app_cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_gui_and_demo_route_to_app(capsys, monkeypatch, tmp_path):
    calls = _fake_app(monkeypatch, "main", run_gui=None)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert run_with_gui(capsys, "gui")[0] == 0
    assert run_with_gui(capsys, "gui", str(tmp_path))[0] == 0
    assert run_with_gui(capsys, "demo")[0] == 0
    assert calls == [
        ("run_gui", (), {"project": None}),
        ("run_gui", (), {"project": str(tmp_path)}),
        ("run_gui", (), {"demo": True}),
    ]
    rc, _, err = run_with_gui(capsys, "gui", str(tmp_path / "missing.json"))
    assert_one_line_error(rc, err, "not found")
    rc, _, err = run(capsys, "gui")  # core alone has no front end: a clear error
    assert_one_line_error(rc, err, "GUI is not available")


def test_screenshots_routes_to_app(capsys, monkeypatch, tmp_path):
    calls = _fake_app(monkeypatch, "_qt.screenshots", main=None)
    assert run_with_gui(capsys, "screenshots", "--out", str(tmp_path))[0] == 0
    assert calls == [("main", (str(tmp_path),), {})]


def test_missing_gui_module_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "app._qt.screenshots", None)  # import raises ImportError
    rc, _, err = run_with_gui(capsys, "screenshots", "--out", "x")
    assert_one_line_error(rc, err, "GUI is not available")


def test_no_display_detection(monkeypatch):
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert not cli.has_display()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert cli.has_display()


# --------------------------------------------------------------------- Ctrl-C
def test_first_ctrl_c_sets_event_second_aborts():
    before = signal.getsignal(signal.SIGINT)
    with stop_on_ctrl_c() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_training_leaves_loadable_checkpoint(mvtec, tmp_path):
    out = tmp_path / "m.pt"
    cmd = [sys.executable, str(ROOT / "main.py"), "train", "--data", str(mvtec), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--minutes", "5", "--device", "cpu"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while (
            "training DRAEM" not in (line := proc.stdout.readline()) and time.monotonic() < deadline
        ):
            assert line or proc.poll() is None, proc.stderr.read()
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "cancelled" in stdout and "--resume" in stdout

    from core.registry import load_detector

    assert load_detector(str(out)).method == "draem"
