"""Files written safely: atomic writes, the stale temporaries a killed process left behind,
digests and timestamps.

Every file this application writes for the user (checkpoints, HDF5 exports, project and
batch files) goes through :func:`atomic_write`: it is written to ``.<name>.<pid>-<random>.tmp`` next to its target and moved
over it when complete.  A hard kill (SIGKILL, power loss) leaves that file behind;
:func:`clean_stale` — called by the next export to the same folder — removes such
files whose writing process no longer runs and returns them so they can be reported.
Files of the older ``.<name>.<random>.tmp`` form carry no process id and are removed
once they are older than :data:`OLD_FORM_AGE_S`.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

#: age after which a temporary file without a process id is taken as stale
OLD_FORM_AGE_S = 24 * 3600

_WITH_PID = re.compile(r"^\..+\.(\d+)-[0-9a-f]{12}\.tmp$")
_OLD_FORM = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def temp_path(target: Path) -> Path:
    """A fresh temporary path next to ``target`` naming this process."""
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep the file
    return True


def clean_stale(
    folder: Path,
    suffix: str = "",
    now: float | None = None,
    *,
    base: re.Pattern[str] | None = None,
) -> list[Path]:
    """Remove stale temporary files in ``folder`` (names ending in ``suffix`` before the
    temporary part, e.g. ``.h5``; with ``base``, names whose part before the temporary
    part fully matches it instead); return the paths removed."""
    removed: list[Path] = []
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.endswith(".tmp") or not entry.is_file(follow_symlinks=False):
            continue
        m = _WITH_PID.match(name)
        if m:
            stale = not _alive(int(m.group(1)))
            stem = name[1 : name.rindex(f".{m.group(1)}-")]
        elif _OLD_FORM.match(name):
            try:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > OLD_FORM_AGE_S
            except OSError:
                continue
            stem = name[1:-17]
        else:
            continue
        if stale and (base.fullmatch(stem) if base else stem.endswith(suffix)):
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed


@contextmanager
def atomic_write(target: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Write ``target`` all at once or not at all.

    Yields a fresh temporary path next to ``target`` (see :func:`temp_path`) for the
    caller to write.  When the block ends normally the file is flushed to disk
    (``durable``), renamed over ``target`` (``os.replace``, atomic on one file system)
    and the rename made durable; when it raises (including ``KeyboardInterrupt``) the
    temporary file is removed and an existing ``target`` is left as it was.  The
    folder is created when missing.  ``durable=False`` skips the fsyncs (caches).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable where the OS allows it (POSIX); best effort elsewhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (read in chunks)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def utc_timestamp() -> str:
    """Now, in UTC, as ISO 8601 to the second (``2026-12-03T23:40:41Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "OLD_FORM_AGE_S",
    "atomic_write",
    "clean_stale",
    "file_sha256",
    "temp_path",
    "utc_timestamp",
]
