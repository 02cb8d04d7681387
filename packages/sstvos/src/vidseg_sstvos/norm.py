"""Normalisation layers of the SST encoder: Filter Response Normalization + TLU, or channel LayerNorm.

The released SSTVOS config sets ``ATTENTION_NORM_TYPE="FilterResponseNorm"`` and
``POSITIONWISE_FEEDFORWARD_NONLINEARITY="FRN"`` (``docs/reference/vos.md`` §1.7). FRN (Singh & Krishnan, CVPR 2020):
``ν² = mean_{H,W} x²``, ``y = γ·x / sqrt(ν² + ε) + β``, followed by the Thresholded Linear Unit
``z = max(y, τ)``; the paper always pairs the two, so :class:`FilterResponseNorm` includes TLU (``tlu=False``
drops it). In the encoder the statistics are taken per frame: a ``(B, C, T, H, W)`` input is normalised
over ``(H, W)`` of each ``(b, c, t)``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from vidseg_common.errors import ConfigError

NormKind = Literal["frn", "layernorm"]


class FilterResponseNorm(nn.Module):
    """FRN + TLU over the last two (spatial) dimensions of ``(B, C, *, H, W)``.

    Args:
        num_channels: ``C``.
        eps: ``ε`` added to the mean squared response (FRN paper: 1e-6).
        tlu: apply the learned threshold ``max(y, τ)`` after the affine transform.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, tlu: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.tau = nn.Parameter(torch.zeros(num_channels)) if tlu else None

    def _view(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return p.view(1, -1, *([1] * (x.dim() - 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, C, *, H, W)`` → same shape."""
        nu2 = x.pow(2).mean(dim=(-2, -1), keepdim=True)
        y = x * torch.rsqrt(nu2 + self.eps)
        y = self._view(self.weight, x) * y + self._view(self.bias, x)
        return y if self.tau is None else torch.maximum(y, self._view(self.tau, x))


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dimension of ``(B, C, *)`` (the Transformer default; Table-free alternative)."""

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, C, *)`` → same shape."""
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


def make_norm(kind: NormKind, num_channels: int) -> nn.Module:
    """The encoder's normalisation: ``frn`` (FRN + TLU, the released config) or ``layernorm``."""
    if kind == "frn":
        return FilterResponseNorm(num_channels)
    if kind == "layernorm":
        return ChannelLayerNorm(num_channels)
    raise ConfigError(f"model.norm must be 'frn' or 'layernorm', got {kind!r}")


def make_ffn_activation(kind: NormKind, num_channels: int) -> nn.Module:
    """The FFN non-linearity: FRN + TLU with ``frn`` (config ``POSITIONWISE_FEEDFORWARD_NONLINEARITY="FRN"``), ReLU otherwise."""
    return FilterResponseNorm(num_channels) if kind == "frn" else nn.ReLU(inplace=True)
