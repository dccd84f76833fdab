"""EfficientNet-Lite0 loader and feature extractor (no download, real ImageNet weights)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.models.backbone import (
    BackboneWeightsError,
    FeatureExtractor,
    classify,
    imagenet_normalize,
    load_backbone,
    load_efficientnet_lite0,
    map_state_dict,
)

CHECK_DIR = Path(__file__).resolve().parents[3] / "resources" / "backbone_check"
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def lite0() -> torch.nn.Module:
    return load_efficientnet_lite0()


def _rgb(name: str) -> np.ndarray:
    bgr = cv2.imread(str(CHECK_DIR / name), cv2.IMREAD_COLOR)
    assert bgr is not None, f"missing bundled image {name}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_pretrained_weights_classify_bundled_images(lite0):
    top = classify([_rgb("chelsea.jpg"), _rgb("coffee.jpg")], model=lite0, k=5)
    assert top.shape == (2, 5) and top.dtype == np.int64
    assert top[0, 0] in CAT_CLASSES, f"chelsea top-5 {top[0].tolist()}"
    assert top[1, 0] == ESPRESSO, f"coffee top-5 {top[1].tolist()}"


def test_random_weights_do_not_pass_the_sanity_check(lite0):
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    top = classify([_rgb("chelsea.jpg"), _rgb("coffee.jpg")], model=model, k=1)
    assert not (top[0, 0] in CAT_CLASSES and top[1, 0] == ESPRESSO)


def test_feature_shapes_by_stride(lite0):
    fx = FeatureExtractor(lite0, stages=(4, 8, 16, 32))
    feats = fx(torch.rand(2, 3, 96, 160))
    assert sorted(feats) == [4, 8, 16, 32]
    for s, f in feats.items():
        assert f.shape == (2, fx.channels[s], 96 // s, 160 // s)
        assert f.dtype == torch.float32 and not f.requires_grad
    assert fx.channels == {4: 24, 8: 40, 16: 112, 32: 320}
    fx.train()
    assert not fx.backbone.training
    # the hooks stay inactive when the backbone is used on its own
    assert classify([_rgb("coffee.jpg")], model=lite0, k=1)[0, 0] == ESPRESSO


def test_feature_extractor_rejects_unknown_stride(lite0):
    with pytest.raises(ValueError, match="stages"):
        FeatureExtractor(lite0, stages=(8, 12))


def test_imagenet_normalize():
    x = torch.ones(1, 3, 2, 2)
    y = imagenet_normalize(x)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([2.2489, 2.4286, 2.64]), atol=1e-3)
    with pytest.raises(ValueError):
        imagenet_normalize(torch.ones(3, 2, 2))


def test_missing_or_wrong_weights_give_clear_errors(tmp_path, lite0):
    with pytest.raises(BackboneWeightsError, match="not found"):
        load_efficientnet_lite0(str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(BackboneWeightsError, match="cannot read"):
        load_efficientnet_lite0(str(bad))
    sd = {f"w{i}": v.clone() for i, v in enumerate(lite0.state_dict().values())}
    sd["w0"] = torch.zeros(7, 3, 3, 3)  # wrong shape, right count
    torch.save(sd, tmp_path / "shape.pth")
    with pytest.raises(BackboneWeightsError, match="does not fit"):
        load_efficientnet_lite0(str(tmp_path / "shape.pth"))
    with pytest.raises(BackboneWeightsError, match="needs a local"):
        load_backbone("torchvision:wide_resnet50_2")


def test_other_backbone_from_local_file(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    model = load_backbone("torchvision:resnet18", str(tmp_path / "r18.pth"))
    for a, b in zip(model.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    fx = FeatureExtractor(model, stages=(8, 16))
    feats = fx(torch.rand(1, 3, 64, 64))
    assert feats[8].shape == (1, 128, 8, 8) and feats[16].shape == (1, 256, 4, 4)


def test_map_state_dict_by_order_round_trip(lite0):
    import timm

    fresh = timm.create_model("efficientnet_lite0", pretrained=False)
    renamed = {f"_x{i}": v for i, v in enumerate(lite0.state_dict().values())}
    map_state_dict(fresh, renamed, "test")
    assert torch.equal(fresh.conv_stem.weight, lite0.conv_stem.weight)
