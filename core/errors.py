"""Exceptions raised by ``core``. Every message is meant to be shown to a user as is."""

from __future__ import annotations


class CoreError(Exception):
    """Base class of all errors raised on purpose by ``core``."""


class ConfigError(CoreError, ValueError):
    """A configuration value is out of range or inconsistent."""


class ImageLoadError(CoreError):
    """An image file could not be read. ``path`` and ``reason`` are kept for listing."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class DatasetError(CoreError):
    """A data folder has no usable images or an unexpected layout."""


class CheckpointError(CoreError):
    """A file is not a checkpoint of this application, or is damaged."""


class ExportError(CoreError):
    """An HDF5 export could not be written or read."""


class EvaluationError(CoreError, ValueError):
    """Metrics or threshold rules cannot use the given labels/scores/maps (wrong shapes, NaN,
    or a rule that needs a class that is absent, e.g. an F1 threshold without defects)."""


class TrainingError(CoreError):
    """Training stopped abnormally (e.g. the loss became NaN)."""


class Cancelled(CoreError):
    """Long work was stopped because ``should_stop()`` returned True."""
