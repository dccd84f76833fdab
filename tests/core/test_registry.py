"""The method registry: one place knows the methods; a new one is a module plus a line."""

from __future__ import annotations

import re
import sys
import types
from dataclasses import asdict, dataclass

import numpy as np
import pytest
import torch

from core import registry
from core.config import Thresholds
from core.errors import CheckpointError, ConfigError
from core.io.checkpoint import save_checkpoint
from core.types import Prediction


@dataclass(frozen=True)
class MeanConfig:
    """A toy method: the anomaly map is the distance to the mean good image's brightness."""

    size: int = 16

    def __post_init__(self) -> None:
        if self.size < 4:
            raise ConfigError(f"size must be >= 4, got {self.size}")

    def to_dict(self) -> dict:
        return asdict(self)


class MeanDetector:
    method = "toymean"

    def __init__(self, config: MeanConfig, mean: float, thresholds: Thresholds) -> None:
        self.config, self.mean, self.thresholds = config, mean, thresholds

    @property
    def metadata(self) -> dict:
        return {"method": self.method}

    def predict(self, images, *, batch_size=8, on_progress=None, should_stop=None):
        out = []
        for img in images:
            amap = np.abs(img.mean(axis=2) - self.mean).astype(np.float32) / 255.0
            out.append(Prediction(amap, float(amap.max())))
        return out

    def payload(self) -> dict:
        return {
            "method": self.method,
            "state_dict": {"mean": torch.tensor(self.mean)},
            "model_config": self.config.to_dict(),
            "thresholds": self.thresholds.to_json(),
            "metadata": self.metadata,
        }

    def save(self, path: str) -> str:
        return save_checkpoint(path, self.payload())

    def with_thresholds(self, thresholds: Thresholds) -> MeanDetector:
        return MeanDetector(self.config, self.mean, thresholds)


def _fit(images, config, request):
    mean = float(np.mean([im.mean() for im in images]))
    det = MeanDetector(config, mean, Thresholds(0.2, 0.2, "toy"))
    det.save(request.out_path)
    return det, None


def _from_checkpoint(payload, device="auto"):
    if payload.get("method") != "toymean":
        raise CheckpointError("not a toymean checkpoint")
    return MeanDetector(
        MeanConfig(**payload["model_config"]),
        float(payload["state_dict"]["mean"]),
        Thresholds.from_json(payload["thresholds"]),
    )


SPEC = registry.MethodSpec(
    name="toymean",
    label="Mean brightness (toy)",
    config_cls=MeanConfig,
    fit=_fit,
    from_checkpoint=_from_checkpoint,
    default_config=lambda kind: MeanConfig(),
    title="ToyMean",
    options=("size",),
    trains=False,
)


@pytest.fixture
def toy_method():
    """Registers the toy method (its module is this test module) for one test."""
    module = types.ModuleType("toy_method_module")
    module.SPEC = SPEC
    sys.modules["toy_method_module"] = module
    registry.register(SPEC, "toy_method_module")
    yield SPEC
    registry.unregister(SPEC.name)
    sys.modules.pop("toy_method_module", None)


def test_a_third_method_trains_and_loads_through_the_registry(toy_method, tmp_path):
    good = [np.full((20, 24, 3), 100, np.uint8) for _ in range(3)]
    out = str(tmp_path / "toy.pt")
    request = registry.FitRequest(out_path=out)
    det, result = registry.fit_detector("toymean", good, None, request)
    assert result is None and det.config == MeanConfig()
    loaded = registry.load_detector(out)
    assert isinstance(loaded, MeanDetector) and loaded.mean == pytest.approx(100.0)
    bad = np.full((20, 24, 3), 200, np.uint8)
    (ok_pred,), (ng_pred,) = loaded.predict([good[0]]), loaded.predict([bad])
    assert ok_pred.score < loaded.thresholds.image < ng_pred.score
    assert registry.detector_identity(loaded) == {"method": "toymean", "model_config": {"size": 16}}
    assert "toymean" in registry.method_names()
    assert registry.make_config("toymean", {"size": 8}) == MeanConfig(size=8)


