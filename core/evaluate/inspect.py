"""Batch inspection: files and folders in, one :class:`Prediction` per readable image out.

Images are loaded and predicted chunk by chunk (``batch_size`` at a time), so
memory stays bounded by one chunk of images plus the predictions kept.  A file
that cannot be read is recorded as a :class:`FailedImage` and the batch goes on;
if the detector rejects a whole chunk, its images are retried one by one so only
the offending image fails.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.data.images import MvtecCategory, expand_paths, load_image
from core.errors import Cancelled, CoreError, DatasetError, ImageLoadError
from core.progress import ProgressThrottle
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

if TYPE_CHECKING:
    from core.evaluate.metrics import Evaluation

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
            see :func:`core.data.images.expand_paths`).
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


@dataclass(frozen=True)
class MvtecEvaluation:
    """Metrics of a detector on an MVTec AD category's test split.

    Attributes:
        evaluation: :class:`core.evaluate.metrics.Evaluation` (image/pixel AUROC, AP, AUPRO, F1-max).
        seconds_per_image: wall time of loading + predicting, divided by the images inspected.
        result: the :class:`InspectionResult` (paths, predictions, failures).
        labels: per inspected image 0 (good) or 1 (defective).
        defect_types: per inspected image its ``test/<type>`` folder name.
        masks: per inspected image its (H, W) uint8 {0, 1} ground truth (zeros for good
            images), or None where a defect image has no (readable) mask; such images
            are left out of the pixel metrics.
        mask_failures: ground-truth masks that could not be read.
        mask_problems: every suspect ground-truth mask (:class:`core.evaluate.groundtruth.MaskProblem`:
            missing, unreadable, wrong size, empty, low defect value).
    """

    evaluation: Evaluation
    seconds_per_image: float
    result: InspectionResult
    labels: tuple[int, ...]
    defect_types: tuple[str, ...]
    masks: tuple[np.ndarray | None, ...]
    mask_failures: tuple[FailedImage, ...] = ()
    mask_problems: tuple = ()


def evaluate_mvtec(
    detector: Detector,
    category: MvtecCategory,
    *,
    batch_size: int = 8,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> MvtecEvaluation:
    """Inspect every test image of ``category`` and compute all metrics.

    Unreadable test images are skipped (listed in ``result.failures``).

    Raises:
        DatasetError: the category has no test images, or none could be read.
        Cancelled: ``should_stop()`` returned True.
    """
    from core.evaluate.metrics import evaluate

    if not category.test:
        raise DatasetError(f"{category.root} has no test images (expected test/<type>/)")
    by_path = {str(item.path): item for item in category.test}
    t0 = time.perf_counter()
    result = inspect_paths(
        detector,
        [item.path for item in category.test],
        batch_size=batch_size,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    seconds = time.perf_counter() - t0
    if not result.predictions:
        raise DatasetError(
            f"none of the {len(category.test)} test images of {category.root} could be read"
        )
    items = [by_path[p] for p in result.paths]
    masks: list[np.ndarray | None] = []
    mask_failures: list[FailedImage] = []
    mask_problems: list = []
    from core.evaluate.groundtruth import UNREADABLE, load_ground_truth

    for item, pred in zip(items, result.predictions, strict=True):
        shape = pred.anomaly_map.shape
        if not item.is_anomalous:
            masks.append(np.zeros(shape, np.uint8))
        else:
            mask, problems = load_ground_truth(item.path, item.mask_path, shape)
            masks.append(mask)
            mask_problems.extend(problems)
            mask_failures.extend(
                FailedImage(path=q.mask, reason=q.detail) for q in problems if q.kind == UNREADABLE
            )
    labels = tuple(int(item.is_anomalous) for item in items)
    return MvtecEvaluation(
        evaluation=evaluate(list(result.predictions), list(labels), masks),
        seconds_per_image=seconds / len(result.predictions),
        result=result,
        labels=labels,
        defect_types=tuple(item.defect_type for item in items),
        masks=tuple(masks),
        mask_failures=tuple(mask_failures),
        mask_problems=tuple(mask_problems),
    )


def LazyExportRecords(  # noqa: N802 - reads as the sequence it returns
    result: InspectionResult,
    labels: Sequence[int | None] | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
):
    """``core.io.export.ExportRecord`` per inspected image, built on access
    (:class:`core.io.export.LazyRecords`): each image is re-read from disk when its
    record is requested.  ``labels`` / ``masks`` (optional, one per inspected image)
    are attached.

    Raises (on access):
        ExportError: an image can no longer be read, or changed size.
    """
    from core.io.export import ExportRecord, LazyRecords, reread_image

    n = len(result.predictions)
    if (labels is not None and len(labels) != n) or (masks is not None and len(masks) != n):
        raise ValueError("labels and masks need one entry per inspected image")

    def build(i: int) -> ExportRecord:
        path, pred = result.paths[i], result.predictions[i]
        return ExportRecord(
            path=path,
            image=reread_image(path, pred.anomaly_map.shape),
            anomaly_map=pred.anomaly_map,
            score=float(pred.score),
            label=None if labels is None else labels[i],
            gt_mask=None if masks is None else masks[i],
            reconstruction=pred.reconstruction,
        )

    return LazyRecords(n, build)


__all__ = [
    "ItemCallback",
    "LazyExportRecords",
    "MvtecEvaluation",
    "evaluate_mvtec",
    "inspect_paths",
]
