"""Fast PyTorch forward of strided attention (SSTVOS ``I²``): dense attention inside residue classes.

Cells reachable from ``p`` with steps of ``(s_t, s_h, s_w)`` are exactly the cells with the same residues
``(t mod s_t, y mod s_h, x mod s_w)``. Padding the clip to multiples of the steps and regrouping it as
``(N·s_t·s_h·s_w, M, C)`` with ``M = ⌈T/s_t⌉·⌈H/s_h⌉·⌈W/s_w⌉`` turns the pattern into ordinary dense attention
per class (two batched matmuls), the padding cells masked. A class's member order ``(i, j, l)`` is the
pattern's slot order, so the attention rows *are* the weights in the slot layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _to_classes(x: torch.Tensor, steps: list[int], counts: list[int]) -> torch.Tensor:
    """``(N, C, T, H, W)`` → ``(N·s_t·s_h·s_w, M, C)`` (zero padding at the far ends)."""
    n, c, t, h, w = x.shape
    (s_t, s_h, s_w), (m_t, m_h, m_w) = steps, counts
    x = F.pad(x, (0, m_w * s_w - w, 0, m_h * s_h - h, 0, m_t * s_t - t))
    x = x.view(n, c, m_t, s_t, m_h, s_h, m_w, s_w).permute(0, 3, 5, 7, 2, 4, 6, 1)
    return x.reshape(n * s_t * s_h * s_w, m_t * m_h * m_w, c)


def strided_attention_forward(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    params: list[int],
    causal: bool,
    scale: float,
    need_weights: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Strided attention.

    Args:
        query, key: ``(N, C, T, H, W)``.
        value: ``(N, Cv, T, H, W)``.
        params: steps ``[s_t, s_h, s_w]``.
        causal: mask later frames.
        scale: multiplies the dot products.
        need_weights: build the weights (else return an empty ``(N, 0, T, H, W)``).

    Returns:
        ``out (N, Cv, T, H, W)`` and ``weights (N, Z, T, H, W)`` with ``Z = M``.
    """
    n, _, t, h, w = query.shape
    steps = list(params)
    counts = [-(-t // steps[0]), -(-h // steps[1]), -(-w // steps[2])]
    m = counts[0] * counts[1] * counts[2]
    q, k, v = (_to_classes(x, steps, counts) for x in (query, key, value))
    logits = torch.matmul(q, k.transpose(-1, -2)).mul_(scale)  # (N·classes, M, M)

    device = query.device
    member = [torch.arange(c, device=device) for c in counts]
    grids = torch.meshgrid(*member, indexing="ij")
    residues = torch.meshgrid(*(torch.arange(s, device=device) for s in steps), indexing="ij")
    # (classes, M): does member (i, j, l) of class (rt, ry, rx) lie inside the clip?
    inside = torch.ones(residues[0].numel(), m, dtype=torch.bool, device=device)
    for axis, size in enumerate((t, h, w)):
        coord = residues[axis].reshape(-1, 1) + grids[axis].reshape(1, -1) * steps[axis]
        inside &= coord < size
    mask = inside.unsqueeze(1).repeat(n, 1, 1)  # (N·classes, 1, M) keys
    if causal:
        frame = grids[0].reshape(-1)
        mask = mask & (frame.view(1, 1, -1) <= frame.view(1, -1, 1))
    prob = torch.softmax(logits.masked_fill_(~mask, float("-inf")), dim=-1).nan_to_num_(0.0)
    out = torch.matmul(prob, v)  # (N·classes, M, Cv)

    def to_clip(x: torch.Tensor) -> torch.Tensor:
        """``(N·classes, M, D)`` → ``(N, D, T, H, W)``."""
        x = x.view(n, *steps, *counts, x.shape[-1]).permute(0, 7, 4, 1, 5, 2, 6, 3)
        x = x.reshape(n, -1, counts[0] * steps[0], counts[1] * steps[1], counts[2] * steps[2])
        return x[:, :, :t, :h, :w].contiguous()

    weights = to_clip(prob) if need_weights else query.new_empty(n, 0, t, h, w)
    return to_clip(out), weights
