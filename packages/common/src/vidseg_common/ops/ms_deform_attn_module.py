"""``MSDeformAttn``: Deformable DETR's multi-scale deformable attention module (docs/reference/vis.md §1.1–1.2)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vidseg_common.ops.ms_deform_attn import ms_deform_attn
from vidseg_common.ops.ms_deform_attn_core import check_level_start_index, flatten_spatial_shapes, level_sizes

__all__ = ["MSDeformAttn", "grid_offset_directions"]


def grid_offset_directions(n_heads: int) -> Tensor:
    """Deformable DETR's per-head "grid" directions ``(cos θ_m, sin θ_m) / max(|cos θ_m|, |sin θ_m|)``.

    Args:
        n_heads: M; ``θ_m = 2π·m / M``.

    Returns:
        ``(M, 2)`` float32 ``(x, y)`` directions; for M=8: (1,0), (1,1), (0,1), (−1,1), (−1,0), (−1,−1), (0,−1), (1,−1).
    """
    thetas = torch.arange(n_heads, dtype=torch.float64) * (2.0 * math.pi / n_heads)
    grid = torch.stack([thetas.cos(), thetas.sin()], -1)
    return (grid / grid.abs().max(-1, keepdim=True)[0]).float()


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention (Deformable DETR ``models/ops/modules/ms_deform_attn.py`` semantics).

    Each query attends, in each head, to ``n_points`` sampled points on each of ``n_levels`` feature maps
    around its reference point; the weights are a softmax over levels × points per head.

    Args:
        d_model: channels C (``C % n_heads == 0``).
        n_levels: number of feature levels L.
        n_heads: number of heads M.
        n_points: sampling points per head and level P.
    """

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"MSDeformAttn: d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The "grid" initialisation: offset bias ``(p+1)·d_m`` for every level, uniform attention, xavier projections.

        Unlike the original, the bias is filled in place (the Parameter object is kept, so optimiser
        parameter groups built before a re-initialisation stay valid).
        """
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        directions = grid_offset_directions(self.n_heads)  # (M, 2)
        scale = torch.arange(1, self.n_points + 1, dtype=torch.float32)
        bias = directions[:, None, None, :] * scale[None, None, :, None]  # (M, 1, P, 2)
        bias = bias.expand(self.n_heads, self.n_levels, self.n_points, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.reshape(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def project_value(self, input_flatten: Tensor, input_padding_mask: Tensor | None = None) -> Tensor:
        """``value_proj`` with padded positions zeroed, split into heads.

        Args:
            input_flatten: ``(N, S, C)``.
            input_padding_mask: ``(N, S)`` bool, True = padding.

        Returns:
            ``(N, S, M, C/M)``.
        """
        value = self.value_proj(input_flatten)
        if input_padding_mask is not None:
            if input_padding_mask.shape != input_flatten.shape[:2]:
                raise ValueError(
                    f"MSDeformAttn: input_padding_mask {tuple(input_padding_mask.shape)} must be (N, S) = "
                    f"{tuple(input_flatten.shape[:2])}"
                )
            value = value.masked_fill(input_padding_mask[..., None], 0.0)
        n, s, _ = input_flatten.shape
        return value.view(n, s, self.n_heads, self.d_model // self.n_heads)

    def sampling_locations(
        self, query: Tensor, reference_points: Tensor, spatial_shapes: Sequence[int]
    ) -> Tensor:
        """Sampling locations from reference points and predicted offsets.

        Args:
            query: ``(N, Lq, C)``.
            reference_points: ``(N, Lq, L, 2)`` normalised ``(x, y)`` or ``(N, Lq, L, 4)`` boxes ``(cx, cy, w, h)``.
            spatial_shapes: flat ``[H_0, W_0, ...]``.

        Returns:
            ``(N, Lq, M, L, P, 2)``: 2-d: ``ref + offset / (W_l, H_l)``; 4-d: ``ref_xy + offset / P · ref_wh · 0.5``.
        """
        n, lq, _ = query.shape
        offsets = self.sampling_offsets(query).view(n, lq, self.n_heads, self.n_levels, self.n_points, 2)
        if reference_points.dim() != 4 or tuple(reference_points.shape[:3]) != (n, lq, self.n_levels):
            raise ValueError(
                f"MSDeformAttn: reference_points must be (N, Lq, L, 2|4) = ({n}, {lq}, {self.n_levels}, ·), "
                f"got {tuple(reference_points.shape)}"
            )
        if reference_points.shape[-1] == 2:
            wh = [(spatial_shapes[2 * i + 1], spatial_shapes[2 * i]) for i in range(self.n_levels)]
            normalizer = torch.tensor(wh, dtype=query.dtype, device=query.device)  # (L, 2) as (W, H)
            return (
                reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
            )
        if reference_points.shape[-1] == 4:
            ref_xy = reference_points[:, :, None, :, None, :2]
            ref_wh = reference_points[:, :, None, :, None, 2:]
            return ref_xy + offsets / self.n_points * ref_wh * 0.5
        raise ValueError(
            f"MSDeformAttn: last dim of reference_points must be 2 or 4, got {reference_points.shape[-1]}"
        )

    def attend(
        self, query: Tensor, reference_points: Tensor, value: Tensor, spatial_shapes: Sequence[int]
    ) -> Tensor:
        """Deformable sampling before ``output_proj`` (SeqFormer applies two output projections to this).

        Args:
            query: ``(N, Lq, C)``; reference_points: see :meth:`sampling_locations`;
            value: ``(N, S, M, C/M)`` from :meth:`project_value`; spatial_shapes: flat ``[H_0, W_0, ...]``.

        Returns:
            ``(N, Lq, C)``.
        """
        n, lq, _ = query.shape
        locations = self.sampling_locations(query, reference_points, spatial_shapes)
        logits = self.attention_weights(query).view(n, lq, self.n_heads, self.n_levels * self.n_points)
        weights = logits.softmax(-1).view(n, lq, self.n_heads, self.n_levels, self.n_points)
        return ms_deform_attn(value, spatial_shapes, locations, weights)

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        input_flatten: Tensor,
        input_spatial_shapes: Tensor | Sequence[int] | Sequence[Sequence[int]],
        input_level_start_index: Tensor | None = None,
        input_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """Deformable attention of ``query`` over the flattened multi-scale maps.

        Args:
            query: ``(N, Lq, C)`` (content + positional embedding already summed).
            reference_points: ``(N, Lq, L, 2)`` in ``[0, 1]`` of the padded maps, or ``(N, Lq, L, 4)`` boxes.
            input_flatten: ``(N, S, C)``, ``S = Σ_l H_l·W_l``, levels concatenated, each row-major.
            input_spatial_shapes: ``(L, 2)`` int tensor of ``(H_l, W_l)`` or a list of pairs (Python ints
                keep ``torch.compile`` graphs whole).
            input_level_start_index: optional ``(L,)``, checked against the shapes.
            input_padding_mask: optional ``(N, S)`` bool, True = padding (its value is set to 0).

        Returns:
            ``(N, Lq, C)``.
        """
        shapes = flatten_spatial_shapes(input_spatial_shapes, 2)
        if len(shapes) != 2 * self.n_levels:
            raise ValueError(
                f"MSDeformAttn: expected {self.n_levels} levels in input_spatial_shapes, got {len(shapes) // 2}"
            )
        if input_level_start_index is not None:
            check_level_start_index(input_level_start_index, level_sizes(shapes, 2))
        value = self.project_value(input_flatten, input_padding_mask)
        return self.output_proj(self.attend(query, reference_points, value, shapes))
