"""STCN building blocks (Cheng et al., NeurIPS 2021; ``model/modules.py``, ``model/cbam.py``), docs/reference/vos.md §2.2.

Every convolution that SpVOS may sparsify is a plain ``nn.Conv2d`` attribute here; the sparse variants are
swapped in afterwards by :func:`vidseg_spvos.sparsify.sparsify` (so parameter names stay STCN's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """Pre-activation residual block without normalisation: ``x' = conv2(relu(conv1(relu(x)))) + down(x)``.

    Args:
        in_channels: input channels.
        out_channels: output channels (default ``in_channels``); when they differ the shortcut is a
            3×3 ``downsample`` conv (STCN names it so although the resolution is kept).

    Shapes: ``(N, C_in, H, W)`` → ``(N, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        self.downsample = None if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv1(F.relu(x))
        r = self.conv2(F.relu(r))
        if self.downsample is not None:
            x = self.downsample(x)
        return x + r


class ChannelGate(nn.Module):
    """CBAM channel attention: a shared MLP ``C → C/r → C`` on global average and max pooling."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, channels // reduction), nn.ReLU(),
                                 nn.Linear(channels // reduction, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` → ``(N, C, H, W)`` re-weighted per channel."""
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(avg + mx)[:, :, None, None]


class SpatialGate(nn.Module):
    """CBAM spatial attention: a 7×7 conv (with bias, no BN, as STCN's ``cbam.py``) on [max, mean] over channels."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """Convolutional block attention module (Woo et al. 2018): channel gate then spatial gate."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel_gate = ChannelGate(channels, reduction)
        self.spatial_gate = SpatialGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial_gate(self.channel_gate(x))


class FeatureFusionBlock(nn.Module):
    """STCN's value fuser: ``x = block1(cat(v16, key_f16)); x = block2(x + cbam(x))``.

    Shapes: ``v16 (N, C_a, H, W)``, ``key_f16 (N, C_b, H, W)`` → ``(N, C_v, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, cbam_reduction: int = 16) -> None:
        super().__init__()
        self.block1 = ResBlock(in_channels, out_channels)
        self.attention = CBAM(out_channels, cbam_reduction)
        self.block2 = ResBlock(out_channels, out_channels)

    def forward(self, v16: torch.Tensor, key_f16: torch.Tensor) -> torch.Tensor:
        x = self.block1(torch.cat([v16, key_f16], dim=1))
        return self.block2(x + self.attention(x))


class KeyProjection(nn.Module):
    """3×3 conv ``C_in → C_k`` (orthogonal weight, zero bias), STCN's ``KeyProjection``."""

    def __init__(self, in_channels: int, key_dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Conv2d(in_channels, key_dim, 3, padding=1)
        nn.init.orthogonal_(self.key_proj.weight.data)
        nn.init.zeros_(self.key_proj.bias.data)

    def forward(self, f16: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)`` → ``(N, C_k, H, W)``."""
        return self.key_proj(f16)


class UpsampleBlock(nn.Module):
    """Decoder stage: ``out_conv(skip_conv(skip) + up×2(x))``.

    Shapes: ``skip (N, C_skip, 2H, 2W)``, ``up (N, C_up, H, W)`` → ``(N, C_out, 2H, 2W)``.
    """

    def __init__(self, skip_channels: int, up_channels: int, out_channels: int, scale_factor: int = 2) -> None:
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_channels, up_channels, 3, padding=1)
        self.out_conv = ResBlock(up_channels, out_channels)
        self.scale_factor = scale_factor

    def forward(self, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        x = self.skip_conv(skip)
        x = x + F.interpolate(up, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.out_conv(x)
