"""Checkpoint files: one ``torch.save``'d dict of plain data, loaded safely.

Format (docs/ARCHITECTURE.md, "Checkpoint format"): a dict holding only tensors,
str, int, float, bool, None, lists/tuples and dicts, with
``format == FORMAT`` and ``schema_version <= SCHEMA_VERSION``.  Loading uses
``torch.load(weights_only=True)``: its restricted unpickler refuses every global
that is not a tensor/storage type, so a pickle from elsewhere (e.g. one with a
malicious ``__reduce__``) is never executed -- it raises :class:`CheckpointError`.

Saving is atomic: the bytes go to a temporary file in the same folder which is
fsync'ed and then ``os.replace``'d over the target, so an interrupted save never
damages an existing checkpoint.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from core.errors import CheckpointError
from core.io.files import atomic_write, file_sha256
from core.registry import method_names

FORMAT = "draem-workstation-checkpoint"
SCHEMA_VERSION = 1
_PLAIN = (str, int, float, bool, type(None))


def _check_plain(obj: Any, where: str) -> None:
    """Raise CheckpointError if ``obj`` holds anything ``weights_only`` could not load."""
    if isinstance(obj, (*_PLAIN, torch.Tensor)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str | int):
                raise CheckpointError(f"checkpoint key {where}[{k!r}] must be str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"checkpoint value {where} has type {type(obj).__name__}; only tensors, numbers, "
        "strings, lists and dicts can be stored"
    )


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> str:
    """Write ``payload`` atomically to ``path``; return the file's SHA-256 hex digest.

    ``payload`` must have a registered ``method`` (:mod:`core.registry`); ``format`` and
    ``schema_version`` are filled in.  Tensors are moved to CPU.  Raises
    :class:`CheckpointError` for unstorable values or if the file cannot be written
    (an existing file at ``path`` is then left untouched).
    """
    if not isinstance(payload, dict):
        raise CheckpointError("a checkpoint payload must be a dict")
    if payload.get("method") not in method_names():
        raise CheckpointError(
            f"checkpoint 'method' must be one of {method_names()}, got {payload.get('method')!r}"
        )
    data = {**payload, "format": FORMAT, "schema_version": SCHEMA_VERSION}
    _check_plain(data, "payload")
    data = _to_cpu(data)
    try:
        with atomic_write(path) as tmp:
            torch.save(data, tmp)
            digest = file_sha256(tmp)
    except OSError as e:
        raise CheckpointError(f"could not write checkpoint {path}: {e}") from e
    return digest


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a checkpoint written by :func:`save_checkpoint`.

    Returns the payload dict (tensors on CPU).  Raises :class:`CheckpointError` with a
    readable message if the file is missing, not a torch file, contains anything but
    plain data (nothing in it is executed), is not one of ours, or has a newer schema.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} is not a checkpoint of this application: it contains objects that are "
            f"not plain data and was refused without running them ({_first_line(e)})"
        ) from e
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({_first_line(e)})") from e
    except Exception as e:  # any other unpickler complaint: refuse, never execute
        raise CheckpointError(
            f"{path} is not a checkpoint of this application ({_first_line(e)})"
        ) from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a checkpoint of this application (no '{FORMAT}' marker)"
        )
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer version (schema {version}; this version reads up to "
            f"{SCHEMA_VERSION}); please update the application"
        )
    if data.get("method") not in method_names():
        raise CheckpointError(f"{path}: unknown method {data.get('method')!r}")
    if not isinstance(data.get("state_dict"), dict):
        raise CheckpointError(f"{path}: the checkpoint has no state_dict")
    return data


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "file_sha256",
    "load_checkpoint",
    "save_checkpoint",
]
