"""The method registry: the one place that knows which detection methods exist.

Each method lives in its own module (or folder) and exposes a module-level
``SPEC = MethodSpec(...)``.  :data:`_SPECS` maps a method name to that module, so
adding a method is a new module plus one line here.  Modules are imported only when
their method is used: ``import core.registry`` stays cheap.

Everything outside this module asks the registry instead of branching on a method
name: the CLI (``--method`` choices, defaults), the GUI (method list, labels,
which training curves and previews exist), the checkpoint loader and the benchmarks.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import CheckpointError, ConfigError, CoreError
from core.types import Detector, ProgressCallback, StopCallback, ignore_progress, never_stop

#: method name -> module holding its ``SPEC``; one line per method
_SPECS: dict[str, str] = {
    "draem": "core.models.draem",
    "patchcore": "core.models.patchcore",
    "flow": "core.models.flow",
}


@dataclass(frozen=True)
class FitRequest:
    """What every method's ``fit`` receives besides the images and the config.

    Attributes:
        out_path: where the checkpoint goes (methods with a training loop save to it
            periodically and at the end; fitted methods save once at the end).
        held_out: good RGB uint8 (H, W, 3) images kept out of fitting, for thresholds.
        seed: the run's seed (every random draw derives from it).
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        data_summary: what the images were (see :func:`core.data.images.data_summary`).
        budget: ``{"steps": N}`` or ``{"minutes": M}`` for methods with a training loop.
        resume: continue from the training state in ``out_path``.
        options: method-specific run options (e.g. DRAEM's simulator config).
        on_progress / should_stop: the usual long-work callbacks.
    """

    out_path: str
    held_out: Sequence[np.ndarray] = ()
    seed: int = 0
    device: str = "auto"
    data_summary: dict | None = None
    budget: dict = field(default_factory=dict)
    resume: bool = False
    options: dict = field(default_factory=dict)
    on_progress: ProgressCallback = ignore_progress
    should_stop: StopCallback = never_stop


@dataclass(frozen=True)
class MethodSpec:
    """One detection method as the rest of the application sees it.

    Attributes:
        name: the method's key in checkpoints, the CLI and project files.
        label: what the GUI shows.
        config_cls: its frozen config dataclass (``to_dict`` / ``from_dict``).
        fit: ``fit(images, config, request) -> (Detector, TrainResult | None)``;
            images are good RGB uint8 (H, W, 3) arrays of any size.
        from_checkpoint: ``from_checkpoint(payload, device) -> Detector``.
        default_config: ``default_config(device) -> config``: the method's default
            for the resolved device (``"cpu"`` or ``"cuda"``).
        title: its short name in messages (``DRAEM``, ``PatchCore``).
        options: the run options (command-line flags without ``--``, ``_`` for ``-``)
            that configure it; :func:`make_config` refuses the others.
        make_config: ``make_config(options, kind) -> config`` from those options
            (only the ones given) and the device kind.
        describe: ``describe(config) -> str``, one line for the start of a run.
        variant: ``variant(config) -> str``, the short tag models are listed and timed
            by (DRAEM: its preset; PatchCore: its backbone).
        default_budget: ``default_budget(config) -> {"steps"|"minutes"|"epochs": n}``.
        trains: True for methods with a training loop (budgets, curves, resume).
        loss_names: the loss terms its training reports, in display order.
        has_reconstruction: True if its predictions carry a reconstruction.
        simulator: ``simulator(config, sim_config, images, seed)`` -> the synthetic
            anomalies the method trains on, as an object with ``sample(image, index) ->
            SyntheticSample`` (and optionally ``prepare(image)``, the image as it sees
            it); None for methods that train on none.  The GUI's Synthetic anomalies
            page shows these.
        samples_note: ``samples_note(config) -> str``: what those samples are, in a
            sentence for that page.
        simulator_fields: the :class:`core.config.SimulatorConfig` fields its
            simulator uses (None: all of them); the page offers only these.
        deploy: the module with its deployment hooks (``export_graph(detector)`` and
            ``Processing(manifest)``, see :mod:`core.deploy.export`), relative to the
            method's package (default ``export``) or absolute; ``""``: not exportable.
        proposed_for: data kind (:data:`core.data.kind.KINDS`) -> why this method is
            proposed for it: the measured figures and the document they come from
            (:func:`propose_method` picks the first registered method that names a kind).
    """

    name: str
    label: str
    config_cls: type
    fit: Callable[..., tuple[Detector, Any]]
    from_checkpoint: Callable[[dict, str], Detector]
    default_config: Callable[[str], Any]
    title: str = ""
    options: tuple[str, ...] = ()
    make_config: Callable[[dict, str], Any] | None = None
    describe: Callable[[Any], str] = str
    variant: Callable[[Any], str] = lambda _config: ""
    default_budget: Callable[[Any], dict] = lambda _config: {}
    trains: bool = True
    loss_names: tuple[str, ...] = ()
    has_reconstruction: bool = False
    simulator: Callable[..., Any] | None = None
    samples_note: Callable[[Any], str] = lambda _config: ""
    simulator_fields: tuple[str, ...] | None = None
    deploy: str = "export"
    proposed_for: dict[str, str] = field(default_factory=dict)


def method_names() -> tuple[str, ...]:
    """All registered method names, in registration order."""
    return tuple(_SPECS)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``name``; :class:`ConfigError` for an unknown name."""
    module = _SPECS.get(name)
    if module is None:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(_SPECS)}")
    return importlib.import_module(module).SPEC


