"""The flows: one FrEIA ``SequenceINN`` of ``AllInOneBlock`` couplings per feature scale.

As [anomalib] FastFlow: each backbone scale gets its own flow of ``n_blocks`` affine
coupling blocks (``Fm.AllInOneBlock``: coupling, learned global affine scaling, soft
channel permutation), with conv subnets whose kernels alternate 3x3 and 1x1.  Unlike
FastFlow, the features are normalised per channel with statistics of the good training
features (any image size works, no ``LayerNorm`` over a fixed (C, H, W)) and the
log-determinant is kept **per position**, so every position gets its own negative
log-likelihood (NLL): ``0.5 * |z|^2 - log|det J|`` summed over channels.

All tensors here are float32 ``(B, C, H, W)`` feature maps.
"""

from __future__ import annotations

import math

import FrEIA.framework as Ff
import FrEIA.modules as Fm
import numpy as np
import torch
from torch import nn

from core.models.flow.config import FlowConfig


class PositionalBlock(Fm.AllInOneBlock):
    """``AllInOneBlock`` that also records its log-determinant per position.

    After a forward call, ``position_jac`` is (B, H, W) float32: the log-determinant
    contribution of each position (coupling term summed over channels plus the global
    scaling's ``sum(log scale)``).  Summed over positions it equals the block's
    log-determinant returned by FrEIA.
    """

    position_jac: torch.Tensor | None = None

    def _affine(self, x, a, rev=False):
        """FrEIA's affine coupling (``a`` scaled by 0.1, log-scale ``clamp * tanh``), also
        keeping the log-scale summed over channels per position."""
        a = 0.1 * a
        ch = x.shape[1]
        log_s = self.clamp * torch.tanh(a[:, :ch])
        per_position = log_s.sum(1)
        if not rev:
            self._coupling = per_position
            return x * torch.exp(log_s) + a[:, ch:], per_position.sum((1, 2))
        self._coupling = -per_position
        return (x - a[:, ch:]) * torch.exp(-log_s), -per_position.sum((1, 2))

    def forward(self, x, c=(), rev=False, jac=True):
        out, log_jac = super().forward(x, list(c), rev=rev, jac=jac)
        scale = self.global_scale_activation(self.global_scale)
        glob = torch.log(scale).sum() * (-1.0 if rev else 1.0)
        self.position_jac = self._coupling + glob
        return out, log_jac


class ConvSubnet(nn.Sequential):
    """[anomalib] FastFlow subnet: conv(k) - ReLU - conv(k), padding keeps the size."""

    def __init__(self, cin: int, cout: int, hidden: int, kernel: int) -> None:
        pad = kernel // 2
        super().__init__(
            nn.Conv2d(cin, hidden, kernel, padding=pad),
            nn.ReLU(),
            nn.Conv2d(hidden, cout, kernel, padding=pad),
        )


class SelfAttention(nn.Module):
    """Single-head self-attention over all positions with a residual, zero-initialised gain.

    ``forward(x)``: (B, C, H, W) -> (B, C, H, W); at initialisation the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        d = max(4, channels // 4)
        self.q = nn.Conv2d(channels, d, 1)
        self.k = nn.Conv2d(channels, d, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.scale = 1.0 / math.sqrt(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.q(x).flatten(2).transpose(1, 2)  # (B, N, d)
        k = self.k(x).flatten(2)  # (B, d, N)
        v = self.v(x).flatten(2).transpose(1, 2)  # (B, N, C)
        attn = torch.softmax(torch.bmm(q, k) * self.scale, dim=-1)
        out = torch.bmm(attn, v).transpose(1, 2).reshape(b, c, h, w)
        return x + self.gamma * out


class ConvAttnSubnet(nn.Module):
    """conv(k) - ReLU - residual self-attention - conv(k)."""

    def __init__(self, cin: int, cout: int, hidden: int, kernel: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.inp = nn.Conv2d(cin, hidden, kernel, padding=pad)
        self.attn = SelfAttention(hidden)
        self.out = nn.Conv2d(hidden, cout, kernel, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.attn(torch.relu(self.inp(x))))


def build_flow(
    channels: int, n_blocks: int, hidden_ratio: float, subnet: str, clamp: float, seed: int = 0
) -> Ff.SequenceINN:
    """A ``SequenceINN`` over (channels, H, W) features of any H, W: ``n_blocks``
    :class:`PositionalBlock` s, subnet kernels alternating 3 and 1 ([anomalib] FastFlow).

    FrEIA draws each block's channel permutation from numpy's global generator; it is
    seeded with ``seed`` here (and restored afterwards) so a run is reproducible.
    """
    cls = ConvAttnSubnet if subnet == "conv_attn" else ConvSubnet
    hidden = max(4, int(round(channels * hidden_ratio)))
    flow = Ff.SequenceINN(channels, 1, 1)
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        for i in range(n_blocks):
            kernel = 3 if i % 2 == 0 else 1

            def make(cin: int, cout: int, kernel: int = kernel) -> nn.Module:
                return cls(cin, cout, hidden, kernel)

            flow.append(
                PositionalBlock, subnet_constructor=make, affine_clamping=clamp, permute_soft=False
            )
    finally:
        np.random.set_state(state)
    return flow


def position_log_jac(flow: Ff.SequenceINN) -> torch.Tensor:
    """(B, H, W) log-determinant per position of the flow's last forward call."""
    return sum(block.position_jac for block in flow.module_list)  # type: ignore[return-value]


