"""Device and precision policy: decisions with CUDA faked, cuDNN scope, CLI error, checkpoints."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from core.cli.commands import main
from core.config import ModelConfig, SimulatorConfig, TrainConfig
from core.device import policy
from core.errors import ConfigError
from core.io.checkpoint import load_checkpoint, save_checkpoint
from core.models.draem.train import train
from core.registry import load_detector


def _fake_cuda(monkeypatch, *, available=True, bf16=True, count=1):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_cpu_policy_is_float32_channels_last():
    p = policy("cpu")
    assert (p.device, p.kind, p.amp_dtype, p.precision) == ("cpu", "cpu", None, "fp32")
    assert not p.grad_scaling and not p.cudnn_benchmark
    assert p.channels_last and p.memory_format() == torch.channels_last
    assert not p.grad_scaler().is_enabled()


def test_cuda_with_bf16_uses_bf16_without_scaler(monkeypatch):
    _fake_cuda(monkeypatch, bf16=True)
    p = policy("auto")
    assert (p.device, p.kind, p.amp_dtype, p.precision) == ("cuda", "cuda", torch.bfloat16, "bf16")
    assert not p.grad_scaling and p.cudnn_benchmark


def test_cuda_without_bf16_uses_fp16_with_scaler(monkeypatch):
    _fake_cuda(monkeypatch, bf16=False, count=2)
    p = policy("cuda:1")
    assert (p.device, p.amp_dtype, p.precision, p.grad_scaling) == (
        "cuda:1",
        torch.float16,
        "fp16",
        True,
    )


def test_amp_off_and_missing_devices(monkeypatch):
    _fake_cuda(monkeypatch, count=1)
    assert policy("cuda", amp=False).amp_dtype is None
    with pytest.raises(ConfigError, match="only 1 CUDA GPU"):
        policy("cuda:1")
    with pytest.raises(ConfigError, match="auto\\|cpu\\|cuda"):
        policy("tpu")
    _fake_cuda(monkeypatch, available=False)
    assert policy("auto").device == "cpu"
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        policy("cuda")


def test_policy_moves_only_within_its_kind(monkeypatch):
    _fake_cuda(monkeypatch, count=2)
    assert policy("cuda").on("cuda:1").device == "cuda:1"
    with pytest.raises(ConfigError):
        policy("cpu").on("cuda:0")


@pytest.mark.parametrize("before", [True, False])
def test_scope_restores_cudnn_benchmark(monkeypatch, before):
    _fake_cuda(monkeypatch)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", before)
    for p in (policy("cuda"), policy("cpu")):
        with p.scope():
            assert torch.backends.cudnn.benchmark is p.cudnn_benchmark
        assert torch.backends.cudnn.benchmark is before
    with pytest.raises(RuntimeError), policy("cuda").scope():
        raise RuntimeError("boom")
    assert torch.backends.cudnn.benchmark is before


def test_cli_cuda_without_gpu_is_one_line_error(monkeypatch, tmp_path, capsys):
    _fake_cuda(monkeypatch, available=False)
    (tmp_path / "good").mkdir()
    img = np.full((32, 32, 3), 128, np.uint8)
    assert cv2.imwrite(str(tmp_path / "good" / "a.png"), img)
    argv = ["train", "--data", str(tmp_path / "good"), "--out", str(tmp_path / "m.pt")]
    assert main([*argv, "--device", "cuda"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no CUDA GPU" in err[0]
    assert not (tmp_path / "m.pt").exists()


def test_checkpoint_from_a_gpu_tagged_run_loads_on_cpu(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = [(rng.random((32, 32, 3)) * 80 + 90).astype(np.uint8) for _ in range(4)]
    out = tmp_path / "m.pt"
    train(
        images,
        model_config=ModelConfig(preset="paper", image_size=(32, 32), recon_width=4, disc_width=4),
        sim_config=SimulatorConfig(image_size=(32, 32)),
        train_config=TrainConfig(steps=2, batch_size=2, num_workers=0),
        out_path=out,
    )
    payload = load_checkpoint(out)
    meta = payload["metadata"]
    assert (meta["device"], meta["precision"], meta["world_size"], meta["backend"]) == (
        "cpu",
        "fp32",
        1,
        "none",
    )
    # as a 2-GPU bf16 run on cuda:1 would have written it (tensors always stored on CPU)
    payload["metadata"] = {**meta, "device": "cuda:1", "precision": "bf16", "world_size": 2}
    payload["metadata"]["backend"] = "nccl"
    save_checkpoint(out, payload)
    det = load_detector(out, device="cpu")
    assert all(p.device.type == "cpu" for p in det.model.parameters())
    assert len(det.predict(images[:1])) == 1


def test_devices_are_described_by_name_and_memory(monkeypatch):
    from types import SimpleNamespace

    from core.device import available_devices, describe_device

    _fake_cuda(monkeypatch, count=2)
    gpus = {0: ("NVIDIA H200", 150_000_000_000), 1: ("NVIDIA L4", 24 * 2**30)}
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda i: SimpleNamespace(name=gpus[i][0], total_memory=gpus[i][1]),
    )
    found = available_devices()
    assert [d.device for d in found] == ["cpu", "cuda:0", "cuda:1"]
    assert found[2].describe() == "NVIDIA L4, 24.0 GiB"
    assert describe_device("auto", found) == "NVIDIA H200, 139.7 GiB (+1 more)"
    assert describe_device("cuda:1", found) == "NVIDIA L4, 24.0 GiB"
    assert describe_device("cpu", found).startswith("CPU, ")
    assert describe_device("cuda:7", found) == "not present"

    from app.components.training import device_labels

    labels = device_labels({"cpu": True, "cuda": True})
    assert labels["auto"] == labels["cuda"] == "NVIDIA H200, 139.7 GiB (+1 more)"
    _fake_cuda(monkeypatch, available=False)
    assert [d.kind for d in available_devices()] == ["cpu"]
    assert describe_device("auto") == describe_device("cpu")
    labels = device_labels({"cpu": True, "cuda": False})
    assert labels["cuda"] == "not present" and labels["auto"] == labels["cpu"]


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0"])
def test_cli_device_option_is_checked_where_it_is_parsed(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "d", "--out", "m.pt", "--device", bad])
    assert exc.value.code == 2
    assert "must be auto, cpu, cuda or cuda:N" in capsys.readouterr().err


def test_cli_cuda_index_without_gpu_is_one_line_error(monkeypatch, tmp_path, capsys):
    _fake_cuda(monkeypatch, available=False)
    cv2.imwrite(str(tmp_path / "a.png"), np.full((32, 32, 3), 100, np.uint8))
    rc = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--device", "cuda:1"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert (
        err.strip().splitlines()[-1].startswith("error: device 'cuda:1' was requested but no CUDA")
    )


def test_a_fixed_gpu_index_under_torchrun_is_refused():
    from core.distributed import DistEnv, rank_device

    env = DistEnv(rank=1, world_size=2, local_rank=1)
    assert rank_device(env, "cuda") == "cuda:1" and rank_device(env, "cuda:1") == "cuda:1"
    with pytest.raises(ConfigError, match="pass --device cuda"):
        rank_device(env, "cuda:0")
