"""Qt-free model of the inspection workflow: items, thresholds, verdicts, labels.

Per-item scalars live in numpy arrays so that moving a threshold re-derives all
verdicts in one vectorised comparison (microseconds for thousands of items);
the large arrays (anomaly maps, reconstructions) live on disk in an
:class:`~app.components.inspection.store.ArrayStore` and are read back for the image on
screen only.

Verdict rule (the same as ``core.evaluate.thresholds``): an image is **NG** (defective)
iff ``score >= thresholds.image``; a pixel is defective iff
``anomaly_map >= thresholds.pixel``.

Items are identified by their source path: adding a path that is already
present updates that row in place (re-inspection keeps its label and mask).

Views observe the state through :meth:`InspectionState.subscribe`; callbacks
receive ``(kind, info)`` with ``kind`` one of ``reset``, ``inserted``
(``(first, last)``), ``updated`` / ``labels`` / ``verdicts`` (int64 index
array), ``mask`` (index), ``thresholds`` (:class:`Thresholds`), ``failures``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.components.inspection.items import (
    LABEL_DEFECT,
    LABEL_OK,
    STATE_VERSION,
    UNLABELLED,
    InspectedChunk,
    InspectedItem,
    StateError,
    VerdictCounts,
    check_state,
    item_from_entry,
    mask_to_rle,
)
from app.components.inspection.store import IMAGE, MAP, RECONSTRUCTION, ArrayStore
from core.config import Thresholds
from core.types import FailedImage

Listener = Callable[[str, Any], None]


# --------------------------------------------------------------------- the state
class InspectionState:
    """The inspected batch: paths, scores, labels, masks, thresholds and failures.

    Args:
        store: where the large arrays are kept (a private temporary store by default).
        thresholds: initial thresholds (usually the detector's).
    """

    def __init__(
        self, store: ArrayStore | None = None, thresholds: Thresholds | None = None
    ) -> None:
        self.store = store if store is not None else ArrayStore()
        self.thresholds = thresholds or Thresholds()
        self.checkpoint_path: str | None = None
        self.failures: list[FailedImage] = []
        self._listeners: list[Listener] = []
        self._reset_arrays()

    def _reset_arrays(self) -> None:
        self._paths: list[str] = []
        self._index: dict[str, int] = {}
        self._keys: list[int | None] = []
        self._shapes: list[tuple[int, int]] = []
        self._thumbs: list[np.ndarray | None] = []
        self._masks: dict[str, np.ndarray] = {}
        self._scores = np.empty(0, np.float64)
        self._labels = np.empty(0, np.int8)
        self._map_range = np.empty((0, 2), np.float32)
        self._ng = np.empty(0, bool)

    # ----------------------------------------------------------------- observers
    def subscribe(self, callback: Listener) -> None:
        """Call ``callback(kind, info)`` after every change (see module docstring)."""
        self._listeners.append(callback)

    def unsubscribe(self, callback: Listener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _emit(self, kind: str, info: Any = None) -> None:
        for cb in list(self._listeners):
            cb(kind, info)

    # ----------------------------------------------------------------- read access
    def __len__(self) -> int:
        return len(self._paths)

    @property
    def paths(self) -> Sequence[str]:
        return tuple(self._paths)

    def path(self, i: int) -> str:
        return self._paths[i]

    def name(self, i: int) -> str:
        """``parent/file`` of item ``i`` (file names repeat across defect-type folders)."""
        p = Path(self._paths[i])
        return f"{p.parent.name}/{p.name}" if p.parent.name else p.name

    def index_of(self, path: str) -> int | None:
        return self._index.get(str(path))

    def key(self, i: int) -> int | None:
        return self._keys[i]

    def shape(self, i: int) -> tuple[int, int]:
        return self._shapes[i]

    def thumbnail(self, i: int) -> np.ndarray | None:
        return self._thumbs[i]

    @property
    def scores(self) -> np.ndarray:
        """(n,) float64 image scores (read-only view)."""
        v = self._scores.view()
        v.flags.writeable = False
        return v

    @property
    def labels(self) -> np.ndarray:
        """(n,) int8 labels: -1 unknown, 0 OK, 1 defective (read-only view)."""
        v = self._labels.view()
        v.flags.writeable = False
        return v

    @property
    def verdicts(self) -> np.ndarray:
        """(n,) bool, True = NG (``score >= thresholds.image``) (read-only view)."""
        v = self._ng.view()
        v.flags.writeable = False
        return v

    def score(self, i: int) -> float:
        return float(self._scores[i])

    def label(self, i: int) -> int:
        return int(self._labels[i])

    def verdict(self, i: int) -> bool:
        """True = NG for item ``i`` (cheap scalar access for views)."""
        return bool(self._ng[i])

    @property
    def map_range(self) -> tuple[float, float]:
        """(min, max) over all anomaly maps, (0, 1) when empty."""
        if len(self) == 0:
            return 0.0, 1.0
        return float(self._map_range[:, 0].min()), float(self._map_range[:, 1].max())

    def mask(self, i: int) -> np.ndarray | None:
        """The ground-truth / painted defect mask of item ``i``: (H, W) uint8 {0, 1} or None."""
        return self._masks.get(self._paths[i])

    def has_map(self, i: int) -> bool:
        return self.store.has(self._keys[i], MAP)

    def anomaly_map(self, i: int) -> np.ndarray | None:
        """(H, W) float32 anomaly map of item ``i`` or None when not available."""
        return self.store.get(self._keys[i], MAP)

    def reconstruction(self, i: int) -> np.ndarray | None:
        """(H, W, 3) uint8 reconstruction of item ``i`` or None."""
        return self.store.get(self._keys[i], RECONSTRUCTION)

    def image(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB pixels: from the store (exports) or the source file.

        Raises:
            core.errors.ImageLoadError: the source file can no longer be read.
        """
        stored = self.store.get(self._keys[i], IMAGE)
        if stored is not None:
            return stored
        from core.data.images import load_image

        return load_image(self._paths[i])

    def counts(self) -> VerdictCounts:
        n_fail = int(np.count_nonzero(self._ng))
        return VerdictCounts(
            n=len(self),
            n_pass=len(self) - n_fail,
            n_fail=n_fail,
            n_ok_labels=int(np.count_nonzero(self._labels == LABEL_OK)),
            n_defect_labels=int(np.count_nonzero(self._labels == LABEL_DEFECT)),
        )

    # ----------------------------------------------------------------- changes
    def add_items(self, items: Iterable[InspectedItem]) -> None:
        """Append new items; an item whose path is already present updates that row.

        A re-inspected row keeps its label and mask unless the new item has them.
        """
        new: list[InspectedItem] = []
        updated: list[int] = []
        pending: set[str] = set()
        for it in items:
            i = self._index.get(it.path)
            if i is None:
                if it.path not in pending:  # a duplicate within one call: first wins
                    pending.add(it.path)
                    new.append(it)
                continue
            if self._keys[i] is not None and self._keys[i] != it.key:
                self.store.discard(self._keys[i])
            self._keys[i], self._shapes[i], self._thumbs[i] = it.key, it.shape, it.thumbnail
            self._scores[i] = it.score
            self._map_range[i] = (it.map_min, it.map_max)
            if it.label != UNLABELLED:
                self._labels[i] = it.label
            if it.gt_mask is not None:
                self._masks[it.path] = it.gt_mask
            updated.append(i)
        if updated:
            idx = np.asarray(updated, np.int64)
            self._ng[idx] = self._scores[idx] >= self.thresholds.image
            self._emit("updated", idx)
        if not new:
            return
        first = len(self)
        for it in new:
            self._index[it.path] = len(self._paths)
            self._paths.append(it.path)
            self._keys.append(it.key)
            self._shapes.append((int(it.shape[0]), int(it.shape[1])))
            self._thumbs.append(it.thumbnail)
            if it.gt_mask is not None:
                self._masks[it.path] = it.gt_mask
        scores = np.array([it.score for it in new], np.float64)
        self._scores = np.concatenate([self._scores, scores])
        self._labels = np.concatenate([self._labels, np.array([it.label for it in new], np.int8)])
        rng = np.array([(it.map_min, it.map_max) for it in new], np.float32).reshape(-1, 2)
        self._map_range = np.concatenate([self._map_range, rng])
        self._ng = np.concatenate([self._ng, scores >= self.thresholds.image])
        self._emit("inserted", (first, len(self) - 1))

    def add_failures(self, failures: Iterable[FailedImage]) -> None:
        new = list(failures)
        if new:
            self.failures.extend(new)
            self._emit("failures", None)

    def set_thresholds(
        self, image: float | None = None, pixel: float | None = None, source: str = "manual"
    ) -> np.ndarray:
        """Change the thresholds; re-derive every verdict (vectorised).

        Returns:
            int64 indices of the items whose verdict changed.
        """
        t = self.thresholds
        new = Thresholds(
            image=t.image if image is None else float(image),
            pixel=t.pixel if pixel is None else float(pixel),
            source=source,
        )
        if new == t:
            return np.empty(0, np.int64)
        self.thresholds = new
        changed = np.empty(0, np.int64)
        if new.image != t.image:
            ng = self._scores >= new.image
            changed = np.flatnonzero(ng != self._ng)
            self._ng = ng
        self._emit("thresholds", new)
        if changed.size:
            self._emit("verdicts", changed)
        return changed

    def set_label(self, indices: int | Sequence[int], label: int) -> None:
        """Set the label (-1 unknown, 0 OK, 1 defective) of one or more items."""
        if label not in (UNLABELLED, LABEL_OK, LABEL_DEFECT):
            raise StateError(f"label must be -1, 0 or 1, got {label}")
        idx = np.atleast_1d(np.asarray(indices, np.int64))
        if idx.size == 0:
            return
        self._labels[idx] = label
        self._emit("labels", idx)

    def set_mask(self, i: int, mask: np.ndarray | None) -> None:
        """Set (or with None remove) the defect mask of item ``i``: (H, W) uint8 {0, 1}."""
        path = self._paths[i]
        if mask is None or not np.any(mask):
            self._masks.pop(path, None)
        else:
            if tuple(mask.shape) != self._shapes[i]:
                raise StateError(f"mask shape {mask.shape} does not match image {self._shapes[i]}")
            self._masks[path] = (np.asarray(mask) != 0).astype(np.uint8)
        self._emit("mask", i)

    def remove(self, indices: Iterable[int]) -> None:
        """Remove items (and their stored arrays)."""
        drop = set(int(i) for i in indices)
        if not drop:
            return
        keep = [i for i in range(len(self)) if i not in drop]
        for i in drop:
            self.store.discard(self._keys[i])
            self._masks.pop(self._paths[i], None)
        sel = np.asarray(keep, np.int64)
        self._paths = [self._paths[i] for i in keep]
        self._keys = [self._keys[i] for i in keep]
        self._shapes = [self._shapes[i] for i in keep]
        self._thumbs = [self._thumbs[i] for i in keep]
        self._scores, self._labels = self._scores[sel], self._labels[sel]
        self._map_range, self._ng = self._map_range[sel], self._ng[sel]
        self._index = {p: i for i, p in enumerate(self._paths)}
        self._emit("reset", None)

    def clear(self) -> None:
        """Remove every item (and its stored arrays) and every failure."""
        for key in self._keys:
            self.store.discard(key)
        self._reset_arrays()
        self.failures = []
        self._emit("reset", None)

    # ----------------------------------------------------------------- project file
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (scores, labels, masks as RLE, thresholds).

        Anomaly maps are not included (they can be large); a restored state shows
        images and scores and is re-inspected to get the maps back.
        """
        items = []
        for i, p in enumerate(self._paths):
            m = self._masks.get(p)
            items.append(
                {
                    "path": p,
                    "score": float(self._scores[i]),
                    "label": int(self._labels[i]),
                    "shape": list(self._shapes[i]),
                    "map_range": [float(v) for v in self._map_range[i]],
                    "mask": None if m is None else mask_to_rle(m),
                }
            )
        return {
            "version": STATE_VERSION,
            "thresholds": self.thresholds.to_dict(),
            "checkpoint_path": self.checkpoint_path,
            "items": items,
            "failures": [{"path": f.path, "reason": f.reason} for f in self.failures],
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        """Replace the state with a :meth:`to_dict` snapshot.

        Raises:
            StateError: the snapshot is malformed or from a newer version.
        """
        d = check_state(d)
        try:
            thresholds = Thresholds.from_dict(d.get("thresholds", {}))
            items = [item_from_entry(e) for e in d.get("items", [])]
            failures = [
                FailedImage(f["path"], str(f.get("reason", ""))) for f in d.get("failures", [])
            ]
        except StateError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StateError(f"malformed inspection state: {exc}") from None
        for key in self._keys:
            self.store.discard(key)
        self._reset_arrays()
        self.thresholds = thresholds
        self.checkpoint_path = d.get("checkpoint_path")
        self.failures = failures
        listeners, self._listeners = self._listeners, []
        try:
            self.add_items(items)
        finally:
            self._listeners = listeners
        self._emit("reset", None)


__all__ = [
    "LABEL_DEFECT",
    "LABEL_OK",
    "UNLABELLED",
    "InspectedChunk",
    "InspectedItem",
    "InspectionState",
    "StateError",
    "VerdictCounts",
    "mask_to_rle",
]
