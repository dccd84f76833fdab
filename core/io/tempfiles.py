"""Temporary files of atomic writes, and the stale ones a killed process left behind.

An export is written to ``.<name>.<pid>-<random>.tmp`` next to its target and moved
over it when complete.  A hard kill (SIGKILL, power loss) leaves that file behind;
:func:`clean_stale` — called by the next export to the same folder — removes such
files whose writing process no longer runs and returns them so they can be reported.
Files of the older ``.<name>.<random>.tmp`` form carry no process id and are removed
once they are older than :data:`OLD_FORM_AGE_S`.
"""

from __future__ import annotations

import os
import re
import time
import uuid
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


def clean_stale(folder: Path, suffix: str = "", now: float | None = None) -> list[Path]:
    """Remove stale temporary files in ``folder`` (names ending in ``suffix`` before the
    temporary part, e.g. ``.h5``); return the paths removed."""
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
            base = name[1 : name.rindex(f".{m.group(1)}-")]
        elif _OLD_FORM.match(name):
            try:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > OLD_FORM_AGE_S
            except OSError:
                continue
            base = name[1:-17]
        else:
            continue
        if stale and base.endswith(suffix):
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed


__all__ = ["OLD_FORM_AGE_S", "clean_stale", "temp_path"]
