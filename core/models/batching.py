"""What every detector's ``predict`` shares: input checks and batches of one working size.

A detector turns a list of RGB images of any sizes into one :class:`Prediction` each.
The network runs on stacks of images of one working size, so :func:`predict_by_size`
groups the images by that size (keeping input order inside a group), cuts each group
into batches, lets the detector score a batch, checks for a cancel between batches,
reports progress after each and returns the predictions in input order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.errors import Cancelled, DatasetError
from core.types import (
    Prediction,
    Progress,
    ProgressCallback,
    StopCallback,
    ignore_progress,
    never_stop,
)

Size = tuple[int, int]


def check_image(img: Any, i: int) -> np.ndarray:
    """Image ``i`` of a batch as (H, W, 3) uint8; a 2-D grey array is replicated to three
    channels.  Raises :class:`DatasetError` naming the image for anything else."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        kind = f"{type(img).__name__} {getattr(img, 'dtype', '')}".strip()
        raise DatasetError(f"image {i}: expected a uint8 numpy array (H, W, 3), got {kind}")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
        raise DatasetError(f"image {i}: expected shape (H, W, 3), got {img.shape}")
    return img


def predict_by_size(
    images: Sequence[np.ndarray],
    size_of: Callable[[int, int], Size],
    run: Callable[[list[np.ndarray], Size], list[Prediction]],
    *,
    batch_size: int = 8,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
    what: str = "inference",
) -> list[Prediction]:
    """One :class:`Prediction` per image, in input order.

    Args:
        images: RGB uint8 (H, W, 3) arrays of any sizes (checked by :func:`check_image`).
        size_of: ``(h, w) -> (H, W)``, the working size the network sees an image at.
        run: scores at most ``batch_size`` images of one working size (passed along)
            and returns their predictions at the images' own sizes, in order.
        what: names the work in progress and cancel messages.

    Raises:
        ValueError: ``batch_size < 1``.  DatasetError: a malformed image.
        Cancelled: ``should_stop()`` turned true between batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    checked = [check_image(img, i) for i, img in enumerate(images)]
    groups: dict[Size, list[int]] = {}
    for i, img in enumerate(checked):
        groups.setdefault(tuple(size_of(*img.shape[:2])), []).append(i)
    n, done = len(checked), 0
    preds: list[Prediction | None] = [None] * n
    for size, members in groups.items():
        for k in range(0, len(members), batch_size):
            if should_stop():
                raise Cancelled(f"{what} cancelled after {done} of {n} images")
            chunk = members[k : k + batch_size]
            out = run([checked[i] for i in chunk], size)
            for i, pred in zip(chunk, out, strict=True):
                preds[i] = pred
            done += len(chunk)
            on_progress(Progress(done, n, f"{what}: {done}/{n} images"))
    return preds  # type: ignore[return-value]


class BatchedDetector:
    """What the detectors share on top of :func:`predict_by_size` (a base class).

    A subclass sets ``method`` and ``thresholds``, keeps its checkpoint metadata in
    ``_metadata`` and implements :meth:`working_size`, :meth:`predict_batch` and
    ``payload()``; ``predict``, ``metadata``, ``with_thresholds`` and ``save`` of the
    :class:`core.types.Detector` protocol come from here.
    """

    method: str
    thresholds: Any
    _metadata: dict
    #: names the work in progress reports and cancel messages
    work_label = "inference"

    def working_size(self, h: int, w: int) -> Size:
        """(H, W) at which the network sees an (h, w) image."""
        raise NotImplementedError

    def predict_batch(self, images: list[np.ndarray], size: Size) -> list[Prediction]:
        """Predictions for checked (h, w, 3) uint8 images that share the working ``size``."""
        raise NotImplementedError

    def payload(self) -> dict:
        raise NotImplementedError

    def predict(
        self,
        images: Sequence[np.ndarray],
        *,
        batch_size: int = 8,
        on_progress: ProgressCallback = ignore_progress,
        should_stop: StopCallback = never_stop,
    ) -> list[Prediction]:
        """One :class:`Prediction` per RGB uint8 (H, W, 3) image of any size, in input
        order, at the image's size (see :func:`predict_by_size` for the errors)."""
        return predict_by_size(
            images,
            self.working_size,
            self.predict_batch,
            batch_size=batch_size,
            on_progress=on_progress,
            should_stop=should_stop,
            what=self.work_label,
        )

    @property
    def metadata(self) -> dict:
        """Checkpoint metadata: method, schema, preset, image size, data summary, created."""
        from core.io.checkpoint import SCHEMA_VERSION

        return {"method": self.method, "schema_version": SCHEMA_VERSION, **self._metadata}

    def with_thresholds(self, thresholds: Any):
        """A detector sharing this model, with other thresholds."""
        other = copy.copy(self)
        other.thresholds = thresholds
        return other

    def save(self, path: str) -> str:
        """Write a checkpoint atomically; return its SHA-256 hex digest."""
        from core.io.checkpoint import save_checkpoint

        return save_checkpoint(path, self.payload())


__all__ = ["BatchedDetector", "check_image", "predict_by_size"]
