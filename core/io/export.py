"""HDF5 export of an inspected batch, and a reader that loads it back.

The layout is documented in ``docs/hdf5_schema.md``.  Everything is plain HDF5 (numbers,
fixed arrays, UTF-8 strings): no pickled objects, readable with h5py, HDFView, MATLAB.

Atomicity: the file is written to a hidden temporary file in the target's folder
(``.<name>.<pid>-<random>.tmp``), flushed to disk, then moved over the target with
``os.replace``.  An error or a cancel removes the temporary file and leaves an existing
target byte-for-byte untouched.  (Only a hard kill of the process can leave a stale
``.tmp`` file behind, which the next export to that folder removes; the target is
never half-written.)
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from core import __version__
from core.config import Thresholds
from core.errors import Cancelled, CoreError, ExportError
from core.io.files import utc_timestamp
from core.progress import ProgressThrottle
from core.types import ProgressCallback, StopCallback, ignore_progress, never_stop

FORMAT = "draem-workstation-export"
SCHEMA_VERSION = 1
_PACK = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
_CHUNK_BYTES = 1 << 20  # target chunk size: whole rows, all channels, about 1 MiB
_STR = h5py.string_dtype("utf-8")
_RESERVED = {
    "format",
    "schema_version",
    "created",
    "app_version",
    "method",
    "image_threshold",
    "pixel_threshold",
    "threshold_source",
    "verdict_rule",
    "model_config",
    "checkpoint_sha256",
    "n_images",
    "label_values",
    "mask_values",
    "source_root",
    "world_size",
    "runtime",
}
#: root attributes that explain the values (schema_version 1, added later: readers of
#: older files find them absent)
LABEL_VALUES = "labels: 1 = defective, 0 = good (OK), -1 = not labelled (unknown)"
MASK_VALUES = "defect_mask and gt_mask: uint8, 1 = defect pixel, 0 = background"


@dataclass(frozen=True)
class ExportRecord:
    """One inspected image.

    Attributes:
        path: source file path (any text).
        image: (H, W, 3) uint8 RGB original pixels.
        anomaly_map: (H, W) float anomaly map (stored as float32).
        score: finite image anomaly score.
        label: 0 (OK), 1 (defective) or None when unknown.
        gt_mask: (H, W) ground-truth mask (> 0 = defect; stored as uint8 {0, 1}) or None.
        reconstruction: (H, W, 3) uint8 reconstruction (DRAEM) or None.
    """

    path: str
    image: np.ndarray
    anomaly_map: np.ndarray
    score: float
    label: int | None = None
    gt_mask: np.ndarray | None = None
    reconstruction: np.ndarray | None = None

    def __post_init__(self) -> None:
        img, amap = np.asarray(self.image), np.asarray(self.anomaly_map)
        where = f"record {self.path!r}"
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or 0 in img.shape:
            raise ExportError(
                f"{where}: image must be (H, W, 3) uint8, got {img.shape} {img.dtype}"
            )
        hw = img.shape[:2]
        if amap.shape != hw or amap.dtype.kind != "f":
            raise ExportError(
                f"{where}: anomaly_map must be float {hw}, got {amap.shape} {amap.dtype}"
            )
        if not math.isfinite(self.score):
            raise ExportError(f"{where}: score must be finite, got {self.score}")
        if self.label not in (None, 0, 1):
            raise ExportError(f"{where}: label must be 0, 1 or None, got {self.label!r}")
        if self.gt_mask is not None and np.shape(self.gt_mask) != hw:
            raise ExportError(f"{where}: gt_mask must be {hw}, got {np.shape(self.gt_mask)}")
        rec = self.reconstruction
        if rec is not None and (np.shape(rec) != (*hw, 3) or np.asarray(rec).dtype != np.uint8):
            raise ExportError(f"{where}: reconstruction must be {(*hw, 3)} uint8")


class LazyRecords(Sequence):
    """A sequence of :class:`ExportRecord` built on access by ``build(i)``.

    :func:`export_batch` reads records one at a time, so exporting a large batch this
    way holds one image in memory at a time, whatever produced the batch (the command
    line's inspection result, the GUI's array store).
    """

    def __init__(self, n: int, build: Callable[[int], ExportRecord]) -> None:
        self._n, self._build = int(n), build

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return self._build(i % self._n)


def reread_image(path: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The image at ``path`` read again for export: (H, W, 3) uint8 RGB.

    Raises:
        ExportError: it can no longer be read, or its size is no longer ``shape``
            (H, W) (the file changed since it was inspected).
    """
    from core.data.images import load_image
    from core.errors import ImageLoadError

    try:
        image = load_image(path)
    except ImageLoadError as exc:
        raise ExportError(f"{path} changed since it was inspected: {exc.reason}") from None
    if shape is not None and image.shape[:2] != tuple(shape):
        raise ExportError(f"{path} changed size since it was inspected")
    return image


