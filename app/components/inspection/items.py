"""Plain data of the inspection workflow: item records, counts, labels, masks as JSON.

Qt-free; the frozen dataclasses here are what crosses from worker threads to
the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.components.schema import (
    SchemaError,
    array,
    integer,
    number,
    one_of,
    optional,
    record,
    text,
)
from core.data.imagecheck import MAX_PIXELS
from core.types import FailedImage

UNLABELLED, LABEL_OK, LABEL_DEFECT = -1, 0, 1
STATE_VERSION = 1
#: the largest image (and mask) a snapshot may describe, in pixels: core's image limit
MAX_MASK_PIXELS = MAX_PIXELS
#: the longest side of an image a snapshot may describe
MAX_SIDE = 1_000_000
#: masks of one snapshot together, in pixels (bytes once decoded)
MAX_MASKS_TOTAL = 2**30


class StateError(ValueError):
    """A project entry for the inspection state is malformed (message is user-readable)."""


@dataclass(frozen=True)
class InspectedItem:
    """One inspected image as produced by a worker (crosses threads).

    Attributes:
        path: source file path (identity of the item).
        key: :class:`ArrayStore` key of its anomaly map / reconstruction / image.
        score: image anomaly score (detector scale).
        shape: (H, W) of the original image.
        thumbnail: (h, w, 3) uint8 RGB, longest side ``THUMB_SIZE``.
        map_min / map_max: range of the anomaly map (for slider ranges).
        label: -1 unknown, 0 OK, 1 defective (known when re-opened from an export).
        gt_mask: (H, W) uint8 {0, 1} ground-truth mask, or None.
    """

    path: str
    key: int | None
    score: float
    shape: tuple[int, int]
    thumbnail: np.ndarray | None
    map_min: float = 0.0
    map_max: float = 1.0
    label: int = UNLABELLED
    gt_mask: np.ndarray | None = None


@dataclass(frozen=True)
class InspectedChunk:
    """A batch of results streamed by the inspection worker."""

    items: tuple[InspectedItem, ...]
    failures: tuple[FailedImage, ...] = ()


@dataclass(frozen=True)
class VerdictCounts:
    """How many images pass / fail at the current image threshold, and labels."""

    n: int
    n_pass: int
    n_fail: int
    n_ok_labels: int
    n_defect_labels: int

    @property
    def fail_fraction(self) -> float:
        return 0.0 if self.n == 0 else self.n_fail / self.n


# --------------------------------------------------------------------- masks as JSON
def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Run-length encode a (H, W) {0, 1} mask, row-major, runs start with zeros."""
    flat = np.asarray(mask).ravel() != 0
    if flat.size == 0:
        return {"shape": list(mask.shape), "counts": []}
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], change, [flat.size])))
    if flat[0]:
        counts = np.concatenate(([0], counts))
    return {"shape": [int(s) for s in mask.shape], "counts": [int(c) for c in counts]}


def mask_from_rle(rle: dict[str, Any], max_pixels: int = MAX_MASK_PIXELS) -> np.ndarray:
    """Inverse of :func:`mask_to_rle`: (H, W) uint8 in {0, 1}.

    The claimed size is checked before anything is allocated: a mask over
    ``max_pixels`` pixels, negative or oversized runs, or runs that do not add up
    to H x W raise :class:`StateError`.
    """
    try:
        h, w = (int(s) for s in rle["shape"])
        counts = [int(c) for c in rle["counts"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"malformed mask entry ({exc})") from None
    if h < 0 or w < 0 or h * w > max_pixels:
        raise StateError(f"mask of {h}x{w} pixels is over the limit of {max_pixels} pixels")
    if len(counts) > h * w + 1 or any(c < 0 or c > h * w for c in counts):
        raise StateError(f"mask run lengths do not fit a {h}x{w} mask")
    if sum(counts) != h * w:
        raise StateError(f"mask run lengths do not add up to {h}x{w}")
    values = (np.arange(len(counts)) % 2).astype(np.uint8)
    return np.repeat(values, np.asarray(counts, dtype=np.int64)).reshape(h, w)


def _rle(v: Any, where: str) -> dict:
    return record(
        {"shape": array(integer(0, MAX_SIDE), length=2), "counts": array(integer(0, MAX_PIXELS))},
        required=("shape", "counts"),
    )(v, where)


_ITEM = record(
    {
        "path": text(4096, min_len=1),
        "score": number(),
        "label": one_of(UNLABELLED, LABEL_OK, LABEL_DEFECT),
        "shape": array(integer(1, MAX_SIDE), length=2),
        "map_range": array(number(), length=2),
        "mask": optional(_rle),
    },
    required=("path", "score", "shape"),
)
_STATE = record(
    {
        "version": integer(0, STATE_VERSION),
        "thresholds": record(
            {"image": number(-1e12, 1e12), "pixel": number(-1e12, 1e12), "source": text()}
        ),
        "checkpoint_path": optional(text(4096)),
        "items": array(_ITEM),
        "failures": array(record({"path": text(4096), "reason": text()}, required=("path",))),
    }
)


def check_state(d: Any) -> dict[str, Any]:
    """Check an inspection snapshot (``InspectionState.to_dict()``) before it is used.

    Bounds: each image and mask at most :data:`MAX_MASK_PIXELS` pixels and the masks
    together at most :data:`MAX_MASKS_TOTAL` pixels (what restoring them allocates).

    Raises:
        StateError: one line naming the first bad field.
    """
    if not isinstance(d, dict):
        raise StateError("the inspection state is not a JSON object")
    v = d.get("version", 0)
    if isinstance(v, int) and not isinstance(v, bool) and v > STATE_VERSION:
        raise StateError(f"inspection state version {v} is newer than {STATE_VERSION}")
    try:
        out = _STATE(d, "")
    except SchemaError as exc:
        raise StateError(f"damaged inspection state: {exc}") from None
    total = 0
    for i, e in enumerate(out.get("items", ())):
        h, w = e["shape"]
        where = f"items[{i}]"
        if h * w > MAX_MASK_PIXELS:
            raise StateError(f"damaged inspection state: {where}.shape: {h}x{w} is too large")
        mask = e.get("mask")
        if mask is None:
            continue
        if list(mask["shape"]) != [h, w]:
            raise StateError(
                f"damaged inspection state: {where}.mask: {mask['shape']} is not the image size {h}x{w}"
            )
        total += h * w
        if total > MAX_MASKS_TOTAL:
            raise StateError(
                f"damaged inspection state: {where}.mask: masks over {MAX_MASKS_TOTAL} pixels in all"
            )
    return out


def item_from_entry(e: dict[str, Any]) -> InspectedItem:
    """An item of a checked snapshot entry (:func:`check_state`), no arrays."""
    lo, hi = e.get("map_range", (0.0, 1.0))
    return InspectedItem(
        path=str(e["path"]),
        key=None,
        score=float(e["score"]),
        shape=(int(e["shape"][0]), int(e["shape"][1])),
        thumbnail=None,
        map_min=float(lo),
        map_max=float(hi),
        label=int(e.get("label", UNLABELLED)),
        gt_mask=None if e.get("mask") is None else mask_from_rle(e["mask"]),
    )


__all__ = [
    "MAX_MASK_PIXELS",
    "MAX_MASKS_TOTAL",
    "check_state",
    "item_from_entry",
    "LABEL_DEFECT",
    "LABEL_OK",
    "STATE_VERSION",
    "UNLABELLED",
    "InspectedChunk",
    "InspectedItem",
    "StateError",
    "VerdictCounts",
    "mask_from_rle",
    "mask_to_rle",
]
