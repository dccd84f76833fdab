"""Runtime listing for a GUI, and reduced precisions refused unless measured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.deploy import choices
from core.deploy.choices import available_runtimes, check_precision, parse_runtime
from core.errors import ExportError

ROOT = Path(__file__).resolve().parents[3]


def test_available_runtimes_lists_every_runtime_with_install_state():
    rts = {r.name: r for r in available_runtimes()}
    assert list(rts) == ["torch", "onnxruntime", "openvino"]
    assert rts["torch"].reads == "checkpoint" and rts["openvino"].reads == "export"
    for r in rts.values():
        assert r.label and "fp32" in r.precisions
        assert r.installed == (r.install_hint == "")


def test_missing_runtime_package_comes_with_the_install_hint(monkeypatch):
    real = choices.importlib.util.find_spec
    monkeypatch.setattr(
        choices.importlib.util,
        "find_spec",
        lambda name: None if name == "openvino" else real(name),
    )
    ov = {r.name: r for r in available_runtimes()}["openvino"]
    assert not ov.installed and ov.install_hint == choices.INSTALL_HINT


def test_listing_runtimes_imports_neither_torch_nor_the_runtimes():
    code = (
        "import sys\nfrom core.deploy.choices import available_runtimes\navailable_runtimes()\n"
        "print(sorted(m for m in ('torch', 'onnxruntime', 'openvino', 'PySide6') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_parse_runtime():
    assert parse_runtime("openvino:bf16") == ("openvino", "bf16")
    assert parse_runtime("auto") == ("auto", "fp32")
    with pytest.raises(ValueError, match="unknown runtime"):
        parse_runtime("tensorrt")
    with pytest.raises(ValueError, match="unknown precision"):
        parse_runtime("openvino:fp8")


def test_unmeasured_or_harmful_precisions_are_refused(monkeypatch):
    check_precision("draem", "paper", "openvino", "fp32")  # fp32 is always allowed
    with pytest.raises(ExportError, match="does not run"):
        check_precision("draem", "compact", "onnxruntime", "bf16")
    monkeypatch.setattr(choices, "MEASURED", {})
    with pytest.raises(ExportError, match="not measured"):
        check_precision("draem", "compact", "openvino", "bf16")
    key = ("patchcore", "efficientnet_lite0", "onnxruntime", "int8")
    monkeypatch.setattr(choices, "MEASURED", {key: (0.001, 0.02)})
    with pytest.raises(ExportError, match="changed image / pixel AUROC"):
        check_precision(*key)
    monkeypatch.setattr(choices, "MEASURED", {key: (0.001, 0.002)})
    check_precision(*key)
    assert choices.measured_precisions(*key[:3]) == ["int8"]


def test_cli_refuses_an_unmeasured_precision(patchcore_detector, tmp_path, capsys, monkeypatch):
    from core.cli.commands import main
    from core.demo import demo_root

    monkeypatch.setattr(choices, "MEASURED", {})
    ckpt = tmp_path / "pc.pt"
    patchcore_detector.save(str(ckpt))
    out = tmp_path / "exp"
    args = ["export-model", "--model", str(ckpt), "--out", str(out), "--precision", "int8"]
    assert main(args) == 1
    assert "not measured" in capsys.readouterr().err and not out.exists()
    assert main(["export-model", "--model", str(ckpt), "--out", str(out)]) == 0
    ev = ["evaluate", "--model", str(out), "--data", str(demo_root()), "--json"]
    assert main([*ev, "--runtime", "openvino:bf16"]) == 1
    assert "not measured" in capsys.readouterr().err
    assert main([*ev, "--runtime", "onnxruntime:fp16"]) == 1
    assert "does not run fp16" in capsys.readouterr().err
