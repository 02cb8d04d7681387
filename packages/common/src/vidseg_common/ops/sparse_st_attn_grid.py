"""Fast PyTorch forward of grid attention: three batched matmuls (row, column, time) instead of a gather.

The recipe of ``docs/reference/vos.md`` §1.3, checked there against a port of the released CUDA kernel:
row / column / time energies as batched matmuls over channels-last views, the query's own cell masked
out of the column and time parts (it is already in the row), one softmax over the ``W + H + T`` slots,
aggregation with the transposed matmuls. The returned weights drop the two masked self slots, which
gives the kernel's ``Z = W + H + T − 2`` layout. Work ``O(N·S·(W+H+T)·C)`` and memory ``O(N·S·(W+H+T))``.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=32)
def _skip_self_index(size: int) -> torch.Tensor:
    """``(size, size − 1)``: for own coordinate ``p``, the kernel's slot → coordinate ``m if m < p else m + 1``."""
    m = torch.arange(size - 1).view(1, -1)
    p = torch.arange(size).view(-1, 1)
    return torch.where(m < p, m, m + 1)


def grid_attention_forward(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, causal: bool, scale: float, need_weights: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid attention.

    Args:
        query, key: ``(N, C, T, H, W)``.
        value: ``(N, Cv, T, H, W)``.
        causal: mask later frames.
        scale: multiplies the dot products.
        need_weights: build the weights in the slot layout (else return an empty ``(N, 0, T, H, W)``).

    Returns:
        ``out (N, Cv, T, H, W)`` and ``weights (N, W + H + T − 2, T, H, W)`` in the kernel's slot layout.
    """
    n, _, t, h, w = query.shape
    device = query.device
    # three channels-last copies of the (small) inputs, one per axis, so every matmul is contiguous
    q_row, k_row, v_row = (x.permute(0, 2, 3, 4, 1).contiguous() for x in (query, key, value))  # (N, T, H, W, C)
    q_col, k_col, v_col = (x.permute(0, 2, 4, 3, 1).contiguous() for x in (query, key, value))  # (N, T, W, H, C)
    q_tim, k_tim, v_tim = (x.permute(0, 3, 4, 2, 1).contiguous() for x in (query, key, value))  # (N, H, W, T, C)
    e_row = torch.matmul(q_row, k_row.transpose(-1, -2)).mul_(scale)  # (N, T, H, W, W')
    e_col = torch.matmul(q_col, k_col.transpose(-1, -2)).mul_(scale)  # (N, T, W, H, H')
    e_tim = torch.matmul(q_tim, k_tim.transpose(-1, -2)).mul_(scale)  # (N, H, W, T, T')
    e_col.masked_fill_(torch.eye(h, dtype=torch.bool, device=device), float("-inf"))  # self is in the row
    t_mask = torch.eye(t, dtype=torch.bool, device=device)
    if causal:
        t_mask |= torch.ones(t, t, dtype=torch.bool, device=device).triu(1)
    e_tim.masked_fill_(t_mask, float("-inf"))

    # one softmax over the W + H + T slots, each part kept in its own layout (no big transposes)
    peak = torch.maximum(e_row.amax(-1), e_col.amax(-1).transpose(2, 3))  # (N, T, H, W)
    peak = torch.maximum(peak, e_tim.amax(-1).permute(0, 3, 1, 2))
    p_row = e_row.sub_(peak.unsqueeze(-1)).exp_()
    p_col = e_col.sub_(peak.transpose(2, 3).unsqueeze(-1)).exp_()
    p_tim = e_tim.sub_(peak.permute(0, 2, 3, 1).unsqueeze(-1)).exp_()
    inv = p_row.sum(-1).add_(p_col.sum(-1).transpose(2, 3)).add_(p_tim.sum(-1).permute(0, 3, 1, 2)).reciprocal_()
    p_row.mul_(inv.unsqueeze(-1))
    p_col.mul_(inv.transpose(2, 3).unsqueeze(-1))
    p_tim.mul_(inv.permute(0, 2, 3, 1).unsqueeze(-1))

    out = torch.matmul(p_row, v_row)  # (N, T, H, W, Cv)
    out += torch.matmul(p_col, v_col).transpose(2, 3)
    out += torch.matmul(p_tim, v_tim).permute(0, 3, 1, 2, 4)

    out = out.permute(0, 4, 1, 2, 3).contiguous()
    if not need_weights:
        return out, query.new_empty(n, 0, t, h, w)
    weights = query.new_empty(n, w + h + t - 2, t, h, w)
    weights[:, :w] = p_row.permute(0, 4, 1, 2, 3)
    col_index = _skip_self_index(h).to(device).view(1, 1, 1, h, h - 1).expand(n, t, w, h, h - 1)
    weights[:, w : w + h - 1] = p_col.gather(-1, col_index).permute(0, 4, 1, 3, 2)
    tim_index = _skip_self_index(t).to(device).view(1, 1, 1, t, t - 1).expand(n, h, w, t, t - 1)
    weights[:, w + h - 1 :] = p_tim.gather(-1, tim_index).permute(0, 4, 3, 1, 2)
    return out, weights
