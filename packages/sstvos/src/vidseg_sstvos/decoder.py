"""CFBI's collaborative ensembler, the SSTVOS decoder (``docs/reference/vos.md`` §1.8), with configurable widths.

Objects are the batch dimension (``N = B·O``, background is object 0). Per object ``o`` the input is
``[current embedding ‖ previous embedding·m_o ‖ previous embedding·(1 − m_o) ‖ PreHead(matching)]`` where
``matching = [A_v(o) (L·M) ‖ max_{o'≠o} A_v(o') (L·M) ‖ m_o (1)]``: SST's object affinities take the place of
CFBI's global/local nearest-neighbour distances in the same fg/bg arrangement, and ``m_o`` is the previous
frame's mask of ``o``. Every stage is gated by the instance-level attention vector (``IA``, mean-pooled fg/bg
embeddings of the reference and previous frames): ``x ← (1 + tanh(Linear(IA)))·x``. Stages are bottlenecks
with GroupNorm (dilations 1, 2, 4, … inside a stage; the first block of a stage carries its stride), then
ASPP, a DeepLabV3+-style decoder fusing the stride-4 backbone feature and the first stage's output, and a
dynamic 1×1 conv whose weights and bias come from ``Linear(IA)``: one logit map per object at stride 4.

Simplifications (documented deviations): no GCT (gated channel transformation) before the convolutions; no
"background augmentation" term (the background is an object with its own logit); bilinear rather than bicubic
upsampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidseg_common.errors import ConfigError


def group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with ``gcd(groups, channels)`` groups (CFBI: 32)."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class InstanceGate(nn.Module):
    """``x ← (1 + tanh(Linear(ia)))·x`` (CFBI ``IA_gate``). ``x (N, C, H, W)``, ``ia (N, D)``."""

    def __init__(self, ia_dim: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(ia_dim, channels)

    def forward(self, x: torch.Tensor, ia: torch.Tensor) -> torch.Tensor:
        return x * (1 + torch.tanh(self.linear(ia)))[:, :, None, None]


class Bottleneck(nn.Module):
    """1×1 → 3×3 (dilated, strided) → 1×1 with GroupNorm, expansion 4, projected shortcut when needed."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        mid = max(1, out_channels // 4)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, mid, 1, bias=False), group_norm(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, padding=dilation, dilation=dilation, bias=False), group_norm(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1, bias=False), group_norm(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), group_norm(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1×1, three dilated 3×3 and an image-pool branch, fused by a 1×1 conv."""

    def __init__(self, in_channels: int, out_channels: int, dilations: Sequence[int] = (6, 12, 18)) -> None:
        super().__init__()
        branches = [nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), group_norm(out_channels), nn.ReLU(inplace=True))]
        for d in dilations:
            branches.append(nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=d, dilation=d, bias=False),
                                          group_norm(out_channels), nn.ReLU(inplace=True)))
        self.branches = nn.ModuleList(branches)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.ReLU(inplace=True))
        self.project = nn.Sequential(nn.Conv2d(out_channels * (len(dilations) + 2), out_channels, 1, bias=False),
                                     group_norm(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        outs.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


class CollaborativeEnsembler(nn.Module):
    """Per-object logits from embeddings, object affinities and the previous mask.

    Args:
        embed_dim: channels ``E`` of the current / previous frame embeddings.
        affinity_channels: ``L·M`` affinity maps per object.
        low_level_channels: channels of the stride-4 backbone feature.
        pre_dim: PreHead width (CFBI: 64).
        stage_channels: width of each stage (CFBI: 256, 512, 512).
        stage_depths: bottlenecks per stage (CFBI: 2, 3, 3).
        stage_strides: stride of each stage's first block (CFBI: 1, 2, 2).
        aspp_channels: ASPP width (CFBI: 256).
        aspp_dilations: ASPP dilation rates.
        decoder_channels: final 3×3 conv width (CFBI: 128; the fused low-level projection is half of it).
    """

    def __init__(
        self,
        embed_dim: int,
        affinity_channels: int,
        low_level_channels: int,
        pre_dim: int = 64,
        stage_channels: Sequence[int] = (256, 512, 512),
        stage_depths: Sequence[int] = (2, 3, 3),
        stage_strides: Sequence[int] = (1, 2, 2),
        aspp_channels: int = 256,
        aspp_dilations: Sequence[int] = (6, 12, 18),
        decoder_channels: int = 128,
    ) -> None:
        super().__init__()
        if not len(stage_channels) == len(stage_depths) == len(stage_strides) or not stage_channels:
            raise ConfigError("model.stage_channels, stage_depths and stage_strides must be non-empty and of equal length")
        self.ia_dim = 4 * embed_dim
        self.pre_head = nn.Sequential(nn.Conv2d(2 * affinity_channels + 1, pre_dim, 1, bias=False), group_norm(pre_dim, 16),
                                      nn.ReLU(inplace=True))
        in_channels = 3 * embed_dim + pre_dim
        self.gates = nn.ModuleList()
        self.stages = nn.ModuleList()
        for channels, depth, stride in zip(stage_channels, stage_depths, stage_strides):
            self.gates.append(InstanceGate(self.ia_dim, in_channels))
            blocks = [Bottleneck(in_channels if i == 0 else channels, channels, stride if i == 0 else 1, 2**i) for i in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
            in_channels = channels
        self.aspp_gate = InstanceGate(self.ia_dim, in_channels)
        self.aspp = ASPP(in_channels, aspp_channels, aspp_dilations)
        low_dim = decoder_channels // 2
        self.low_level = nn.Sequential(nn.Conv2d(low_level_channels + stage_channels[0], low_dim, 1, bias=False),
                                       group_norm(low_dim), nn.ReLU(inplace=True))
        self.decoder_gate = InstanceGate(self.ia_dim, aspp_channels + low_dim)
        self.fuse = nn.Sequential(
            nn.Conv2d(aspp_channels + low_dim, decoder_channels, 3, padding=1, bias=False), group_norm(decoder_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(decoder_channels, decoder_channels, 3, padding=1, bias=False), group_norm(decoder_channels),
            nn.ReLU(inplace=True),
        )
        self.dynamic = nn.Linear(self.ia_dim, decoder_channels + 1)

    def forward(
        self,
        current: torch.Tensor,
        previous: torch.Tensor,
        previous_masks: torch.Tensor,
        affinity: torch.Tensor,
        instance: torch.Tensor,
        low_level_f4: torch.Tensor,
    ) -> torch.Tensor:
        """Per-object logits at stride 4.

        Args:
            current: ``(B, E, h, w)`` current-frame embedding (attention stride).
            previous: ``(B, E, h, w)`` previous-frame embedding.
            previous_masks: ``(B, O, h, w)`` previous-frame object masks (one-hot, background = 0).
            affinity: ``(B, L·M, O, h, w)`` object affinities of the current frame.
            instance: ``(B, O, 4E)`` instance-level attention vectors.
            low_level_f4: ``(B, C4, H/4, W/4)`` backbone feature.

        Returns:
            ``(B, O, H/4, W/4)`` logits.
        """
        b, o, h, w = previous_masks.shape
        eye = torch.eye(o, dtype=torch.bool, device=affinity.device).view(1, 1, o, o, 1, 1)
        others = affinity.unsqueeze(2).expand(-1, -1, o, -1, -1, -1).masked_fill(eye, 0.0).amax(dim=3)  # (B, LM, O, h, w)
        matching = torch.cat([affinity, others, previous_masks.unsqueeze(1)], dim=1)  # (B, 2LM+1, O, h, w)
        matching = matching.transpose(1, 2).reshape(b * o, -1, h, w)
        m = previous_masks.reshape(b * o, 1, h, w)
        cur = current.repeat_interleave(o, dim=0)
        prev = previous.repeat_interleave(o, dim=0)
        x = torch.cat([cur, prev * m, prev * (1 - m), self.pre_head(matching)], dim=1)
        ia = instance.reshape(b * o, -1)
        first = None
        for gate, stage in zip(self.gates, self.stages):
            x = stage(gate(x, ia))
            first = x if first is None else first
        x = self.aspp(self.aspp_gate(x, ia))
        size = low_level_f4.shape[-2:]
        low = torch.cat([low_level_f4.repeat_interleave(o, dim=0),
                         F.interpolate(first, size=size, mode="bilinear", align_corners=True)], dim=1)
        x = torch.cat([F.interpolate(x, size=size, mode="bilinear", align_corners=True), self.low_level(low)], dim=1)
        x = self.fuse(self.decoder_gate(x, ia))
        params = self.dynamic(ia)  # (N, D + 1)
        logits = torch.einsum("nchw,nc->nhw", x, params[:, :-1]) + params[:, -1, None, None]
        return logits.reshape(b, o, *size)
