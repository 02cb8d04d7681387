"""Triton forward kernel of ``vidseg::st_deform_attn`` (imported lazily; needs the ``triton`` package).

One program per (batch·query, head) gathers the ``D`` channels of the eight trilinear neighbours of each of
its ``L·K`` points ``(x, y, t)`` straight from ``value`` (``(t_im, h_im, w_im) = (t·T − 0.5, y·H − 0.5,
x·W − 0.5)``; out-of-volume neighbours read 0) and accumulates them weighted by ``attention · trilinear``.
Accumulation is float32 (float64 for float64 inputs). Inputs are made contiguous first (a silent
``.contiguous()``). ``TRITON_INTERPRET=1`` must be set before this module is imported to run on CPU tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ["st_deform_attn_triton"]


@triton.jit
def _voxel(value_ptr, row0, t, h, w, frames, height, width, n_heads: tl.constexpr, d_offs, d_mask, head_dim):
    """The ``D`` channels of voxel ``(t, h, w)`` of the level whose first row is ``row0`` (zeros outside)."""
    inside = (t >= 0) & (t < frames) & (h >= 0) & (h < height) & (w >= 0) & (w < width)
    row = row0 + ((t * height + h) * width + w).to(tl.int64)
    return tl.load(value_ptr + row * n_heads * head_dim + d_offs, mask=d_mask & inside, other=0.0)


@triton.jit
def _plane(
    value_ptr,
    row0,
    t,
    h0,
    w0,
    lh,
    lw,
    frames,
    height,
    width,
    n_heads: tl.constexpr,
    d_offs,
    d_mask,
    head_dim,
    acc_dtype: tl.constexpr,
):
    """Bilinear read of frame ``t`` at fractional ``(h0 + lh, w0 + lw)``."""
    v00 = _voxel(value_ptr, row0, t, h0, w0, frames, height, width, n_heads, d_offs, d_mask, head_dim).to(
        acc_dtype
    )
    v01 = _voxel(value_ptr, row0, t, h0, w0 + 1, frames, height, width, n_heads, d_offs, d_mask, head_dim).to(
        acc_dtype
    )
    v10 = _voxel(value_ptr, row0, t, h0 + 1, w0, frames, height, width, n_heads, d_offs, d_mask, head_dim).to(
        acc_dtype
    )
    v11 = _voxel(
        value_ptr, row0, t, h0 + 1, w0 + 1, frames, height, width, n_heads, d_offs, d_mask, head_dim
    ).to(acc_dtype)
    return (v00 * (1 - lw) + v01 * lw) * (1 - lh) + (v10 * (1 - lw) + v11 * lw) * lh


@triton.jit
def _st_deform_attn_fwd_kernel(
    value_ptr,  # (N, S, M, D)
    shapes_ptr,  # (L, 3) int32 (T, H, W)
    starts_ptr,  # (L,) int64
    loc_ptr,  # (N, Lq, M, L, K, 3)
    attn_ptr,  # (N, Lq, M, L, K)
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
    head_ptr = value_ptr + head * head_dim
    for lvl in range(n_levels):
        frames = tl.load(shapes_ptr + 3 * lvl)
        height = tl.load(shapes_ptr + 3 * lvl + 1)
        width = tl.load(shapes_ptr + 3 * lvl + 2)
        row0 = batch * n_positions + tl.load(starts_ptr + lvl)
        for k in range(n_points):
            idx = point_base + lvl * n_points + k
            # Clamped to [-2, extent + 1]: beyond a voxel outside everything reads 0 anyway, and the int
            # conversion below stays in range for huge coordinates.
            w_im = tl.load(loc_ptr + 3 * idx).to(acc_dtype) * width - 0.5
            h_im = tl.load(loc_ptr + 3 * idx + 1).to(acc_dtype) * height - 0.5
            t_im = tl.load(loc_ptr + 3 * idx + 2).to(acc_dtype) * frames - 0.5
            w_im = tl.minimum(tl.maximum(w_im, -2.0), width + 1.0)
            h_im = tl.minimum(tl.maximum(h_im, -2.0), height + 1.0)
            t_im = tl.minimum(tl.maximum(t_im, -2.0), frames + 1.0)
            a = tl.load(attn_ptr + idx).to(acc_dtype)
            w0f = tl.floor(w_im)
            h0f = tl.floor(h_im)
            t0f = tl.floor(t_im)
            lw = w_im - w0f
            lh = h_im - h0f
            lt = t_im - t0f
            w0 = w0f.to(tl.int32)
            h0 = h0f.to(tl.int32)
            t0 = t0f.to(tl.int32)
            front = _plane(
                head_ptr,
                row0,
                t0,
                h0,
                w0,
                lh,
                lw,
                frames,
                height,
                width,
                n_heads,
                d_offs,
                d_mask,
                head_dim,
                acc_dtype,
            )
            back = _plane(
                head_ptr,
                row0,
                t0 + 1,
                h0,
                w0,
                lh,
                lw,
                frames,
                height,
                width,
                n_heads,
                d_offs,
                d_mask,
                head_dim,
                acc_dtype,
            )
            acc += a * (front * (1 - lt) + back * lt)
    out_offs = (pid * n_heads + head) * head_dim + d_offs
    tl.store(out_ptr + out_offs, acc.to(out_ptr.dtype.element_ty), mask=d_mask)


def st_deform_attn_triton(
    value: Tensor, spatial_shapes: Sequence[int], sampling_locations: Tensor, attention_weights: Tensor
) -> Tensor:
    """Launch the forward kernel. Shapes as ``st_deform_attn_reference``; returns ``(N, Lq, M·D)``."""
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
    sizes = [
        spatial_shapes[3 * i] * spatial_shapes[3 * i + 1] * spatial_shapes[3 * i + 2] for i in range(n_levels)
    ]
    starts = [sum(sizes[:i]) for i in range(n_levels)]
    shapes_t = torch.tensor(list(spatial_shapes), dtype=torch.int32, device=value.device)
    starts_t = torch.tensor(starts, dtype=torch.int64, device=value.device)
    _st_deform_attn_fwd_kernel[(n * lq, m)](
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
