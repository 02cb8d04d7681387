"""Multi-scale deformable attention core (Deformable DETR, ``models/ops``), as ``vidseg::ms_deform_attn``.

Semantics (docs/reference/vis.md §1.3): the value of level ``l`` is a ``(H_l, W_l)`` map stored row-major
(y, then x) in the flattened ``S = Σ_l H_l·W_l`` axis; a sampling location ``(x, y)`` in ``[0, 1]`` (the
top-left corner of the padded map is ``(0, 0)``) is read with bilinear interpolation at pixel coordinates
``(x·W_l − 0.5, y·H_l − 0.5)``, a neighbour outside the map contributing zero. This is exactly
``F.grid_sample(mode='bilinear', padding_mode='zeros', align_corners=False)`` on ``grid = 2·loc − 1``.
The sampled vectors are summed with the attention weights over levels × points, per head.

Three implementations, one definition:

- :func:`ms_deform_attn_reference`: the CUDA kernel's rules written out (four corner gathers per level);
  the definition the tests use. Independent of ``grid_sample``.
- :func:`ms_deform_attn_torch`: the vectorised path (:func:`deform_attn_gather`, one ``F.embedding_bag``
  over all levels), CPU and GPU.
- ``vidseg_common.ops._triton.ms_deform_attn``: a Triton forward kernel for CUDA.

The public op :func:`ms_deform_attn` dispatches with ``VIDSEG_OPS_BACKEND`` (``ops.backend``). Its backward
is the vector-Jacobian product of the PyTorch path (of the reference under ``VIDSEG_OPS_BACKEND=reference``),
whichever kernel ran forward; all kernels compute the same function, so the gradient is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vidseg_common.ops.deform_attn_registry import deform_attn_flops, register_deform_op
from vidseg_common.ops.ms_deform_attn_core import (
    check_deform_inputs,
    check_level_start_index,
    deform_attn_gather,
    flatten_spatial_shapes,
    level_sizes,
)

__all__ = [
    "ms_deform_attn",
    "ms_deform_attn_flops",
    "ms_deform_attn_reference",
    "ms_deform_attn_torch",
]


def ms_deform_attn_reference(
    value: Tensor, spatial_shapes: Sequence[int], sampling_locations: Tensor, attention_weights: Tensor
) -> Tensor:
    """Multi-scale deformable attention written as the CUDA kernel's rules (slow, clear; the definition).

    For each level, point ``(x, y)`` maps to ``(w_im, h_im) = (x·W − 0.5, y·H − 0.5)``; each of the four
    integer neighbours ``(w0 + dx, h0 + dy)`` inside the map contributes its value times the bilinear weight
    ``(1 − |w_im − w|)·(1 − |h_im − h|)``; neighbours outside contribute 0.

    Args:
        value: ``(N, S, M, D)`` per-head values, levels concatenated, each row-major ``(H_l, W_l)``.
        spatial_shapes: flat ``[H_0, W_0, H_1, W_1, ...]``.
        sampling_locations: ``(N, Lq, M, L, P, 2)`` normalised ``(x, y)``.
        attention_weights: ``(N, Lq, M, L, P)``.

    Returns:
        ``(N, Lq, M·D)``.
    """
    check_deform_inputs(
        value, spatial_shapes, sampling_locations, attention_weights, 2, "ms_deform_attn_reference"
    )
    n, _, m, d = value.shape
    lq, n_levels, n_points = (
        sampling_locations.shape[1],
        sampling_locations.shape[3],
        sampling_locations.shape[4],
    )
    out = value.new_zeros(n, m, lq * n_points, d)
    start = 0
    for lvl in range(n_levels):
        height, width = spatial_shapes[2 * lvl], spatial_shapes[2 * lvl + 1]
        value_l = value[:, start : start + height * width].permute(0, 2, 1, 3)  # (N, M, H·W, D)
        start += height * width
        loc = sampling_locations[:, :, :, lvl].permute(0, 2, 1, 3, 4).reshape(n, m, lq * n_points, 2)
        attn = attention_weights[:, :, :, lvl].permute(0, 2, 1, 3).reshape(n, m, lq * n_points)
        w_im = loc[..., 0] * width - 0.5
        h_im = loc[..., 1] * height - 0.5
        w0, h0 = torch.floor(w_im).detach(), torch.floor(h_im).detach()
        for dy in (0, 1):
            for dx in (0, 1):
                w_c, h_c = w0 + dx, h0 + dy
                inside = (w_c >= 0) & (w_c <= width - 1) & (h_c >= 0) & (h_c <= height - 1)
                bilinear = (1 - (w_im - w_c).abs()) * (1 - (h_im - h_c).abs())
                index = (h_c.clamp(0, height - 1) * width + w_c.clamp(0, width - 1)).long()
                corner = torch.gather(value_l, 2, index[..., None].expand(-1, -1, -1, d))  # (N, M, Lq·P, D)
                out = out + (attn * bilinear * inside)[..., None] * corner
    out = out.view(n, m, lq, n_points, d).sum(3)  # (N, M, Lq, D)
    return out.permute(0, 2, 1, 3).reshape(n, lq, m * d)


def ms_deform_attn_torch(
    value: Tensor, spatial_shapes: Sequence[int], sampling_locations: Tensor, attention_weights: Tensor
) -> Tensor:
    """Vectorised path (CPU and GPU): :func:`deform_attn_gather` with bilinear (2-D) levels.

    Shapes as in :func:`ms_deform_attn_reference`; returns ``(N, Lq, M·D)``. Equal to Deformable DETR's
    ``ms_deform_attn_core_pytorch`` (one ``grid_sample`` per level; tested) but it never materialises the
    ``(N·M, D, Lq, L·P)`` sampled values (speed and memory: ``benchmarks/ops_deform_attn.py``).
    """
    return deform_attn_gather(value, spatial_shapes, sampling_locations, attention_weights, 2)


_ms_deform_attn_op = register_deform_op(
    "ms_deform_attn", 2, __name__,
    "vidseg_common.ops._triton.ms_deform_attn:ms_deform_attn_triton",
)


def ms_deform_attn_flops(value_shape: Sequence[int], locations_shape: Sequence[int]) -> int:
    """FLOPs of the op (:func:`~vidseg_common.ops.deform_attn_registry.deform_attn_flops`): 10 per point and channel."""
    return deform_attn_flops(value_shape, locations_shape)


def ms_deform_attn(
    value: Tensor,
    spatial_shapes: Tensor | Sequence[int] | Sequence[Sequence[int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
    level_start_index: Tensor | None = None,
) -> Tensor:
    """Multi-scale deformable attention core (the ``vidseg::ms_deform_attn`` op).

    Args:
        value: ``(N, S, M, D)``, ``S = Σ_l H_l·W_l``, each level row-major.
        spatial_shapes: ``(L, 2)`` int tensor of ``(H_l, W_l)``, a list of pairs, or a flat list.
        sampling_locations: ``(N, Lq, M, L, P, 2)`` normalised ``(x, y)``; any value (outside ``[0, 1]``
            reads zeros).
        attention_weights: ``(N, Lq, M, L, P)`` (normally softmax-normalised over ``L·P``; not required).
        level_start_index: optional ``(L,)``; checked against ``spatial_shapes`` (it carries no extra
            information).

    Returns:
        ``(N, Lq, M·D)``.
    """
    shapes = flatten_spatial_shapes(spatial_shapes, 2)
    if level_start_index is not None:
        check_level_start_index(level_start_index, level_sizes(shapes, 2))
    return torch.ops.vidseg.ms_deform_attn(value, shapes, sampling_locations, attention_weights)
