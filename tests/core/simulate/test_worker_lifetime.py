"""Data-loader workers and signals with real ``main.py train`` processes: workers end
when the trainer is killed, Ctrl-C at any moment is a clean exit 130.

Every wait polls a condition (a process count, a line of output) with a generous
bound for a loaded machine; nothing asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import write_images

from core.simulate.dataset import _gone, watch_parent
from core.simulate.server_signals import in_fork_server

ROOT = Path(__file__).resolve().parents[3]
BOUND_S = 180  # the most any wait below may take on a busy machine

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1])


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(int(name))) is not None:
            children.setdefault(st[1], []).append(int(name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _alive(pids: list[int]) -> int:
    """How many of ``pids`` still run (zombies waiting to be reaped have ended)."""
    return sum(1 for p in pids if (st := _stat(p)) is not None and st[0] not in "ZX")


def _until(condition, what: str):
    deadline = time.monotonic() + BOUND_S
    while not (value := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return value


def _start_training(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """``main.py train`` with its default 2 simulator workers, in its own process group
    (as a terminal runs it) with Ctrl-C handled as usual; stderr goes to a file."""
    data = tmp_path / "good"
    write_images(data, n=3, size=(32, 32))
    err = tmp_path / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "main.py"), "train", "--data", str(data),
           "--out", str(tmp_path / "m.pt"), "--steps", "100000", "--device", "cpu"]  # fmt: skip
    with open(err, "w") as f:
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=f, text=True, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    return proc, err


def _sigint(pid: int, field: str) -> bool:
    """Whether SIGINT's bit is set in ``field`` (SigIgn, SigCgt) of /proc/PID/status."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    line = next(ln for ln in status.splitlines() if ln.startswith(f"{field}:"))
    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))


def _fork_server(trainer: int) -> int | None:
    for pid in _descendants(trainer):
        try:
            if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def _workers(trainer: int) -> list[int] | None:
    """Every process under the trainer once the fork server has forked 2 workers."""
    server = _fork_server(trainer)
    if server is None or len(_descendants(server)) < 2:
        return None
    return _descendants(trainer)


def test_workers_end_when_the_trainer_is_killed(tmp_path):
    proc, _ = _start_training(tmp_path)
    try:
        family = _until(lambda: _workers(proc.pid), "the simulator workers")
        assert len(family) >= 3  # fork server + 2 workers (+ resource tracker)
        proc.kill()  # kill -9: nothing in the trainer runs any more
        proc.wait(timeout=BOUND_S)
        _until(lambda: _alive(family) == 0 or None, "the workers to end")
        assert _alive(family) == 0
    finally:
        proc.kill()
        proc.communicate()
        for pid in _descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_while_loading_and_twice_during_training_exit_130(tmp_path):
    proc, err = _start_training(tmp_path)
    try:
        # Ctrl-C at the terminal reaches the whole group, fork server included, while it
        # is still importing torch (this printed its traceback and failed the trainer)
        _until(
            lambda: _fork_server(proc.pid) and not _sigint(proc.pid, "SigIgn"),
            "the fork server (started while the trainer briefly ignores Ctrl-C)",
        )
        os.killpg(proc.pid, signal.SIGINT)
        _until(lambda: "stopping..." in err.read_text(), "the first Ctrl-C to be seen")
        with contextlib.suppress(ProcessLookupError):  # unless it has already stopped
            os.killpg(proc.pid, signal.SIGINT)  # the second one aborts
        stdout, _ = proc.communicate(timeout=BOUND_S)
    finally:
        proc.kill()
    stderr = err.read_text()
    assert proc.returncode == 130, stderr  # an exit code, not killed by the signal (-2)
    assert "Traceback" not in stderr and "EOFError" not in stderr, stderr


def test_ctrl_c_while_python_imports_the_libraries_exits_130(tmp_path):
    proc, err = _start_training(tmp_path)
    try:
        # once main.py runs and the libraries load (NumPy is the first one mapped); a
        # Ctrl-C while the interpreter itself starts (site, .pth files) is Python's own
        def loading() -> bool:
            maps = Path(f"/proc/{proc.pid}/maps").read_text()
            return "numpy" in maps and _sigint(proc.pid, "SigCgt")

        _until(loading, "the libraries to load")
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=BOUND_S)
    finally:
        proc.kill()
    stderr = err.read_text()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr


def test_watch_parent_ends_a_child_when_its_trainer_ends(tmp_path):
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    code = (
        "import sys, time; from core.simulate.dataset import watch_parent; "
        f"print(watch_parent({trainer.pid}), flush=True); time.sleep(600)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        how = child.stdout.readline().strip()
        assert how in ("pidfd", "poll")
        assert child.poll() is None
        trainer.kill()
        trainer.wait()
        assert child.wait(timeout=BOUND_S) == 0
    finally:
        trainer.kill()
        child.kill()
    assert _gone(trainer.pid) and not _gone(os.getpid())
    assert not in_fork_server()  # importing it here changes nothing
    assert callable(watch_parent)


def test_sigterm_stops_training_like_ctrl_c(tmp_path):
    proc, err = _start_training(tmp_path)
    try:
        family = _until(lambda: _workers(proc.pid), "the simulator workers")
        proc.terminate()  # a plain `kill`, a logout, a service stop
        stdout, _ = proc.communicate(timeout=BOUND_S)
    finally:
        proc.kill()
    assert proc.returncode == 130, err.read_text()
    assert "checkpoint written" in stdout and (tmp_path / "m.pt").is_file()
    assert "Traceback" not in err.read_text()
    _until(lambda: _alive(family) == 0 or None, "the workers to end")
