"""The bundled demo data set (``resources/demo/brick``, MVTec AD layout, CC0).

See ``resources/demo/LICENSE.md`` for provenance and ``resources/demo/make_demo.py``
for how it was generated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import Cancelled, DatasetError, TrainingError
from core.types import (
    ProgressCallback,
    StopCallback,
    TrainProgress,
    TrainResult,
    ignore_progress,
    never_stop,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.evaluate.metrics import Evaluation
    from core.evaluate.operating_point import OperatingPoint

#: Root of the bundled demo resources (next to the ``core`` package in a checkout).
DEMO_DIR = Path(__file__).resolve().parent.parent / "resources" / "demo"
#: The demo MVTec AD category.
DEMO_CATEGORY = DEMO_DIR / "brick"


def demo_root() -> Path:
    """Path of the demo MVTec AD category (``train/good``, ``test/*``, ``ground_truth/*``).

    Raises:
        DatasetError: the demo data are missing (e.g. a wheel install without resources).
    """
    if not (DEMO_CATEGORY / "train" / "good").is_dir():
        raise DatasetError(
            f"the demo data set is missing ({DEMO_CATEGORY}); "
            "regenerate it with: python resources/demo/make_demo.py"
        )
    return DEMO_CATEGORY


#: Training budget of the headless demo (compact preset): 300 steps or 1.5 minutes,
#: whichever runs out first (``TrainConfig`` stops at the first budget used up and
#: scales the LR schedule to it).  300 steps take ~1 minute on an idle 2-core CPU but
#: 6-10 minutes on a loaded one; the time cap keeps the whole ``python main.py demo``
#: at about 2 minutes there (training + inspecting and exporting the 30 test images).
DEMO_STEPS = 300
DEMO_MINUTES = 1.5
DEMO_MODEL = "demo_model.pt"
DEMO_RESULTS = "demo_results.h5"


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` produced: checkpoint and HDF5 paths, training summary, metrics.

    ``operating`` holds the verdicts at the model's stored image threshold (good images
    called NG, defective images called OK, per test type); ``steps`` / ``minutes`` the
    training budget that was asked for (``minutes`` None: no time cap).
    """

    checkpoint_path: str
    results_path: str
    train_result: TrainResult
    evaluation: Evaluation
    seconds_per_image: float
    n_failed: int
    operating: OperatingPoint
    steps: int
    minutes: float | None

    @property
    def time_capped(self) -> bool:
        """True when the time cap stopped training before ``steps``."""
        return self.minutes is not None and self.train_result.steps < self.steps


def run_demo(
    out_dir: str | os.PathLike,
    *,
    steps: int = DEMO_STEPS,
    minutes: float | None = DEMO_MINUTES,
    seed: int = 0,
    device: str = "auto",
    on_train_progress: Callable[[TrainProgress], None] = ignore_progress,
    on_progress: ProgressCallback = ignore_progress,
    should_stop: StopCallback = never_stop,
) -> DemoResult:
    """Train DRAEM (compact preset) on the demo ``train/good``, inspect ``test/*``, export.

    Training stops after ``steps`` or ``minutes`` (None: no time cap), whichever
    comes first.  Writes ``out_dir/demo_model.pt`` and ``out_dir/demo_results.h5``
    (images, maps, scores, verdicts, ground-truth labels and masks).  ``on_train_progress`` receives
    training progress, ``on_progress`` the loading/inspection/export progress.

    Raises:
        Cancelled: ``should_stop()`` became True (training leaves a loadable checkpoint).
        TrainingError: training failed.
    """
    from core.config import SimulatorConfig, TrainConfig, model_preset
    from core.data.images import data_summary, load_images, read_mvtec, split_held_out
    from core.deploy.choices import runtime_of
    from core.evaluate.inspect import LazyExportRecords, evaluate_mvtec
    from core.evaluate.operating_point import operating_point
    from core.io.checkpoint import file_sha256
    from core.io.export import export_batch
    from core.models.draem.train import resolve_device, train
    from core.registry import load_detector

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cat = read_mvtec(demo_root())
    loaded, failed = load_images(cat.train, on_progress=on_progress, should_stop=should_stop)
    if not loaded:
        raise DatasetError(
            f"no demo training image could be read ({failed[0].reason if failed else ''})"
        )
    model_config = model_preset("compact")
    images, held_out = split_held_out([img for _, img in loaded])
    result = train(
        images,
        held_out=held_out,
        model_config=model_config,
        sim_config=SimulatorConfig(image_size=model_config.image_size),
        train_config=TrainConfig(
            steps=steps, minutes=minutes, seed=seed, device=resolve_device(device)
        ),
        out_path=str(out / DEMO_MODEL),
        on_progress=on_train_progress,
        should_stop=should_stop,
        data_summary=data_summary(images, "demo"),
    )
    if result.status == "cancelled":
        raise Cancelled(f"demo cancelled during training; checkpoint at {result.checkpoint_path}")
    if result.status != "finished":
        raise TrainingError(f"demo training failed: {result.message}")
    detector = load_detector(result.checkpoint_path)
    ev = evaluate_mvtec(detector, cat, on_progress=on_progress, should_stop=should_stop)
    results_path = export_batch(
        out / DEMO_RESULTS,
        LazyExportRecords(ev.result, labels=ev.labels, masks=ev.masks),
        thresholds=detector.thresholds,
        method=detector.method,
        model_config=model_config.to_dict(),
        checkpoint_sha256=file_sha256(result.checkpoint_path),
        runtime=runtime_of(detector),
        extra_attrs={"defect_types": list(ev.defect_types), "data": "resources/demo/brick"},
        on_progress=on_progress,
        should_stop=should_stop,
    )
    scores = [p.score for p in ev.result.predictions]
    return DemoResult(
        checkpoint_path=result.checkpoint_path,
        results_path=str(results_path),
        train_result=result,
        evaluation=ev.evaluation,
        seconds_per_image=ev.seconds_per_image,
        n_failed=len(failed) + len(ev.result.failures),
        operating=operating_point(ev.labels, scores, detector.thresholds.image, ev.defect_types),
        steps=steps,
        minutes=minutes,
    )


__all__ = [
    "DEMO_CATEGORY",
    "DEMO_DIR",
    "DEMO_MINUTES",
    "DEMO_STEPS",
    "DemoResult",
    "demo_root",
    "run_demo",
]
