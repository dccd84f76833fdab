"""Checks made before an image file is read or decoded (used by :mod:`core.data.images`).

* :func:`regular_file_problem` — only regular files are opened: a FIFO named ``*.png``
  would block the reader forever and a device would never end; dangling symbolic
  links, symbolic-link loops and files that vanished are named as such.
* :func:`check_pixel_budget` — an image whose header declares more than
  :data:`MAX_PIXELS` pixels is refused before it is decoded (a small compressed file can
  declare a huge image: 100 megapixels already take 300 MB as RGB).  The size is read
  from the PNG ``IHDR``, JPEG ``SOFn``, BMP and TIFF headers without decoding; other
  files are left to OpenCV's own limit.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

import numpy as np

from core.errors import ImageLoadError

#: largest image accepted, in pixels (width x height)
MAX_PIXELS = 100_000_000


def regular_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as an image file, or None when it is a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return "dangling symbolic link (its target does not exist)"
        return "file not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        return f"cannot read file ({exc.strerror or exc})"
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "is a folder, not an image file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not an image file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not an image file"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return None


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return w, h
    return None


def _bmp(head: bytes) -> tuple[int, int] | None:
    if head[:2] == b"BM" and len(head) >= 26:
        (size,) = struct.unpack("<I", head[14:18])
        if size == 12:
            w, h = struct.unpack("<HH", head[18:22])
        else:
            w, h = struct.unpack("<ii", head[18:26])
        return abs(w), abs(h)
    return None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xFF, 0x01) or 0xD0 <= marker <= 0xD9:
            i += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8:
        return None
    (magic, ifd) = struct.unpack(order + "HI", data[2:8])
    if magic != 42 or ifd + 2 > len(data):
        return None
    (n,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    dims: dict[int, int] = {}
    for k in range(n):
        entry = data[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) < 12:
            break
        tag, typ = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            fmt = "H" if typ == 3 else "I"
            (dims[tag],) = struct.unpack(order + fmt, entry[8 : 8 + struct.calcsize(fmt)])
    if 256 in dims and 257 in dims:
        return dims[256], dims[257]
    return None


def header_size(data: np.ndarray | bytes) -> tuple[int, int] | None:
    """(width, height) declared by a PNG, JPEG, BMP or TIFF header, or None if unknown."""
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    try:
        return _png(raw[:32]) or _bmp(raw[:32]) or _jpeg(raw[: 1 << 20]) or _tiff(raw[: 1 << 20])
    except struct.error:
        return None


def check_pixel_budget(path: Path, data: np.ndarray | bytes, budget: int = MAX_PIXELS) -> None:
    """Raise :class:`ImageLoadError` when the header declares more than ``budget`` pixels."""
    size = header_size(data)
    if size is not None and size[0] * size[1] > budget:
        w, h = size
        raise ImageLoadError(
            str(path),
            f"image is {w}x{h} ({w * h / 1e6:.0f} megapixels), over the limit of "
            f"{budget / 1e6:.0f} megapixels",
        )


#: training images need room for the network's strides and crops: the shorter side at
#: least this many pixels, and the longer side at most :data:`MAX_ASPECT` times it
MIN_TRAIN_SIDE, MAX_ASPECT = 32, 32


def training_shape_problem(shape: tuple[int, ...]) -> str | None:
    """Why an image of ``shape`` (H, W, ...) cannot be trained on, or None."""
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) < MIN_TRAIN_SIDE:
        return f"too small to train on ({h}x{w}; each side must be >= {MIN_TRAIN_SIDE} pixels)"
    if max(h, w) > MAX_ASPECT * min(h, w):
        return f"aspect ratio too extreme to train on ({h}x{w}; at most 1:{MAX_ASPECT})"
    return None


__all__ = [
    "MAX_ASPECT",
    "MAX_PIXELS",
    "MIN_TRAIN_SIDE",
    "check_pixel_budget",
    "header_size",
    "regular_file_problem",
    "training_shape_problem",
]
