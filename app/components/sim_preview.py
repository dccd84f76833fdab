"""Qt-free generation of simulator previews for the synthetic-anomaly browser.

Runs in a background :class:`app._qt.workers.Task`; only frozen dataclasses with
numpy arrays come back to the GUI thread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.config import SimulatorConfig
from core.data.images import load_image
from core.errors import Cancelled, ImageLoadError
from core.registry import get_method
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
    #: the method whose training samples these are, and its variant (DRAEM: the preset)
    method: str = "draem"
    variant: str = ""
    #: what the samples are, one sentence for the page (HTML)
    note: str = ""
    #: anomalies kept on the object (objects on a plain background)
    object_only: bool = False


def make_previews(
    paths: Sequence[str | os.PathLike],
    config: SimulatorConfig,
    seed: int,
    start: int,
    count: int,
    *,
    method: str = "draem",
    method_config: Any = None,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> PreviewResult:
    """Simulate samples ``start .. start + count - 1``, as ``method`` trains on them.

    Sample ``i`` uses image ``paths[i % len(paths)]`` and simulator index ``i``
    (the same pairing as :class:`core.simulate.dataset.SyntheticDataset` without the
    shuffle), so a given (seed, index) always shows the same anomaly.  The samples come
    from the method's own simulator (``MethodSpec.simulator``; ``method_config``
    defaults to the method's CPU default): DRAEM's ``paper`` preset shows [official]'s
    simulator, ``compact`` its surface defects at the working size, the flow its
    patch blends.  A method that trains on no synthetic anomalies gives no samples.

    Raises:
        Cancelled: ``should_stop()`` returned True (a newer request superseded it).
        core.errors.DatasetError: the anomaly source is unusable (e.g. empty folder).
    """
    spec = get_method(method)
    mc = method_config if method_config is not None else spec.default_config("cpu")
    if spec.simulator is None:
        count = 0
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
    sim = spec.simulator(mc, config, loaded, seed) if count and n else None
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
        method,
        spec.variant(mc),
        spec.samples_note(mc),
        object_only=bool(getattr(sim, "foreground", False)),
    )
