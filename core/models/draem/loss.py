"""DRAEM training loss: L2 + SSIM (reconstruction) + focal (segmentation).

``total = l2 + ssim + focal`` with unit weights, as [official] ``train_DRAEM.py``
(the [paper]'s lambda = 1; [anomalib] multiplies a kornia SSIM loss, which is
``(1 - SSIM) / 2``, by 2 -- the same thing).  All losses are computed in float32
even under autocast, so mixed precision cannot overflow them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _gaussian_window(window_size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    """(channels, 1, k, k) normalised Gaussian kernel, [official] ``create_window`` (sigma 1.5)."""
    xs = torch.arange(window_size, dtype=torch.float64) - window_size // 2
    g = torch.exp(-(xs**2) / (2 * sigma**2))
    g = g / g.sum()
    w2 = (g[:, None] @ g[None, :]).to(device=device, dtype=dtype)
    return w2.expand(channels, 1, window_size, window_size).contiguous()


def ssim(
    img1: torch.Tensor, img2: torch.Tensor, window_size: int = 11, data_range: float = 1.0
) -> torch.Tensor:
    """Mean structural similarity of two (B, C, H, W) float tensors -> scalar tensor.

    Follows [official] ``loss.ssim``: Gaussian window 11, sigma 1.5, zero padding of
    ``window_size // 2`` and the mean over every pixel and channel.  The dynamic range
    is fixed to ``data_range`` (images in [0, 1]); [official] guesses it from the
    value range of ``img1`` which gives the same L = 1 for [0, 1] images.
    """
    if img1.shape != img2.shape or img1.dim() != 4:
        raise ValueError(
            f"ssim needs two equal (B, C, H, W) tensors, got {tuple(img1.shape)} and {tuple(img2.shape)}"
        )
    img1, img2 = img1.float(), img2.float()
    c = img1.shape[1]
    k = min(window_size, img1.shape[-2], img1.shape[-1])
    win = _gaussian_window(k, 1.5, c, img1.device, img1.dtype)
    pad = window_size // 2

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, win, padding=pad, groups=c)

    mu1, mu2 = filt(img1), filt(img2)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = filt(img1 * img1) - mu1_sq
    s2 = filt(img2 * img2) - mu2_sq
    s12 = filt(img1 * img2) - mu12
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu12 + c1) * (2 * s12 + c2)) / ((mu1_sq + mu2_sq + c1) * (s1 + s2 + c2))
    return ssim_map.mean()


def ssim_loss(
    reconstruction: torch.Tensor, target: torch.Tensor, window_size: int = 11
) -> torch.Tensor:
    """``1 - SSIM(reconstruction, target)`` ([official] ``SSIM.forward``): 0 when identical."""
    return 1.0 - ssim(reconstruction, target, window_size)


class FocalLoss(nn.Module):
    """Focal loss on 2-class mask logits ([official] ``FocalLoss``: gamma 2, alpha 1, mean).

    forward(logits (B, K, H, W), target (B, H, W) or (B, 1, H, W) with class indices
    {0..K-1} (float or int)) -> scalar, >= 0.  Computed from ``log_softmax`` in
    float32; [official] takes ``log(softmax + 1e-5)`` with label smoothing 1e-5, which
    only differs for probabilities below 1e-5 (and is not safe in fp16).
    """

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == logits.dim():
            target = target.squeeze(1)
        idx = target.round().long().unsqueeze(1)
        logpt = F.log_softmax(logits.float(), dim=1).gather(1, idx)
        pt = logpt.exp()
        return (-((1.0 - pt) ** self.gamma) * logpt).mean()


class DraemLoss(nn.Module):
    """L2 + SSIM + focal, returning the parts.

    forward(reconstruction (B, C, H, W) or None, good (B, C, H, W) in [0, 1],
    mask_logits (B, 2, H, W), mask (B, 1, H, W) or (B, H, W) in {0, 1}) ->
    ``{"l2", "ssim", "focal", "total"}`` scalar tensors (l2/ssim are 0 when the
    model has no reconstruction, e.g. a purely discriminative network).
    [official]: MSE(rec, good) + (1 - SSIM(rec, good)) + focal(softmax(logits), mask).
    """

    def __init__(self, gamma: float = 2.0, window_size: int = 11) -> None:
        super().__init__()
        self.focal = FocalLoss(gamma)
        self.window_size = window_size

    def forward(
        self,
        reconstruction: torch.Tensor | None,
        good: torch.Tensor,
        mask_logits: torch.Tensor,
        mask: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        focal = self.focal(mask_logits, mask)
        if reconstruction is None:
            zero = focal.new_zeros(())
            l2, ss = zero, zero
        else:
            rec = reconstruction.float()
            l2 = F.mse_loss(rec, good.float())
            ss = ssim_loss(rec, good, self.window_size)
        return {"l2": l2, "ssim": ss, "focal": focal, "total": l2 + ss + focal}


def finite(losses: dict[str, torch.Tensor]) -> bool:
    """True if every loss part is a finite number."""
    return all(math.isfinite(v.detach().item()) for v in losses.values())


__all__ = ["DraemLoss", "FocalLoss", "finite", "ssim", "ssim_loss"]
