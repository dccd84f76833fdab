"""Qt-free generation of simulator previews for the synthetic-anomaly browser.

Runs in a background :class:`app._qt.workers.Task`; only frozen dataclasses with
numpy arrays come back to the GUI thread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from core.config import SimulatorConfig, model_preset
from core.data.images import load_image
from core.errors import Cancelled, ImageLoadError
from core.models.draem.recipe import recipe
from core.types import (
    FailedImage,
    Progress,
    ProgressCallback,
    StopCallback,
    SyntheticSample,
    ignore_progress,
    never_stop,
)


@dataclass(frozen=True)
class PreviewItem:
    """One browser row: the source file and the simulator's sample of it."""

    path: str
    sample: SyntheticSample


@dataclass(frozen=True)
class PreviewResult:
    """The samples of one preview request (in index order) and files that failed."""

    items: tuple[PreviewItem, ...]
    failures: tuple[FailedImage, ...]
    config: SimulatorConfig
    seed: int
    start: int
    preset: str = "paper"
    #: compact preset on objects on a plain background: anomalies on the object only
    object_only: bool = False


def make_previews(
    paths: Sequence[str | os.PathLike],
    config: SimulatorConfig,
    seed: int,
    start: int,
    count: int,
    *,
    preset: str = "paper",
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> PreviewResult:
    """Simulate samples ``start .. start + count - 1``, as training would see them.

    Sample ``i`` uses image ``paths[i % len(paths)]`` and simulator index ``i``
    (the same pairing as :class:`core.simulate.dataset.SyntheticDataset` without the
    shuffle), so a given (seed, index) always shows the same anomaly.  ``preset``:
    ``paper`` shows [official]'s simulator, ``compact`` the compact preset's
    (:func:`core.simulate.defects.compact_simulator`: working-size crops, surface defects,
    grey anomalies on grey images).

    Raises:
        Cancelled: ``should_stop()`` returned True (a newer request superseded it).
        core.errors.DatasetError: the anomaly source is unusable (e.g. empty folder).
    """
    items: list[PreviewItem] = []
    failures: list[FailedImage] = []
    cache: dict[str, object] = {}
    n = len(paths)
    for k in range(count if n else 0):  # read the images the samples need, once each
        path = str(paths[(start + k) % n])
        if path not in cache:
            if should_stop():
                raise Cancelled("preview superseded")
            try:
                cache[path] = load_image(path)
            except ImageLoadError as exc:
                cache[path] = None
                failures.append(FailedImage(path, exc.reason))
    loaded = [im for im in cache.values() if im is not None]
    mc = model_preset(preset)
    sim = recipe(mc).simulator(config, loaded, seed, mc)
    if hasattr(sim, "prepare"):  # simulators that work at a working geometry
        cache = {p: None if im is None else sim.prepare(im) for p, im in cache.items()}
    for k in range(count if n else 0):
        if should_stop():
            raise Cancelled("preview superseded")
        index = start + k
        path = str(paths[index % n])
        img = cache[path]
        if img is not None:
            items.append(PreviewItem(path, sim.sample(img, index)))
        on_progress(Progress(k + 1, count, f"sample {index}"))
    return PreviewResult(
        tuple(items),
        tuple(failures),
        config,
        int(seed),
        int(start),
        preset,
        object_only=bool(getattr(sim, "foreground", False)),
    )
