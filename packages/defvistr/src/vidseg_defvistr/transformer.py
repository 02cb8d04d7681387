"""VisTR's encoder–decoder transformer with dense or spatio-temporal deformable attention.

``attention="dense"`` is VisTR (docs/reference/vis.md §2.1): post-norm layers, full self-attention over all ``T·H·W``
tokens in the encoder, standard cross-attention in the decoder, ``tgt = 0``, intermediate outputs passed
through the final decoder LayerNorm.

``attention="deformable"`` is Deformable VisTR (docs/reference/vis.md §2.7, §2.9 option A): the encoder self-attention and
the decoder cross-attention become :class:`~vidseg_common.ops.st_deform_attn_module.STDeformAttn`
(M heads, K points, one level); the decoder self-attention stays standard MHA.

Decisions where the paper is silent (recorded here):

- encoder reference point of a token = its own pixel centre ``((x+0.5)/W, (y+0.5)/H, (t+0.5)/T)``; padding
  masks (if any) mask values but do not rescale reference points (our batches carry no padding mask);
- decoder reference points = ``sigmoid(Linear(C, 3)(query_pos) + prior)`` where ``prior`` is 0 for ``(x, y)``
  and ``logit((t+0.5)/T)`` for the time of a frame-major query ``q = t·N + i``: each query starts looking at
  its own frame, and the linear layer (lr × 0.1, like ``sampling_offsets``) learns where to move;
- the deformable cross-attention uses ``tgt + query_pos`` as query and ``memory`` (no positional term) as
  value, as in Deformable DETR.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from vidseg_common.models.ffn import FFN
from vidseg_common.ops.st_deform_attn_module import STDeformAttn

Attention = Literal["dense", "deformable"]


class EncoderLayer(nn.Module):
    """Self-attention (dense MHA or STDeformAttn) + FFN, post-norm. Tokens ``(B, S, C)``, ``S = T·H·W``."""

    def __init__(
        self, d_model: int, n_heads: int, dim_feedforward: int, dropout: float, attention: Attention, n_points: int
    ) -> None:
        super().__init__()
        self.attention = attention
        if attention == "dense":
            self.self_attn: nn.Module = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        else:
            self.self_attn = STDeformAttn(d_model, n_levels=1, n_heads=n_heads, n_points=n_points)
        self.dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = FFN(d_model, dim_feedforward, dropout)

    def forward(
        self, src: Tensor, pos: Tensor, shape_thw: tuple[int, int, int], reference_points: Tensor | None,
        padding_mask: Tensor | None,
    ) -> Tensor:
        query = src + pos
        if self.attention == "dense":
            out = self.self_attn(query, query, src, key_padding_mask=padding_mask, need_weights=False)[0]
        else:
            out = self.self_attn(query, reference_points, src, [shape_thw], None, padding_mask)
        return self.ffn(self.norm1(src + self.dropout(out)))


class DecoderLayer(nn.Module):
    """Standard self-attention, cross-attention (dense or STDeformAttn), FFN; post-norm. Queries ``(B, Q, C)``."""

    def __init__(
        self, d_model: int, n_heads: int, dim_feedforward: int, dropout: float, attention: Attention, n_points: int
    ) -> None:
        super().__init__()
        self.attention = attention
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        if attention == "dense":
            self.cross_attn: nn.Module = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        else:
            self.cross_attn = STDeformAttn(d_model, n_levels=1, n_heads=n_heads, n_points=n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FFN(d_model, dim_feedforward, dropout)

    def forward(
        self, tgt: Tensor, query_pos: Tensor, memory: Tensor, pos: Tensor, shape_thw: tuple[int, int, int],
        reference_points: Tensor | None, padding_mask: Tensor | None,
    ) -> Tensor:
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, q, tgt, need_weights=False)[0]))
        if self.attention == "dense":
            out = self.cross_attn(tgt + query_pos, memory + pos, memory, key_padding_mask=padding_mask,
                                  need_weights=False)[0]
        else:
            out = self.cross_attn(tgt + query_pos, reference_points, memory, [shape_thw], None, padding_mask)
        return self.ffn(self.norm2(tgt + self.dropout2(out)))


def encoder_reference_points(t: int, h: int, w: int, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Pixel-centre references ``(B, T·H·W, 1, 3)`` as ``(x, y, t)`` in ``[0, 1]``, tokens ``(t, y, x)`` row-major."""
    grid_t, grid_y, grid_x = torch.meshgrid(
        (torch.arange(t, device=device, dtype=dtype) + 0.5) / t,
        (torch.arange(h, device=device, dtype=dtype) + 0.5) / h,
        (torch.arange(w, device=device, dtype=dtype) + 0.5) / w,
        indexing="ij",
    )
    ref = torch.stack((grid_x, grid_y, grid_t), -1).reshape(1, t * h * w, 1, 3)
    return ref.expand(batch, -1, -1, -1)


