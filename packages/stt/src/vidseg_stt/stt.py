"""The Sparse Temporal Transformer module (STT Sec. 3; ``docs/reference/vss.md`` §1.2–1.4).

Between the shared encoder and the decoder: the current frame's feature map is the query, the ``T`` previous
frames' maps (farthest first) are keys = values.

1. **Channel reduction**: one MLP (Linear–ReLU–Linear) maps ``d_t → d = d_t / reduction`` for query, keys and
   values alike ("reduce the feature dimension of the key, value and query from d_t to d_t/4 with a
   multi-layer perceptron"); weights are shared, so a frame's reduced keys/values are computed once and
   cached in streaming inference.
2. **Query selection**: NSM on the *unreduced* query map ``Q ∈ R^{h×w×d_t}`` (as Eq. 1 is written), top
   ``top_ratio`` positions (:mod:`vidseg_stt.nsm`).
3. **Key selection + attention**: each selected query attends to expanding windows ``l_t = min(s + (T−t)ε, e)``
   centred on its own position in every previous frame, one softmax over all ``n_k = Σ_t (2l_t+1)²`` keys,
   multi-head with ``d̂ = d / n_h`` (``vidseg_common.ops.windowed_temporal_attn``). ``full_attention=True``
   is Table 3's "full keys" row: every query attends to all ``T·h·w`` keys.
4. **Post-LN block**: ``X = LN(q + W^O·MH)``, ``out = LN(X + FFN(X))`` with ``FFN = ReLU(X W1 + b1) W2 + b2``;
   the hidden width defaults to ``d̂`` as printed (a knob).
5. **Back to the map** [choice, docs/reference/vss.md §1.4]: a linear ``d → d_t`` projection is *added* to the query feature
   at the selected positions; the other positions pass through unchanged. With ``zero_init=True`` (our
   choice; the paper gives no initialisation) this projection starts at zero, so a freshly inserted block is
   the identity and the network starts as its per-frame image model (a residual branch that cannot hurt at
   step 0; its weight still gets a gradient at once).

No positional encoding (the windows are location-aligned), dropout 0.1, 8 heads, 1 layer (docs/reference/vss.md §1.4 picks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidseg_common.errors import ConfigError, DataError
from vidseg_common.ops.windowed_temporal_attn import num_temporal_keys, windowed_temporal_attn
from vidseg_stt.nsm import nsm_scores, select_top


class SparseTemporalTransformer(nn.Module):
    """NSM query selection + windowed temporal cross-attention + one post-LN transformer block.

    Args:
        in_channels: ``d_t``, channels of the encoder output (PSP18: 1024).
        reduction: ``d = d_t / reduction`` inside the block (paper: 4).
        num_heads: attention heads ``n_h`` (``d̂ = d / n_h``).
        ffn_dim: FFN hidden width; ``None`` = ``d̂`` as printed in the paper.
        dropout: dropout on the attention output and in the FFN.
        nsm_radius: NSM neighbourhood radius ``r`` (paper default 5).
        top_ratio: fraction of positions kept as queries (paper default 0.5).
        key_start: ``s`` of Eq. 5 (default 1).
        key_end: ``e`` of Eq. 5 (default 5).
        key_expansion: ``ε`` of Eq. 5 (default 1).
        num_key_frames: ``T``, previous frames attended to (7, derived from Table 3).
        full_attention: attend to all ``T·h·w`` keys (Table 3's full-key row) instead of the windows.
        zero_init: initialise the ``d → d_t`` output projection to zero (the block starts as the identity).
    """

    def __init__(
        self,
        in_channels: int = 1024,
        reduction: int = 4,
        num_heads: int = 8,
        ffn_dim: int | None = None,
        dropout: float = 0.1,
        nsm_radius: int = 5,
        top_ratio: float = 0.5,
        key_start: int = 1,
        key_end: int = 5,
        key_expansion: int = 1,
        num_key_frames: int = 7,
        full_attention: bool = False,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        if reduction < 1 or in_channels % reduction:
            raise ConfigError(f"stt: in_channels={in_channels} must be divisible by reduction={reduction}")
        dim = in_channels // reduction
        if num_heads < 1 or dim % num_heads:
            raise ConfigError(f"stt: reduced width {dim} must be divisible by num_heads={num_heads}")
        if not 0.0 <= top_ratio <= 1.0:
            raise ConfigError(f"stt: top_ratio must lie in [0, 1], got {top_ratio}")
        if nsm_radius < 0 or num_key_frames < 1:
            raise ConfigError(f"stt: need nsm_radius >= 0 and num_key_frames >= 1, got {nsm_radius}, {num_key_frames}")
        num_temporal_keys(num_key_frames, key_start, key_end, key_expansion)  # validates s, e, ε
        self.in_channels, self.dim, self.num_heads = in_channels, dim, num_heads
        self.nsm_radius, self.top_ratio = nsm_radius, top_ratio
        self.key_start, self.key_end, self.key_expansion = key_start, key_end, key_expansion
        self.num_key_frames, self.full_attention = num_key_frames, full_attention
        hidden = ffn_dim if ffn_dim is not None else dim // num_heads
        self.reduce = nn.Sequential(nn.Linear(in_channels, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.dropout = nn.Dropout(dropout)
        self.expand = nn.Linear(dim, in_channels)
        if zero_init:
            nn.init.zeros_(self.expand.weight)
            nn.init.zeros_(self.expand.bias)

    def num_keys(self, height: int, width: int, num_frames: int | None = None) -> int:
        """Keys per query ``n_k`` (Table 3's "key size") for ``num_frames`` (default ``T``) maps of ``h×w``."""
        frames = self.num_key_frames if num_frames is None else num_frames
        if self.full_attention:
            return frames * height * width
        return num_temporal_keys(frames, self.key_start, self.key_end, self.key_expansion)

    def memory(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of encoded frames (what the streaming cache stores).

        Args:
            features: ``(N, d_t, h, w)`` encoder outputs.

        Returns:
            ``key, value``: ``(N, d, h, w)`` each.
        """
        n, _, h, w = features.shape
        reduced = self.reduce(features.flatten(2).transpose(1, 2))
        key = self.k_proj(reduced).transpose(1, 2).reshape(n, self.dim, h, w)
        value = self.v_proj(reduced).transpose(1, 2).reshape(n, self.dim, h, w)
        return key, value

    def forward(self, query_f8: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Refine the current frame with the previous ones.

        Args:
            query_f8: ``(B, d_t, h, w)`` current frame's encoder output.
            key: ``(B, T', d, h, w)`` from :meth:`memory`, farthest frame first (``T' ≤ T``; ``T' = 0`` allowed).
            value: ``(B, T', d, h, w)``.

        Returns:
            ``(B, d_t, h, w)``, the query map with the block's output added at the selected positions.
        """
        b, c, h, w = query_f8.shape
        if c != self.in_channels or key.dim() != 5 or key.shape[0] != b or key.shape[3:] != (h, w):
            raise DataError(f"stt: query {tuple(query_f8.shape)} and key {tuple(key.shape)} do not match (d_t={self.in_channels})")
        if key.shape[1] > self.num_key_frames:
            raise DataError(f"stt: {key.shape[1]} key frames given, the model attends to at most T={self.num_key_frames}")
        keep = round(self.top_ratio * h * w)
        if key.shape[1] == 0 or keep == 0:
            return query_f8
        positions = select_top(nsm_scores(query_f8.detach(), self.nsm_radius), self.top_ratio)
        tokens = query_f8.flatten(2).transpose(1, 2)  # (B, hw, d_t)
        index = positions.unsqueeze(-1)
        selected = tokens.gather(1, index.expand(-1, -1, c))  # (B, Q, d_t)
        reduced = self.reduce(selected)
        attended = self._attend(self.q_proj(reduced), positions, key, value)
        x = self.norm1(reduced + self.dropout(self.out_proj(attended)))
        x = self.norm2(x + self.dropout(self.ffn(x)))
        out = tokens.scatter_add(1, index.expand(-1, -1, c), self.expand(x))
        return out.transpose(1, 2).reshape(b, c, h, w)

    def _attend(self, query: torch.Tensor, positions: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``(B, Q, d)`` queries → ``(B, Q, d)`` multi-head attention output (before ``W^O``)."""
        if not self.full_attention:
            out = windowed_temporal_attn(query, positions, key, value, start=self.key_start, end=self.key_end,
                                         expansion=self.key_expansion, num_heads=self.num_heads)
            return out  # type: ignore[return-value]  # a tensor without return_weights
        b, q, d = query.shape
        heads = self.num_heads

        def split(x: torch.Tensor) -> torch.Tensor:  # (B, T, d, h, w) → (B, heads, T·h·w, d̂)
            return x.permute(0, 1, 3, 4, 2).reshape(b, -1, heads, d // heads).transpose(1, 2)

        qh = query.reshape(b, q, heads, d // heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(qh, split(key), split(value))
        return out.transpose(1, 2).reshape(b, q, d)
