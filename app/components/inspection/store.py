"""Disk-backed store of the large per-image arrays of an inspected batch.

One thousand inspected 1024x1024 images carry ~4 GiB of float32 anomaly maps
and ~3 GiB of reconstructions: far too much to keep in memory.  The inspection
worker therefore writes each image's arrays to a private temporary folder as
``.npy`` files (exact values, so an export later writes the model's maps
unchanged), and the GUI reads back only the image on screen, through a small
in-memory LRU cache.  Scores, labels and thumbnails stay in memory
(:mod:`app.components.inspection.model`).

Qt-free and thread-safe: the worker thread writes new keys while the GUI
thread reads others.  Files are written atomically (temporary name, then
``os.replace``) so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from core.io.files import atomic_write

#: Array names used by the inspection workflow.
MAP = "map"  # (H, W) float32 anomaly map
RECONSTRUCTION = "recon"  # (H, W, 3) uint8 RGB reconstruction
IMAGE = "image"  # (H, W, 3) uint8 RGB pixels, kept only when no source file exists


class ArrayStore:
    """Per-item numpy arrays on disk with an in-memory LRU cache.

    Args:
        root: folder to use; by default a fresh temporary folder that
            :meth:`close` removes.
        cache_items: how many ``(key, name)`` arrays stay cached in memory.
    """

    def __init__(self, root: str | os.PathLike | None = None, cache_items: int = 12) -> None:
        self._owned = root is None
        self.root = Path(tempfile.mkdtemp(prefix="draem-inspection-") if root is None else root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._names: dict[int, set[str]] = {}
        self._cache_items = max(0, int(cache_items))
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._closed = False

    # ----------------------------------------------------------------- keys
    def new_key(self) -> int:
        """A fresh item key (thread-safe, unique within this store)."""
        with self._lock:
            return next(self._counter)

    def _file(self, key: int, name: str) -> Path:
        return self.root / f"{int(key):08d}_{name}.npy"

    # ----------------------------------------------------------------- access
    def put(self, key: int, name: str, array: np.ndarray) -> None:
        """Store ``array`` (any dtype/shape) under ``(key, name)``, replacing it."""
        if self._closed:
            raise RuntimeError("the array store is closed")
        arr = np.ascontiguousarray(array)
        target = self._file(key, name)
        with atomic_write(target, durable=False) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)  # a cache: no fsync needed
        with self._lock:
            self._cache.pop((key, name), None)
            self._names.setdefault(int(key), set()).add(name)

    def get(self, key: int | None, name: str) -> np.ndarray | None:
        """The array stored under ``(key, name)`` (read-only), or None if absent."""
        if key is None or self._closed:
            return None
        with self._lock:
            hit = self._cache.get((key, name))
            if hit is not None:
                self._cache.move_to_end((key, name))
                return hit
        path = self._file(key, name)
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        arr.setflags(write=False)
        if self._cache_items:
            with self._lock:
                self._cache[(key, name)] = arr
                while len(self._cache) > self._cache_items:
                    self._cache.popitem(last=False)
        return arr

    def has(self, key: int | None, name: str) -> bool:
        """True when ``(key, name)`` is stored."""
        if key is None:
            return False
        with self._lock:
            return name in self._names.get(int(key), ())

    def discard(self, key: int | None) -> None:
        """Forget every array of ``key`` (missing ones are ignored)."""
        if key is None:
            return
        with self._lock:
            names = self._names.pop(int(key), set())
            for name in names:
                self._cache.pop((key, name), None)
        for name in names:
            self._file(key, name).unlink(missing_ok=True)

    def clear(self) -> None:
        """Forget every array (the folder stays usable)."""
        with self._lock:
            self._cache.clear()
            self._names.clear()
        for f in self.root.glob("*.npy"):
            f.unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        """Bytes currently used on disk."""
        return sum(f.stat().st_size for f in self.root.glob("*.npy"))

    def close(self) -> None:
        """Drop the cache and, for a temporary folder, delete it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._cache.clear()
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        with contextlib.suppress(Exception):
            self.close()


__all__ = ["IMAGE", "MAP", "RECONSTRUCTION", "ArrayStore"]
