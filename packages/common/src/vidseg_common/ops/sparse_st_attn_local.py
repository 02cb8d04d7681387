"""Fast PyTorch forward of local attention: the tiled window attention of STT, one query frame at a time.

Local attention (a centred ``k×k`` window in every frame of the clip) is windowed temporal attention with
the same radius ``k // 2`` in all key frames and every cell as a query, so it reuses the tiled batched-matmul
forward of :mod:`vidseg_common.ops.windowed_temporal_attn_tiled`. Under ``causal`` the query frame ``t``
only sees frames ``0…t``; the slots of later frames stay empty (weight 0).
"""

from __future__ import annotations

import torch

from vidseg_common.ops.windowed_temporal_attn_tiled import windowed_attention_tiled


def local_attention_forward(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    kernel_size: int,
    causal: bool,
    scale: float,
    need_weights: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Local attention.

    Args:
        query, key: ``(N, C, T, H, W)``.
        value: ``(N, Cv, T, H, W)``.
        kernel_size: odd window side ``k``.
        causal: mask later frames.
        scale: multiplies the dot products.
        need_weights: build the weights (else return an empty ``(N, 0, T, H, W)``).

    Returns:
        ``out (N, Cv, T, H, W)`` and ``weights (N, T·k², T, H, W)`` in the ``(t', dy, dx)`` slot layout.
    """
    n, _, t_n, h, w = query.shape
    per_frame = kernel_size * kernel_size
    keys, values = key.transpose(1, 2), value.transpose(1, 2)  # (N, T, C, H, W)
    positions = torch.arange(h * w, device=query.device).view(1, -1)
    out = value.new_empty(value.shape)
    weights = query.new_zeros(n, t_n * per_frame if need_weights else 0, t_n, h, w)
    for t in range(t_n):
        frames = t + 1 if causal else t_n
        q_t = query[:, :, t].flatten(2).transpose(1, 2)  # (N, H·W, C)
        o_t, w_t = windowed_attention_tiled(
            q_t, positions, keys[:, :frames], values[:, :frames], [kernel_size // 2] * frames, scale, need_weights
        )
        out[:, :, t] = o_t.transpose(1, 2).reshape(n, -1, h, w)
        if need_weights:
            weights[:, : frames * per_frame, t] = w_t.transpose(1, 2).reshape(n, -1, h, w)
    return out, weights
