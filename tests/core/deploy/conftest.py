"""Tiny models trained/fitted on the demo set once per test session (shared by the parity tests)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="session")
def demo_images():
    """(train, test): a few demo good images and test images, RGB uint8 (H, W, 3)."""
    from core.data.images import load_images, read_mvtec
    from core.demo import demo_root

    cat = read_mvtec(demo_root())
    train = [im for _, im in load_images(cat.train[:6])[0]]
    picks = [it.path for it in cat.test[::5]]
    test = [im for _, im in load_images(picks)[0]]
    # one odd size: a second working size through the dynamic graph
    test.append(np.ascontiguousarray(test[0][:200, :300]))
    return train, test


@pytest.fixture(scope="session")
def compact_detector(tmp_path_factory, demo_images):
    """A compact DRAEM trained for a few steps via core.models.draem.train, its torch forward in fp32."""
    from core.config import SimulatorConfig, TrainConfig, model_preset
    from core.models.draem.detector import DraemDetector
    from core.models.draem.train import train

    train_images, _ = demo_images
    cfg = model_preset("compact")
    out = tmp_path_factory.mktemp("compact") / "model.pt"
    train(
        train_images,
        model_config=cfg,
        sim_config=SimulatorConfig(image_size=cfg.image_size),
        train_config=TrainConfig(steps=3, batch_size=2, num_workers=0, seed=0, device="cpu"),
        out_path=str(out),
    )
    det = DraemDetector.load(str(out), device="cpu")
    det.model.bf16 = False  # fp32 reference for the fp32 export
    return det, out


@pytest.fixture(scope="session")
def patchcore_detector(demo_images):
    """PatchCore fitted on a few demo images with a small, exact-search config."""
    from core.models.patchcore.detector import PatchCoreConfig, fit_patchcore

    train_images, _ = demo_images
    cfg = PatchCoreConfig(resolution=160, calibration_images=3, search="exact")
    return fit_patchcore(train_images, config=cfg)


@pytest.fixture(scope="session")
def flow_detector(tmp_path_factory, demo_images):
    """A small flow detector trained for a few steps on the demo images (fp32, CPU)."""
    from core.models.flow import SPEC, FlowConfig
    from core.registry import FitRequest

    train_images, _ = demo_images
    cfg = FlowConfig(work_area=128, crop_size=64, n_blocks=2, batch_size=4)
    out = tmp_path_factory.mktemp("flow") / "flow.pt"
    req = FitRequest(out_path=str(out), seed=0, budget={"steps": 3}, device="cpu")
    det, _ = SPEC.fit(train_images, cfg, req)
    return det


@pytest.fixture(scope="session")
def flow_detector_enlarged(tmp_path_factory, demo_images):
    """A small flow with non-default sizing: stages 16 and 32, small images enlarged to
    ``work_area**2`` (fp32, CPU, a few steps)."""
    from core.models.flow import SPEC, FlowConfig
    from core.registry import FitRequest

    train_images, _ = demo_images
    cfg = FlowConfig(
        stages=(16, 32), enlarge=True, work_area=128, crop_size=64, n_blocks=2, batch_size=4
    )
    out = tmp_path_factory.mktemp("flow_enlarged") / "flow.pt"
    req = FitRequest(out_path=str(out), seed=0, budget={"steps": 2}, device="cpu")
    det, _ = SPEC.fit(train_images, cfg, req)
    return det
