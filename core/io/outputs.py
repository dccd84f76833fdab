"""Output-path safety for the command line: nothing the user did not ask to lose is lost.

:func:`check_output_file` is called for every file a command will write, *before* any
long work starts.  An output path is refused (:class:`OutputPathError`) when

* it names one of the command's inputs (an image being inspected, the model, a training
  image) — even with ``force``: the write would destroy what is being read;
* it is a special file (``/dev/null``, a FIFO, a device, a socket) or a folder;
* its folder does not exist (and cannot be created, where creating is allowed) or is not
  writable;
* it is an existing file that is not one of this application's own outputs of that
  kind (an HDF5 export with the export ``format`` marker, a checkpoint with the
  checkpoint ``FORMAT`` marker), unless ``force`` is given.

:func:`check_output_folder` does the same for folders that receive several files.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from core.errors import CoreError
from core.types import InspectionResult

#: kinds of output file and the marker that makes an existing file replaceable
EXPORT, CHECKPOINT = "export", "checkpoint"


class OutputPathError(CoreError):
    """An output path that must not be written (one line, names the path)."""


def _key(path: Path) -> tuple[int, int] | Path | None:
    """An identity for ``path``: (device, inode) when it exists, else its resolved path."""
    try:
        st = os.stat(path)
    except OSError:
        try:
            return path.resolve()
        except (OSError, RuntimeError):
            return None
    return (st.st_dev, st.st_ino)


def is_own_export(path: str | os.PathLike) -> bool:
    """True if ``path`` is an HDF5 file carrying this application's export marker."""
    from core.io.export import FORMAT

    try:
        import h5py

        with h5py.File(path, "r") as f:
            value = f.attrs.get("format")
    except Exception:  # noqa: BLE001 - anything unreadable is foreign
        return False
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value == FORMAT


def is_own_checkpoint(path: str | os.PathLike) -> bool:
    """True if ``path`` is a torch zip archive whose pickle names this application's
    checkpoint marker (read without unpickling anything)."""
    from core.io.checkpoint import FORMAT

    marker = FORMAT.encode()
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith("data.pkl"):
                    return marker in z.read(name)
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return False


_OWN = {
    EXPORT: (is_own_export, "an export of this application"),
    CHECKPOINT: (is_own_checkpoint, "a checkpoint of this application"),
}


def _special(mode: int) -> str | None:
    if stat.S_ISDIR(mode):
        return "it is a folder"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "it is a socket, not a regular file"
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    return None


def _check_parent(parent: Path, out: Path, create: bool) -> None:
    probe = parent
    while not probe.exists():  # the first existing ancestor decides writability
        if not create:
            raise OutputPathError(f"cannot write {out}: folder {parent} does not exist")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"cannot write {out}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {out}: folder {probe} is not writable")


def check_output_file(
    path: str | os.PathLike,
    *,
    kind: str,
    inputs: Iterable[str | os.PathLike] = (),
    force: bool = False,
    create_parent: bool = False,
    replace_own: bool = True,
) -> Path:
    """Refuse an unsafe output file (see the module docstring); return it as a Path.

    Args:
        kind: :data:`EXPORT` or :data:`CHECKPOINT`: which existing files may be replaced.
        inputs: files the command reads; the output may not be any of them.
        force: replace an existing regular file that is not this application's own.
        create_parent: the writer creates missing folders (checkpoints do).
        replace_own: False when even an own file must not be replaced silently.
    """
    out = Path(path)
    if not str(path):
        raise OutputPathError("the output path is empty")
    key = _key(out)
    for item in inputs:
        if key is not None and _key(Path(item)) == key:
            raise OutputPathError(f"refusing to write {out}: it is one of the inputs ({item})")
    try:
        st = os.stat(out)
    except FileNotFoundError:
        st = None
    except OSError as exc:  # symlink loop, permission denied on a parent, ...
        raise OutputPathError(f"cannot write {out}: {exc.strerror or exc}") from None
    if st is None and out.is_symlink():
        raise OutputPathError(f"refusing to write {out}: it is a dangling symbolic link")
    if st is not None:
        why = _special(st.st_mode)
        if why:
            raise OutputPathError(f"cannot write {out}: {why}")
        own, what = _OWN[kind]
        if not force and not (replace_own and own(out)):
            raise OutputPathError(
                f"refusing to overwrite {out}: it exists and is not {what} (use --force)"
            )
        if not os.access(out, os.W_OK) and not os.access(out.parent, os.W_OK):
            raise OutputPathError(f"cannot write {out}: permission denied")
    _check_parent(out.absolute().parent, out, create_parent)
    return out


def check_output_folder(
    path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = ()
) -> Path:
    """Refuse an output folder that is a file, special, not creatable or not writable,
    or that is one of the input folders; return it as a Path."""
    out = Path(path)
    if not str(path):
        raise OutputPathError("the output folder is empty")
    key = _key(out)
    for item in inputs:
        if key is not None and _key(Path(item)) == key:
            raise OutputPathError(f"refusing to write into {out}: it is an input folder")
    try:
        st = os.stat(out)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputPathError(f"cannot use {out} as output folder: {exc.strerror or exc}") from None
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"cannot use {out} as output folder: it is not a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise OutputPathError(f"cannot write into {out}: folder is not writable")
        return out
    _check_parent(out.absolute().parent, out, True)
    return out


class _Tracked(Sequence):
    """A record sequence that remembers which item was being fetched."""

    def __init__(self, records: Sequence) -> None:
        self.records, self.fetching = records, None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):  # type: ignore[override]
        self.fetching = i
        item = self.records[i]
        self.fetching = None
        return item


def export_inspection(
    path: str | os.PathLike,
    result,
    export: Callable[[Sequence], str],
    on_skip: Callable[[str, str], None],
) -> tuple[str, InspectionResult]:
    """Export an :class:`~core.types.InspectionResult` with ``export(records)``; an image
    that vanished or changed since it was inspected is skipped (``on_skip(path, reason)``)
    and the rest are exported.  Returns the path written and the result exported.

    Raises:
        ExportError: no image is left, or the file could not be written.
    """
    from core.errors import ExportError
    from core.evaluate.inspect import LazyExportRecords

    current = result
    while True:
        keep = []
        for k, p in enumerate(current.paths):
            problem = _vanished(p)
            if problem:
                on_skip(p, problem)
            else:
                keep.append(k)
        current = _subset(current, keep)
        if not current.predictions:
            raise ExportError(f"nothing exported to {path}: no inspected image is left")
        tracked = _Tracked(LazyExportRecords(current))
        try:
            return export(tracked), current
        except ExportError as exc:
            bad = tracked.fetching
            if bad is None:
                raise
            on_skip(current.paths[bad], str(exc))
            current = _subset(current, [k for k in range(len(current.paths)) if k != bad])
            if not current.predictions:
                raise ExportError(
                    f"nothing exported to {path}: no inspected image is left"
                ) from None


def _vanished(path: str) -> str | None:
    from core.data.imagecheck import regular_file_problem

    problem = regular_file_problem(Path(path))
    return f"{problem} since it was inspected" if problem else None


def _subset(result: InspectionResult, keep: Sequence[int]) -> InspectionResult:
    return InspectionResult(
        paths=tuple(result.paths[k] for k in keep),
        predictions=tuple(result.predictions[k] for k in keep),
        failures=result.failures,
    )


__all__ = [
    "CHECKPOINT",
    "EXPORT",
    "OutputPathError",
    "check_output_file",
    "check_output_folder",
    "export_inspection",
    "is_own_checkpoint",
    "is_own_export",
]
