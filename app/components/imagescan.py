"""Qt-free scanning of good images: load each file once, keep a thumbnail and facts.

Used by the good-images page in a background :class:`app._qt.workers.Task`.  Every
file is loaded with :func:`core.data.images.load_image` (the very loader training
uses), so a file listed as corrupt here is exactly a file training would skip.
The first :data:`core.data.kind.SAMPLE` readable images of a scan also cast their vote
of the data-kind rule (:func:`core.data.foreground.looks_like_object`, a few ms each),
so the training page can propose a method without reading them again.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from core.data.foreground import looks_like_object
from core.data.images import list_images, load_image
from core.data.kind import SAMPLE, is_grey_image
from core.errors import Cancelled, ImageLoadError
from core.progress import RateGate
from core.types import FailedImage, ProgressCallback, StopCallback, ignore_progress, never_stop

THUMB_SIDE = 112


@dataclass(frozen=True)
class ImageInfo:
    """Facts about one readable image.

    Attributes:
        path: the file as given.
        height / width: original size in pixels.
        gray: True when the three channels are identical (a grayscale picture).
        thumbnail: (h, w, 3) uint8 RGB, longest side ``THUMB_SIDE``, aspect kept.
        object_like: the image's vote of the data-kind rule (an object on a plain
            background), or None when it was not sampled.
    """

    path: str
    height: int
    width: int
    gray: bool
    thumbnail: np.ndarray
    object_like: bool | None = None


@dataclass(frozen=True)
class ScanProgress:
    """Progress of :func:`scan_images` with the items found since the last report."""

    done: int
    total: int
    message: str
    infos: tuple[ImageInfo, ...] = ()
    failures: tuple[FailedImage, ...] = ()

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


@dataclass(frozen=True)
class ScanResult:
    """All readable images (input order) and the files that failed."""

    infos: tuple[ImageInfo, ...]
    failures: tuple[FailedImage, ...]


def collect_images(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Files and folders → absolute image file paths (folders searched recursively).

    Input order is kept and duplicates dropped; files are kept whatever their
    extension (a bad one is then reported by :func:`scan_images`, not silently
    ignored).  No symlinks are resolved, so it is cheap for thousands of files.

    Raises:
        core.errors.DatasetError: a folder cannot be listed.
    """
    out: list[str] = []
    seen: set[str] = set()
    for item in paths:
        p = os.path.abspath(os.fspath(item))
        for f in list_images(p) if os.path.isdir(p) else [p]:
            s = os.path.normpath(str(f))
            if s not in seen:
                seen.add(s)
                out.append(s)
    return out


def thumbnail(img: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """(H, W, 3) uint8 → (h, w, 3) uint8 with max(h, w) == ``side`` (area resampling)."""
    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1.0:
        return np.ascontiguousarray(img)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def describe(img: np.ndarray, path: str, vote: bool = False) -> ImageInfo:
    """Build the :class:`ImageInfo` of a loaded (H, W, 3) uint8 image (with ``vote``,
    its vote of the data-kind rule)."""
    h, w = int(img.shape[0]), int(img.shape[1])
    kind_vote = looks_like_object(img) if vote else None
    return ImageInfo(str(path), h, w, is_grey_image(img), thumbnail(img), kind_vote)


def scan_images(
    paths: Sequence[str | os.PathLike],
    *,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
    report_every_s: float = 0.1,
    votes: int = SAMPLE,
) -> ScanResult:
    """Load every file, describe it and report batches of results as they come; the
    first ``votes`` readable images also vote on the data kind (``ImageInfo.object_like``).

    ``on_progress`` receives :class:`ScanProgress` objects whose ``infos`` /
    ``failures`` are the *new* items since the previous report (so a consumer
    that adds them up sees every item exactly once; do not drop reports).

    Raises:
        Cancelled: ``should_stop()`` returned True (already reported items stay valid).
    """
    infos: list[ImageInfo] = []
    failures: list[FailedImage] = []
    sent_i = sent_f = 0
    report = RateGate(report_every_s)
    report.restart()  # the first report after one interval: results come in batches
    total = len(paths)
    for i, path in enumerate(paths):
        if should_stop():
            raise Cancelled(f"scan cancelled after {i} of {total} images")
        try:
            infos.append(describe(load_image(path), str(path), vote=len(infos) < votes))
        except ImageLoadError as exc:
            failures.append(FailedImage(str(path), exc.reason))
        except MemoryError:
            failures.append(FailedImage(str(path), "image too large to load"))
        if report(i + 1 == total):
            on_progress(
                ScanProgress(
                    i + 1,
                    total,
                    f"read {i + 1} of {total}",
                    tuple(infos[sent_i:]),
                    tuple(failures[sent_f:]),
                )
            )
            sent_i, sent_f = len(infos), len(failures)
    return ScanResult(tuple(infos), tuple(failures))


def summarize(infos: Sequence[ImageInfo]) -> tuple[str, list[str]]:
    """A one-line summary (count and sizes) and warnings about mixed sizes / channels."""
    if not infos:
        return "no images", []
    sizes = Counter((i.width, i.height) for i in infos)
    if len(sizes) <= 3:
        size_txt = ", ".join(f"{w}×{h} ({n})" for (w, h), n in sizes.most_common())
    else:
        ws, hs = [w for w, _ in sizes], [h for _, h in sizes]
        size_txt = f"{min(ws)}–{max(ws)} × {min(hs)}–{max(hs)} px ({len(sizes)} sizes)"
    n_gray = sum(i.gray for i in infos)
    kind = "grayscale" if n_gray == len(infos) else "colour" if n_gray == 0 else "mixed"
    summary = f"{len(infos)} images · {kind} · {size_txt}"
    warnings = []
    if len(sizes) > 1:
        ratios = [w / h for w, h in sizes]
        warnings.append(
            f"Mixed sizes ({len(sizes)} different, width/height {min(ratios):.2f}–{max(ratios):.2f}): "
            "the model works at one input size, so check that they all show the product the same way."
        )
    if 0 < n_gray < len(infos):
        warnings.append(
            f"Mixed channels: {n_gray} grayscale and {len(infos) - n_gray} colour images; "
            "a production line usually gives one kind."
        )
    return summary, warnings
