"""VisTR's instance-sequence mask head (docs/reference/vis.md §2.4): per-frame attention maps + FPN-like conv head with a DCN,
then a per-instance 3-D convolution over time.

Channel plan for hidden size C (VisTR C=384): input ``C + M`` (memory + M attention maps), then ``C/2``,
``C/4``, ``C/8`` and the DCN output ``C/16`` (24 at C=384). GroupNorm uses 8 groups as in VisTR; for the small
synthetic widths where a channel count is not divisible by 8 we use ``gcd(8, channels)`` groups (identical at
C=384). The DCN is DCNv1 (one offset group, offsets from a zero-initialised 1×1 conv, no bias), run with
:class:`~vidseg_defvistr.deform_conv.SampledDeformConv2d` (``torchvision.ops.deform_conv2d``'s operator by
``grid_sample`` + matmul: same numbers and parameters, a vectorised CPU backward).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidseg_defvistr.deform_conv import SampledDeformConv2d


def _group_norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class MHAttentionMap(nn.Module):
    """Per-head attention maps of queries over a frame's memory (softmax over space, no value product).

    Args:
        query_dim: query/memory channels C.
        hidden_dim: projection width.
        num_heads: heads M (one map per head).
    """

    def __init__(self, query_dim: int, hidden_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads, self.hidden_dim = num_heads, hidden_dim
        self.q_linear = nn.Linear(query_dim, hidden_dim)
        self.k_linear = nn.Linear(query_dim, hidden_dim)
        for layer in (self.q_linear, self.k_linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.scale = float(hidden_dim / num_heads) ** -0.5

    def forward(self, q: Tensor, k: Tensor, mask: Tensor | None = None) -> Tensor:
        """``q (B, N, C)``, ``k (B, C, H, W)``, ``mask (B, H, W)`` True on padding → ``(B, N, M, H, W)``."""
        q = self.q_linear(q)
        k = F.conv2d(k, self.k_linear.weight[:, :, None, None], self.k_linear.bias)
        b, n, _ = q.shape
        head = self.hidden_dim // self.num_heads
        qh = q.view(b, n, self.num_heads, head) * self.scale
        kh = k.view(b, self.num_heads, head, k.shape[-2], k.shape[-1])
        weights = torch.einsum("bqnc,bnchw->bqnhw", qh, kh)
        if mask is not None:
            weights = weights.masked_fill(mask[:, None, None], float("-inf"))
        return weights.flatten(2).softmax(-1).view_as(weights)


class MaskHeadSmallConv(nn.Module):
    """FPN-like conv head: ``(memory ⊕ maps)`` at stride 32 → ``C/16`` channels at stride 4.

    Args:
        dim: input channels ``C + M``.
        fpn_dims: backbone channels of ``(f16, f8, f4)`` (R50: 1024, 512, 256).
        context_dim: hidden size C.
    """

    def __init__(self, dim: int, fpn_dims: tuple[int, int, int], context_dim: int) -> None:
        super().__init__()
        inter = [dim, context_dim // 2, context_dim // 4, context_dim // 8, context_dim // 16]
        self.out_channels = inter[4]
        self.lay1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.gn1 = _group_norm(dim)
        self.lay2 = nn.Conv2d(dim, inter[1], 3, padding=1)
        self.gn2 = _group_norm(inter[1])
        self.lay3 = nn.Conv2d(inter[1], inter[2], 3, padding=1)
        self.gn3 = _group_norm(inter[2])
        self.lay4 = nn.Conv2d(inter[2], inter[3], 3, padding=1)
        self.gn4 = _group_norm(inter[3])
        self.conv_offset = nn.Conv2d(inter[3], 18, 1)
        self.dcn = SampledDeformConv2d(inter[3], inter[4], 3, padding=1, bias=False)
        self.gn5 = _group_norm(inter[4])
        self.adapter1 = nn.Conv2d(fpn_dims[0], inter[1], 1)
        self.adapter2 = nn.Conv2d(fpn_dims[1], inter[2], 1)
        self.adapter3 = nn.Conv2d(fpn_dims[2], inter[3], 1)
        for name, module in self.named_modules():
            if name == "conv_offset":
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=1)
                nn.init.zeros_(module.bias)

    @staticmethod
    def _merge(x: Tensor, fpn: Tensor) -> Tensor:
        repeats = x.shape[0] // fpn.shape[0]
        fpn = fpn.repeat_interleave(repeats, dim=0)
        return fpn + F.interpolate(x, size=fpn.shape[-2:], mode="nearest")

    def forward(self, memory_f32: Tensor, maps_f32: Tensor, fpns: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """Masks features of every query of a set of frames.

        Args:
            memory_f32: ``(F, C, h, w)`` encoder memory of F frames.
            maps_f32: ``(F, N, M, h, w)`` attention maps of the N queries of each frame.
            fpns: backbone maps ``(f16, f8, f4)``, each ``(F, C_s, H_s, W_s)``.

        Returns:
            ``(F·N, C/16, H/4, W/4)``.
        """
        n = maps_f32.shape[1]
        x = torch.cat([memory_f32.repeat_interleave(n, dim=0), maps_f32.flatten(0, 1)], 1)
        x = F.relu(self.gn1(self.lay1(x)))
        x = F.relu(self.gn2(self.lay2(x)))
        x = F.relu(self.gn3(self.lay3(self._merge(x, self.adapter1(fpns[0])))))
        x = F.relu(self.gn4(self.lay4(self._merge(x, self.adapter2(fpns[1])))))
        x = self._merge(x, self.adapter3(fpns[2]))
        x = self.dcn(x, self.conv_offset(x))
        return F.relu(self.gn5(x))


class InstanceMaskHead3D(nn.Module):
    """VisTR ``insmask_head``: three dilated 3-D convs + GN + ReLU, then a 1×1×1 conv to one logit.

    Args:
        in_channels: per-frame mask features (C/16; 24 in VisTR).
        hidden: 3-D conv width (12).
        groups: GroupNorm groups (4).
        num_convs: dilated 3×3×3 convs (3).
        dilation: their dilation (2).
    """

    def __init__(self, in_channels: int, hidden: int = 12, groups: int = 4, num_convs: int = 3, dilation: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers += [
                nn.Conv3d(in_channels if i == 0 else hidden, hidden, 3, padding=dilation, dilation=dilation),
                nn.GroupNorm(groups, hidden),
                nn.ReLU(),
            ]
        layers.append(nn.Conv3d(hidden, 1, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(B·N, C, T, H, W)`` → ``(B·N, T, H, W)`` mask logits."""
        return self.layers(x)[:, 0]
