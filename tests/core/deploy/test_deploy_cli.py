"""``export-model`` and ``inspect`` / ``evaluate`` with ``--runtime``."""

from __future__ import annotations

import json

from core.cli.commands import main
from core.demo import demo_root


def test_export_then_inspect_and_evaluate_with_onnxruntime(patchcore_detector, tmp_path, capsys):
    ckpt = tmp_path / "pc.pt"
    sha = patchcore_detector.save(str(ckpt))
    out = tmp_path / "exported"
    assert main(["export-model", "--model", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    assert json.loads((out / "deploy.json").read_text())["checkpoint_sha256"] == sha
    assert main(["export-model", "--model", str(ckpt), "--out", str(out)]) == 1  # exists
    assert "exists" in capsys.readouterr().err
    good = demo_root() / "test" / "good"
    res = tmp_path / "r.h5"
    args = ["inspect", "--model", str(out), "--images", str(good), "--out", str(res)]
    assert main([*args, "--runtime", "onnxruntime"]) == 0
    assert res.is_file()
    from core.io.export import read_batch

    assert read_batch(res).attrs["runtime"] == "onnxruntime"  # what computed the maps
    assert main([*args, "--runtime", "torch", "--force"]) == 1
    assert "exported model" in capsys.readouterr().err
    bad = ["inspect", "--model", str(ckpt), "--images", str(good), "--out", str(res)]
    assert main([*bad, "--runtime", "openvino", "--force"]) == 1
    assert "export-model" in capsys.readouterr().err
    ev = ["evaluate", "--model", str(out), "--runtime", "openvino", "--data", str(demo_root())]
    assert main([*ev, "--json"]) == 0
    assert "image_auroc" in capsys.readouterr().out.strip().splitlines()[-1]
