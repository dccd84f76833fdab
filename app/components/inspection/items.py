"""Plain data of the inspection workflow: item records, counts, labels, masks as JSON.

Qt-free; the frozen dataclasses here are what crosses from worker threads to
the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.types import FailedImage

UNLABELLED, LABEL_OK, LABEL_DEFECT = -1, 0, 1
STATE_VERSION = 1


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


def mask_from_rle(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`mask_to_rle`: (H, W) uint8 in {0, 1}."""
    try:
        h, w = (int(s) for s in rle["shape"])
        counts = np.asarray(rle["counts"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"malformed mask entry ({exc})") from None
    if counts.sum() != h * w or (counts < 0).any():
        raise StateError(f"mask run lengths do not add up to {h}x{w}")
    values = (np.arange(counts.size) % 2).astype(np.uint8)
    return np.repeat(values, counts).reshape(h, w)


def item_from_entry(e: dict[str, Any]) -> InspectedItem:
    """An item of a project-file entry (``InspectionState.to_dict()["items"][i]``), no arrays."""
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
