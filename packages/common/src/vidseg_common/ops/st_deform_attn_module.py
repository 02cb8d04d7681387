"""``STDeformAttn``: Deformable VisTR's spatio-temporal deformable attention module (docs/reference/vis.md §2.7–2.9).

Two modes, one forward signature:

- ``frames_as_levels=False`` (default, the paper, §2.9 option A): each query samples, per head, ``n_points``
  = K points ``(x, y, t)`` in the ``(T, H, W)`` volume of each level around its 3-D reference point,
  trilinearly; offsets are normalised by ``(W, H, T)``; softmax over levels × K per head.
- ``frames_as_levels=True`` (what the released skrya/DefVIS encoder does, §2.8, option B): every frame is a
  Deformable DETR level; each query samples ``n_points`` points in **every** frame around its own ``(x, y)``,
  per-frame bilinear, no temporal offset; softmax over frames × levels × points per head. Needs ``n_frames``.

Initialisation (the paper is silent; our choice, recorded here): the Deformable DETR "grid" bias — point
``k`` of head ``m`` at ``(k+1)·d_m`` pixels in ``(x, y)`` — with temporal offset 0 (each query starts on its own
frame and learns where in time to look); zero offset/attention weights, so attention starts uniform;
xavier value/output projections. In ``frames_as_levels`` mode this is exactly Deformable DETR's init with
``T·L`` levels, as in the released code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vidseg_common.ops.ms_deform_attn import ms_deform_attn
from vidseg_common.ops.ms_deform_attn_core import check_level_start_index, flatten_spatial_shapes, level_sizes
from vidseg_common.ops.ms_deform_attn_module import grid_offset_directions
from vidseg_common.ops.st_deform_attn import st_deform_attn

__all__ = ["STDeformAttn"]


class STDeformAttn(nn.Module):
    """Spatio-temporal deformable attention (Deformable VisTR Eq. 2: ``Σ_m W_m Σ_k A_mqk W'_m x(p_q + Δp_mqk)``).

    Args:
        d_model: channels C (``C % n_heads == 0``; the paper uses 384).
        n_levels: feature levels L (the paper: 1, ResNet-50 without FPN).
        n_heads: heads M (paper: 8).
        n_points: sampling points per head and level K (paper: 32); per head, level **and frame** when
            ``frames_as_levels`` (released code: 6).
        frames_as_levels: reproduce the released code's variant (see module docstring).
        n_frames: T, required when ``frames_as_levels`` (released code: 36); ignored otherwise (any T works).
    """

    def __init__(
        self,
        d_model: int = 384,
        n_levels: int = 1,
        n_heads: int = 8,
        n_points: int = 32,
        frames_as_levels: bool = False,
        n_frames: int | None = None,
    ) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"STDeformAttn: d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if frames_as_levels and (n_frames is None or n_frames < 1):
            raise ValueError("STDeformAttn: frames_as_levels=True needs n_frames ≥ 1")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.frames_as_levels = frames_as_levels
        self.n_frames = n_frames if frames_as_levels else None
        # Sampling "levels" seen by the core op, and coordinates per offset.
        self.n_sample_levels = n_levels * n_frames if frames_as_levels else n_levels
        self.offset_dims = 2 if frames_as_levels else 3
        self.sampling_offsets = nn.Linear(
            d_model, n_heads * self.n_sample_levels * n_points * self.offset_dims
        )
        self.attention_weights = nn.Linear(d_model, n_heads * self.n_sample_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Grid init in ``(x, y)``, zero temporal offset, uniform attention, xavier projections (module docstring)."""
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        directions = grid_offset_directions(self.n_heads)  # (M, 2)
        scale = torch.arange(1, self.n_points + 1, dtype=torch.float32)
        bias = torch.zeros(self.n_heads, self.n_sample_levels, self.n_points, self.offset_dims)
        bias[..., :2] = directions[:, None, None, :] * scale[None, None, :, None]
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.reshape(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def _check_shapes(self, shapes: list[int], reference_points: Tensor, query: Tensor) -> None:
        if len(shapes) != 3 * self.n_levels:
            raise ValueError(
                f"STDeformAttn: expected {self.n_levels} (T, H, W) levels, got {len(shapes) // 3}"
            )
        if self.frames_as_levels and any(shapes[3 * i] != self.n_frames for i in range(self.n_levels)):
            raise ValueError(
                f"STDeformAttn: frames_as_levels was built for T={self.n_frames}, got shapes {shapes}"
            )
        n, lq, _ = query.shape
        dims_ok = reference_points.shape[-1] == 3 or (
            self.frames_as_levels and reference_points.shape[-1] == 2
        )
        if (
            reference_points.dim() != 4
            or tuple(reference_points.shape[:3]) != (n, lq, self.n_levels)
            or not dims_ok
        ):
            raise ValueError(
                f"STDeformAttn: reference_points must be (N, Lq, L, 3) = ({n}, {lq}, {self.n_levels}, 3), "
                f"got {tuple(reference_points.shape)}"
            )

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        input_flatten: Tensor,
        input_spatial_shapes: Tensor | Sequence[int] | Sequence[Sequence[int]],
        input_level_start_index: Tensor | None = None,
        input_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """Deformable attention of ``query`` over the flattened spatio-temporal maps.

        Args:
            query: ``(N, Lq, C)`` (content + positional embedding already summed).
            reference_points: ``(N, Lq, L, 3)`` normalised ``(x, y, t)`` (encoder: ``((x+0.5)/W, (y+0.5)/H,
                (t+0.5)/T)`` scaled by valid ratios; decoder: a sigmoid of a linear layer). With
                ``frames_as_levels`` only ``(x, y)`` is used (``(N, Lq, L, 2)`` is accepted too).
            input_flatten: ``(N, S, C)``, ``S = Σ_l T·H_l·W_l``, each level ``(t, y, x)`` row-major.
            input_spatial_shapes: ``(L, 3)`` int tensor of ``(T, H_l, W_l)`` or a list of triples.
            input_level_start_index: optional ``(L,)``, checked against the shapes.
            input_padding_mask: optional ``(N, S)`` bool, True = padding (its value is set to 0).

        Returns:
            ``(N, Lq, C)``.
        """
        shapes = flatten_spatial_shapes(input_spatial_shapes, 3)
        self._check_shapes(shapes, reference_points, query)
        if input_level_start_index is not None:
            check_level_start_index(input_level_start_index, level_sizes(shapes, 3))
        n, lq, _ = query.shape
        s = input_flatten.shape[1]
        value = self.value_proj(input_flatten)
        if input_padding_mask is not None:
            if input_padding_mask.shape != input_flatten.shape[:2]:
                raise ValueError(
                    f"STDeformAttn: input_padding_mask {tuple(input_padding_mask.shape)} must be (N, S) = "
                    f"{tuple(input_flatten.shape[:2])}"
                )
            value = value.masked_fill(input_padding_mask[..., None], 0.0)
        value = value.view(n, s, self.n_heads, self.d_model // self.n_heads)
        offsets = self.sampling_offsets(query).view(
            n, lq, self.n_heads, self.n_sample_levels, self.n_points, self.offset_dims
        )
        logits = self.attention_weights(query).view(n, lq, self.n_heads, self.n_sample_levels * self.n_points)
        weights = logits.softmax(-1).view(n, lq, self.n_heads, self.n_sample_levels, self.n_points)
        if self.frames_as_levels:
            frames = self.n_frames
            ms_shapes: list[int] = []
            for i in range(self.n_levels):
                ms_shapes.extend([shapes[3 * i + 1], shapes[3 * i + 2]] * frames)
            wh = [(shapes[3 * i + 2], shapes[3 * i + 1]) for i in range(self.n_levels) for _ in range(frames)]
            normalizer = torch.tensor(wh, dtype=query.dtype, device=query.device)  # (L·T, 2) as (W, H)
            ref = reference_points[..., :2].repeat_interleave(frames, dim=2)  # (N, Lq, L·T, 2), level-major
            locations = ref[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
            out = ms_deform_attn(value, ms_shapes, locations, weights)
        else:
            wht = [(shapes[3 * i + 2], shapes[3 * i + 1], shapes[3 * i]) for i in range(self.n_levels)]
            normalizer = torch.tensor(wht, dtype=query.dtype, device=query.device)  # (L, 3) as (W, H, T)
            locations = (
                reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
            )
            out = st_deform_attn(value, shapes, locations, weights)
        return self.output_proj(out)
