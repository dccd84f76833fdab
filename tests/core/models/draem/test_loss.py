"""L2 / SSIM / focal loss parts."""

from __future__ import annotations

import pytest
import torch

from core.models.draem.loss import DraemLoss, FocalLoss, finite, ssim, ssim_loss


def test_ssim_identical_is_one_and_loss_zero():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 32, 32)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim_loss(a, a)) == pytest.approx(0.0, abs=1e-5)


def test_ssim_loss_grows_with_noise_and_stays_in_range():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 32, 32)
    small = ssim_loss(a + 0.02 * torch.randn_like(a), a)
    big = ssim_loss(torch.rand_like(a), a)
    assert 0 < float(small) < float(big) <= 2.0


def test_ssim_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="equal"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_focal_confident_correct_is_near_zero_and_wrong_is_large():
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:8, 4:8] = 1
    good_logits = torch.cat([(1 - mask) * 10 - 5, mask * 10 - 5], dim=1)
    focal = FocalLoss(gamma=2)
    right = float(focal(good_logits, mask))
    wrong = float(focal(-good_logits, mask))
    assert 0 <= right < 1e-6
    assert wrong > 1.0


def test_focal_gamma_zero_equals_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 8, 8)
    mask = (torch.rand(2, 8, 8) > 0.5).float()
    ce = torch.nn.functional.cross_entropy(logits, mask.long())
    assert float(FocalLoss(gamma=0)(logits, mask)) == pytest.approx(float(ce), rel=1e-5)
    assert float(FocalLoss(gamma=2)(logits, mask)) < float(ce)


def test_draem_loss_parts_and_total():
    torch.manual_seed(0)
    good = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    logits = torch.randn(2, 2, 32, 32)
    loss = DraemLoss()
    perfect = loss(good.clone(), good, logits, mask)
    assert set(perfect) == {"l2", "ssim", "focal", "total"}
    assert float(perfect["l2"]) == 0.0
    assert float(perfect["ssim"]) == pytest.approx(0.0, abs=1e-5)
    noisy = loss(good + 0.1, good, logits, mask)
    assert float(noisy["l2"]) == pytest.approx(0.01, rel=1e-4)
    for v in noisy.values():
        assert float(v) >= 0
    total = sum(float(noisy[k]) for k in ("l2", "ssim", "focal"))
    assert float(noisy["total"]) == pytest.approx(total, rel=1e-6)
    assert finite(noisy)


def test_draem_loss_without_reconstruction_is_focal_only():
    logits = torch.randn(1, 2, 16, 16, requires_grad=True)
    mask = torch.zeros(1, 16, 16)
    parts = DraemLoss()(None, torch.rand(1, 3, 16, 16), logits, mask)
    assert float(parts["l2"]) == 0.0 and float(parts["ssim"]) == 0.0
    assert parts["total"].item() == pytest.approx(parts["focal"].item())
    parts["total"].backward()
    assert logits.grad is not None


def test_finite_detects_nan():
    assert not finite({"a": torch.tensor(float("nan"))})
    assert not finite({"a": torch.tensor(float("inf"))})
