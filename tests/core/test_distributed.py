"""Data-parallel training: environment detection, and 2 gloo ranks on CPU end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.distributed import SINGLE, agree, backend_for, detect_env, rank_device
from core.errors import ConfigError
from core.io.checkpoint import load_checkpoint
from core.registry import load_detector

ROOT = Path(__file__).resolve().parents[2]

_WORKER = r"""
import json, os, sys
import numpy as np
import torch
torch.set_num_threads(1)
import core.models.draem.train as T
from core.config import ModelConfig, SimulatorConfig, TrainConfig

out, rank = sys.argv[1], os.environ["RANK"]
original = T._thresholds

def spy(model, *args):  # every rank's final weights, before thresholds are set
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.pt")
    return original(model, *args)

T._thresholds = spy
rng = np.random.default_rng(0)
images = [(rng.random((32, 32, 3)) * 80 + 90).astype(np.uint8) for _ in range(4)]
calls = []
result = T.train(
    images,
    model_config=ModelConfig(preset="paper", image_size=(32, 32), recon_width=4, disc_width=4),
    sim_config=SimulatorConfig(image_size=(32, 32)),
    train_config=TrainConfig(steps=3, batch_size=2, num_workers=0, lr=1e-3),
    out_path=f"{out}/m.pt",
    on_progress=calls.append,
)
with open(f"{out}/rank{rank}.json", "w") as f:
    json.dump({"step": result.steps, "status": result.status, "progress": len(calls)}, f)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_detect_env():
    assert detect_env({}) is SINGLE
    assert (SINGLE.world_size, SINGLE.backend, SINGLE.is_main) == (1, "none", True)
    env = detect_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (env.rank, env.world_size, env.local_rank, env.distributed, env.is_main) == (
        1,
        2,
        1,
        True,
        False,
    )
    with pytest.raises(ConfigError, match="RANK"):
        detect_env({"WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="RANK must be"):
        detect_env({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    assert (backend_for("cpu"), backend_for("cuda")) == ("gloo", "nccl")
    assert rank_device(env, "cuda") == "cuda:1" and rank_device(env, "cpu") == "cpu"
    assert rank_device(SINGLE, "cuda") == "cuda"
    assert agree(SINGLE, True, False) == (True, False)


def test_two_gloo_ranks_train_identical_weights(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT),
        }
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env))
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0, 0]

    runs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["step"] for r in runs] == [3, 3]  # global optimizer steps
    assert runs[0]["progress"] >= 1 and runs[1]["progress"] == 0  # rank 0 alone reports
    w0, w1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert w0.keys() == w1.keys()
    assert all(torch.equal(w0[k], w1[k]) for k in w0)

    payload = load_checkpoint(tmp_path / "m.pt")
    meta = payload["metadata"]
    assert (meta["world_size"], meta["backend"], payload["step"]) == (2, "gloo", 3)
    assert all(torch.equal(payload["state_dict"][k], w0[k]) for k in w0)
    det = load_detector(tmp_path / "m.pt", device="cpu")
    img = np.full((32, 32, 3), 120, np.uint8)
    assert len(det.predict([img])) == 1
