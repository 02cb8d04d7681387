"""Sinusoidal positional encodings: 2-D (DETR / Deformable DETR) and 3-D (VisTR, SSTVOS).

Both follow "Attention is all you need": feature ``2i`` is ``sin(pos / T^(2i/d))`` and ``2i+1`` the
matching ``cos`` (DETR interleaves them), with positions optionally normalised to ``[0, 2π·scale]``.
The two DETR-family variants differ only in the normalisation offset, kept as a flag:

- DETR / VisTR: ``pos = cumsum / (last + eps) · 2π``;
- Deformable DETR / SeqFormer: ``pos = (cumsum − 0.5) / (last + eps) · 2π`` (``center_offset=0.5``).

Positions come from the cumulative sum of the *unpadded* mask, so padded pixels do not shift them.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _sine(positions: torch.Tensor, num_feats: int, temperature: float) -> torch.Tensor:
    """``positions (...)`` → ``(..., num_feats)`` interleaved sin/cos features."""
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=positions.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos = positions[..., None] / dim_t
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine2D(nn.Module):
    """2-D sine encoding of ``num_feats`` features per axis (output ``2·num_feats`` channels, y then x).

    Args:
        num_feats: features per axis (DETR: d_model / 2).
        temperature: frequency base (10000).
        normalize: scale positions to ``[0, scale]``.
        scale: 2π by default.
        center_offset: subtracted from the cumulative position before normalising (0.5 in Deformable DETR).
    """

    def __init__(
        self,
        num_feats: int = 128,
        temperature: float = 10000.0,
        normalize: bool = True,
        scale: float = 2 * math.pi,
        center_offset: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.num_feats, self.temperature, self.normalize = num_feats, temperature, normalize
        self.scale, self.center_offset, self.eps = scale, center_offset, eps

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """``mask (B, H, W)`` bool, True on padding → ``(B, 2·num_feats, H, W)``."""
        valid = (~mask).float()
        y = valid.cumsum(1)
        x = valid.cumsum(2)
        if self.normalize:
            y = (y - self.center_offset) / (y[:, -1:, :] + self.eps) * self.scale
            x = (x - self.center_offset) / (x[:, :, -1:] + self.eps) * self.scale
        pos = torch.cat((_sine(y, self.num_feats, self.temperature), _sine(x, self.num_feats, self.temperature)), -1)
        return pos.permute(0, 3, 1, 2)


class PositionEmbeddingSine3D(nn.Module):
    """3-D sine encoding (t, y, x), ``num_feats`` features per axis, concatenated in that order (VisTR).

    Args:
        num_feats: features per axis (VisTR: d_model / 3 = 128 for C = 384).
        temperature: frequency base (10000; SSTVOS's released code used 100).
        normalize: scale positions to ``[0, scale]`` (VisTR: no −0.5 offset).
        scale: 2π by default.
    """

    def __init__(
        self,
        num_feats: int = 128,
        temperature: float = 10000.0,
        normalize: bool = True,
        scale: float = 2 * math.pi,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.num_feats, self.temperature, self.normalize, self.scale, self.eps = (
            num_feats, temperature, normalize, scale, eps
        )

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """``mask (B, T, H, W)`` bool, True on padding → ``(B, T, 3·num_feats, H, W)``."""
        valid = (~mask).float()
        t = valid.cumsum(1)
        y = valid.cumsum(2)
        x = valid.cumsum(3)
        if self.normalize:
            t = t / (t[:, -1:] + self.eps) * self.scale
            y = y / (y[:, :, -1:] + self.eps) * self.scale
            x = x / (x[:, :, :, -1:] + self.eps) * self.scale
        features = [_sine(p, self.num_feats, self.temperature) for p in (t, y, x)]
        return torch.cat(features, -1).permute(0, 1, 4, 2, 3)
