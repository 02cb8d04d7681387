"""Spatio-temporal deformable attention core (Deformable VisTR, Eq. 2), as ``vidseg::st_deform_attn``.

Each query samples, per head, ``K`` points ``(x, y, t)`` in the ``(T, H, W)`` value volume of each level and
sums them with its attention weights (docs/reference/vis.md §2.7, §2.9 option A). The paper says "bilinear
interpolation" of a 3-D fractional point; we read it as trilinear, the 3-D extension of Deformable DETR's
rule: pixel coordinates ``(x·W − 0.5, y·H − 0.5, t·T − 0.5)``, the eight integer neighbours weighted by
``Π (1 − |coord − neighbour|)``, neighbours outside the volume contributing zero. That is
``F.grid_sample`` on a 5-D input (``mode='bilinear'`` is trilinear there, ``align_corners=False``, zeros
padding) with grid ``2·loc − 1`` in ``(x, y, t)`` order. With ``T = 1`` and ``t = 0.5`` (no temporal offset)
the weight of the single frame is 1, so the op equals ``ms_deform_attn`` (tested).

Layouts: ``value (N, S, M, D)`` with ``S = Σ_l T_l·H_l·W_l``, each level stored ``(t, y, x)`` row-major;
``spatial_shapes`` the flat ``[T_0, H_0, W_0, T_1, ...]``; ``sampling_locations (N, Lq, M, L, K, 3)``;
``attention_weights (N, Lq, M, L, K)``; output ``(N, Lq, M·D)``.

Implementations: :func:`st_deform_attn_reference` (the eight-corner rule written out; the definition),
:func:`st_deform_attn_torch` (one ``F.embedding_bag`` over all levels), and a Triton forward kernel for CUDA
(``vidseg_common.ops._triton.st_deform_attn``). The backward is the vector-Jacobian product of the PyTorch
path (of the reference under ``VIDSEG_OPS_BACKEND=reference``).
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

__all__ = ["st_deform_attn", "st_deform_attn_flops", "st_deform_attn_reference", "st_deform_attn_torch"]


def st_deform_attn_reference(
    value: Tensor, spatial_shapes: Sequence[int], sampling_locations: Tensor, attention_weights: Tensor
) -> Tensor:
    """Spatio-temporal deformable attention with the eight-corner trilinear rule written out (slow, clear).

    Args:
        value: ``(N, S, M, D)``, levels concatenated, each ``(T_l, H_l, W_l)`` row-major.
        spatial_shapes: flat ``[T_0, H_0, W_0, ...]``.
        sampling_locations: ``(N, Lq, M, L, K, 3)`` normalised ``(x, y, t)``.
        attention_weights: ``(N, Lq, M, L, K)``.

    Returns:
        ``(N, Lq, M·D)``.
    """
    check_deform_inputs(
        value, spatial_shapes, sampling_locations, attention_weights, 3, "st_deform_attn_reference"
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
        frames, height, width = spatial_shapes[3 * lvl : 3 * lvl + 3]
        value_l = value[:, start : start + frames * height * width].permute(0, 2, 1, 3)  # (N, M, T·H·W, D)
        start += frames * height * width
        loc = sampling_locations[:, :, :, lvl].permute(0, 2, 1, 3, 4).reshape(n, m, lq * n_points, 3)
        attn = attention_weights[:, :, :, lvl].permute(0, 2, 1, 3).reshape(n, m, lq * n_points)
        w_im, h_im, t_im = loc[..., 0] * width - 0.5, loc[..., 1] * height - 0.5, loc[..., 2] * frames - 0.5
        w0, h0, t0 = (torch.floor(c).detach() for c in (w_im, h_im, t_im))
        for dt in (0, 1):
            for dy in (0, 1):
                for dx in (0, 1):
                    w_c, h_c, t_c = w0 + dx, h0 + dy, t0 + dt
                    inside = (w_c >= 0) & (w_c <= width - 1) & (h_c >= 0) & (h_c <= height - 1)
                    inside = inside & (t_c >= 0) & (t_c <= frames - 1)
                    weight = (1 - (w_im - w_c).abs()) * (1 - (h_im - h_c).abs()) * (1 - (t_im - t_c).abs())
                    index = (
                        t_c.clamp(0, frames - 1) * (height * width)
                        + h_c.clamp(0, height - 1) * width
                        + w_c.clamp(0, width - 1)
                    ).long()
                    corner = torch.gather(
                        value_l, 2, index[..., None].expand(-1, -1, -1, d)
                    )  # (N, M, Lq·K, D)
                    out = out + (attn * weight * inside)[..., None] * corner
    out = out.view(n, m, lq, n_points, d).sum(3)
    return out.permute(0, 2, 1, 3).reshape(n, lq, m * d)


def st_deform_attn_torch(
    value: Tensor, spatial_shapes: Sequence[int], sampling_locations: Tensor, attention_weights: Tensor
) -> Tensor:
    """Vectorised path (CPU and GPU): :func:`deform_attn_gather` with trilinear (3-D) levels.

    Shapes as in :func:`st_deform_attn_reference`; returns ``(N, Lq, M·D)``. Equal to a 5-D ``grid_sample``
    per level (tested) without materialising the ``(N·M, D, Lq, L·K)`` sampled values.
    """
    return deform_attn_gather(value, spatial_shapes, sampling_locations, attention_weights, 3)


_st_deform_attn_op = register_deform_op(
    "st_deform_attn", 3, __name__,
    "vidseg_common.ops._triton.st_deform_attn:st_deform_attn_triton",
)


def st_deform_attn_flops(value_shape: Sequence[int], locations_shape: Sequence[int]) -> int:
    """FLOPs of the op (:func:`~vidseg_common.ops.deform_attn_registry.deform_attn_flops`): 18 per point and channel."""
    return deform_attn_flops(value_shape, locations_shape)


def st_deform_attn(
    value: Tensor,
    spatial_shapes: Tensor | Sequence[int] | Sequence[Sequence[int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
    level_start_index: Tensor | None = None,
) -> Tensor:
    """Spatio-temporal deformable attention core (the ``vidseg::st_deform_attn`` op).

    Args:
        value: ``(N, S, M, D)``, ``S = Σ_l T_l·H_l·W_l``, each level ``(t, y, x)`` row-major.
        spatial_shapes: ``(L, 3)`` int tensor of ``(T_l, H_l, W_l)``, a list of triples, or a flat list.
        sampling_locations: ``(N, Lq, M, L, K, 3)`` normalised ``(x, y, t)`` (outside ``[0, 1]`` reads zeros).
        attention_weights: ``(N, Lq, M, L, K)``.
        level_start_index: optional ``(L,)``, checked against ``spatial_shapes``.

    Returns:
        ``(N, Lq, M·D)``.
    """
    shapes = flatten_spatial_shapes(spatial_shapes, 3)
    if level_start_index is not None:
        check_level_start_index(level_start_index, level_sizes(shapes, 3))
    return torch.ops.vidseg.st_deform_attn(value, shapes, sampling_locations, attention_weights)
