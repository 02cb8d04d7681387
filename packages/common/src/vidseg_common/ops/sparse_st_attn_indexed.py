"""Indexed sparse attention: the vectorised PyTorch engine behind ``sparse_st_attn`` and ``windowed_temporal_attn``.

Each query attends to a fixed number ``Z`` of key slots given by an index table (``-1`` = empty slot):

    weights[n, q, :] = softmax_z(scale · <query[n, q], key[n, index[q, z]]>)   (empty slots excluded)
    out[n, q] = Σ_z weights[n, q, z] · value[n, index[q, z]]

Memory stays light: keys/values are gathered a chunk of slots at a time (at most ``chunk_bytes`` per
gathered block), so nothing of size ``Q·Z·C`` is ever materialised; only the ``(N, Q, Z)`` logits are.
The backward pass is analytic (softmax Jacobian) and chunked the same way, scattering into ``dkey`` /
``dvalue`` with ``index_add_``. A row whose slots are all empty gets zero weights and a zero output.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

DEFAULT_CHUNK_BYTES = 32 * 2**20


def _chunks(index: torch.Tensor, channels: int, itemsize: int, chunk_bytes: int) -> Iterator[slice]:
    """Slot ranges whose gathered ``(N, Q, z, channels)`` block stays within ``chunk_bytes``."""
    per_slot = max(1, index.shape[0] * index.shape[1] * channels * itemsize)
    step = max(1, chunk_bytes // per_slot)
    for start in range(0, index.shape[-1], step):
        yield slice(start, min(start + step, index.shape[-1]))


def _flat_index(index: torch.Tensor, n: int, rows: int) -> torch.Tensor:
    """Index ``(Ni, Q, z)`` into the flattened ``(N·rows, C)`` key table (empty slots → row 0 of the batch)."""
    offsets = torch.arange(n, device=index.device).view(n, 1, 1) * rows
    return index.clamp_min(0) + offsets


def _gather(table: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """``table (N·K, C)`` rows at ``flat (N, Q, z)`` → ``(N, Q, z, C)``."""
    return table.index_select(0, flat.reshape(-1)).view(*flat.shape, table.shape[-1])


def indexed_attention_forward(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    index: torch.Tensor,
    scale: float,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward pass.

    Args:
        query: ``(N, Q, C)``.
        key: ``(N, K, C)``.
        value: ``(N, K, Cv)``.
        index: ``(Ni, Q, Z)`` int64 with ``Ni ∈ {1, N}``, entries in ``[-1, K)``.
        scale: multiplies the dot products.
        chunk_bytes: size budget of one gathered key/value block.

    Returns:
        ``out (N, Q, Cv)`` and ``weights (N, Q, Z)`` (zero on empty slots).
    """
    n, rows = key.shape[0], key.shape[1]
    key_flat, value_flat = key.reshape(n * rows, -1), value.reshape(n * rows, -1)
    index = index.expand(n, -1, -1)
    valid = index >= 0
    logits = query.new_empty(index.shape)
    q_col = query.unsqueeze(-1)
    for sl in _chunks(index, key.shape[-1], key.element_size(), chunk_bytes):
        keys = _gather(key_flat, _flat_index(index[..., sl], n, rows))
        logits[..., sl] = torch.matmul(keys, q_col).squeeze(-1)
    logits = (logits * scale).masked_fill_(~valid, float("-inf"))
    weights = torch.softmax(logits, dim=-1).masked_fill_(~valid, 0.0)
    del logits
    out = query.new_zeros(n, query.shape[1], value.shape[-1])
    for sl in _chunks(index, value.shape[-1], value.element_size(), chunk_bytes):
        values = _gather(value_flat, _flat_index(index[..., sl], n, rows))
        out += torch.matmul(weights[..., sl].unsqueeze(-2), values).squeeze(-2)
    return out, weights


def indexed_attention_backward(
    grad_out: torch.Tensor,
    grad_weights: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    index: torch.Tensor,
    weights: torch.Tensor,
    scale: float,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward pass of :func:`indexed_attention_forward` given the saved ``weights (N, Q, Z)``.

    Returns:
        ``dquery (N, Q, C)``, ``dkey (N, K, C)``, ``dvalue (N, K, Cv)``.
    """
    n, rows = key.shape[0], key.shape[1]
    key_flat, value_flat = key.reshape(n * rows, -1), value.reshape(n * rows, -1)
    index = index.expand(n, -1, -1)
    dvalue = torch.zeros_like(value_flat)
    dprob = grad_weights.clone()
    g_col = grad_out.unsqueeze(-1)
    for sl in _chunks(index, value.shape[-1], value.element_size(), chunk_bytes):
        flat = _flat_index(index[..., sl], n, rows)
        dprob[..., sl] += torch.matmul(_gather(value_flat, flat), g_col).squeeze(-1)
        contrib = weights[..., sl].unsqueeze(-1) * grad_out.unsqueeze(-2)
        dvalue.index_add_(0, flat.reshape(-1), contrib.reshape(-1, value.shape[-1]))
    dlogits = weights * (dprob - (weights * dprob).sum(-1, keepdim=True)) * scale
    del dprob
    dquery = torch.zeros_like(query)
    dkey = torch.zeros_like(key_flat)
    for sl in _chunks(index, key.shape[-1], key.element_size(), chunk_bytes):
        flat = _flat_index(index[..., sl], n, rows)
        dquery += torch.matmul(dlogits[..., sl].unsqueeze(-2), _gather(key_flat, flat)).squeeze(-2)
        contrib = dlogits[..., sl].unsqueeze(-1) * query.unsqueeze(-2)
        dkey.index_add_(0, flat.reshape(-1), contrib.reshape(-1, key.shape[-1]))
    return dquery, dkey.view_as(key), dvalue.view_as(value)
