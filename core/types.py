"""Typed results that cross module (and thread) boundaries.

Only numpy arrays, plain Python scalars and frozen dataclasses appear here: no
tensors ever leave ``core``.  Arrays inside frozen dataclasses are treated as
read-only by convention (producers never mutate them after construction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.config import Thresholds

# --------------------------------------------------------------------- callbacks
#: ``on_progress(progress)``: called from the working thread, at most ~10 Hz.
ProgressCallback = Callable[["Progress"], None]
#: ``should_stop()``: polled by long work; return True to cancel. Must be thread-safe
#: (e.g. ``threading.Event().is_set``).
StopCallback = Callable[[], bool]


def never_stop() -> bool:
    """Default ``should_stop``: never cancels."""
    return False


def ignore_progress(_progress: Progress) -> None:
    """Default ``on_progress``: does nothing."""


@dataclass(frozen=True)
class Progress:
    """Generic progress of long work (inference, export, fitting, loading).

    ``done`` of ``total`` units; ``message`` is a short human-readable status.
    """

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


# --------------------------------------------------------------------- simulator
@dataclass(frozen=True)
class SyntheticSample:
    """One simulator sample at the simulator's ``image_size`` (H, W).

    Attributes:
        good: (H, W, 3) uint8 RGB, the (possibly rotated) good image.
        augmented: (H, W, 3) uint8 RGB, ``good`` with the anomaly pasted in.
        mask: (H, W) uint8 in {0, 1}; 1 where the anomaly was pasted.
        has_anomaly: False for the ~half of samples left clean (mask all zero).
        beta: blending factor used (0 for clean samples).
        index: the sample index (with the simulator seed it fully determines it).
        kind: what was pasted: ``texture`` ([official]); the compact preset's simulator
            also makes ``intensity``, ``line`` and ``spot`` defects (``core.simulate.defects``).
    """

    good: np.ndarray
    augmented: np.ndarray
    mask: np.ndarray
    has_anomaly: bool
    beta: float
    index: int
    kind: str = "texture"


# --------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainPreview:
    """A synthetic sample with the model's output, for live display.

    image / reconstruction: (H, W, 3) uint8; mask / prediction: (H, W) float32 in [0, 1].
    """

    image: np.ndarray
    reconstruction: np.ndarray | None
    mask: np.ndarray
    prediction: np.ndarray


@dataclass(frozen=True)
class TrainProgress:
    """Progress of training, emitted at most ~10 Hz.

    ``losses`` maps loss names (``l2``, ``ssim``, ``focal``, ``total``) to the
    running mean since the last report.  ``preview`` is set every
    ``TrainConfig.preview_every_s`` seconds, otherwise None.
    """

    step: int
    total_steps: int | None
    epoch: float
    elapsed_s: float
    eta_s: float | None
    lr: float
    losses: dict[str, float]
    samples_per_s: float
    preview: TrainPreview | None = None
    message: str = ""
    #: seconds the trainer has spent blocked waiting for the simulator (should stay ~0)
    data_wait_s: float = 0.0

    @property
    def fraction(self) -> float | None:
        if self.eta_s is None:
            return None
        total = self.elapsed_s + self.eta_s
        return 1.0 if total <= 0 else min(1.0, self.elapsed_s / total)


@dataclass(frozen=True)
class TrainResult:
    """What training returns. ``status`` is ``finished``, ``cancelled`` or ``failed``."""

    checkpoint_path: str
    status: str
    steps: int
    elapsed_s: float
    final_losses: dict[str, float]
    message: str = ""
    loss_history: dict[str, list[float]] = field(default_factory=dict)
    #: seconds the trainer spent blocked waiting for the simulator
    data_wait_s: float = 0.0


# --------------------------------------------------------------------- inference
@dataclass(frozen=True)
class Prediction:
    """The model's output for one image, at the image's original size.

    Attributes:
        anomaly_map: (H, W) float32, per-pixel anomaly score (DRAEM: softmax
            probability of the anomaly class, in [0, 1]).
        score: image anomaly score (DRAEM: max of the 21x21 mean-filtered map).
        reconstruction: (H, W, 3) uint8 RGB reconstruction, or None for methods
            without one (PatchCore).
    """

    anomaly_map: np.ndarray
    score: float
    reconstruction: np.ndarray | None = None


@dataclass(frozen=True)
class FailedImage:
    """An input that could not be processed: its path and a readable reason."""

    path: str
    reason: str


@dataclass(frozen=True)
class InspectionResult:
    """Predictions for a batch of files, in input order, plus those that failed."""

    paths: tuple[str, ...]
    predictions: tuple[Prediction, ...]
    failures: tuple[FailedImage, ...] = ()


# --------------------------------------------------------------------- detector
@runtime_checkable
class Detector(Protocol):
    """What every registered method (``core.registry``) offers once trained/fitted.

    ``predict`` takes RGB uint8 images (H, W, 3) of any size and returns one
    :class:`Prediction` per image, at that image's size.
    """

    method: str
    thresholds: Thresholds
    #: the method's frozen config dataclass (``to_dict()`` gives plain data)
    config: Any

    def predict(
        self,
        images: Sequence[np.ndarray],
        *,
        batch_size: int = 8,
        on_progress: ProgressCallback = ignore_progress,
        should_stop: StopCallback = never_stop,
    ) -> list[Prediction]: ...

    def save(self, path: str) -> str:
        """Write a checkpoint (atomically); return its SHA-256 hex digest."""
        ...

    def payload(self) -> dict:
        """The checkpoint dict :func:`core.io.checkpoint.save_checkpoint` writes."""
        ...

    def with_thresholds(self, thresholds: Thresholds) -> Detector:
        """A detector sharing this model with other thresholds."""
        ...

    @property
    def metadata(self) -> dict:
        """Checkpoint metadata: schema, method, preset, image size, data summary, created."""
        ...
