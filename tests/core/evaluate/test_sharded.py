"""Sharded inspection (``inspect`` under torchrun): shares, shard files, merge, and 2 gloo
ranks against one process end to end."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from fakes import write_images

from core.cli import commands as cli
from core.cli.ranks import ErrorsOnly, quiet_other_ranks, rank_and_world
from core.distributed import SINGLE, gather_plain
from core.evaluate import sharded as S
from core.types import FailedImage, InspectionResult, Prediction

ROOT = Path(__file__).resolve().parents[3]


# ------------------------------------------------------------------ pieces, in-process
def test_shares_cover_every_input_once():
    shares = [S.share(7, r, 3) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    assert S.share(1, 1, 2) == []
    with pytest.raises(ValueError):
        S.share(4, 2, 2)


def _result(paths, failed=()):
    preds = [
        Prediction(np.full((2, 3), i, np.float32), float(i), np.full((2, 3, 3), i, np.uint8))
        for i, _ in enumerate(paths)
    ]
    return InspectionResult(
        tuple(paths), tuple(preds), tuple(FailedImage(p, "bad") for p in failed)
    )


def test_shards_merge_in_input_order(tmp_path):
    target = tmp_path / "r.h5"
    files = [f"/d/{k}.png" for k in range(5)]
    mine0 = [files[i] for i in S.share(5, 0, 2)]  # 0, 2, 4
    mine1 = [files[i] for i in S.share(5, 1, 2)]  # 1, 3
    out0 = S.write_shard(target, 0, [0, 2, 4], mine0, _result([files[0], files[4]], [files[2]]))
    out1 = S.write_shard(target, 1, [1, 3], mine1, _result([files[1], files[3]]))
    outcomes = [S.RankOutcome.from_plain(o.to_plain()) for o in (out0, out1)]  # as exchanged
    assert outcomes[0].items == ((0, files[0], 0.0), (4, files[4], 1.0))
    assert outcomes[0].failures == ((2, files[2], "bad"),)
    with S.ShardSet.open(outcomes) as shards:
        merged = shards.merged()
        assert merged.paths == (files[0], files[1], files[3], files[4])
        assert [p.score for p in merged.predictions] == [0.0, 0.0, 1.0, 1.0]
        assert merged.predictions[3].anomaly_map.tolist() == [[1.0] * 3] * 2
        assert merged.predictions[2].reconstruction.dtype == np.uint8
        assert [f.path for f in merged.failures] == [files[2]]
    S.remove_shards(outcomes)
    assert list(tmp_path.iterdir()) == []
    assert S.first_problem(outcomes) is None
    bad = [outcomes[0], S.RankOutcome(1, S.FAILED, "boom")]
    assert S.first_problem(bad).message == "boom"


DEAD_PID = 4194399  # above Linux's largest pid: a process that no longer runs


def _stale_shard(target: Path, rank: int, pid: int = DEAD_PID) -> Path:
    """A shard of ``target`` as a killed run leaves it: complete, but its writer is gone
    (scores 99, so a merge that took it in would show)."""
    bogus = InspectionResult(("/x/0.png",), (Prediction(np.full((2, 3), 99, np.float32), 99.0),))
    written = Path(S.write_shard(target, rank, [0], ["/x/0.png"], bogus).shard)
    return written.rename(written.with_name(f".{target.name}.rank{rank}.{pid}-0123456789ab.tmp"))


def test_stale_shards_of_killed_runs_are_removed_and_never_merged(tmp_path):
    target = tmp_path / "r.h5"
    stale = [_stale_shard(target, r) for r in (0, 1, 3)]  # rank 3: a run of more ranks
    live = _stale_shard(target, 1, pid=os.getpid())  # a process that still runs
    other = _stale_shard(tmp_path / "xr.h5", 1)  # another target's
    files = [f"/d/{k}.png" for k in range(3)]

    def inspect(paths):
        return _result(paths)

    outcomes = [S.inspect_share(inspect, files, target, r, 2) for r in (0, 1)]
    assert [p.exists() for p in stale] == [False, False, True]  # each rank: its own
    with S.ShardSet.open(outcomes) as shards:
        merged = shards.merged()
        assert merged.paths == tuple(files)
        assert [p.score for p in merged.predictions] == [0.0, 0.0, 1.0]
    S.remove_shards(outcomes)
    assert S.clean_stale_shards(target) == [stale[2]]  # rank 0 at the end: every rank's
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


def test_a_missing_shard_is_a_clear_error(tmp_path):
    gone = S.RankOutcome(1, S.OK, shard=str(tmp_path / "elsewhere.tmp"))
    with pytest.raises(S.ShardError, match="rank 1's results are not visible here"):
        S.ShardSet.open([gone])


def test_other_ranks_print_errors_only(monkeypatch):
    sink = io.StringIO()
    stream = ErrorsOnly(sink, 3)
    stream.write("training 10 images\nwarning: skipped x\n\rtraining:  5%\rerror: disk")
    stream.write(" full\nTraceback (most recent call last):\n  File x\n")
    assert sink.getvalue().splitlines() == [
        "[rank 3] error: disk full",
        "[rank 3] Traceback (most recent call last):",
        "[rank 3]   File x",
    ]
    assert rank_and_world({}) == (0, 1) and rank_and_world({"RANK": "x"}) == (0, 1)
    assert not quiet_other_ranks({"RANK": "0", "WORLD_SIZE": "2"})
    assert gather_plain(SINGLE, {"a": 1}) == [{"a": 1}]


# ------------------------------------------------------------------ 2 gloo ranks, end to end
@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> dict:
    """A PatchCore model fitted on tiny images, 7 test images and one unreadable file."""
    root = tmp_path_factory.mktemp("sharded")
    write_images(root / "good", n=4, size=(32, 32), seed=1)
    write_images(root / "test", n=7, size=(32, 40), spots=(2, 5), seed=2)
    (root / "test" / "img_03_bad.png").write_bytes(b"not an image")
    model = root / "pc.pt"
    rc = cli.main(["train", "--method", "patchcore", "--data", str(root / "good"), "--out", str(model)])  # fmt: skip
    assert rc == 0
    single = root / "single.h5"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank below: the same float reductions
    try:
        rc = cli.main(["inspect", "--model", str(model), "--images", str(root / "test"), "--out", str(single)])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    return {"root": root, "model": model, "single": single}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}
    env.pop("QT_QPA_PLATFORM", None)
    return env


def _contents(path: Path) -> dict:
    """Every dataset and attribute of an HDF5 file, by name."""
    out: dict = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            out.update({f"{name}@{k}": v for k, v in obj.attrs.items()})
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]

        visit("/", f)
        f.visititems(visit)
    return out


@pytest.mark.slow
def test_two_ranks_export_the_same_file_as_one_process(batch, tmp_path):
    out = tmp_path / "multi.h5"
    stale = [_stale_shard(out, r) for r in (1, 3)]  # left by killed runs: never merged
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "main.py"), "inspect", "--model", str(batch["model"]),
           "--images", str(batch["root"] / "test"), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("7 inspected: 5 OK, 2 NG") == 1  # rank 0 alone prints
    assert proc.stderr.count("skipped") == 1 and "img_03_bad.png" in proc.stderr
    one, two = _contents(batch["single"]), _contents(out)
    assert (one["/@world_size"], two["/@world_size"]) == (1, 2)
    assert one.keys() == two.keys()
    differ = [k for k in one if not np.array_equal(np.asarray(one[k]), np.asarray(two[k]))]
    assert differ == ["/@created", "/@world_size"]  # same scores, maps, order, paths
    assert [p.name for p in tmp_path.iterdir()] == ["multi.h5"]  # no shard left
    assert f"warning: removed {stale[1]}, left by an interrupted inspection" in proc.stderr


@pytest.mark.slow
def test_a_failing_rank_fails_the_run_and_writes_nothing(batch, tmp_path):
    out = tmp_path / "r.h5"
    shutil.copy(batch["single"], out)  # an earlier export at the target
    before = out.read_bytes()
    port = str(_free_port())
    procs = []
    for rank, model in enumerate([batch["model"], tmp_path / "missing.pt"]):
        env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=port)  # fmt: skip
        cmd = [sys.executable, str(ROOT / "main.py"), "inspect", "--model", str(model),
               "--images", str(batch["root"] / "test"), "--out", str(out)]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [1, 1]
    (out0, err0), (out1, err1) = results
    assert "error: inspection failed on rank 1 of 2: model file not found" in err0, err0
    assert f"nothing was written to {out}" in err0 and "Traceback" not in err0
    assert err1.strip().startswith("[rank 1] error: model file not found"), err1
    assert out1 == "" and "inspected" not in out0
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.h5"]  # no shard, no temporary file


#: torchrun's entry point for the test below: rank 1 writes its shard, waits until rank 0
#: has written its own (rank 0 then waits at the exchange) and SIGKILLs itself
_KILLED_RANK = """
import os, signal, sys, time
from pathlib import Path
if os.environ["RANK"] == "1":
    from core.evaluate import sharded as S
    write = S.write_shard
    def write_then_die(target, *args, **kwargs):
        write(target, *args, **kwargs)
        for _ in range(600):
            if any(Path(target).parent.glob(f".{Path(target).name}.rank0.*.tmp")):
                break
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    S.write_shard = write_then_die
from app.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_and_leaves_the_target_alone(batch, tmp_path):
    out = tmp_path / "r.h5"
    shutil.copy(batch["single"], out)  # an earlier export at the target
    before = out.read_bytes()
    entry = tmp_path.parent / f"{tmp_path.name}_killed_rank.py"
    entry.write_text(_KILLED_RANK, encoding="utf-8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(entry), "inspect", "--model", str(batch["model"]),
           "--images", str(batch["root"] / "test"), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    err = proc.stderr
    assert "error: inspection failed: the exchange of results broke on rank 0 of 2" in err, err
    assert f"nothing was written to {out}" in err
    assert "[rank0]:" not in err  # no traceback of rank 0 (torch prefixes it so)
    assert "Signal 9 (SIGKILL)" in err  # torchrun names the killed rank
    assert "inspected" not in proc.stdout
    assert out.read_bytes() == before
    left = sorted(p.name for p in tmp_path.iterdir() if p != out)
    assert all(n.startswith(".r.h5.rank1.") for n in left), left  # rank 0 removed its shard
