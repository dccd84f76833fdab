"""DRAEM network: reconstructive + discriminative sub-networks (nn.Modules only).

A port of [official] ``model_unet.py`` written with small block helpers instead of
copy-pasted layers.  Module *names* and layer order inside every ``nn.Sequential``
are kept identical to [official], so a state_dict of the authors' networks maps
one-to-one onto ``DraemNet.reconstructive`` / ``DraemNet.discriminative``.

Tensors: images are float32 (B, C, H, W) in [0, 1] ([official] divides uint8 by
255, no mean/std normalisation); H and W must be multiples of 16 (reconstructive,
4 poolings) -- the discriminative U-Net pools 5 times, so it needs multiples of 32;
``DraemNet`` pads to a multiple of 32 and crops back, so any multiple of 16 works.

Every network the trainer and detector use follows one interface (each variant brings
its own through ``core.models.draem.recipe``): ``forward(x) -> (reconstruction or
None, mask_logits)`` with reconstruction (B, C, H, W) and mask_logits (B, 2, H, W),
channel 1 being the anomaly class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.config import ModelConfig


def _double_conv(cin: int, cmid: int, cout: int) -> nn.Sequential:
    """(Conv3x3-BN-ReLU) x 2, [official] block layout (indices 0..5)."""
    return nn.Sequential(
        nn.Conv2d(cin, cmid, kernel_size=3, padding=1),
        nn.BatchNorm2d(cmid),
        nn.ReLU(inplace=True),
        nn.Conv2d(cmid, cout, kernel_size=3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    """Bilinear x2 upsampling (align_corners=True) + Conv3x3-BN-ReLU [official]."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        nn.Conv2d(cin, cout, kernel_size=3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Encoder(nn.Module):
    """Encoder with ``levels`` blocks (widths w, 2w, 4w, 8w, 8w, 8w) and max-pooling.

    Returns the list of block outputs b1..b_levels (b_i at 1/2**(i-1) resolution).
    """

    def __init__(self, in_channels: int, w: int, levels: int) -> None:
        super().__init__()
        widths = [w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w][:levels]
        self.levels = levels
        cin = in_channels
        for i, cout in enumerate(widths, start=1):
            setattr(self, f"block{i}", _double_conv(cin, cout, cout))
            cin = cout
        self.pool = nn.MaxPool2d(2)  # [official] mp1..mp5 are identical parameter-free pools

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(1, self.levels + 1):
            if i > 1:
                x = self.pool(x)
            x = getattr(self, f"block{i}")(x)
            feats.append(x)
        return feats


class _DecoderReconstructive(nn.Module):
    """[official] ``DecoderReconstructive``: 4 up-steps, no skip connections."""

    def __init__(self, w: int, out_channels: int) -> None:
        super().__init__()
        self.up1 = _up(8 * w, 8 * w)
        self.db1 = _double_conv(8 * w, 8 * w, 4 * w)
        self.up2 = _up(4 * w, 4 * w)
        self.db2 = _double_conv(4 * w, 4 * w, 2 * w)
        self.up3 = _up(2 * w, 2 * w)
        self.db3 = _double_conv(2 * w, 2 * w, w)
        self.up4 = _up(w, w)
        self.db4 = _double_conv(w, w, w)
        self.fin_out = nn.Sequential(nn.Conv2d(w, out_channels, kernel_size=3, padding=1))

    def forward(self, b5: torch.Tensor) -> torch.Tensor:
        x = self.db1(self.up1(b5))
        x = self.db2(self.up2(x))
        x = self.db3(self.up3(x))
        x = self.db4(self.up4(x))
        return self.fin_out(x)


