"""DCNv1 (one offset group, stride 1) as bilinear sampling + one matrix product.

Numerically the operator of ``torchvision.ops.deform_conv2d`` (same offset layout: channel ``2k`` is the
``y`` and ``2k+1`` the ``x`` offset of kernel tap ``k = i·kw + j``; a sample outside the map reads zeros corner
by corner), which the tests use as the reference. Why not call torchvision: its CPU backward loops over
pixels and taps in C++, and the mask head runs the DCN on every query × frame; ``F.grid_sample`` + ``matmul``
vectorise it. Both are exact, so the choice changes speed only. Parameter names and shapes (``weight (C_out, C_in, kh, kw)``,
optional ``bias``) and the init are ``torchvision.ops.DeformConv2d``'s, so checkpoints are interchangeable.
FLOPs: the product is counted by ``FlopCounterMode`` like a convolution (``2·C_out·C_in·kh·kw`` per output
pixel); the bilinear sampling (``grid_sample``) has no formula in torch and counts 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def deform_conv2d_sampled(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None, padding: int = 0, dilation: int = 1
) -> Tensor:
    """Deformable convolution (stride 1, one offset group) by sampling.

    Args:
        x: ``(B, C_in, H, W)`` input.
        offset: ``(B, 2·kh·kw, H_out, W_out)`` ``(dy, dx)`` pairs per tap, row-major taps.
        weight: ``(C_out, C_in, kh, kw)``.
        bias: ``(C_out,)`` or ``None``.
        padding: zero padding (both sides, both axes).
        dilation: tap spacing.

    Returns:
        ``(B, C_out, H_out, W_out)`` with ``H_out = H + 2·padding − dilation·(kh − 1)`` (same for W).
    """
    b, c, h, w = x.shape
    c_out, c_in, kh, kw = weight.shape
    if c_in != c:
        raise ValueError(f"deform_conv2d_sampled: input has {c} channels, weight expects {c_in}")
    h_out, w_out = h + 2 * padding - dilation * (kh - 1), w + 2 * padding - dilation * (kw - 1)
    taps = kh * kw
    if offset.shape != (b, 2 * taps, h_out, w_out):
        raise ValueError(f"deform_conv2d_sampled: offset shape {tuple(offset.shape)}, expected {(b, 2 * taps, h_out, w_out)}")
    dtype, device = x.dtype, x.device
    tap_y = (torch.arange(kh, device=device, dtype=dtype) * dilation).repeat_interleave(kw)  # (taps,)
    tap_x = (torch.arange(kw, device=device, dtype=dtype) * dilation).repeat(kh)
    base_y = torch.arange(h_out, device=device, dtype=dtype) - padding
    base_x = torch.arange(w_out, device=device, dtype=dtype) - padding
    off = offset.view(b, taps, 2, h_out, w_out)
    py = base_y[None, None, :, None] + tap_y[None, :, None, None] + off[:, :, 0]  # (B, taps, H_out, W_out)
    px = base_x[None, None, None, :] + tap_x[None, :, None, None] + off[:, :, 1]
    # align_corners=False: grid value g ↦ pixel ((g + 1)·size − 1) / 2, so pixel p ↦ (2p + 1) / size − 1.
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), -1).view(b, taps * h_out, w_out, 2)
    sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    columns = sampled.view(b, c * taps, h_out * w_out)  # (B, C_in·taps, P): channel-major like weight.view
    out = torch.matmul(weight.reshape(c_out, c * taps), columns).view(b, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


class SampledDeformConv2d(nn.Module):
    """Drop-in for ``torchvision.ops.DeformConv2d`` (stride 1, one offset group); see the module docstring.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        kernel_size: square kernel size (VisTR 3).
        padding: zero padding (VisTR 1).
        dilation: tap spacing (1).
        bias: learn a bias (VisTR: no).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1, dilation: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.padding, self.dilation = padding, dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``torchvision.ops.DeformConv2d``'s init (kaiming-uniform, a=√5; bias uniform in ±1/√fan_in)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:
        """``x (B, C_in, H, W)``, ``offset (B, 2·k², H, W)`` → ``(B, C_out, H, W)`` (with ``padding = k // 2``)."""
        return deform_conv2d_sampled(x, offset, self.weight, self.bias, self.padding, self.dilation)
