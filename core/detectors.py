"""Open any detector checkpoint: dispatches on the checkpoint's ``method``."""

from __future__ import annotations

import os

from core.checkpoint import load_checkpoint
from core.errors import CheckpointError
from core.types import Detector


def load_detector(path: str | os.PathLike, device: str = "auto") -> Detector:
    """Load a checkpoint written by this application and return its detector.

    ``method == "draem"`` -> :class:`core.draem.DraemDetector`; ``"patchcore"`` ->
    ``core.patchcore.PatchCoreDetector`` (imported only when needed).  Raises
    :class:`CheckpointError` for foreign, damaged or unknown files (nothing in them
    is executed, see :func:`core.checkpoint.load_checkpoint`).
    """
    payload = load_checkpoint(path)
    method = payload["method"]
    if method == "draem":
        from core.draem import DraemDetector

        return DraemDetector.from_checkpoint(payload, device=device)
    if method == "patchcore":
        try:
            from core.patchcore import PatchCoreDetector
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise CheckpointError(
                f"{path}: PatchCore is not available in this installation ({e})"
            ) from e
        return PatchCoreDetector.from_checkpoint(payload)
    raise CheckpointError(f"{path}: unknown detector method {method!r}")  # pragma: no cover


__all__ = ["load_detector"]
