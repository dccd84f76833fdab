"""Image and data-set I/O: any common file format in, RGB uint8 out.

Every image leaves this module as an **RGB uint8 array (H, W, 3)** whatever the
file held:

* grayscale (and gray + alpha) is replicated to 3 channels;
* 16-bit files are scaled to 8 bit with the full-range factor ``255 / 65535``
  (the same factor for every image, so brightness stays comparable);
* float files (e.g. 32-bit TIFF) in ``[0, 1]`` are scaled by 255, others are
  clipped to ``[0, 255]``;
* RGBA is composited on black (``rgb * alpha``) and the alpha dropped.

Files are read with ``np.fromfile`` + ``cv2.imdecode`` so paths with non-ASCII
characters work on every platform.  EXIF orientation is not applied (industrial
cameras do not write it; the pixels are used as stored).

Failures raise :class:`core.errors.ImageLoadError` with a readable ``reason``;
the batch helpers (:func:`load_images`) collect them as
:class:`core.types.FailedImage` and go on with the rest.

Data-set layouts: the MVTec AD category layout (``train/good``,
``test/<type>``, ``ground_truth/<type>/<name>_mask.png``) and a plain folder of
good images (searched recursively).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from core.errors import Cancelled, DatasetError, ImageLoadError
from core.progress import ProgressThrottle
from core.types import (
    FailedImage,
    ProgressCallback,
    StopCallback,
    ignore_progress,
    never_stop,
)

#: File name extensions (lower case) treated as images when folders are listed.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})

_GOOD = "good"
T = TypeVar("T")
_log_lock = threading.Lock()


# --------------------------------------------------------------------- decoding
def _read_bytes(path: Path) -> np.ndarray:
    """Read a file as uint8 bytes, turning OS errors into :class:`ImageLoadError`.

    Only regular files are opened (a FIFO or device named ``*.png`` would block or never
    end); dangling symbolic links and symbolic-link loops are named as such.
    """
    from core.data.imagecheck import check_pixel_budget, regular_file_problem

    problem = regular_file_problem(path)
    if problem:
        raise ImageLoadError(str(path), problem)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except PermissionError:
        raise ImageLoadError(str(path), "permission denied") from None
    except OSError as exc:
        raise ImageLoadError(str(path), f"cannot read file ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ImageLoadError(str(path), "file is empty (0 bytes)")
    check_pixel_budget(path, data)
    return data


def _decode(path: Path, data: np.ndarray) -> np.ndarray:
    """Decode bytes with OpenCV, keeping depth and alpha (``IMREAD_UNCHANGED``)."""
    with _log_lock:  # OpenCV logs a warning for every bad file; the error says it all
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        except cv2.error:
            img = None
        finally:
            cv2.utils.logging.setLogLevel(level)
    if img is None:
        kind = _sniff(data)
        if kind is None:
            reason = "not an image file, or a format that cannot be read"
        else:
            reason = f"corrupt or truncated {kind} file (cannot be decoded)"
        raise ImageLoadError(str(path), reason)
    return img


_MAGIC = {
    b"\x89PNG": "PNG",
    b"\xff\xd8": "JPEG",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _sniff(data: np.ndarray) -> str | None:
    """Name the image format from the file's magic bytes, or None."""
    head = data[:8].tobytes()
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def _to_uint8(img: np.ndarray, path: Path) -> np.ndarray:
    """Scale any supported pixel type to uint8 (see the module docstring)."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        # Full-range scaling: 65535 -> 255 (x / 257, rounded).
        return ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if img.dtype in (np.float32, np.float64, np.float16):
        f = img.astype(np.float32)
        if not np.all(np.isfinite(f)):
            raise ImageLoadError(str(path), "float image contains NaN or infinite values")
        if f.size and f.min() >= 0.0 and f.max() <= 1.0:
            f = f * 255.0
        return np.clip(np.rint(f), 0, 255).astype(np.uint8)
    if img.dtype in (np.int8, np.int16, np.int32):
        return np.clip(img, 0, 255).astype(np.uint8)
    raise ImageLoadError(str(path), f"unsupported pixel type {img.dtype}")


def _to_rgb(img: np.ndarray, path: Path) -> np.ndarray:
    """(H, W), (H, W, 1|2|3|4) uint8 in OpenCV channel order -> (H, W, 3) uint8 RGB."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ImageLoadError(str(path), f"unexpected image dimensions {img.shape}")
    c = img.shape[2]
    if c in (2, 4):  # colour/gray + alpha: composite on black, drop alpha
        alpha = img[:, :, -1:].astype(np.uint16)
        img = ((img[:, :, :-1].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
        c -= 1
    if c == 1:
        return np.ascontiguousarray(np.repeat(img, 3, axis=2))
    if c == 3:
        return np.ascontiguousarray(img[:, :, ::-1])  # BGR -> RGB
    raise ImageLoadError(str(path), f"unsupported number of channels ({c})")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Load an image file as RGB.

    Args:
        path: a PNG, JPEG, BMP or TIFF file (gray, colour, 8/16-bit, float, with
            or without alpha, any size).

    Returns:
        (H, W, 3) uint8 RGB array in [0, 255].

    Raises:
        ImageLoadError: missing, empty, unreadable, truncated or non-image file
            (``.reason`` says which).
    """
    p = Path(path)
    img = _decode(p, _read_bytes(p))
    if img.size == 0 or min(img.shape[:2]) < 1:
        raise ImageLoadError(str(p), "image has no pixels")
    return _to_rgb(_to_uint8(img, p), p)


def load_mask(path: str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Load a defect mask (any of the image formats) as a binary array.

    A pixel is defective when any channel is at least half of full scale
    (>= 128 for 8 bit), or > 0 when no value reaches half scale (0/1 masks, or
    masks drawn with a low defect value such as 100).

    Args:
        path: mask file (MVTec: 0/255 PNG).
        shape: optional (H, W); a mask of another size is resized to it with
            nearest-neighbour interpolation.

    Returns:
        (H, W) uint8 array with values in {0, 1}.
    """
    p = Path(path)
    raw = _decode(p, _read_bytes(p))
    if raw.ndim == 3:
        raw = raw[:, :, : min(raw.shape[2], 3)].max(axis=2)
    raw = _to_uint8(raw, p)
    # 0/1 masks, and masks drawn with a low defect value (e.g. 100): every non-zero pixel
    mask = (raw > 0) if int(raw.max(initial=0)) < 128 else (raw >= 128)
    mask = mask.astype(np.uint8)
    if shape is not None and tuple(mask.shape) != tuple(shape):
        h, w = int(shape[0]), int(shape[1])
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return mask


# --------------------------------------------------------------------- listing
def _is_image_file(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """All image files under ``folder`` (recursive), sorted by relative path.

    Hidden files and folders (names starting with ``.``) are skipped; the
    extension test is case-insensitive (see :data:`IMAGE_EXTENSIONS`).

    Raises:
        DatasetError: ``folder`` does not exist or is not a folder.
    """
    root = Path(folder)
    if not root.exists():
        raise DatasetError(f"folder not found: {root}")
    if not root.is_dir():
        raise DatasetError(f"not a folder: {root}")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath) / f for f in filenames if _is_image_file(Path(f)))
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand a mix of files and folders into a list of files, input order kept.

    Folders contribute their images (:func:`list_images`); files are kept as
    given whatever their extension (so a bad file is reported, not silently
    dropped), as are paths that do not exist (loading reports "file not
    found").  Duplicates are removed.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for item in paths:
        p = Path(item)
        for f in list_images(p) if p.is_dir() else [p]:
            key = f.resolve() if f.exists() else f
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


# --------------------------------------------------------------------- batches
def load_images(
    paths: Sequence[str | os.PathLike],
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> tuple[list[tuple[str, np.ndarray]], list[FailedImage]]:
    """Load many images; a file that fails is recorded and the rest go on.

    Returns:
        ``(loaded, failed)``: ``loaded`` is a list of ``(path, (H, W, 3) uint8
        RGB)`` in input order, ``failed`` a list of :class:`FailedImage`.

    Raises:
        Cancelled: ``should_stop()`` returned True.
    """
    report = ProgressThrottle(on_progress)
    loaded: list[tuple[str, np.ndarray]] = []
    failed: list[FailedImage] = []
    total = len(paths)
    report(0, total, "loading images", force=True)
    for i, path in enumerate(paths):
        if should_stop():
            raise Cancelled(f"loading cancelled after {i} of {total} images")
        try:
            loaded.append((str(path), load_image(path)))
        except ImageLoadError as exc:
            failed.append(FailedImage(path=exc.path, reason=exc.reason))
        report(i + 1, total, f"loaded {Path(path).name}")
    return loaded, failed


def split_held_out(
    items: Sequence[T], fraction: float = 0.1, max_held: int = 20, min_total: int = 10
) -> tuple[list[T], list[T]]:
    """Split good images into ``(train, held_out)``: every k-th item is held out.

    ``held_out`` (``fraction`` of the items, at most ``max_held``) is meant for
    calibrating thresholds on good images the model never saw; with fewer than
    ``min_total`` items nothing is held out.  Deterministic (evenly spaced picks).
    """
    n = len(items)
    k = min(max_held, int(n * fraction)) if n >= min_total else 0
    if k <= 0:
        return list(items), []
    picked = set(np.linspace(0, n - 1, k).round().astype(int).tolist())
    train = [x for i, x in enumerate(items) if i not in picked]
    return train, [items[i] for i in sorted(picked)]


# --------------------------------------------------------------------- MVTec AD
def data_summary(images: Sequence[np.ndarray], source: str = "images in memory") -> dict:
    """``metadata.data_summary`` of checkpoints: what a model was trained on.

    ``images``: RGB uint8 (H, W, 3) arrays.  ``sizes``: the (at most 20) most common
    sizes as ``"WxH"`` strings, most common first; ``channels``: ``gray`` when every
    image has equal R, G and B, ``colour`` when none has, else ``mixed``.
    """
    from collections import Counter

    sizes = Counter(f"{img.shape[1]}x{img.shape[0]}" for img in images)
    grey = sum(
        1
        for img in images
        if (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
    )
    channels = "gray" if grey == len(images) else "colour" if grey == 0 else "mixed"
    return {
        "n_images": len(images),
        "sizes": [k for k, _ in sizes.most_common(20)],
        "channels": channels,
        "source": str(source),
    }


@dataclass(frozen=True)
class MvtecItem:
    """One test image of an MVTec AD category.

    ``defect_type`` is ``"good"`` for defect-free images; ``mask_path`` is the
    ground-truth mask (None for good images, or when the data set has none).
    """

    path: Path
    defect_type: str
    mask_path: Path | None = None

    @property
    def is_anomalous(self) -> bool:
        return self.defect_type != _GOOD


@dataclass(frozen=True)
class MvtecCategory:
    """An MVTec AD category: ``train`` good images and labelled ``test`` items."""

    root: Path
    train: list[Path]
    test: list[MvtecItem]

    @property
    def defect_types(self) -> list[str]:
        """Defect type names (without ``good``), sorted."""
        return sorted({t.defect_type for t in self.test if t.is_anomalous})


def is_mvtec(root: str | os.PathLike) -> bool:
    """True if ``root`` looks like an MVTec AD category (``train/good`` or ``test/<type>``)."""
    r = Path(root)
    if (r / "train" / _GOOD).is_dir():
        return True
    test = r / "test"
    return test.is_dir() and any(c.is_dir() for c in test.iterdir())


def _find_mask(gt_dir: Path, image: Path) -> Path | None:
    for name in (f"{image.stem}_mask.png", f"{image.stem}.png", f"{image.stem}_mask{image.suffix}"):
        cand = gt_dir / name
        if cand.is_file():
            return cand
    return None


def read_mvtec(root: str | os.PathLike) -> MvtecCategory:
    """Read an MVTec AD category folder.

    Layout: ``train/good/*``, ``test/<type>/*`` (``good`` or a defect type),
    ``ground_truth/<type>/<stem>_mask.png``.  Defect images whose mask is
    missing get ``mask_path=None``.

    Raises:
        DatasetError: ``root`` is missing or not in the MVTec layout.
    """
    r = Path(root)
    if not r.is_dir():
        raise DatasetError(f"folder not found: {r}")
    if not is_mvtec(r):
        raise DatasetError(
            f"{r} is not an MVTec AD category (expected train/good and/or test/<type>/)"
        )
    train_dir = r / "train" / _GOOD
    train = list_images(train_dir) if train_dir.is_dir() else []
    test: list[MvtecItem] = []
    test_dir = r / "test"
    if test_dir.is_dir():
        for type_dir in sorted(
            d for d in test_dir.iterdir() if d.is_dir() and not d.name.startswith(".")
        ):
            gt_dir = r / "ground_truth" / type_dir.name
            for img in list_images(type_dir):
                mask = None if type_dir.name == _GOOD else _find_mask(gt_dir, img)
                test.append(MvtecItem(path=img, defect_type=type_dir.name, mask_path=mask))
    return MvtecCategory(root=r, train=train, test=test)


def good_image_paths(data_dir: str | os.PathLike) -> list[Path]:
    """The good (defect-free) training images of a data folder.

    An MVTec AD category gives its ``train/good`` images; any other folder
    gives all images under it.

    Raises:
        DatasetError: the folder is missing or holds no images.
    """
    d = Path(data_dir)
    if not d.exists():
        raise DatasetError(f"folder not found: {d}")
    if not d.is_dir():
        raise DatasetError(f"not a folder: {d}")
    folder = d / "train" / _GOOD
    if not folder.is_dir():
        if is_mvtec(d):
            raise DatasetError(f"{d} looks like an MVTec AD category but has no train/good folder")
        folder = d
    paths = list_images(folder)
    if not paths:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DatasetError(f"no images found in {folder} (looked for {exts})")
    return paths


__all__ = [
    "IMAGE_EXTENSIONS",
    "MvtecCategory",
    "MvtecItem",
    "expand_paths",
    "good_image_paths",
    "is_mvtec",
    "list_images",
    "load_image",
    "load_images",
    "load_mask",
    "read_mvtec",
    "split_held_out",
]
