"""Qt-free long-running jobs of the inspection workflow (run in worker threads).

Each job follows the core convention ``fn(..., on_progress, should_stop)`` and
is started by :class:`app._qt.workers.Task`.  Only frozen dataclasses and numpy
arrays go in and out; the live :class:`~app.components.inspection.model.InspectionState`
is never touched from a worker thread (the GUI takes an immutable snapshot
first, see :func:`export_snapshot`).

* :func:`inspect_stream` runs ``core.evaluate.inspect.inspect_paths`` chunk by chunk,
  writes maps and reconstructions to the :class:`ArrayStore` and streams
  :class:`InspectedChunk` reports through ``on_progress`` so results appear
  while the batch runs (one call over the whole batch would return only at the
  end and hold every map of the batch in memory at once).
* :func:`export_job` writes the batch through ``core.io.export.export_batch``,
  reading images and maps lazily so memory stays bounded.
* :func:`open_export_job` re-opens an exported batch with ``core.io.export.read_batch``.
* :func:`pixel_metrics_job` computes pixel AUROC (``core.evaluate.metrics``) and the
  pixel-threshold suggestion from good maps (``core.evaluate.thresholds``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.components.inspection.model import (
    LABEL_DEFECT,
    LABEL_OK,
    InspectedChunk,
    InspectedItem,
    InspectionState,
)
from app.components.inspection.render import fit_thumbnail
from app.components.inspection.store import IMAGE, MAP, RECONSTRUCTION, ArrayStore
from core.config import Thresholds
from core.errors import Cancelled, ExportError
from core.types import (
    Progress,
    ProgressCallback,
    StopCallback,
    ignore_progress,
    never_stop,
)

THUMB_SIZE = 96


@dataclass(frozen=True)
class InspectionSummary:
    """What :func:`inspect_stream` returns once every chunk was streamed."""

    n_inspected: int
    n_failed: int
    elapsed_s: float


def _item(
    path: str, key: int, image: np.ndarray, amap: np.ndarray, score: float, **kw
) -> InspectedItem:
    return InspectedItem(
        path=str(path),
        key=key,
        score=float(score),
        shape=(int(image.shape[0]), int(image.shape[1])),
        thumbnail=fit_thumbnail(image, THUMB_SIZE),
        map_min=float(amap.min()) if amap.size else 0.0,
        map_max=float(amap.max()) if amap.size else 1.0,
        **kw,
    )


def make_item(path: str, image: np.ndarray, prediction: Any, store: ArrayStore) -> InspectedItem:
    """Store one prediction's arrays and build its :class:`InspectedItem`.

    Args:
        image: (H, W, 3) uint8 RGB source pixels (only a thumbnail is kept).
        prediction: a ``core.types.Prediction`` (anomaly_map (H, W) float32,
            score, reconstruction (H, W, 3) uint8 or None).
    """
    amap = np.asarray(prediction.anomaly_map, dtype=np.float32)
    key = store.new_key()
    store.put(key, MAP, amap)
    if prediction.reconstruction is not None:
        store.put(key, RECONSTRUCTION, np.asarray(prediction.reconstruction, dtype=np.uint8))
    return _item(path, key, image, amap, prediction.score)


def inspect_stream(
    detector: Any,
    paths: Sequence[str],
    store: ArrayStore,
    *,
    chunk_size: int = 8,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> InspectionSummary:
    """Inspect files and folders, streaming results chunk by chunk.

    Each chunk of ``chunk_size`` files goes through ``core.evaluate.inspect.inspect_paths``
    (loading, batched prediction, unreadable or rejected files reported and
    skipped); its maps and reconstructions are written to ``store`` and the
    chunk's predictions dropped, so memory stays bounded for any batch size.
    ``on_progress`` receives :class:`core.types.Progress` reports and, after
    each chunk, one :class:`InspectedChunk`.

    Raises:
        Cancelled: ``should_stop()`` became True (chunks already streamed stay valid).
    """
    from core.data.images import expand_paths
    from core.evaluate.inspect import inspect_paths

    t0 = time.monotonic()
    files = [str(p) for p in expand_paths(paths)]
    total, n_ok, n_failed = len(files), 0, 0
    on_progress(Progress(0, total, f"inspecting {total} image(s)"))
    for start in range(0, total, chunk_size):
        if should_stop():
            raise Cancelled(f"inspection cancelled after {start} of {total} images")
        items: list[InspectedItem] = []

        def keep(path: str, image: np.ndarray, pred: Any, items=items) -> None:
            items.append(make_item(path, image, pred, store))

        def report(p: Progress, base: int = start) -> None:
            on_progress(
                Progress(base + p.done, total, f"inspected {base + p.done} of {total} image(s)")
            )

        result = inspect_paths(
            detector,
            files[start : start + chunk_size],
            batch_size=chunk_size,
            on_progress=report,
            should_stop=should_stop,
            on_item=keep,
        )
        n_ok += len(items)
        n_failed += len(result.failures)
        on_progress(InspectedChunk(tuple(items), tuple(result.failures)))
    return InspectionSummary(n_ok, n_failed, time.monotonic() - t0)


# --------------------------------------------------------------------- export
@dataclass(frozen=True)
class ExportSource:
    """One item to export: where its arrays are and its scalar data."""

    path: str
    key: int | None
    score: float
    label: int
    gt_mask: np.ndarray | None


@dataclass(frozen=True)
class ExportSnapshot:
    """An immutable copy of what to export, taken on the GUI thread."""

    items: tuple[ExportSource, ...]
    thresholds: Thresholds
    method: str
    model_config: dict
    checkpoint_path: str | None
    runtime: str = "torch"


def export_snapshot(
    state: InspectionState,
    indices: Sequence[int],
    *,
    method: str,
    model_config: dict,
    checkpoint_path: str | None,
    scored_with: dict[str, str] | None = None,
) -> ExportSnapshot:
    """Freeze the items ``indices`` of ``state`` for :func:`export_job`.

    ``scored_with``: path -> the runtime that scored it (``torch``, ``openvino:bf16``,
    ...; a path not in it: ``torch``), recorded as the export's ``runtime``.

    Raises:
        ExportError: nothing to export, items without an anomaly map (restored from a
            project file and not re-inspected yet), or items scored by different runtimes.
    """
    idx = sorted(set(int(i) for i in indices))
    if not idx:
        raise ExportError("nothing to export: no inspected images (or no selection)")
    missing = [state.name(i) for i in idx if not state.has_map(i)]
    if missing:
        raise ExportError(
            f"{len(missing)} image(s) have no anomaly map (e.g. {missing[0]}); "
            "re-inspect them before exporting"
        )
    runtimes = sorted({(scored_with or {}).get(state.path(i), "torch") for i in idx})
    if len(runtimes) > 1:
        raise ExportError(
            f"the images were scored with different runtimes ({', '.join(runtimes)}); "
            "re-inspect them (Ctrl+R) so that one runtime scored them all"
        )
    items = tuple(
        ExportSource(
            path=state.path(i),
            key=state.key(i),
            score=float(state.scores[i]),
            label=int(state.labels[i]),
            gt_mask=state.mask(i),
        )
        for i in idx
    )
    return ExportSnapshot(
        items, state.thresholds, method, dict(model_config), checkpoint_path, runtimes[0]
    )


def _export_records(snap: ExportSnapshot, store: ArrayStore):
    """The snapshot's ``ExportRecord`` objects, built on access from the array store (the
    image re-read from disk when the store no longer holds it)."""
    from core.io.export import ExportRecord, LazyRecords, reread_image

    def build(i: int) -> ExportRecord:
        src = snap.items[i]
        amap = store.get(src.key, MAP)
        if amap is None:
            raise ExportError(f"cannot export {src.path}: its anomaly map is gone")
        image = store.get(src.key, IMAGE)
        return ExportRecord(
            path=src.path,
            image=reread_image(src.path, amap.shape) if image is None else image,
            anomaly_map=amap,
            score=src.score,
            label=None if src.label < 0 else src.label,
            gt_mask=src.gt_mask,
            reconstruction=store.get(src.key, RECONSTRUCTION),
        )

    return LazyRecords(len(snap.items), build)


def export_job(
    path: str,
    snapshot: ExportSnapshot,
    store: ArrayStore,
    *,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> str:
    """Write ``snapshot`` to the HDF5 file ``path`` (atomic, via ``core.io.export``); returns it."""
    from core.io.export import export_batch

    sha = ""
    if snapshot.checkpoint_path and Path(snapshot.checkpoint_path).exists():
        from core.deploy.cli import model_sha256  # a checkpoint's, or an exported folder's

        sha = model_sha256(snapshot.checkpoint_path)
    export_batch(
        path,
        _export_records(snapshot, store),
        thresholds=snapshot.thresholds,
        method=snapshot.method,
        model_config=snapshot.model_config,
        checkpoint_sha256=sha,
        runtime=snapshot.runtime,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    return str(path)


# --------------------------------------------------------------------- re-open
@dataclass(frozen=True)
class OpenedExport:
    """A re-opened export: its items (arrays in the store), thresholds and root attributes."""

    path: str
    items: tuple[InspectedItem, ...]
    thresholds: Thresholds
    attrs: dict


def open_export_job(
    path: str,
    store: ArrayStore,
    *,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> OpenedExport:
    """Read an exported batch into ``store`` one record at a time
    (``core.io.export.ExportReader``: memory stays at one image whatever the batch size)."""
    from core.io.export import ExportReader

    on_progress(Progress(0, 1, f"reading {Path(path).name}"))
    with ExportReader(path) as reader:
        return _read_export(reader, path, store, on_progress, should_stop)


def _read_export(reader, path, store, on_progress, should_stop) -> OpenedExport:
    total = len(reader)
    items = []
    for i in range(total):
        if should_stop():
            raise Cancelled("opening the export was cancelled")
        rec = reader[i]
        key = store.new_key()
        store.put(key, IMAGE, rec.image)
        amap = np.asarray(rec.anomaly_map, np.float32)
        store.put(key, MAP, amap)
        if rec.reconstruction is not None:
            store.put(key, RECONSTRUCTION, rec.reconstruction)
        label = -1 if rec.label is None else int(rec.label)
        item = _item(rec.path, key, rec.image, amap, rec.score, label=label, gt_mask=rec.gt_mask)
        items.append(item)
        on_progress(Progress(i + 1, total, f"loaded {i + 1} of {total} image(s)"))
    return OpenedExport(str(path), tuple(items), reader.thresholds, dict(reader.attrs))


# --------------------------------------------------------------------- pixel metrics
@dataclass(frozen=True)
class PixelMetrics:
    """Pixel-level results over labelled items with known masks."""

    pixel_auroc: float
    n_images: int
    n_defect_masks: int
    pixel_threshold: float | None  # suggestion from good-labelled maps, if any
    detail: str  # what was counted
    threshold_detail: str = ""  # how the suggestion was made (core.evaluate.thresholds wording)


def pixel_metrics_job(
    refs: tuple[tuple[int | None, int, np.ndarray | None], ...],
    store: ArrayStore,
    *,
    percentile: float = 99.9,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> PixelMetrics:
    """Pixel AUROC and a pixel-threshold suggestion.

    Args:
        refs: ``(store key, label, mask or None)`` per labelled item.  OK-labelled
            items count with an all-zero mask; defective items need a painted mask.
    """
    from core.evaluate.metrics import pixel_auroc
    from core.evaluate.thresholds import pixel_from_good_maps

    masks, maps, good_maps = [], [], []
    for n, (key, label, mask) in enumerate(refs):
        if should_stop():
            raise Cancelled("pixel metrics cancelled")
        amap = store.get(key, MAP)
        if amap is None:
            continue
        if label == LABEL_OK:
            good_maps.append(amap)
            masks.append(np.zeros(amap.shape, np.uint8))
            maps.append(amap)
        elif label == LABEL_DEFECT and mask is not None:
            masks.append(mask)
            maps.append(amap)
        on_progress(Progress(n + 1, len(refs), "pixel metrics"))
    n_def = sum(1 for m in masks if m.any())
    auroc = pixel_auroc(masks, maps) if masks and n_def else math.nan
    thr, how = None, ""
    if good_maps:
        s = pixel_from_good_maps(good_maps, percentile=percentile)
        thr, how = float(s.value), s.detail
    detail = f"{len(masks)} image(s), {n_def} with a defect mask"
    return PixelMetrics(float(auroc), len(masks), n_def, thr, detail, how)


__all__ = [
    "THUMB_SIZE",
    "ExportSnapshot",
    "ExportSource",
    "InspectionSummary",
    "OpenedExport",
    "PixelMetrics",
    "export_job",
    "export_snapshot",
    "inspect_stream",
    "make_item",
    "open_export_job",
    "pixel_metrics_job",
]
