"""The kind of data a set of good images shows: a *surface* or an *object*.

The detection methods were measured on both kinds (docs/benchmarks.md, docs/flow.md,
docs/experiments.md) and do not rank the same on them, so the application proposes the
method measured best for the kind of the user's good images
(:func:`core.registry.propose_method`).

The rule is the foreground rule of :mod:`core.data.foreground` (no second test): the
first ``n`` good images are sampled and each votes with
:func:`core.data.foreground.looks_like_object` (a plain border round a foreground of
5-90 % of the image).  The data are *objects* when at least ``MIN_SHARE`` of the sample
votes so, else a *surface* (a texture or surface filling the frame).  ``colour`` is
False when every sampled image has identical R, G and B channels (a grey camera).

Arrays: images (H, W, 3) uint8 RGB.  Nothing here imports torch or Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.data.foreground import looks_like_object, objects_by_votes
from core.errors import DatasetError

__all__ = ["KINDS", "SAMPLE", "DataKind", "data_kind", "kind_from_votes"]

#: the data kinds a method can be proposed for (``MethodSpec.proposed_for``)
KINDS = ("surface", "object")
#: how many good images are sampled (the first ones, as ``uses_foreground`` does)
SAMPLE = 16


@dataclass(frozen=True)
class DataKind:
    """What the sampled good images look like.

    Attributes:
        kind: ``"surface"`` (fills the frame) or ``"object"`` (on a plain background).
        colour: False when every sampled image is grey (R == G == B).
        objects: how many sampled images look like an object on a plain background.
        sampled: how many images were sampled (>= 1).
        reason: one human line with the counts behind ``kind``.
    """

    kind: str
    colour: bool
    objects: int
    sampled: int
    reason: str

    @property
    def label(self) -> str:
        """``"grey surface"``, ``"colour object"``, ..."""
        return f"{'colour' if self.colour else 'grey'} {self.kind}"


def kind_from_votes(object_like: Sequence[bool], grey: Sequence[bool]) -> DataKind:
    """The :class:`DataKind` of sampled images from their per-image facts.

    Args:
        object_like: per sampled image, :func:`core.data.foreground.looks_like_object`.
        grey: per sampled image, True when its three channels are identical.

    Raises:
        DatasetError: no image was sampled.
    """
    n = len(object_like)
    if n == 0:
        raise DatasetError("no readable good image to tell the kind of data from")
    hits = int(sum(bool(v) for v in object_like))
    if objects_by_votes(hits, n):
        kind, reason = (
            "object",
            f"a plain background round an object in {hits} of {n} sampled images",
        )
    else:
        kind = "surface"
        reason = f"no plain background round an object in {n - hits} of {n} sampled images"
    return DataKind(kind, not all(bool(g) for g in grey), hits, n, reason)


def is_grey_image(image: np.ndarray) -> bool:
    """True if an (H, W, 3) uint8 image has identical R, G and B channels."""
    return bool(
        np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 1], image[..., 2])
    )


def data_kind(images: Sequence[np.ndarray], n: int = SAMPLE) -> DataKind:
    """The :class:`DataKind` of good (H, W, 3) uint8 images, from the first ``n`` of them
    (about 1-2 ms per sampled image).

    Raises:
        DatasetError: no image given.
    """
    sample = list(images[:n])
    return kind_from_votes(
        [looks_like_object(i) for i in sample], [is_grey_image(i) for i in sample]
    )
