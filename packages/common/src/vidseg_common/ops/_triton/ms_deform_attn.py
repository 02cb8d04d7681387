"""Triton forward kernel of ``vidseg::ms_deform_attn`` (imported lazily; needs the ``triton`` package).

One program per (batch·query, head) gathers the ``D`` channels of the four bilinear neighbours of each of
its ``L·P`` points straight from ``value`` and accumulates them weighted by ``attention · bilinear``, following
the Deformable DETR CUDA kernel's rules (``h_im = y·H − 0.5``, ``w_im = x·W − 0.5``, out-of-map neighbours
read 0). Nothing is materialised besides the output. Accumulation is float32 (float64 for float64 inputs).
Inputs are made contiguous first (a silent ``.contiguous()``, documented). ``TRITON_INTERPRET=1`` must be set
before this module is imported for the kernel to run on CPU tensors (the decorator reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ["ms_deform_attn_triton"]


@triton.jit
def _bilinear_corner(value_ptr, row0, h, w, height, width, n_heads: tl.constexpr, d_offs, d_mask, head_dim):
    """The ``D`` channels of pixel ``(h, w)`` of the level whose first row is ``row0`` (zeros outside)."""
    inside = (h >= 0) & (h < height) & (w >= 0) & (w < width)
    row = row0 + (h * width + w).to(tl.int64)
    return tl.load(value_ptr + row * n_heads * head_dim + d_offs, mask=d_mask & inside, other=0.0)


@triton.jit
def _ms_deform_attn_fwd_kernel(
    value_ptr,  # (N, S, M, D)
    shapes_ptr,  # (L, 2) int32 (H, W)
    starts_ptr,  # (L,) int64
    loc_ptr,  # (N, Lq, M, L, P, 2)
    attn_ptr,  # (N, Lq, M, L, P)
    out_ptr,  # (N, Lq, M, D)
    n_positions,
    n_queries,
    head_dim,
    n_levels,
    n_points,
    n_heads: tl.constexpr,
    BLOCK_D: tl.constexpr,
    FP64: tl.constexpr,
):
    acc_dtype: tl.constexpr = tl.float64 if FP64 else tl.float32
    pid = tl.program_id(0).to(tl.int64)  # batch·query
    head = tl.program_id(1)
    batch = pid // n_queries
    d_offs = tl.arange(0, BLOCK_D)
    d_mask = d_offs < head_dim
    acc = tl.zeros([BLOCK_D], dtype=acc_dtype)
    point_base = (pid * n_heads + head) * n_levels * n_points
    for lvl in range(n_levels):
        height = tl.load(shapes_ptr + 2 * lvl)
        width = tl.load(shapes_ptr + 2 * lvl + 1)
        row0 = batch * n_positions + tl.load(starts_ptr + lvl)
        head_ptr = value_ptr + head * head_dim
        for p in range(n_points):
            idx = point_base + lvl * n_points + p
            x = tl.load(loc_ptr + 2 * idx).to(acc_dtype)
            y = tl.load(loc_ptr + 2 * idx + 1).to(acc_dtype)
            a = tl.load(attn_ptr + idx).to(acc_dtype)
            # Clamp to [-2, extent + 1]: beyond a pixel outside everything reads 0 anyway, and the int
            # conversion below stays in range for huge coordinates.
            w_im = tl.minimum(tl.maximum(x * width - 0.5, -2.0), width + 1.0)
            h_im = tl.minimum(tl.maximum(y * height - 0.5, -2.0), height + 1.0)
            w0f = tl.floor(w_im)
            h0f = tl.floor(h_im)
            lw = w_im - w0f
            lh = h_im - h0f
            w0 = w0f.to(tl.int32)
            h0 = h0f.to(tl.int32)
            v00 = _bilinear_corner(head_ptr, row0, h0, w0, height, width, n_heads, d_offs, d_mask, head_dim)
            v01 = _bilinear_corner(
                head_ptr, row0, h0, w0 + 1, height, width, n_heads, d_offs, d_mask, head_dim
            )
            v10 = _bilinear_corner(
                head_ptr, row0, h0 + 1, w0, height, width, n_heads, d_offs, d_mask, head_dim
            )
            v11 = _bilinear_corner(
                head_ptr, row0, h0 + 1, w0 + 1, height, width, n_heads, d_offs, d_mask, head_dim
            )
            top = v00.to(acc_dtype) * (1 - lw) + v01.to(acc_dtype) * lw
            bottom = v10.to(acc_dtype) * (1 - lw) + v11.to(acc_dtype) * lw
            acc += a * (top * (1 - lh) + bottom * lh)
    out_offs = (pid * n_heads + head) * head_dim + d_offs
    tl.store(out_ptr + out_offs, acc.to(out_ptr.dtype.element_ty), mask=d_mask)


def ms_deform_attn_triton(
    value: Tensor, spatial_shapes: Sequence[int], sampling_locations: Tensor, attention_weights: Tensor
) -> Tensor:
    """Launch the forward kernel. Shapes as ``ms_deform_attn_reference``; returns ``(N, Lq, M·D)``."""
    value = value.contiguous()
    sampling_locations = sampling_locations.contiguous()
    attention_weights = attention_weights.contiguous()
    n, s, m, d = value.shape
    lq, n_levels, n_points = (
        sampling_locations.shape[1],
        sampling_locations.shape[3],
        sampling_locations.shape[4],
    )
    out = torch.empty(n, lq, m * d, dtype=value.dtype, device=value.device)
    if out.numel() == 0:
        return out
    sizes = [spatial_shapes[2 * i] * spatial_shapes[2 * i + 1] for i in range(n_levels)]
    starts = [sum(sizes[:i]) for i in range(n_levels)]
    shapes_t = torch.tensor(list(spatial_shapes), dtype=torch.int32, device=value.device)
    starts_t = torch.tensor(starts, dtype=torch.int64, device=value.device)
    _ms_deform_attn_fwd_kernel[(n * lq, m)](
        value,
        shapes_t,
        starts_t,
        sampling_locations,
        attention_weights,
        out,
        s,
        lq,
        d,
        n_levels,
        n_points,
        n_heads=m,
        BLOCK_D=triton.next_power_of_2(d),
        FP64=value.dtype == torch.float64,
    )
    return out
