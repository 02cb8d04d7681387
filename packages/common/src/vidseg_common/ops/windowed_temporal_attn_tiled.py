"""Tiled forward of STT windowed temporal attention: dense matmuls over tile-shared key windows.

The query map is cut into ``tile×tile`` tiles. All selected queries of a tile share, in key frame ``t``, the
union of their windows: a ``(tile + 2·l_t)²`` patch. Each tile's queries are scored against the patches of
all ``T`` frames with one batched matmul (BLAS), the cells outside a query's own window (or outside the
map) are masked, one softmax runs over all frames, and values are aggregated with a second batched matmul.
Work is ``Q·Σ_t (tile + 2·l_t)²·C`` multiply-adds (≈3× the exact window count at ``tile = 8``, STT defaults)
instead of a gather of ``Q·n_k·C`` values, which on CPUs is memory-bound and far slower than BLAS.
Key/value patches are cut per frame (``unfold`` views, copied one frame at a time), never for all frames
at once. The returned weights are re-indexed into the ``(t, dy, dx)`` slot layout of the op.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=16)
def _window_masks(radii: tuple[int, ...], tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tile-position window masks ``(tile², ΣU)`` and slot → patch-column table ``(tile², n_k)``."""
    masks, columns, offset = [], [], 0
    local_y = torch.arange(tile).repeat_interleave(tile).view(-1, 1)
    local_x = torch.arange(tile).repeat(tile).view(-1, 1)
    for r in radii:
        side = tile + 2 * r
        uy = torch.arange(side).repeat_interleave(side).view(1, -1)
        ux = torch.arange(side).repeat(side).view(1, -1)
        masks.append(((uy - local_y - r).abs() <= r) & ((ux - local_x - r).abs() <= r))
        dy, dx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
        columns.append(offset + (local_y + r + dy.reshape(1, -1)) * side + (local_x + r + dx.reshape(1, -1)))
        offset += side * side
    return torch.cat(masks, 1), torch.cat(columns, 1)


def _patches(maps: torch.Tensor, radius: int, tile: int, n_ty: int, n_tx: int) -> torch.Tensor:
    """``maps (G, h, w, C)`` → zero-padded ``(tiles, G, (tile+2r)², C)`` patches around every tile."""
    g, h, w, c = maps.shape
    side = tile + 2 * radius
    padded = F.pad(maps, (0, 0, radius, radius + n_tx * tile - w, radius, radius + n_ty * tile - h))
    windows = padded.unfold(1, side, tile).unfold(2, side, tile)  # (G, n_ty, n_tx, C, side, side)
    return windows.permute(1, 2, 0, 4, 5, 3).reshape(n_ty * n_tx, g, side * side, c)


def _inside(radius: int, tile: int, h: int, w: int, n_ty: int, n_tx: int, device: torch.device) -> torch.Tensor:
    """``(tiles, (tile+2r)²)``: patch cells that lie inside the ``h×w`` map."""
    side = tile + 2 * radius
    rows = (torch.arange(n_ty, device=device).view(-1, 1) * tile - radius + torch.arange(side, device=device)).clamp(-1, h)
    cols = (torch.arange(n_tx, device=device).view(-1, 1) * tile - radius + torch.arange(side, device=device)).clamp(-1, w)
    ok_r, ok_c = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)  # (n_ty, side), (n_tx, side)
    return (ok_r.view(n_ty, 1, side, 1) & ok_c.view(1, n_tx, 1, side)).reshape(n_ty * n_tx, side * side)