def deploy_hooks(name: str):
    """The imported deployment-hooks module of method ``name`` (``MethodSpec.deploy``);
    :class:`ConfigError` if the method has none."""
    spec = get_method(name)
    if not spec.deploy:
        raise ConfigError(f"method {name!r} cannot be exported")
    module = spec.deploy if "." in spec.deploy else f"{_SPECS[name]}.{spec.deploy}"
    return importlib.import_module(module)


def all_options() -> tuple[str, ...]:
    """Every run option any registered method takes (for the command line)."""
    seen: dict[str, None] = {}
    for name in _SPECS:
        seen.update(dict.fromkeys(get_method(name).options))
    return tuple(seen)


def propose_method(kind: str) -> tuple[str, str]:
    """``(method name, measured reason)`` proposed for good images of data kind ``kind``
    (``"surface"`` / ``"object"``, see :func:`core.data.kind.data_kind`): the first
    registered method whose ``proposed_for`` names the kind, else the first method."""
    for name in _SPECS:
        reason = get_method(name).proposed_for.get(kind)
        if reason:
            return name, reason
    first = next(iter(_SPECS))
    return first, f"no method was measured on {kind} data; {get_method(first).title} is the first"


def make_config(method: str, options: dict, kind: str = "cpu") -> Any:
    """``method``'s config from run options (None values are ignored) and the device kind.

    Raises :class:`ConfigError` naming any option the method does not take.
    """
    spec = get_method(method)
    given = {k: v for k, v in options.items() if v is not None}
    foreign = [k for k in given if k not in spec.options]
    if foreign:
        flags = ", ".join("--" + k.replace("_", "-") for k in foreign)
        takes = [m for m in _SPECS if set(foreign) <= set(get_method(m).options)]
        where = f"only with --method {'|'.join(takes)}" if takes else "not an option"
        raise ConfigError(f"{flags}: {where}")
    if spec.make_config is None:
        return spec.default_config(kind) if not given else spec.config_cls(**given)
    return spec.make_config(given, kind)


