"""DRAEM network shapes, parameter count and determinism (small widths to stay fast)."""

from __future__ import annotations

import pytest
import torch

from core.config import ModelConfig, model_preset
from core.models.draem.network import (
    DiscriminativeSubNetwork,
    DraemNet,
    ReconstructiveSubNetwork,
    build_model,
    count_parameters,
)


def test_paper_preset_has_about_97m_parameters():
    # building the module is cheap; no forward at 97 M parameters in unit tests
    model = build_model(model_preset("paper"))
    n = count_parameters(model)
    assert 96_000_000 < n < 98_500_000, n
    # [official] split: reconstructive 69.0 M, discriminative 28.4 M
    assert count_parameters(model.reconstructive) == 69_048_579
    assert count_parameters(model.discriminative) == 28_374_146


def test_official_state_dict_names_are_kept():
    rec = ReconstructiveSubNetwork(3, 3, base_width=4)
    keys = set(rec.state_dict())
    assert "encoder.block5.3.weight" in keys and "decoder.fin_out.0.weight" in keys
    disc = DiscriminativeSubNetwork(6, 2, base_channels=4)
    keys = set(disc.state_dict())
    assert "encoder_segment.block6.4.running_var" in keys
    assert "decoder_segment.db_b.0.weight" in keys


@pytest.mark.parametrize("widths", [(4, 4), (8, 4)])
def test_forward_shapes_small_paper_networks(widths):
    cfg = ModelConfig(
        preset="paper", image_size=(64, 64), recon_width=widths[0], disc_width=widths[1]
    )
    model = build_model(cfg).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        rec, logits = model(x)
    assert rec.shape == (2, 3, 64, 64)
    assert logits.shape == (2, 2, 64, 64)
    assert torch.isfinite(rec).all() and torch.isfinite(logits).all()


def test_non_square_multiple_of_16_and_grayscale():
    cfg = ModelConfig(
        preset="paper", image_size=(48, 80), recon_width=4, disc_width=4, in_channels=1
    )
    model = DraemNet(cfg).eval()
    with torch.no_grad():
        rec, logits = model(torch.rand(1, 1, 48, 80))
    assert rec.shape == (1, 1, 48, 80)
    assert logits.shape == (1, 2, 48, 80)


def test_build_model_is_seeded():
    cfg = ModelConfig(preset="paper", image_size=(32, 32), recon_width=4, disc_width=4)
    torch.manual_seed(3)
    a = build_model(cfg).state_dict()
    torch.manual_seed(3)
    b = build_model(cfg).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # [official] init: BN weights around 1, conv weights small
    w = a["reconstructive.encoder.block1.1.weight"]
    assert abs(float(w.mean()) - 1.0) < 0.05
    assert float(a["reconstructive.encoder.block1.0.weight"].std()) < 0.05


def test_gradient_reaches_both_subnetworks():
    cfg = ModelConfig(preset="paper", image_size=(32, 32), recon_width=4, disc_width=4)
    model = build_model(cfg)
    rec, logits = model(torch.rand(2, 3, 32, 32))
    logits[
        :, 1
    ].mean().backward()  # segmentation loss alone trains the reconstruction too [official]
    g = model.reconstructive.encoder.block1[0].weight.grad
    assert g is not None and float(g.abs().sum()) > 0