class FlowModel(nn.Module):
    """Per-scale flows plus per-channel feature statistics (buffers, set from good images).

    ``forward(feats)``: ``{stride: (B, C_s, H_s, W_s) float32}`` raw backbone features ->
    ``{stride: (z (B, C_s, H_s, W_s), nll (B, H_s, W_s))}`` where ``nll`` is the negative
    log-likelihood per position divided by ``C_s`` (per dimension, constant term
    ``0.5 * log(2 pi)`` left out); higher is more anomalous.
    """

    def __init__(self, config: FlowConfig, channels: dict[int, int], seed: int = 0) -> None:
        super().__init__()
        self.stages = tuple(sorted(config.stages))
        self.channels = {s: int(channels[s]) for s in self.stages}
        self.flows = nn.ModuleDict(
            {
                str(s): build_flow(
                    self.channels[s],
                    config.n_blocks,
                    config.hidden_ratio,
                    config.subnet,
                    config.clamp,
                    seed + s,
                )
                for s in self.stages
            }
        )
        for s in self.stages:
            self.register_buffer(f"mean_{s}", torch.zeros(1, self.channels[s], 1, 1))
            self.register_buffer(f"std_{s}", torch.ones(1, self.channels[s], 1, 1))
            self.register_buffer(f"map_loc_{s}", torch.zeros(()))
            self.register_buffer(f"map_scale_{s}", torch.ones(()))

    @torch.no_grad()
    def set_statistics(self, feats: dict[int, torch.Tensor]) -> None:
        """Per-channel mean / std of good features ``{stride: (B, C, H, W)}``."""
        for s in self.stages:
            f = feats[s].float()
            getattr(self, f"mean_{s}").copy_(f.mean((0, 2, 3), keepdim=True))
            getattr(self, f"std_{s}").copy_(f.std((0, 2, 3), keepdim=True).clamp_min(1e-3))

    @torch.no_grad()
    def set_map_statistics(self, loc: dict[int, float], scale: dict[int, float]) -> None:
        """Per-scale location / spread of good images' NLL maps (see :meth:`map_norm`)."""
        for s in self.stages:
            getattr(self, f"map_loc_{s}").fill_(float(loc[s]))
            getattr(self, f"map_scale_{s}").fill_(max(float(scale[s]), 1e-6))

    def map_norm(self) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """``{stride: (loc, scale)}`` 0-d tensors: each scale's NLL map is standardised as
        ``(nll - loc) / scale`` before the scales are averaged, so a scale whose good
        NLL is merely larger or noisier does not dominate the fused map.  ``(0, 1)`` until
        :meth:`set_map_statistics` (and in checkpoints saved before they existed)."""
        return {
            s: (getattr(self, f"map_loc_{s}"), getattr(self, f"map_scale_{s}")) for s in self.stages
        }

    def load_weights(self, state: dict) -> None:
        """``load_state_dict`` that accepts a state without the map statistics (saved
        before they existed: the model keeps (0, 1), the plain mean over scales it was
        calibrated with); raises ``RuntimeError`` for any other missing or unexpected key."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("map_")]
        if missing or unexpected:
            raise RuntimeError(f"missing keys {missing}, unexpected keys {unexpected}")

    def normalise(self, s: int, f: torch.Tensor) -> torch.Tensor:
        return (f.float() - getattr(self, f"mean_{s}")) / getattr(self, f"std_{s}")

    def forward(
        self, feats: dict[int, torch.Tensor]
    ) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        out = {}
        for s in self.stages:
            flow = self.flows[str(s)]
            z, _ = flow(self.normalise(s, feats[s]))
            nll = 0.5 * (z * z).sum(1) - position_log_jac(flow)
            out[s] = (z, nll / self.channels[s])
        return out
