"""Ground-truth masks checked against the image they belong to (used by evaluation).

A defect image's mask is *suspect* when it is missing, unreadable, of another size than
the image, empty, or marks defects with a value other than full scale (MVTec masks are
0/255; a mask drawn with 100 would read as empty under the usual ``>= 128`` rule).
Each problem is named by :func:`load_ground_truth`, so the evaluation can warn about
the file and count it instead of silently scoring against a wrong mask.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import ImageLoadError

#: problem kinds, as counted in the evaluation's JSON
MISSING, UNREADABLE, WRONG_SIZE, LOW_VALUE, EMPTY = (
    "missing",
    "unreadable",
    "wrong_size",
    "low_defect_value",
    "empty",
)
KINDS = (MISSING, UNREADABLE, WRONG_SIZE, LOW_VALUE, EMPTY)


@dataclass(frozen=True)
class MaskProblem:
    """One suspect ground-truth mask: the image, the mask file (if any), what is wrong."""

    image: str
    mask: str | None
    kind: str
    detail: str

    def message(self) -> str:
        where = self.mask or self.image
        return f"ground truth {where}: {self.detail}"


def load_ground_truth(
    image: str | os.PathLike, mask_path: str | os.PathLike | None, shape: tuple[int, int]
) -> tuple[np.ndarray | None, list[MaskProblem]]:
    """The (H, W) uint8 {0, 1} mask of a defect image and the problems found.

    A missing or unreadable mask gives ``None`` (the image is left out of the pixel
    metrics); a mask of another size is resized (nearest neighbour); a mask whose
    non-zero value is below half scale counts every non-zero pixel as defect.
    """
    from core.data.images import _decode, _read_bytes, _to_uint8

    img = str(image)
    if mask_path is None:
        return None, [MaskProblem(img, None, MISSING, "defect image has no mask")]
    p = Path(mask_path)
    try:
        raw = _decode(p, _read_bytes(p))
        if raw.ndim == 3:
            raw = raw[:, :, : min(raw.shape[2], 3)].max(axis=2)
        raw = _to_uint8(raw, p)
    except ImageLoadError as exc:
        return None, [MaskProblem(img, str(p), UNREADABLE, exc.reason)]
    problems: list[MaskProblem] = []
    top = int(raw.max(initial=0))
    if top == 0:
        problems.append(MaskProblem(img, str(p), EMPTY, "mask marks no defect pixel"))
        mask = np.zeros(raw.shape, np.uint8)
    elif top <= 1:
        mask = (raw > 0).astype(np.uint8)
    elif top < 128:
        problems.append(
            MaskProblem(
                img,
                str(p),
                LOW_VALUE,
                f"defect value {top} instead of 255 (every non-zero pixel counted as defect)",
            )
        )
        mask = (raw > 0).astype(np.uint8)
    else:
        mask = (raw >= 128).astype(np.uint8)
    h, w = int(shape[0]), int(shape[1])
    if mask.shape != (h, w):
        problems.append(
            MaskProblem(
                img,
                str(p),
                WRONG_SIZE,
                f"mask is {mask.shape[1]}x{mask.shape[0]}, image {w}x{h} (resized)",
            )
        )
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return mask, problems


def count_problems(problems: Iterable[MaskProblem]) -> dict[str, int]:
    """Number of suspect masks per kind (every kind present, zeros included)."""
    counts = Counter(p.kind for p in problems)
    return {k: int(counts.get(k, 0)) for k in KINDS}


__all__ = ["KINDS", "MaskProblem", "count_problems", "load_ground_truth"]
