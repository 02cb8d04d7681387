"""STCN's mask decoder (``model/network.py::Decoder``), run once per object (objects stacked in the batch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidseg_spvos.blocks import ResBlock, UpsampleBlock


class Decoder(nn.Module):
    """``compress`` (ResBlock at /16) → ``up_16_8`` (skip f8) → ``up_8_4`` (skip f4) → ``pred`` 3×3 → ×4 upsample.

    Args:
        in_channels: channels of the readout ⊕ query value (``2·C_v`` = 1024).
        f8_channels: channels of the key encoder's ``f8`` (512 for ResNet-50).
        f4_channels: channels of the key encoder's ``f4`` (256 for ResNet-50).
        mid_channels: ``compress`` output (512).
        f8_out_channels: ``up_16_8`` output (256).
        f4_out_channels: ``up_8_4`` output (256).

    Shapes:
        ``x16 (N, in_channels, H/16, W/16)``, ``f8 (N, C8, H/8, W/8)``, ``f4 (N, C4, H/4, W/4)`` →
        logits ``(N, 1, H, W)``.
    """

    def __init__(self, in_channels: int = 1024, f8_channels: int = 512, f4_channels: int = 256,
                 mid_channels: int = 512, f8_out_channels: int = 256, f4_out_channels: int = 256) -> None:
        super().__init__()
        self.compress = ResBlock(in_channels, mid_channels)
        self.up_16_8 = UpsampleBlock(f8_channels, mid_channels, f8_out_channels)
        self.up_8_4 = UpsampleBlock(f4_channels, f8_out_channels, f4_out_channels)
        self.pred = nn.Conv2d(f4_out_channels, 1, 3, padding=1)

    def forward(self, x16: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor) -> torch.Tensor:
        x = self.compress(x16)
        x = self.up_16_8(f8, x)
        x = self.up_8_4(f4, x)
        x = self.pred(F.relu(x))
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
