"""Multi-scale deformable encoder of SeqFormer (Deformable DETR encoder, frames encoded independently).

docs/reference/vis.md §1.6 and §3.1: 6 layers of MSDeformAttn self-attention (post-norm) + FFN. SeqFormer loops
over the frames of a clip and encodes each one on its own; this is the same as putting the frames in the
batch, which is what we do (``N = B·T``). There is no temporal positional encoding (as in the code).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vidseg_common.models.ffn import FFN
from vidseg_common.ops.ms_deform_attn_module import MSDeformAttn


def _clones(module: nn.Module, count: int) -> nn.ModuleList:
    return nn.ModuleList(copy.deepcopy(module) for _ in range(count))


class DeformableEncoderLayer(nn.Module):
    """Deformable self-attention over all levels, then an :class:`~vidseg_common.models.ffn.FFN`; post-norm
    (Deformable DETR). The FFN's parameters keep Deformable DETR's names ``linear1``, ``linear2``, ``norm2``.

    Args:
        d_model: channels C.
        d_ffn: hidden width of the FFN.
        dropout: dropout after attention and in the FFN.
        n_levels: feature levels L.
        n_heads: attention heads M.
        n_points: sampling points per head and level K.
    """

    ffn: FFN  # a plain attribute: its layers are registered flat (``FFN.register_flat``)

    def __init__(
        self, d_model: int = 256, d_ffn: int = 1024, dropout: float = 0.1, n_levels: int = 4, n_heads: int = 8,
        n_points: int = 4,
    ) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        # Deformable DETR's checkpoint names: the FFN's layers sit on the layer itself, registered in this order.
        FFN(d_model, d_ffn, dropout).register_flat(self, "linear1", "dropout2", "linear2", "dropout3", "norm2")

    def forward(
        self, src: Tensor, pos: Tensor, reference_points: Tensor, spatial_shapes: Sequence[int],
        padding_mask: Tensor | None = None,
    ) -> Tensor:
        """``src, pos (N, S, C)``, ``reference_points (N, S, L, 2)`` → ``(N, S, C)``."""
        attn = self.self_attn(src + pos, reference_points, src, spatial_shapes, None, padding_mask)
        return self.ffn(self.norm1(src + self.dropout1(attn)))


class DeformableEncoder(nn.Module):
    """A stack of :class:`DeformableEncoderLayer` with Deformable DETR's pixel-centre reference points.

    Args:
        layer: the layer to clone.
        num_layers: depth (6 in the paper).
    """

    def __init__(self, layer: DeformableEncoderLayer, num_layers: int = 6) -> None:
        super().__init__()
        self.layers = _clones(layer, num_layers)

    @staticmethod
    def reference_points(shapes: Sequence[tuple[int, int]], valid_ratios: Tensor) -> Tensor:
        """Normalised pixel centres of every level, scaled by the valid ratios of every level.

        Args:
            shapes: ``[(H_l, W_l)]``.
            valid_ratios: ``(N, L, 2)`` ``(w, h)`` fraction of unpadded columns / rows.

        Returns:
            ``(N, S, L, 2)`` ``(x, y)``.
        """
        refs = []
        for level, (h, w) in enumerate(shapes):
            ys = torch.linspace(0.5, h - 0.5, h, dtype=valid_ratios.dtype, device=valid_ratios.device)
            xs = torch.linspace(0.5, w - 0.5, w, dtype=valid_ratios.dtype, device=valid_ratios.device)
            ref_y, ref_x = torch.meshgrid(ys, xs, indexing="ij")
            ref_y = ref_y.reshape(1, -1) / (valid_ratios[:, None, level, 1] * h)
            ref_x = ref_x.reshape(1, -1) / (valid_ratios[:, None, level, 0] * w)
            refs.append(torch.stack((ref_x, ref_y), -1))
        ref = torch.cat(refs, 1)  # (N, S, 2)
        return ref[:, :, None] * valid_ratios[:, None]

    def forward(
        self, src: Tensor, pos: Tensor, shapes: Sequence[tuple[int, int]], valid_ratios: Tensor,
        padding_mask: Tensor | None = None,
    ) -> Tensor:
        """Encode flattened multi-scale maps.

        Args:
            src: ``(N, S, C)`` projected features, levels concatenated row-major.
            pos: ``(N, S, C)`` sine encoding + level embedding.
            shapes: ``[(H_l, W_l)]``.
            valid_ratios: ``(N, L, 2)``.
            padding_mask: ``(N, S)`` bool, True = padding.

        Returns:
            memory ``(N, S, C)``.
        """
        flat_shapes = [v for hw in shapes for v in hw]
        reference = self.reference_points(shapes, valid_ratios)
        for layer in self.layers:
            src = layer(src, pos, reference, flat_shapes, padding_mask)
        return src
