"""Triton forward kernel of ``vidseg::sparse_conv2d``: implicit GEMM at the computed positions only.

One program per tile of ``BLOCK_N`` computed positions × ``BLOCK_CO`` output channels. For each kernel
tap ``(ky, kx)`` and block of ``BLOCK_CI`` input channels it loads the tap's input rows of its positions
from the zero-padded channels-last input (the im2col gather, never materialised) and the matching
``(BLOCK_CI, BLOCK_CO)`` weight tile, accumulates ``tl.dot`` in float32 (``input_precision="ieee"``:
no TF32, so results match the PyTorch path), adds the bias and stores straight into the zero NCHW
output. Positions not in the mask are never touched, so they stay 0.

float16 / bfloat16 / float32 inputs run here; float64 (no tensor-core dot) runs the PyTorch path.
The backward pass is the PyTorch sparse backward op. Registered by name with the op's other kernels
(:func:`vidseg_common.ops.backend.register_kernels`) and imported by the registry when first selected;
it imports the op module for its helpers, never the reverse. Runs on CUDA tensors, or on CPU tensors
under ``TRITON_INTERPRET=1`` (set before this module is imported).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vidseg_common.ops.sparse_conv2d import padded_channels_last, sparse_conv2d_torch

BLOCK_N = 32
BLOCK_CO = 32
BLOCK_CI = 32


@triton.jit
def _sparse_conv2d_fwd_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    pos_ptr,
    out_ptr,
    num_pos,
    c_in,
    c_out,
    hp,
    wp,
    hw_out,
    w_out,
    stride_y,
    stride_x,
    dil_y,
    dil_x,
    KH: tl.constexpr,
    KW: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_CO: tl.constexpr,
    BLOCK_CI: tl.constexpr,
):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_co = tl.program_id(1) * BLOCK_CO + tl.arange(0, BLOCK_CO)
    nmask = offs_n < num_pos
    comask = offs_co < c_out
    pos = tl.load(pos_ptr + offs_n, mask=nmask, other=0).to(tl.int64)
    b = pos // hw_out
    rem = pos % hw_out
    oy = rem // w_out
    ox = rem % w_out
    base = b * hp * wp + oy * stride_y * wp + ox * stride_x
    acc = tl.zeros((BLOCK_N, BLOCK_CO), dtype=tl.float32)
    for ky in tl.static_range(KH):
        for kx in tl.static_range(KW):
            row = base + ky * dil_y * wp + kx * dil_x
            for c0 in range(0, c_in, BLOCK_CI):
                offs_ci = c0 + tl.arange(0, BLOCK_CI)
                cimask = offs_ci < c_in
                a = tl.load(x_ptr + row[:, None] * c_in + offs_ci[None, :], mask=nmask[:, None] & cimask[None, :], other=0.0)
                w_rows = (ky * KW + kx) * c_in + offs_ci
                wt = tl.load(w_ptr + w_rows[:, None] * c_out + offs_co[None, :], mask=cimask[:, None] & comask[None, :], other=0.0)
                acc = tl.dot(a, wt, acc, input_precision="ieee")
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_co, mask=comask, other=0.0).to(tl.float32)[None, :]
    out_offs = b[:, None] * c_out * hw_out + offs_co[None, :].to(tl.int64) * hw_out + rem[:, None]
    tl.store(out_ptr + out_offs, acc.to(out_ptr.dtype.element_ty), mask=nmask[:, None] & comask[None, :])


def sparse_conv2d_triton(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
) -> torch.Tensor:
    """Launch the kernel (arguments already checked by the op). Same contract as the reference."""
    if x.dtype == torch.float64:
        return sparse_conv2d_torch(x, weight, bias, mask, stride, padding, dilation)
    bsz, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    _, h_out, w_out = mask.shape
    rows_in = padded_channels_last(x, padding).contiguous()
    w_taps = weight.permute(2, 3, 1, 0).contiguous()  # (kh, kw, C_in, C_out)
    positions = mask.reshape(-1).nonzero().squeeze(1).contiguous()
    out = x.new_zeros(bsz, c_out, h_out, w_out)
    if positions.numel() == 0:
        return out
    grid = (triton.cdiv(positions.numel(), BLOCK_N), triton.cdiv(c_out, BLOCK_CO))
    _sparse_conv2d_fwd_kernel[grid](
        rows_in, w_taps, bias.contiguous() if bias is not None else w_taps, positions, out,
        positions.numel(), c_in, c_out, h + 2 * padding[0], w + 2 * padding[1], h_out * w_out, w_out,
        stride[0], stride[1], dilation[0], dilation[1],
        KH=kh, KW=kw, HAS_BIAS=bias is not None, BLOCK_N=BLOCK_N, BLOCK_CO=BLOCK_CO, BLOCK_CI=BLOCK_CI,
    )
    return out