@dataclass(frozen=True)
class ExportedBatch:
    """An export read back: records in file order, root attributes, thresholds.

    ``attrs`` holds the root attributes as plain Python values (``model_config`` is the
    JSON string; :attr:`model_config` parses it).  ``verdicts`` are ``"OK"``/``"NG"``.
    """

    records: tuple[ExportRecord, ...]
    attrs: dict[str, Any]
    thresholds: Thresholds
    verdicts: tuple[str, ...] = ()

    @property
    def model_config(self) -> dict[str, Any]:
        return json.loads(self.attrs.get("model_config", "{}"))


def _verdict(score: float, threshold: float) -> str:
    return "NG" if score >= threshold else "OK"


def _put(group: h5py.Group, name: str, data: np.ndarray) -> h5py.Dataset:
    """Create a gzip+shuffle dataset chunked in bands of whole rows of about 1 MiB (an
    image up to ~1 MiB is one chunk: fast, and compresses better than h5py's small guess)."""
    row_bytes = max(1, data.nbytes // max(1, data.shape[0]))
    rows = int(min(data.shape[0], max(1, _CHUNK_BYTES // row_bytes)))
    return group.create_dataset(name, data=data, chunks=(rows, *data.shape[1:]), **_PACK)


def _image_attrs(ds: h5py.Dataset, grayscale: bool) -> None:
    """HDF5 Image spec attributes so HDFView shows the dataset as a picture."""
    ds.attrs["CLASS"] = np.bytes_("IMAGE")
    ds.attrs["IMAGE_VERSION"] = np.bytes_("1.2")
    if grayscale:
        ds.attrs["IMAGE_SUBCLASS"] = np.bytes_("IMAGE_GRAYSCALE")
        ds.attrs["IMAGE_WHITE_IS_ZERO"] = np.uint8(0)
    else:
        ds.attrs["IMAGE_SUBCLASS"] = np.bytes_("IMAGE_TRUECOLOR")
        ds.attrs["INTERLACE_MODE"] = np.bytes_("INTERLACE_PIXEL")


def _write_record(group: h5py.Group, rec: ExportRecord, thresholds: Thresholds) -> None:
    """Write one ``/images/NNNNNN`` group (see docs/hdf5_schema.md)."""
    img = np.asarray(rec.image)
    grayscale = bool((img[..., 0] == img[..., 1]).all() and (img[..., 0] == img[..., 2]).all())
    ds = _put(group, "image", img[..., 0] if grayscale else img)
    _image_attrs(ds, grayscale)
    amap = np.asarray(rec.anomaly_map, dtype=np.float32)
    _put(group, "anomaly_map", amap)
    defect = (amap >= thresholds.pixel).astype(np.uint8)
    _put(group, "defect_mask", defect)
    if rec.gt_mask is not None:
        gt = (np.asarray(rec.gt_mask) > 0).astype(np.uint8)
        _put(group, "gt_mask", gt)
    if rec.reconstruction is not None:
        ds = _put(group, "reconstruction", np.asarray(rec.reconstruction))
        _image_attrs(ds, False)
    group.attrs["score"] = float(rec.score)
    group.attrs["verdict"] = _verdict(rec.score, thresholds.image)
    group.attrs["label"] = np.int8(-1 if rec.label is None else rec.label)
    group.attrs["path"] = str(rec.path)


def _root_attrs(f: h5py.File, meta: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in {**meta, **extra}.items():
        f.attrs[key] = value


def _check_extra(extra: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not key or key in _RESERVED:
            raise ExportError(f"extra attribute name {key!r} is empty or reserved")
        if isinstance(value, bool | int | float | str):
            out[key] = value
        else:
            try:
                out[key] = json.dumps(value, sort_keys=True)
            except (TypeError, ValueError) as e:
                raise ExportError(f"extra attribute {key!r} is not JSON-serialisable: {e}") from e
    return out


def export_batch(
    path: str | os.PathLike[str],
    records: Sequence[ExportRecord],
    *,
    thresholds: Thresholds,
    method: str,
    model_config: dict[str, Any],
    checkpoint_sha256: str,
    app_version: str = __version__,
    extra_attrs: dict[str, Any] | None = None,
    world_size: int = 1,
    runtime: str = "torch",
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
    on_stale: Callable[[str], None] = lambda _path: None,
) -> str:
    """Write ``records`` to the HDF5 file ``path`` atomically; return the path written.

    Temporary files that killed exports left in the folder are removed first
    (:func:`core.io.files.clean_stale`), each passed to ``on_stale``.

    ``records`` is read once, in order, one item at a time, so a lazy sequence (with
    ``len``) can load images on demand.  ``model_config`` must be JSON-serialisable;
    ``extra_attrs`` values that are not str/int/float/bool are stored as JSON strings.
    ``world_size`` is the number of processes that inspected the batch (the root
    attribute ``world_size``: 1 for a single process, N for ``inspect`` under torchrun).
    ``runtime`` is what computed the maps and scores, as ``--runtime`` names it
    (``core.deploy.choices.runtime_of(detector)``: ``torch``, ``onnxruntime``,
    ``openvino:bf16``, ...): the root attribute ``runtime``.
    Progress is reported at most ~10 Hz as :class:`Progress` (records written).

    Raises:
        Cancelled: ``should_stop()`` returned True (the target is left unchanged).
        ExportError: bad input, or the file could not be written (target unchanged).
    """
    target = Path(path)
    n = len(records)
    if n == 0:
        raise ExportError("nothing to export: the batch has no images")
    if not target.parent.is_dir():
        raise ExportError(f"cannot write {target}: folder {target.parent} does not exist")
    if target.is_dir():
        raise ExportError(f"cannot write {target}: it is a folder")
    if (
        isinstance(world_size, bool)
        or not isinstance(world_size, int | np.integer)
        or world_size < 1
    ):
        raise ExportError(f"world_size must be an integer >= 1, got {world_size!r}")
    try:
        config_json = json.dumps(model_config, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ExportError(f"model_config is not JSON-serialisable: {e}") from e
    meta = {
        "format": FORMAT,
        "schema_version": np.int32(SCHEMA_VERSION),
        "created": utc_timestamp(),
        "app_version": str(app_version),
        "method": str(method),
        "image_threshold": float(thresholds.image),
        "pixel_threshold": float(thresholds.pixel),
        "threshold_source": str(thresholds.source),
        "verdict_rule": "NG iff score >= image_threshold; defect_mask = anomaly_map >= pixel_threshold",
        "model_config": config_json,
        "checkpoint_sha256": str(checkpoint_sha256),
        "n_images": np.int64(n),
        "label_values": LABEL_VALUES,
        "mask_values": MASK_VALUES,
        "world_size": np.int32(world_size),
        "runtime": str(runtime),
    }
    extra = _check_extra(extra_attrs)
    from core.io.files import atomic_write, clean_stale

    for stale in clean_stale(target.parent, suffix=target.suffix):
        on_stale(os.fspath(stale))
    try:
        with atomic_write(target) as tmp, h5py.File(tmp, "w-") as f:
            _root_attrs(f, meta, extra)
            images = f.create_group("images")
            scores = np.empty(n, np.float64)
            labels = np.empty(n, np.int8)
            shapes = np.empty((n, 2), np.int32)
            paths: list[str] = []
            report = ProgressThrottle(on_progress)
            for i in range(n):
                if should_stop():
                    raise Cancelled(f"export cancelled; {target.name} was not changed")
                rec = records[i]
                if not isinstance(rec, ExportRecord):
                    raise ExportError(f"item {i} is a {type(rec).__name__}, not an ExportRecord")
                _write_record(images.create_group(f"{i:06d}"), rec, thresholds)
                scores[i] = rec.score
                labels[i] = -1 if rec.label is None else rec.label
                shapes[i] = np.shape(rec.image)[:2]
                paths.append(str(rec.path))
                report(i + 1, n, f"exported {i + 1}/{n}")
            _put(f, "scores", scores)
            verdicts = [_verdict(s, thresholds.image) for s in scores]
            f.create_dataset("verdicts", data=np.array(verdicts, dtype=object), dtype=_STR)
            _put(f, "labels", labels)
            _put(f, "shapes", shapes)
            f.create_dataset("paths", data=np.array(paths, dtype=object), dtype=_STR)
            root, relative = _relative_paths(paths)
            f.attrs["source_root"] = root
            f.create_dataset("relative_paths", data=np.array(relative, dtype=object), dtype=_STR)
            for i, rel in enumerate(relative):
                images[f"{i:06d}"].attrs["relative_path"] = rel
    except BaseException as e:
        if isinstance(e, CoreError) or not isinstance(e, Exception):
            raise
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise ExportError(f"could not write {target}: the disk is full") from e
        raise ExportError(f"could not write {target}: {e}") from e
    return os.fspath(target)


def _relative_paths(paths: Sequence[str]) -> tuple[str, list[str]]:
    """The deepest folder holding every source file (absolute, ``/``-separated) and each
    path relative to it; ``("", paths)`` when they share no folder (other drives)."""
    absolute = [os.path.abspath(p) for p in paths]
    try:
        root = os.path.commonpath([os.path.dirname(p) for p in absolute])
    except ValueError:  # different drives (Windows)
        return "", list(paths)
    relative = [Path(os.path.relpath(p, root)).as_posix() for p in absolute]
    return Path(root).as_posix(), relative


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value


class ExportReader:
    """An export opened for reading one record at a time (memory: one record).

    ``with ExportReader(path) as r:`` gives ``r.attrs``, ``r.thresholds``, ``r.verdicts``
    (as :class:`ExportedBatch`), ``len(r)`` and ``r[i]`` -> :class:`ExportRecord` in file
    order.  Grayscale images come back as (H, W, 3) uint8.

    Raises:
        ExportError: on opening, the file is missing, not HDF5, not our export, newer, or
            damaged; on ``r[i]``, that record is damaged.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        p = self.path = Path(path)
        if not p.is_file():
            raise ExportError(f"{p} does not exist or is not a file")
        if not h5py.is_hdf5(p):
            raise ExportError(f"{p} is not an HDF5 file")
        try:
            self._f = h5py.File(p, "r")
        except OSError as e:
            raise ExportError(f"{p} is damaged or incomplete: {e}") from e
        try:
            self._read_header()
        except CoreError:
            self._f.close()
            raise
        except (KeyError, ValueError, TypeError, OSError) as e:
            self._f.close()
            raise ExportError(f"{p} is damaged or incomplete: {e}") from e

    def _read_header(self) -> None:
        f, p = self._f, self.path
        self.attrs = {k: _plain(v) for k, v in f.attrs.items()}
        if self.attrs.get("format") != FORMAT:
            raise ExportError(f"{p} is an HDF5 file but not an export of this application")
        version = int(self.attrs.get("schema_version", -1))
        if not 1 <= version <= SCHEMA_VERSION:
            raise ExportError(
                f"{p} has export schema version {version}; this version reads up to "
                f"{SCHEMA_VERSION} (update the application)"
            )
        self.thresholds = Thresholds(
            image=float(self.attrs["image_threshold"]),
            pixel=float(self.attrs["pixel_threshold"]),
            source=str(self.attrs["threshold_source"]),
        )
        self._n = int(self.attrs["n_images"])
        self.verdicts = tuple(f["verdicts"].asstr()[:])
        if len(self.verdicts) != self._n:
            raise ExportError(f"{p} is damaged: {len(self.verdicts)} verdicts for {self._n} images")

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> ExportRecord:
        if not 0 <= i < self._n:
            raise IndexError(f"record {i} of {self._n}")
        try:
            return _read_record(self._f["images"][f"{i:06d}"])
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise ExportError(f"{self.path} is damaged or incomplete (image {i}): {e}") from e

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ExportReader:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def read_batch(path: str | os.PathLike[str]) -> ExportedBatch:
    """Load a whole export written by :func:`export_batch` (any schema version up to ours);
    :class:`ExportReader` reads it one record at a time instead.

    Raises:
        ExportError: the file is missing, not HDF5, not our export, newer, or damaged.
    """
    with ExportReader(path) as r:
        records = tuple(r[i] for i in range(len(r)))
        return ExportedBatch(
            records=records, attrs=r.attrs, thresholds=r.thresholds, verdicts=r.verdicts
        )


def _read_record(g: h5py.Group) -> ExportRecord:
    img = g["image"][()]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    label = int(g.attrs["label"])
    return ExportRecord(
        path=_plain(g.attrs["path"]),
        image=img,
        anomaly_map=g["anomaly_map"][()],
        score=float(g.attrs["score"]),
        label=None if label < 0 else label,
        gt_mask=g["gt_mask"][()] if "gt_mask" in g else None,
        reconstruction=g["reconstruction"][()] if "reconstruction" in g else None,
    )


__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "ExportReader",
    "ExportRecord",
    "ExportedBatch",
    "LazyRecords",
    "export_batch",
    "read_batch",
    "reread_image",
]