def windowed_attention_tiled(
    query: torch.Tensor,
    positions: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    radii: list[int],
    scale: float,
    need_weights: bool = True,
    tile: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward pass, same contract as the op.

    Args:
        query: ``(N, Q, C)``; rows ``i·G … (i+1)·G − 1`` use ``positions[i]`` (``G = N / Bp``).
        positions: ``(Bp, Q)`` int64 flat positions in ``[0, h·w)``.
        key: ``(N, T, C, h, w)``; value: ``(N, T, Cv, h, w)``.
        radii: ``[l_1, …, l_T]``.
        scale: multiplies the dot products.
        need_weights: also return the weights in the ``(t, dy, dx)`` slot layout.
        tile: tile side.

    Returns:
        ``out (N, Q, Cv)`` and ``weights (N, Q, n_k)`` (``(N, Q, 0)`` without ``need_weights``).
    """
    n, num_q, _ = query.shape
    h, w = key.shape[3], key.shape[4]
    cv, g = value.shape[2], n // positions.shape[0]
    n_ty, n_tx = -(-h // tile), -(-w // tile)
    win_mask, slot_cols = (x.to(query.device) for x in _window_masks(tuple(radii), tile))
    keys_cl, values_cl = key.permute(0, 1, 3, 4, 2), value.permute(0, 1, 3, 4, 2)  # (N, T, h, w, C)
    inside = torch.cat([_inside(r, tile, h, w, n_ty, n_tx, query.device) for r in radii], 1)  # (tiles, ΣU)
    sides = [(tile + 2 * r) ** 2 for r in radii]
    out = query.new_empty(n, num_q, cv)
    weights = query.new_empty(n, num_q, slot_cols.shape[1] if need_weights else 0)
    for i in range(positions.shape[0]):
        rows = slice(i * g, (i + 1) * g)
        y, x = positions[i] // w, positions[i] % w
        tile_id = (y // tile) * n_tx + x // tile
        local = (y % tile) * tile + x % tile
        order = torch.argsort(tile_id, stable=True)
        counts = torch.bincount(tile_id, minlength=n_ty * n_tx)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(order)
        rank[order] = torch.arange(num_q, device=query.device) - starts[tile_id[order]]
        q_max = int(counts.max())
        packed = query.new_zeros(n_ty * n_tx, q_max, g, query.shape[2])
        packed[tile_id, rank] = query[rows].transpose(0, 1)
        packed = packed.transpose(1, 2)  # (tiles, G, Qmax, C)
        local_packed = torch.zeros(n_ty * n_tx, q_max, dtype=torch.long, device=query.device)
        local_packed[tile_id, rank] = local
        filled = torch.zeros(n_ty * n_tx, q_max, dtype=torch.bool, device=query.device)
        filled[tile_id, rank] = True
        # (tiles, 1, Qmax, ΣU): the query's own window, inside the map, real (not padding) query
        mask = (win_mask[local_packed] & inside.unsqueeze(1) & filled.unsqueeze(-1)).unsqueeze(1)
        masks = mask.split(sides, dim=-1)
        # one softmax over all frames, kept per frame (no concatenation of the logits)
        probs = []
        for t, r in enumerate(radii):
            logits = torch.matmul(packed, _patches(keys_cl[rows, t], r, tile, n_ty, n_tx).transpose(-1, -2))
            probs.append(logits.mul_(scale).masked_fill_(~masks[t], float("-inf")))
        peak = torch.stack([p.amax(-1) for p in probs]).amax(0)
        peak = peak.masked_fill_(peak == float("-inf"), 0.0).unsqueeze(-1)
        total = sum(p.sub_(peak).exp_().sum(-1) for p in probs)
        inv = torch.where(total > 0, total.reciprocal(), torch.zeros_like(total)).unsqueeze(-1)
        acc = query.new_zeros(n_ty * n_tx, g, q_max, cv)
        for t, (r, prob_t) in enumerate(zip(radii, probs, strict=True)):
            prob_t.mul_(inv)
            acc += torch.matmul(prob_t, _patches(values_cl[rows, t], r, tile, n_ty, n_tx))
        out[rows] = acc.transpose(1, 2)[tile_id, rank].transpose(0, 1)
        if need_weights:
            per_query = torch.cat(probs, dim=-1).transpose(1, 2)[tile_id, rank]  # (Q, G, ΣU)
            cols = slot_cols[local].unsqueeze(1).expand(-1, g, -1)
            weights[rows] = per_query.gather(-1, cols).transpose(0, 1)
    return out, weights
