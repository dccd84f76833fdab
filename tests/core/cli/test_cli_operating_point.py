"""What train, evaluate and demo tell the user about budgets, thresholds and verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import write_stripes_category

from core.cli import commands as cli
from core.cli import training_report
from core.types import TrainProgress, TrainResult


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def mvtec(tmp_path_factory) -> Path:
    """A tiny MVTec category: 10 good train images (one is held out), 2 good + 3 defective test."""
    return write_stripes_category(tmp_path_factory.mktemp("mvtec") / "stripes", 10, 3, 15)


@pytest.fixture(scope="module")
def trained(mvtec, tmp_path_factory) -> tuple[Path, str]:
    """A compact DRAEM checkpoint from ``train --minutes`` with a tiny time budget, and
    what ``train`` printed."""
    out = tmp_path_factory.mktemp("model") / "m.pt"
    capture = tmp_path_factory.mktemp("log") / "out.txt"
    import contextlib

    with open(capture, "w") as f, contextlib.redirect_stdout(f):
        rc = cli.main(
            [
                "train",
                "--data",
                str(mvtec),
                "--out",
                str(out),
                "--minutes",
                "0.01",
                "--device",
                "cpu",
            ]
        )
    assert rc == 0 and out.is_file()
    return out, capture.read_text()


# --------------------------------------------------------------------- train
def test_train_help_states_every_methods_default_budget(capsys):
    from core.registry import get_method, method_names

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default budget:" in text
    for name in method_names():
        assert f"{name}:" in text
        spec = get_method(name)
        if spec.trains:
            budget = spec.default_budget(spec.default_config("cpu"))
            assert training_report.describe_budget(budget) in text


def test_train_says_the_time_budget_ended_it_and_prints_the_threshold(trained):
    from core.registry import load_detector

    path, out = trained
    assert "training stopped by its time budget (0.01 min)" in out
    thr = load_detector(str(path)).thresholds
    assert f"image threshold {thr.image:.4g} stored" in out
    assert "good-max-plus-spread" in thr.source  # calibrated on the held-out image


def test_train_loss_summary_shows_only_the_models_terms(trained):
    _, out = trained
    (line,) = [ln for ln in out.splitlines() if ln.startswith("finished:")]
    assert "focal=" in line and "bce=" in line and "total=" in line
    assert "l2=" not in line and "ssim=" not in line  # the compact loss has neither


@pytest.mark.parametrize(
    ("budget", "steps", "expected"),
    [
        (
            {"steps": 300, "minutes": 1.5},
            68,
            "training stopped at 68 of 300 steps: time cap 1.5 min",
        ),
        ({"steps": 300, "minutes": 1.5}, 300, ""),
        ({"steps": 300}, 68, ""),
        ({"epochs": 700}, 10, ""),
        ({"minutes": 30.0}, 512, "training stopped by its time budget (30 min) after 512 steps"),
    ],
)
def test_budget_note(budget, steps, expected):
    assert training_report.budget_note(budget, steps) == expected


def _progress(step: int, elapsed: float) -> TrainProgress:
    return TrainProgress(step, None, 0.1, elapsed, None, 1e-4, {"total": 0.25}, 4.0)


def test_time_budget_bar_shows_elapsed_and_remaining_time(capsys):
    text = training_report.train_status(_progress(3, 15.0), {"minutes": 30.0})
    assert text.startswith("0:15 of 30:00, 29:45 left")
    assert "step 3" in text and "loss 0.2500" in text
    with training_report.train_bar({"minutes": 30.0}) as on_progress:
        on_progress(_progress(3, 15.0))
    err = capsys.readouterr().err
    assert "29:45 left" in err
    assert "/1800" not in err and "2:35:21" not in err  # no step count, no extrapolated ETA


def test_step_budget_bar_counts_steps():
    text = training_report.train_status(_progress(3, 15.0), {"steps": 300})
    assert text.startswith("step 3") and "left" not in text


def test_train_result_prints_only_given_terms_in_order(capsys):
    result = TrainResult("m.pt", "finished", 10, 5.0, {"nll_normal": 1.5, "total": 1.5})
    from core.config import Thresholds

    assert training_report.train_result(result, {"steps": 10}, Thresholds(0.3, 0.3, "rule")) == 0
    out = capsys.readouterr().out
    assert "(nll_normal=1.5000 total=1.5000)" in out
    assert "image threshold 0.3 stored (rule)" in out
    assert "stopped" not in out


# --------------------------------------------------------------------- evaluate
def test_evaluate_reports_false_alarms_and_escapes_at_the_stored_threshold(capsys, trained, mvtec):
    from core.registry import load_detector

    path, _ = trained
    rc, out, err = run(capsys, "evaluate", "--model", str(path), "--data", str(mvtec), "--json")
    assert rc == 0, err
    op = json.loads(out.strip().splitlines()[-1])["operating_point"]
    assert op["threshold"] == pytest.approx(load_detector(str(path)).thresholds.image)
    assert (op["n_good"], op["n_defective"]) == (2, 3)
    assert 0 <= op["false_alarms"] <= 2 and 0 <= op["escapes"] <= 3
    assert op["per_type"]["good"]["n"] == 2 and "false_alarms" in op["per_type"]["good"]
    assert op["per_type"]["spot"]["n"] == 3 and "escapes" in op["per_type"]["spot"]
    assert "good-max-plus-spread" in op["threshold_source"]
    assert "at the model's image threshold" in out and "escapes (defective -> OK)" in out


@pytest.mark.parametrize(("threshold", "false_alarms", "escapes"), [("1e9", 0, 3), ("-1e9", 2, 0)])
def test_evaluate_at_a_given_threshold(capsys, trained, mvtec, threshold, false_alarms, escapes):
    path, _ = trained
    argv = ["evaluate", "--model", str(path), "--data", str(mvtec), "--json"]
    rc, out, err = run(capsys, *argv, f"--threshold={threshold}")
    assert rc == 0, err
    op = json.loads(out.strip().splitlines()[-1])["operating_point"]
    assert (op["false_alarms"], op["escapes"]) == (false_alarms, escapes)
    assert op["per_type"]["spot"]["rate"] == escapes / 3
    assert op["threshold_source"] == "command line"
    assert "at the given image threshold" in out


# --------------------------------------------------------------------- demo
def _fake_demo(tmp_path: Path, trained_steps: int, minutes: float | None):
    from core.demo import DemoResult
    from core.evaluate.metrics import Evaluation
    from core.evaluate.operating_point import operating_point

    labels = [0, 0, 0, 1, 1]
    op = operating_point(labels, [0.1, 0.2, 0.9, 0.8, 0.3], 0.5, ["good"] * 3 + ["crack"] * 2)
    ev = Evaluation(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 5, 2, 5)
    result = TrainResult(str(tmp_path / "m.pt"), "finished", trained_steps, 90.0, {})
    return DemoResult(
        str(tmp_path / "m.pt"), str(tmp_path / "r.h5"), result, ev, 0.1, 0, op, 300, minutes
    )


@pytest.mark.parametrize(("trained_steps", "cut"), [(68, True), (300, False)])
def test_demo_ends_with_pass_fail_counts_and_says_when_the_time_cap_cut_training(
    capsys, monkeypatch, tmp_path, trained_steps, cut
):
    import core.demo

    monkeypatch.setattr(
        core.demo, "run_demo", lambda *a, **kw: _fake_demo(tmp_path, trained_steps, 1.5)
    )
    rc, out, err = run(capsys, "demo", "--headless", "--out", str(tmp_path))
    assert rc == 0, err
    assert ("training stopped at 68 of 300 steps: time cap 1.5 min" in out) is cut
    last = out.strip().splitlines()[-1]
    assert last == (
        "at the stored threshold 0.5: good images 2 of 3 pass, defective images 1 of 2 fail"
    )
    assert "false alarms (good -> NG)" in out