class _DecoderDiscriminative(nn.Module):
    """[official] ``DecoderDiscriminative``: U-Net decoder with 5 skip concatenations."""

    def __init__(self, w: int, out_channels: int) -> None:
        super().__init__()
        self.up_b = _up(8 * w, 8 * w)
        self.db_b = _double_conv(16 * w, 8 * w, 8 * w)
        self.up1 = _up(8 * w, 4 * w)
        self.db1 = _double_conv(12 * w, 4 * w, 4 * w)
        self.up2 = _up(4 * w, 2 * w)
        self.db2 = _double_conv(6 * w, 2 * w, 2 * w)
        self.up3 = _up(2 * w, w)
        self.db3 = _double_conv(3 * w, w, w)
        self.up4 = _up(w, w)
        self.db4 = _double_conv(2 * w, w, w)
        self.fin_out = nn.Sequential(nn.Conv2d(w, out_channels, kernel_size=3, padding=1))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        b1, b2, b3, b4, b5, b6 = feats
        x = self.db_b(torch.cat((self.up_b(b6), b5), dim=1))  # [official] order: (up, skip)
        x = self.db1(torch.cat((self.up1(x), b4), dim=1))
        x = self.db2(torch.cat((self.up2(x), b3), dim=1))
        x = self.db3(torch.cat((self.up3(x), b2), dim=1))
        x = self.db4(torch.cat((self.up4(x), b1), dim=1))
        return self.fin_out(x)


class ReconstructiveSubNetwork(nn.Module):
    """Encoder-decoder that maps an (augmented) image to its anomaly-free version.

    forward: (B, in_channels, H, W) float -> (B, out_channels, H, W) float (unbounded;
    trained towards [0, 1]). H, W multiples of 16. [paper] Sec. 3.1, [official] width 128.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base_width: int = 128) -> None:
        super().__init__()
        self.encoder = _Encoder(in_channels, base_width, levels=5)
        self.decoder = _DecoderReconstructive(base_width, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)[-1])


class DiscriminativeSubNetwork(nn.Module):
    """U-Net that segments anomalies from (reconstruction, image) concatenated.

    forward: (B, in_channels, H, W) -> logits (B, out_channels, H, W). H, W multiples
    of 32. [paper] Sec. 3.2, [official] base width 64, 6 encoder levels.
    """

    def __init__(
        self, in_channels: int = 6, out_channels: int = 2, base_channels: int = 64
    ) -> None:
        super().__init__()
        self.encoder_segment = _Encoder(in_channels, base_channels, levels=6)
        self.decoder_segment = _DecoderDiscriminative(base_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder_segment(self.encoder_segment(x))


class DraemNet(nn.Module):
    """The full DRAEM model for one :class:`ModelConfig`.

    forward(x): x (B, C, H, W) float in [0, 1], C = ``cfg.in_channels``, H, W multiples
    of 16 -> ``(reconstruction (B, C, H, W), mask_logits (B, 2, H, W))``.  The
    discriminative input is ``cat(reconstruction, x)`` in that order ([official]
    ``train_DRAEM.py``; anomalib concatenates the other way round).  The gradient of
    the segmentation loss flows into the reconstructive network during training, as
    in [official] (it only detaches at test time, where it makes no difference).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        c = cfg.in_channels
        self.reconstructive = ReconstructiveSubNetwork(c, c, cfg.recon_width)
        self.discriminative = DiscriminativeSubNetwork(2 * c, 2, cfg.disc_width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        rec = self.reconstructive(x)
        joined = torch.cat((rec, x), dim=1)
        ph, pw = (-h) % 32, (-w) % 32
        if ph or pw:  # discriminative U-Net needs multiples of 32; reflect-pad and crop back
            joined = F.pad(joined, (0, pw, 0, ph), mode="reflect")
        logits = self.discriminative(joined)[..., :h, :w]
        return rec, logits


def init_weights(module: nn.Module) -> None:
    """[official] ``weights_init``: conv weights N(0, 0.02); BN weight N(1, 0.02), bias 0.

    Uses the global torch RNG, so seed it first (``torch.manual_seed``).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the (randomly initialised) network of ``cfg``'s variant (:mod:`core.models.draem.recipe`).

    Seed torch before calling for reproducible weights.
    """
    from core.models.draem.recipe import recipe

    return recipe(cfg).network(cfg)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "DiscriminativeSubNetwork",
    "DraemNet",
    "ReconstructiveSubNetwork",
    "build_model",
    "count_parameters",
    "init_weights",
]
