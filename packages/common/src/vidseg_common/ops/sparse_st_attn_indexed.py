"""Indexed sparse attention: the vectorised PyTorch engine behind ``sparse_st_attn`` and ``windowed_temporal_attn``.

Each query attends to a fixed number ``Z`` of key slots given by an index table (``-1`` = empty slot):

    weights[n, q, :] = softmax_z(scale · <query[n, q], key[n, index[q, z]]>)   (empty slots excluded)
    out[n, q] = Σ_z weights[n, q, z] · value[n, index[q, z]]

Memory stays light: keys/values are gathered a chunk of slots at a time (at most ``chunk_bytes`` per
gathered block), so nothing of size ``Q·Z·C`` is ever materialised; only the ``(N, Q, Z)`` logits are.
The backward pass is analytic (softmax Jacobian) and chunked the same way, scattering into ``dkey`` /
``dvalue`` with ``index_add_``. Rows sharing one index table (the heads of a clip) are gathered together,
one ``G·C``-wide row per key cell, which keeps the gathers memory-bound rather than index-bound. A row whose slots are all empty gets zero weights and a zero output.

The forward is registered as the ``torch`` kernel of the ``indexed_attention`` engine, whose ``triton``
kernel is :func:`vidseg_common.ops._triton.sparse_st_attn.indexed_attention_triton` (same contract; see
:mod:`vidseg_common.ops.backend`): the ops built on the engine select it with ``get_kernel``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from vidseg_common.ops.backend import register_kernels

DEFAULT_CHUNK_BYTES = 8 * 2**20


def _chunks(num_q: int, num_z: int, row_elems: int, itemsize: int, chunk_bytes: int) -> Iterator[slice]:
    """Slot ranges whose gathered ``(Q, z, G, C)`` block stays within ``chunk_bytes``."""
    step = max(1, chunk_bytes // max(1, num_q * row_elems * itemsize))
    for start in range(0, num_z, step):
        yield slice(start, min(start + step, num_z))


def _groups(index: torch.Tensor, n: int) -> int:
    if index.dim() != 3 or n % index.shape[0]:
        raise ValueError(f"index must be (Ni, Q, Z) with Ni dividing N={n}, got {tuple(index.shape)}")
    return n // index.shape[0]


def _rows(x: torch.Tensor, i: int, g: int) -> torch.Tensor:
    """Rows ``i·G … (i+1)·G`` of ``x (N, K, C)`` as a contiguous ``(K, G·C)`` gather table."""
    return x[i * g : (i + 1) * g].transpose(0, 1).reshape(x.shape[1], -1)


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
        index: ``(Ni, Q, Z)`` int64, ``Ni`` dividing ``N``: rows ``i·G … (i+1)·G − 1`` (``G = N / Ni``, e.g.
            the heads of one clip) share table ``i``; entries in ``[-1, K)``.
        scale: multiplies the dot products.
        chunk_bytes: size budget of one gathered key/value block.

    Returns:
        ``out (N, Q, Cv)`` and ``weights (N, Q, Z)`` (zero on empty slots).
    """
    n, num_q, c = query.shape
    g, cv, num_z = _groups(index, n), value.shape[-1], index.shape[-1]
    weights = query.new_empty(n, num_q, num_z)
    out = query.new_empty(n, num_q, cv)
    for i in range(index.shape[0]):
        idx, valid = index[i].clamp_min(0), index[i] >= 0  # (Q, Z)
        keys, values = _rows(key, i, g), _rows(value, i, g)  # (K, G·C), (K, G·Cv)
        q = query[i * g : (i + 1) * g].transpose(0, 1)  # (Q, G, C)
        logits = query.new_empty(num_q, num_z, g)
        for sl in _chunks(num_q, num_z, g * c, query.element_size(), chunk_bytes):
            gathered = keys.index_select(0, idx[:, sl].reshape(-1)).view(num_q, -1, g, c)
            logits[:, sl] = (gathered * q.unsqueeze(1)).sum(-1)
        logits = (logits * scale).masked_fill_(~valid.unsqueeze(-1), float("-inf"))
        prob = torch.softmax(logits, dim=1).masked_fill_(~valid.unsqueeze(-1), 0.0)  # (Q, Z, G)
        del logits
        acc = query.new_zeros(num_q, g, cv)
        for sl in _chunks(num_q, num_z, g * cv, value.element_size(), chunk_bytes):
            gathered = values.index_select(0, idx[:, sl].reshape(-1)).view(num_q, -1, g, cv)
            acc += (prob[:, sl].unsqueeze(-1) * gathered).sum(1)
        weights[i * g : (i + 1) * g] = prob.permute(2, 0, 1)
        out[i * g : (i + 1) * g] = acc.transpose(0, 1)
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
    n, num_q, c = query.shape
    g, cv, num_k = _groups(index, n), value.shape[-1], key.shape[1]
    dquery, dkey, dvalue = torch.empty_like(query), torch.empty_like(key), torch.empty_like(value)
    for i in range(index.shape[0]):
        rows = slice(i * g, (i + 1) * g)
        idx = index[i].clamp_min(0)
        keys, values = _rows(key, i, g), _rows(value, i, g)
        q, go = query[rows].transpose(0, 1), grad_out[rows].transpose(0, 1)  # (Q, G, C), (Q, G, Cv)
        prob = weights[rows].permute(1, 2, 0)  # (Q, Z, G)
        dprob = grad_weights[rows].permute(1, 2, 0).clone()
        dval = values.new_zeros(num_k, g * cv)
        for sl in _chunks(num_q, idx.shape[1], g * cv, value.element_size(), chunk_bytes):
            flat = idx[:, sl].reshape(-1)
            dprob[:, sl] += (values.index_select(0, flat).view(num_q, -1, g, cv) * go.unsqueeze(1)).sum(-1)
            dval.index_add_(0, flat, (prob[:, sl].unsqueeze(-1) * go.unsqueeze(1)).reshape(-1, g * cv))
        dlogits = prob * (dprob - (prob * dprob).sum(1, keepdim=True)) * scale  # 0 on empty slots
        del dprob
        dq = query.new_zeros(num_q, g, c)
        dk = keys.new_zeros(num_k, g * c)
        for sl in _chunks(num_q, idx.shape[1], g * c, key.element_size(), chunk_bytes):
            flat = idx[:, sl].reshape(-1)
            dq += (dlogits[:, sl].unsqueeze(-1) * keys.index_select(0, flat).view(num_q, -1, g, c)).sum(1)
            dk.index_add_(0, flat, (dlogits[:, sl].unsqueeze(-1) * q.unsqueeze(1)).reshape(-1, g * c))
        dquery[rows] = dq.transpose(0, 1)
        dkey[rows] = dk.view(num_k, g, c).transpose(0, 1)
        dvalue[rows] = dval.view(num_k, g, cv).transpose(0, 1)
    return dquery, dkey, dvalue


register_kernels(
    "indexed_attention",
    torch=indexed_attention_forward,
    triton="vidseg_common.ops._triton.sparse_st_attn:indexed_attention_triton",
)