def data_config(
    method: str, options: dict, kind: str, sizes: Sequence[tuple[int, int]]
) -> tuple[Any, str]:
    """:func:`make_config`, with the working area fitted to the good images' ``sizes``
    ((h, w) pairs) when ``options`` set none and the method's variant takes one.

    Returns ``(config, note)``: ``note`` says why the area differs from the method's
    default (empty when it does not).  See :func:`core.data.geometry.data_work_area`.
    """
    from core.data.geometry import MIN_SCALE, data_work_area

    config = make_config(method, options, kind)
    if options.get("work_area") is not None or "work_area" not in get_method(method).options:
        return config, ""
    default = int(config.work_area)
    area = data_work_area(sizes, default)
    if area == default:
        return config, ""
    try:
        fitted = make_config(method, {**options, "work_area": area}, kind)
    except ConfigError:  # a variant that scales every image to one size
        return config, ""
    h, w = sorted(sizes, key=lambda s: s[0] * s[1])[len(sizes) // 2]
    scale = min(1.0, default / (h * w) ** 0.5)
    note = (
        f"working area {area} px (the good images are about {w} x {h} px, width x height; "
        f"the default {default} would scale them to {scale:.2f}, below {MIN_SCALE}, where "
        f"defects a few pixels wide lose their contrast; a smaller area is faster)"
    )
    return fitted, note


def register(spec: MethodSpec, module: str) -> None:
    """Register a method at run time (plug-ins and tests); ``module`` holds ``SPEC``."""
    _SPECS[spec.name] = module


def unregister(name: str) -> None:
    """Remove a method registered with :func:`register`."""
    _SPECS.pop(name, None)


def fit_detector(
    method: str, images: Sequence[np.ndarray], config: Any, request: FitRequest
) -> tuple[Detector, Any]:
    """Fit or train ``method`` on good images; returns ``(detector, train_result)``.

    ``config`` is the method's config (None: its default for ``request.device``).
    The detector has been saved to ``request.out_path``; ``train_result`` is the
    :class:`core.types.TrainResult` of methods with a training loop, else None.
    """
    spec = get_method(method)
    if config is None:
        from core.device import device_kind, resolve_device

        config = spec.default_config(device_kind(resolve_device(request.device)))
    if not isinstance(config, spec.config_cls):
        raise ConfigError(
            f"method {method!r} takes a {spec.config_cls.__name__}, got {type(config).__name__}"
        )
    return spec.fit(list(images), config, request)


def detector_from_payload(payload: dict, device: str = "auto") -> Detector:
    """Build the detector of a checkpoint payload (see :func:`load_detector`)."""
    name = payload.get("method")
    if name not in _SPECS:
        raise CheckpointError(f"unknown detector method {name!r}")
    try:
        spec = get_method(name)
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise CheckpointError(f"method {name!r} is not available in this installation ({e})") from e
    try:
        return spec.from_checkpoint(payload, device)
    except CheckpointError:
        raise
    except CoreError as e:  # e.g. a stored config out of bounds
        raise CheckpointError(f"damaged checkpoint: {e}") from e
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
        # metadata of the wrong type or shape (a damaged or hand-edited file)
        what = f"missing entry {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
        raise CheckpointError(f"damaged checkpoint ({type(e).__name__}: {what})") from e


def detector_identity(detector: Detector) -> dict[str, Any]:
    """``{"method", "model_config"}`` of a detector: what an export records of its model."""
    return {"method": str(detector.method), "model_config": detector.config.to_dict()}


def load_detector(path: str | os.PathLike, device: str = "auto") -> Detector:
    """Load a checkpoint written by this application and return its detector.

    Raises :class:`CheckpointError` for foreign, damaged or unknown files (nothing in
    them is executed, see :func:`core.io.checkpoint.load_checkpoint`).
    """
    from core.io.checkpoint import load_checkpoint

    payload = load_checkpoint(path)
    if payload.get("method") not in _SPECS:
        raise CheckpointError(f"{path}: unknown detector method {payload.get('method')!r}")
    return detector_from_payload(payload, device)


__all__ = [
    "FitRequest",
    "all_options",
    "data_config",
    "make_config",
    "MethodSpec",
    "detector_from_payload",
    "deploy_hooks",
    "detector_identity",
    "fit_detector",
    "get_method",
    "load_detector",
    "method_names",
    "propose_method",
    "register",
    "unregister",
]