class VisTRTransformer(nn.Module):
    """Encoder over the clip's tokens and a decoder over the frame-major instance queries.

    Args:
        d_model: channels C (paper 384).
        n_heads: attention heads M (8).
        num_encoder_layers: encoder depth (6).
        num_decoder_layers: decoder depth (6).
        dim_feedforward: FFN width (VisTR 2048).
        dropout: dropout (0.1).
        attention: ``deformable`` (Deformable VisTR) or ``dense`` (VisTR).
        n_points: K sampling points per head (paper 32; ignored when dense).
        num_frames: T of the queries (needed for the decoder's temporal reference prior).
        num_instances: N instance slots per frame.
    """

    def __init__(
        self,
        d_model: int = 384,
        n_heads: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        attention: Attention = "deformable",
        n_points: int = 32,
        num_frames: int = 36,
        num_instances: int = 10,
    ) -> None:
        super().__init__()
        if attention not in ("dense", "deformable"):
            raise ValueError(f"attention must be 'dense' or 'deformable', got {attention!r}")
        self.d_model, self.n_heads, self.attention = d_model, n_heads, attention
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, dim_feedforward, dropout, attention, n_points)
            for _ in range(num_encoder_layers)
        )
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(d_model, n_heads, dim_feedforward, dropout, attention, n_points)
            for _ in range(num_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        if attention == "deformable":
            self.reference_points = nn.Linear(d_model, 3)
            t = (torch.arange(num_frames, dtype=torch.float32) + 0.5) / num_frames
            prior = torch.zeros(num_frames, num_instances, 3)
            prior[..., 2] = torch.logit(t)[:, None]
            self.register_buffer("reference_prior", prior.reshape(num_frames * num_instances, 3), persistent=False)
        # DETR / Deformable DETR init: xavier on every matrix, then the deformable modules' own init.
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        for module in self.modules():
            if isinstance(module, STDeformAttn):
                module.reset_parameters()
        if attention == "deformable":
            nn.init.constant_(self.reference_points.bias, 0.0)

    def forward(
        self, src: Tensor, pos: Tensor, query_pos: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Encode the clip and decode the queries.

        Args:
            src: projected features ``(B, T, C, H, W)`` (stride 32).
            pos: 3-D positional encoding ``(B, T, C, H, W)``.
            query_pos: query embeddings ``(Q, C)``, frame-major ``q = t·N + i``.
            padding_mask: optional ``(B, T, H, W)`` bool, True on padding.

        Returns:
            ``hs (L_dec, B, Q, C)`` normalised decoder outputs of every layer, ``memory (B, T, C, H, W)``.
        """
        b, t, c, h, w = src.shape
        tokens = src.permute(0, 1, 3, 4, 2).reshape(b, t * h * w, c)
        pos_tokens = pos.permute(0, 1, 3, 4, 2).reshape(b, t * h * w, c)
        mask = None if padding_mask is None else padding_mask.reshape(b, t * h * w)
        enc_ref = None
        if self.attention == "deformable":
            enc_ref = encoder_reference_points(t, h, w, b, src.device, src.dtype)
        for layer in self.encoder_layers:
            tokens = layer(tokens, pos_tokens, (t, h, w), enc_ref, mask)
        query_pos_b = query_pos[None].repeat(b, 1, 1)  # a copy, not a view of the parameter (FLOP counter hooks)
        tgt = torch.zeros_like(query_pos_b)
        dec_ref = None
        if self.attention == "deformable":
            if query_pos.shape[0] != self.reference_prior.shape[0]:
                raise ValueError(
                    f"{query_pos.shape[0]} queries but the temporal prior was built for {self.reference_prior.shape[0]}"
                )
            dec_ref = (self.reference_points(query_pos_b) + self.reference_prior).sigmoid()[:, :, None, :]
        hs = []
        for layer in self.decoder_layers:
            tgt = layer(tgt, query_pos_b, tokens, pos_tokens, (t, h, w), dec_ref, mask)
            hs.append(self.decoder_norm(tgt))
        memory = tokens.reshape(b, t, h, w, c).permute(0, 1, 4, 2, 3)
        return torch.stack(hs), memory