def test_options_of_another_method_are_refused_with_the_method_that_takes_them(toy_method):
    with pytest.raises(ConfigError, match="only with --method patchcore"):
        registry.make_config("draem", {"coreset_ratio": 0.5})
    with pytest.raises(ConfigError, match="only with --method toymean"):
        registry.make_config("patchcore", {"size": 8})


def test_unknown_methods_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        registry.get_method("nope")
    with pytest.raises(CheckpointError, match="must be one of"):
        save_checkpoint(tmp_path / "x.pt", {"method": "nope", "state_dict": {}})


def test_wrong_config_type_is_refused(tmp_path):
    from core.config import model_preset

    request = registry.FitRequest(out_path=str(tmp_path / "x.pt"))
    with pytest.raises(ConfigError, match="takes a PatchCoreConfig"):
        registry.fit_detector(
            "patchcore", [np.zeros((8, 8, 3), np.uint8)], model_preset("paper"), request
        )


def test_defaults_follow_the_device_kind():
    assert registry.make_config("draem", {}, "cpu").preset == "compact"
    assert registry.make_config("draem", {}, "cuda").preset == "paper"
    assert registry.make_config("draem", {"preset": "paper"}, "cpu").preset == "paper"


def test_detector_identity_of_patchcore_carries_its_config():
    from core.models.patchcore.detector import PatchCoreConfig, PatchCoreDetector

    det = PatchCoreDetector(PatchCoreConfig(coreset_ratio=0.25), None, Thresholds())
    ident = registry.detector_identity(det)
    assert ident["method"] == "patchcore" and ident["model_config"]["coreset_ratio"] == 0.25


def test_work_area_is_a_run_option_of_the_methods_that_keep_the_aspect_ratio():
    from core.registry import make_config

    assert make_config("draem", {"work_area": 448}, "cpu").work_area == 448
    assert make_config("flow", {"work_area": 384}).work_area == 384
    with pytest.raises(ConfigError, match="only with the compact preset"):
        make_config("draem", {"work_area": 448, "preset": "paper"}, "cpu")
    with pytest.raises(ConfigError, match=re.escape("--work-area: only with --method draem|flow")):
        make_config("patchcore", {"work_area": 448})
    with pytest.raises(ConfigError, match="work_area"):
        make_config("draem", {"work_area": 20}, "cpu")


def test_the_working_area_keeps_large_good_images_at_half_scale_or_more():
    from core.data.geometry import MAX_WORK_AREA, data_work_area
    from core.registry import data_config

    assert data_work_area([(300, 250)] * 5, 320) == 320  # used at native size
    assert data_work_area([(1250, 500)] * 5, 320) == 416  # sqrt(1250 * 500) / 2 -> 416
    assert data_work_area([(1250, 500)] * 5, 256) == 416
    assert data_work_area([(1024, 1024), (1250, 500), (200, 200)], 320) == 416  # the median
    assert data_work_area([(8000, 8000)], 320) == MAX_WORK_AREA
    assert data_work_area([], 256) == 256
    long_parts = [(1250, 500)] * 3
    cfg, note = data_config("flow", {}, "cpu", long_parts)
    assert cfg.work_area == 416 and "500 x 1250 px" in note and "0.32" in note
    cfg, note = data_config("draem", {}, "cpu", long_parts)
    assert (cfg.preset, cfg.work_area) == ("compact", 416) and "0.40" in note
    cfg, note = data_config("flow", {}, "cpu", [(256, 256)] * 3)
    assert cfg.work_area == 256 and note == ""
    cfg, note = data_config("draem", {"work_area": 320}, "cpu", long_parts)  # the user's
    assert cfg.work_area == 320 and note == ""
    cfg, note = data_config("draem", {"preset": "paper"}, "cpu", long_parts)  # fixed size
    assert cfg.preset == "paper" and note == ""
    cfg, note = data_config("patchcore", {}, "cpu", long_parts)
    assert not hasattr(cfg, "work_area") and note == ""
