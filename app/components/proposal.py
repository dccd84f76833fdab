"""Qt-free: which detection method to propose for the project's good images, and why.

The kind of data (:func:`core.data.kind.kind_from_votes`) is decided from the votes the
good-images scan casts (:attr:`app.components.imagescan.ImageInfo.object_like`), and the
method from the registry's measured proposals (:func:`core.registry.propose_method`).
The training page selects the proposed method until the user picks one for the project
(``TrainingSettings.method_chosen``); the user can always choose any method.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, replace

from app.components.imagescan import ImageInfo
from app.components.project import TrainingSettings
from core.data.kind import SAMPLE, DataKind, kind_from_votes
from core.errors import ConfigError
from core.registry import get_method, propose_method


@dataclass(frozen=True)
class Proposal:
    """The method proposed for a data kind.

    Attributes:
        method: the registered method's name.
        kind: what the sampled good images look like.
        measured: why this method, in figures (the method's ``proposed_for`` text).
        sizes: (h, w) of the sampled good images (the working area is fitted to them,
            :func:`core.registry.data_config`).
    """

    method: str
    kind: DataKind
    measured: str
    sizes: tuple[tuple[int, int], ...] = ()

    def text(self, chosen: str | None = None) -> str:
        """Rich text for a label: the proposal, the data's facts and the measured reason;
        names the user's other choice ``chosen`` when it differs."""
        title = html.escape(get_method(self.method).title)
        other = ""
        if chosen is not None and chosen != self.method:
            other = f" (you chose {html.escape(get_method(chosen).title)})"
        return (
            f"<b>Proposed: {title}</b>{other} for a {self.kind.label}: "
            f"{html.escape(self.kind.reason)}.<br>{html.escape(self.measured)}."
        )


def propose(infos: Sequence[ImageInfo], n: int = SAMPLE) -> Proposal | None:
    """The proposal for scanned good images (project order), from the first ``n`` that
    voted on the data kind; None when none has."""
    voted = [i for i in infos if i.object_like is not None][:n]
    if not voted:
        return None
    kind = kind_from_votes([bool(i.object_like) for i in voted], [i.gray for i in voted])
    method, measured = propose_method(kind.kind)
    return Proposal(method, kind, measured, tuple((i.height, i.width) for i in voted))


def page_text(proposal: Proposal | None, settings: TrainingSettings, kind: str) -> str:
    """Rich text for the training page: the proposal (empty without one) and, where the
    working area was fitted to the good images, why (device kind ``kind``)."""
    if proposal is None:
        return ""
    try:
        _config, note = settings.fitted_config(kind, proposal.sizes)
    except ConfigError:
        note = ""
    text = proposal.text(settings.method)
    return text + (f"<br>{html.escape(note[0].upper() + note[1:])}." if note else "")


def follow(settings: TrainingSettings, proposal: Proposal | None) -> TrainingSettings:
    """``settings`` with the proposed method, unless the user chose one (then unchanged)."""
    if proposal is None or settings.method_chosen or settings.method == proposal.method:
        return settings
    return replace(settings, method=proposal.method)


__all__ = ["Proposal", "follow", "page_text", "propose"]
