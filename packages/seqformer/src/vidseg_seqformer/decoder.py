"""SeqFormer's query-decomposition decoder, as the released code does it (docs/reference/vis.md §3.2).

Per layer, with the instance query ``I (B, Q, C)`` and per-frame box queries ``B_t (B, T, Q, C)`` (at layer 1
the box query is the shared ``tgt (B, Q, C)``):

1. ``I = LN(I + MHA(I + pos, I + pos, I))``;
2. box self-attention (own weights) over the Q box queries of each frame (over the shared one at layer 1);
3. deformable cross-attention per frame: offsets and weights come from ``B_t + pos`` only (the instance query
   does not choose sampling points); the sampled features ``S_t`` get two output projections,
   ``out_box_t = output_proj_box(S_t)`` and ``out_ins_t = output_proj(S_t)``;
4. ``B_t = FFN_box(LN(B_t + drop(out_box_t)))``;
5. temporal aggregation: ``w_t = softmax_t(Linear(C, 1)(B_t))`` and ``I = FFN(LN(I + drop(Σ_t w_t out_ins_t)))``.
   Deviation of the code from Eq. 3 of the paper, which we follow (the reference docs say so): the code
   aggregates the sampled features ``out_ins_t``, not ``B_t``. ``aggregation="sum"``/``"average"`` are the
   Table 5 ablations;
6. box refinement per frame: ``ref_t ← sigmoid(bbox_embed_l(B_t) + inverse_sigmoid(ref_t))``, detached.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from vidseg_common.models.ffn import FFN
from vidseg_common.ops.ms_deform_attn_module import MSDeformAttn

Aggregation = Literal["weighted", "sum", "average"]


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """``log(x / (1 − x))`` with both terms clamped at ``eps`` (Deformable DETR)."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class QueryDecompositionLayer(nn.Module):
    """One decoder layer (steps 1–5 of the module docstring).

    Args:
        d_model: channels C.
        d_ffn: FFN hidden width.
        dropout: dropout rate.
        n_levels: feature levels L.
        n_heads: heads M (self- and cross-attention).
        n_points: sampling points per head and level K.
        aggregation: ``weighted`` (paper), ``sum`` or ``average`` (Table 5 ablations).
    """

    def __init__(
        self, d_model: int = 256, d_ffn: int = 1024, dropout: float = 0.1, n_levels: int = 4, n_heads: int = 8,
        n_points: int = 4, aggregation: Aggregation = "weighted",
    ) -> None:
        super().__init__()
        if aggregation not in ("weighted", "sum", "average"):
            raise ValueError(f"aggregation must be weighted, sum or average, got {aggregation!r}")
        self.aggregation = aggregation
        self.cross_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.output_proj_box = nn.Linear(d_model, d_model)
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.self_attn_box = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm_self, self.norm_self_box = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop_self, self.drop_self_box = nn.Dropout(dropout), nn.Dropout(dropout)
        self.norm_cross, self.norm_cross_box = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop_cross, self.drop_cross_box = nn.Dropout(dropout), nn.Dropout(dropout)
        self.ffn = FFN(d_model, d_ffn, dropout)
        self.ffn_box = FFN(d_model, d_ffn, dropout)
        self.time_attention_weights = nn.Linear(d_model, 1)

    def temporal_weights(self, box_queries: Tensor) -> Tensor:
        """Aggregation weights ``(B, T, Q, 1)`` over the frame axis (they sum to 1 over T, except ``sum``)."""
        b, t, q, _ = box_queries.shape
        if self.aggregation == "weighted":
            return self.time_attention_weights(box_queries).softmax(1)
        fill = 1.0 if self.aggregation == "sum" else 1.0 / t
        return box_queries.new_full((b, t, q, 1), fill)

    def forward(
        self, instance: Tensor, box: Tensor, query_pos: Tensor, reference: Tensor, memory: Tensor,
        shapes: Sequence[int], padding_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One layer.

        Args:
            instance: ``(B, Q, C)`` instance queries.
            box: ``(B, Q, C)`` (first layer, shared) or ``(B, T, Q, C)`` box queries.
            query_pos: ``(B, Q, C)`` learned query positions.
            reference: ``(B, T, Q, L, 2|4)`` reference points (valid ratios applied).
            memory: ``(B·T, S, C)`` encoder output.
            shapes: flat ``[H_0, W_0, ...]``.
            padding_mask: ``(B·T, S)`` bool.

        Returns:
            ``instance (B, Q, C)`` and ``box (B, T, Q, C)``.
        """
        b, t, q = reference.shape[:3]
        c = instance.shape[-1]
        qk = instance + query_pos
        instance = self.norm_self(instance + self.drop_self(self.self_attn(qk, qk, instance, need_weights=False)[0]))
        if box.dim() == 3:
            box = box[:, None]
        box_flat = box.reshape(-1, q, c)
        pos_flat = query_pos.repeat_interleave(box.shape[1], 0)
        qk_box = box_flat + pos_flat
        box_flat = self.norm_self_box(
            box_flat + self.drop_self_box(self.self_attn_box(qk_box, qk_box, box_flat, need_weights=False)[0])
        )
        box = box_flat.view(b, -1, q, c).expand(b, t, q, c)  # (B, T, Q, C); T=1 → shared first-layer query
        query = (box + query_pos[:, None]).reshape(b * t, q, c)
        value = self.cross_attn.project_value(memory, padding_mask)
        sampled = self.cross_attn.attend(query, reference.reshape(b * t, q, *reference.shape[3:]), value, shapes)
        out_box = self.output_proj_box(sampled).view(b, t, q, c)
        out_ins = self.cross_attn.output_proj(sampled).view(b, t, q, c)
        box = self.ffn_box(self.norm_cross_box(box + self.drop_cross_box(out_box)))
        aggregated = (out_ins * self.temporal_weights(box)).sum(1)
        instance = self.ffn(self.norm_cross(instance + self.drop_cross(aggregated)))
        return instance, box


class QueryDecompositionDecoder(nn.Module):
    """Decoder stack with iterative per-frame box refinement.

    Args:
        layer: the layer to clone.
        num_layers: depth (6).
        bbox_embeds: one box MLP per layer (``C → 4``), owned by the decoder (the original also registers
            them on the model, which counts them twice in its ``state_dict``; we do not).
        decompose: keep per-frame box queries across layers (the paper). ``False`` is the Table 3 ablation
            "without box queries, using the shared instance query for each decoder layer": every layer takes
            the instance query as the (shared) box query of all frames and one reference shared by the frames
            (the frame mean of the refined boxes), so all frames get the same sampling region; per-frame
            boxes are still predicted from the per-frame outputs for the box losses. The released code has
            no such switch; this reading of the paper's text is ours.
    """

    def __init__(
        self, layer: QueryDecompositionLayer, num_layers: int, bbox_embeds: nn.ModuleList, decompose: bool = True
    ) -> None:
        super().__init__()
        self.decompose = decompose
        if len(bbox_embeds) != num_layers:
            raise ValueError(f"need one bbox_embed per decoder layer ({num_layers}), got {len(bbox_embeds)}")
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.bbox_embed = bbox_embeds

    def forward(
        self, tgt: Tensor, query_pos: Tensor, reference: Tensor, memory: Tensor, shapes: Sequence[int],
        valid_ratios: Tensor, padding_mask: Tensor | None = None,
    ) -> dict[str, list[Tensor]]:
        """Decode.

        Args:
            tgt: ``(B, Q, C)`` initial content queries (instance and box queries both start from it).
            query_pos: ``(B, Q, C)``.
            reference: ``(B, T, Q, 2)`` initial reference points in ``[0, 1]``.
            memory: ``(B·T, S, C)``.
            shapes: flat ``[H_0, W_0, ...]``.
            valid_ratios: ``(B, T, L, 2)``.
            padding_mask: ``(B·T, S)``.

        Returns:
            per layer lists: ``instance (B, Q, C)``, ``box_queries (B, T, Q, C)``, ``boxes (B, T, Q, 4)``
            (refined, sigmoid space, with gradient) and ``references (B, T, Q, 2|4)`` (each layer's input
            reference, detached; used for the mask head's relative coordinates).
        """
        instance, box = tgt, tgt
        out: dict[str, list[Tensor]] = {"instance": [], "box_queries": [], "boxes": [], "references": []}
        for index, (layer, bbox_embed) in enumerate(zip(self.layers, self.bbox_embed)):
            if not self.decompose and index > 0:
                box = instance
                reference = reference.mean(1, keepdim=True).expand_as(reference)
            if reference.shape[-1] == 4:
                ref_input = reference[:, :, :, None] * torch.cat([valid_ratios, valid_ratios], -1)[:, :, None]
            else:
                ref_input = reference[:, :, :, None] * valid_ratios[:, :, None]
            instance, box = layer(instance, box, query_pos, ref_input, memory, shapes, padding_mask)
            delta = bbox_embed(box)
            if reference.shape[-1] == 4:
                boxes = (delta + inverse_sigmoid(reference)).sigmoid()
            else:
                boxes = torch.cat([delta[..., :2] + inverse_sigmoid(reference), delta[..., 2:]], -1).sigmoid()
            out["instance"].append(instance)
            out["box_queries"].append(box)
            out["boxes"].append(boxes)
            out["references"].append(reference)
            reference = boxes.detach()
        return out
