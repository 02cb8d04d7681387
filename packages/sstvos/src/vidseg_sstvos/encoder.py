"""The SST encoder: L sparse spatio-temporal attention layers over the temporal buffer + object affinities.

Input: embeddings of the buffer frames followed by the current frame, ``(B, C, T, H, W)`` at the attention
stride (``T = τ`` buffer frames + 1, plus the reference frame when the model prepends it), and the object
labels of those frames ``(B, T, H, W)`` (current frame: 255, unknown). Each layer (``docs/reference/vos.md`` §1.7)
is a post-norm Transformer block

    x = Norm(x + Out(SparseAttn(Q(x), K(x), V(x))))      (1×1×1 projections, heads = channel split)
    x = Norm(x + FFN(x))                                  (1×1×1 conv → FRN+TLU → 1×1×1 conv)

with the attention of :func:`vidseg_common.ops.sparse_st_attn.sparse_st_attn` (grid / local / strided /
local_strided; no ``1/√d`` scaling, as in the paper). Every layer also returns its object affinity values
(Eq. 4, :func:`vidseg_common.ops.object_affinity.object_affinity`): per head and object the largest attention
weight the current frame's cells give to earlier-frame cells of that object. Choices:

- the affinity is taken over the attention *weights* (the paper's "attention score"), not over the
  Euclidean distances of the config's ``ATTENTION_NORMALIZATION="Distance"``;
- attention itself is not causal by default (the released grid kernel attends to all frames of the clip);
  the buffer only ever holds frames up to the current one, so inference stays online. ``causal=True``
  masks later frames anyway. The affinity is causal in every case;
- optional absolute 3-D sinusoidal positional encoding added once to the encoder input (Eq. 2, Table 4),
  ``⌊C/6⌋·2`` features per axis (t, y, x), zero-padded to ``C``; positions are un-normalised indices with
  frequency base ``pe_temperature`` (10000, or the released code's 100).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from vidseg_common.errors import ConfigError
from vidseg_common.models.position_encoding import PositionEmbeddingSine3D
from vidseg_common.ops.object_affinity import object_affinity
from vidseg_common.ops.sparse_st_attn import pattern_params, sparse_st_attn
from vidseg_sstvos.norm import NormKind, make_ffn_activation, make_norm

AttentionPattern = Literal["grid", "local", "strided", "local_strided"]
PATTERNS = ("grid", "local", "strided", "local_strided")


class SparseSelfAttention(nn.Module):
    """Multi-head sparse spatio-temporal self-attention with 1×1×1 Q/K/V/out projections.

    Args:
        dim: channels ``C``.
        num_heads: heads (channel split).
        pattern: ``grid``, ``local``, ``strided`` or ``local_strided`` (Table 6).
        kernel_size: local window (``None``: odd ``⌊√W⌋``, Table 6's "kernel = √(feature width)").
        stride: strided step ``h`` (``None``: ``round(√W)``).
        causal: mask attention to later frames.
    """

    def __init__(
        self, dim: int, num_heads: int = 8, pattern: AttentionPattern = "local", kernel_size: int | None = None,
        stride: int | None = None, causal: bool = False,
    ) -> None:
        super().__init__()
        if pattern not in PATTERNS:
            raise ConfigError(f"model.attention must be one of {PATTERNS}, got {pattern!r}")
        if dim % num_heads:
            raise ConfigError(f"model.hidden_dim={dim} is not divisible by num_heads={num_heads}")
        if pattern == "local_strided" and (num_heads < 2 or num_heads % 2):
            raise ConfigError(f"local_strided attention needs an even num_heads >= 2, got {num_heads}")
        self.num_heads, self.pattern, self.kernel_size, self.stride, self.causal = num_heads, pattern, kernel_size, stride, causal
        self.query = nn.Conv3d(dim, dim, 1)
        self.key = nn.Conv3d(dim, dim, 1)
        self.value = nn.Conv3d(dim, dim, 1)
        self.out = nn.Conv3d(dim, dim, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor, num_objects: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend and compute object affinities.

        Args:
            x: ``(B, C, T, H, W)``.
            labels: ``(B, T, H, W)`` int64 object ids of the cells (255 = unknown / void).
            num_objects: ``O`` (background included).

        Returns:
            ``out (B, C, T, H, W)`` and affinities ``(B, M, O, H, W)`` of the last (current) frame.
        """
        width = x.shape[-1]
        out, weights = sparse_st_attn(
            self.query(x), self.key(x), self.value(x), self.pattern, num_heads=self.num_heads,
            kernel_size=self.kernel_size, stride=self.stride, causal=self.causal, return_weights=True,
        )
        if self.pattern == "local_strided":
            parts = [object_affinity(w, labels, num_objects, p, pattern_params(p, width, self.kernel_size, self.stride))
                     for w, p in zip(weights, ("local", "strided"))]
            affinity = torch.cat(parts, dim=1)
        else:
            params = pattern_params(self.pattern, width, self.kernel_size, self.stride)
            affinity = object_affinity(weights, labels, num_objects, self.pattern, params)
        return self.out(out), affinity[:, :, :, -1]


class SSTEncoderLayer(nn.Module):
    """Post-norm block: sparse attention + skip + norm, position-wise FFN + skip + norm.

    Args:
        dim: channels ``C``.
        num_heads, pattern, kernel_size, stride, causal: see :class:`SparseSelfAttention`.
        ffn_dim: hidden width of the position-wise feed-forward network.
        norm: ``frn`` (FRN + TLU, released config) or ``layernorm``.
    """

    def __init__(
        self, dim: int, num_heads: int = 8, pattern: AttentionPattern = "local", kernel_size: int | None = None,
        stride: int | None = None, causal: bool = False, ffn_dim: int = 256, norm: NormKind = "frn",
    ) -> None:
        super().__init__()
        self.attention = SparseSelfAttention(dim, num_heads, pattern, kernel_size, stride, causal)
        self.norm1 = make_norm(norm, dim)
        self.ffn = nn.Sequential(nn.Conv3d(dim, ffn_dim, 1), make_ffn_activation(norm, ffn_dim), nn.Conv3d(ffn_dim, dim, 1))
        self.norm2 = make_norm(norm, dim)

    def forward(self, x: torch.Tensor, labels: torch.Tensor, num_objects: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, C, T, H, W)`` → ``(B, C, T, H, W)`` and affinities ``(B, M, O, H, W)``."""
        attended, affinity = self.attention(x, labels, num_objects)
        x = self.norm1(x + attended)
        x = self.norm2(x + self.ffn(x))
        return x, affinity


class SSTEncoder(nn.Module):
    """``L`` encoder layers over the temporal buffer, with an optional 3-D sinusoidal positional encoding.

    Args:
        dim: channels ``C`` (Table 1: 128).
        num_layers: ``L`` (Table 6: 2 best for local, Table 1: 3).
        num_heads: heads (config: 8).
        pattern: attention connectivity (Table 6).
        kernel_size, stride, causal: see :class:`SparseSelfAttention`.
        ffn_dim: FFN hidden width.
        norm: ``frn`` or ``layernorm``.
        positional_encoding: ``none`` or ``sinusoidal`` (Table 4).
        pe_temperature: frequency base of the sinusoidal encoding.
    """

    def __init__(
        self,
        dim: int = 128,
        num_layers: int = 2,
        num_heads: int = 8,
        pattern: AttentionPattern = "local",
        kernel_size: int | None = None,
        stride: int | None = None,
        causal: bool = False,
        ffn_dim: int = 256,
        norm: NormKind = "frn",
        positional_encoding: Literal["none", "sinusoidal"] = "sinusoidal",
        pe_temperature: float = 10000.0,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"model.num_encoder_layers must be >= 1, got {num_layers}")
        if positional_encoding not in ("none", "sinusoidal"):
            raise ConfigError(f"model.positional_encoding must be 'none' or 'sinusoidal', got {positional_encoding!r}")
        self.dim = dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.position = None
        if positional_encoding == "sinusoidal":
            self.position = PositionEmbeddingSine3D(num_feats=2 * (dim // 6), temperature=pe_temperature, normalize=False)
        self.layers = nn.ModuleList(
            SSTEncoderLayer(dim, num_heads, pattern, kernel_size, stride, causal, ffn_dim, norm) for _ in range(num_layers)
        )

    @property
    def affinity_channels(self) -> int:
        """Affinity maps per object: ``L·M``."""
        return self.num_layers * self.num_heads

    def positional_encoding(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` sinusoidal encoding of ``x``'s grid (zeros past ``3·num_feats`` channels)."""
        b, c, t, h, w = x.shape
        pos = self.position(x.new_zeros(b, t, h, w, dtype=torch.bool)).to(x.dtype)  # (B, T, 3F, H, W)
        pos = pos.transpose(1, 2)
        return torch.cat([pos, pos.new_zeros(b, c - pos.shape[1], t, h, w)], dim=1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor, num_objects: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the buffer.

        Args:
            x: ``(B, C, T, H, W)`` frame embeddings, current frame last.
            labels: ``(B, T, H, W)`` int64 object ids of the buffer cells (current frame: 255).
            num_objects: ``O`` (background included).

        Returns:
            ``encoded (B, C, T, H, W)`` and affinities ``(B, L·M, O, H, W)`` of the current frame.
        """
        if self.position is not None:
            x = x + self.positional_encoding(x)
        affinities = []
        for layer in self.layers:
            x, affinity = layer(x, labels, num_objects)
            affinities.append(affinity)
        return x, torch.cat(affinities, dim=1)
