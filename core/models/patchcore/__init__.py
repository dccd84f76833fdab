"""PatchCore as a registered method: a memory bank of patch features, no training loop."""

from __future__ import annotations

from core.registry import FitRequest, MethodSpec


def _config_cls():
    from core.models.patchcore.detector import PatchCoreConfig

    return PatchCoreConfig


def fit(images, config, request: FitRequest):
    """Fit the memory bank on ``images`` and save it to ``request.out_path``.

    ``held_out`` is not needed: PatchCore calibrates its thresholds by leaving each
    good image out of its own search.
    """
    from core.models.patchcore.detector import fit_patchcore

    det = fit_patchcore(
        images,
        config=config,
        seed=request.seed,
        on_progress=request.on_progress,
        should_stop=request.should_stop,
        data_summary=request.data_summary,
    )
    det.save(request.out_path)
    return det, None


def from_checkpoint(payload: dict, device: str = "auto"):
    from core.models.patchcore.detector import PatchCoreDetector

    return PatchCoreDetector.from_checkpoint(payload)


def default_config(kind: str):
    return _config_cls()()


def make_config(options: dict, kind: str):
    """A PatchCoreConfig from the options; the backbone must load here
    (:func:`core.models.backbone_choice.check_backbone`)."""
    from core.models.backbone_choice import check_backbone

    config = _config_cls()(**options)
    check_backbone(config.backbone, config.backbone_weights)
    return config


def describe(config) -> str:
    return f"PatchCore ({config.backbone}, coreset ratio {config.coreset_ratio:g})"


SPEC = MethodSpec(
    name="patchcore",
    label="PatchCore (fitted, no training loop)",
    config_cls=_config_cls(),
    fit=fit,
    from_checkpoint=from_checkpoint,
    default_config=default_config,
    title="PatchCore",
    options=("backbone", "backbone_weights", "coreset_ratio"),
    make_config=make_config,
    describe=describe,
    variant=lambda config: config.backbone,
    trains=False,
    simulator_fields=(),
    samples_note=lambda config: (
        "<b>PatchCore</b> trains on no synthetic anomalies: it memorises patch features of "
        "the good images, and anything far from all of them is anomalous."
    ),
    proposed_for={
        "object": (
            "1.000 image AUROC on an MVTec-style bottle set; level with compact DRÆM on "
            "generated colour objects, and fitted in seconds (docs/experiments.md)"
        ),
    },
)
