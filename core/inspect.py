"""Batch inspection: files and folders in, one :class:`Prediction` per readable image out.

Images are loaded and predicted chunk by chunk (``batch_size`` at a time), so
memory stays bounded by one chunk of images plus the predictions kept.  A file
that cannot be read is recorded as a :class:`FailedImage` and the batch goes on;
if the detector rejects a whole chunk, its images are retried one by one so only
the offending image fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import numpy as np

from core.errors import Cancelled, CoreError, ImageLoadError
from core.images import ProgressThrottle, expand_paths, load_image
from core.types import (
    Detector,
    FailedImage,
    InspectionResult,
    Prediction,
    Progress,
    ProgressCallback,
    StopCallback,
    ignore_progress,
    never_stop,
)

#: ``on_item(path, image, prediction)`` — called once per inspected image, in input order.
#: ``image`` is the (H, W, 3) uint8 RGB array the prediction was made on.
ItemCallback = Callable[[str, np.ndarray, Prediction], None]


def _predict_chunk(
    detector: Detector,
    chunk: list[tuple[str, np.ndarray]],
    batch_size: int,
    on_progress: ProgressCallback,
    should_stop: StopCallback,
) -> tuple[list[tuple[str, np.ndarray, Prediction]], list[FailedImage]]:
    """Predict one chunk; on a detector error retry image by image."""
    images = [img for _, img in chunk]
    try:
        preds = detector.predict(
            images, batch_size=batch_size, on_progress=on_progress, should_stop=should_stop
        )
    except Cancelled:
        raise
    except (CoreError, ValueError, RuntimeError) as exc:
        if len(chunk) == 1:
            return [], [FailedImage(path=chunk[0][0], reason=f"prediction failed: {exc}")]
        done: list[tuple[str, np.ndarray, Prediction]] = []
        failed: list[FailedImage] = []
        for item in chunk:
            d, f = _predict_chunk(detector, [item], 1, ignore_progress, should_stop)
            done += d
            failed += f
        return done, failed
    if len(preds) != len(images):
        raise CoreError(f"detector returned {len(preds)} predictions for {len(images)} images")
    return [(p, img, pred) for (p, img), pred in zip(chunk, preds, strict=True)], []


def inspect_paths(
    detector: Detector,
    paths: Iterable[str | os.PathLike],
    *,
    batch_size: int = 8,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
    on_item: ItemCallback | None = None,
) -> InspectionResult:
    """Inspect image files and folders with a trained detector.

    Args:
        detector: any :class:`core.types.Detector` (DRAEM, PatchCore).
        paths: image files and/or folders (folders are searched recursively;
            see :func:`core.images.expand_paths`).
        batch_size: images loaded and predicted together (>= 1).
        on_progress: receives :class:`Progress` (images done of total), <= ~10 Hz.
        should_stop: polled between images and batches; True cancels.
        on_item: optional ``(path, (H, W, 3) uint8 image, Prediction)`` callback
            per inspected image (e.g. to build export records without reading
            the files twice).

    Returns:
        :class:`InspectionResult`: ``paths`` and ``predictions`` of the images
        that were inspected, in input order, and ``failures`` (unreadable or
        rejected files with a reason).  Anomaly maps are float32 (H, W) at each
        image's own size.

    Raises:
        Cancelled: ``should_stop()`` returned True.
        ValueError: ``batch_size < 1``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    files = expand_paths(paths)
    total = len(files)
    report = ProgressThrottle(on_progress)
    report(0, total, "inspecting", force=True)
    out_paths: list[str] = []
    preds: list[Prediction] = []
    failures: list[FailedImage] = []
    done = 0
    for start in range(0, total, batch_size):
        chunk: list[tuple[str, np.ndarray]] = []
        for f in files[start : start + batch_size]:
            if should_stop():
                raise Cancelled(f"inspection cancelled after {done} of {total} images")
            try:
                chunk.append((str(f), load_image(f)))
            except ImageLoadError as exc:
                failures.append(FailedImage(path=exc.path, reason=exc.reason))
                done += 1
        if chunk:
            base = done

            def inner(p: Progress, base: int = base) -> None:
                report(base + p.done, total, p.message or "predicting")

            ok, bad = _predict_chunk(detector, chunk, batch_size, inner, should_stop)
            failures.extend(bad)
            for path, img, pred in ok:
                out_paths.append(path)
                preds.append(pred)
                if on_item is not None:
                    on_item(path, img, pred)
            done += len(chunk)
        report(done, total, f"{done} of {total} images")
        if should_stop() and done < total:
            raise Cancelled(f"inspection cancelled after {done} of {total} images")
    return InspectionResult(
        paths=tuple(out_paths), predictions=tuple(preds), failures=tuple(failures)
    )


__all__ = ["ItemCallback", "inspect_paths"]
