"""Triton forward kernel of indexed sparse attention (grid / local / strided SSTVOS attention, STT windows).

One program per (query, batch row): it walks the query's ``Z`` slots in blocks of ``BLOCK_Z``, gathers the
indexed key rows, and computes a numerically safe softmax in three passes over the slots (logits + running
max → normaliser → weights + value aggregation), accumulating in float32. Empty slots (index ``-1``) get
weight 0; a query with no valid slot gets a zero output. Only the forward pass runs here; the backward
pass is the PyTorch engine's (:mod:`vidseg_common.ops.sparse_st_attn_indexed`).

Registered as the ``triton`` kernel of the ``indexed_attention`` engine (:mod:`vidseg_common.ops.sparse_st_attn_indexed`)
and imported by the backend registry only when the ``triton`` backend is selected. Runs on CUDA tensors, or on
CPU tensors under ``TRITON_INTERPRET=1`` (which must be set before this module is imported).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _indexed_attn_fwd_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    idx_ptr,
    out_ptr,
    w_ptr,
    num_q,
    num_k,
    num_z,
    channels,
    channels_v,
    group,
    scale,
    BLOCK_Z: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_CV: tl.constexpr,
):
    qi = tl.program_id(0).to(tl.int64)
    n = tl.program_id(1).to(tl.int64)
    row = n * num_q + qi
    offs_c = tl.arange(0, BLOCK_C)
    offs_cv = tl.arange(0, BLOCK_CV)
    cmask = offs_c < channels
    cvmask = offs_cv < channels_v
    q = tl.load(q_ptr + row * channels + offs_c, mask=cmask, other=0.0).to(tl.float32)
    idx_base = idx_ptr + ((n // group) * num_q + qi) * num_z
    w_base = w_ptr + row * num_z

    m = tl.full([], float("-inf"), tl.float32)
    for z0 in range(0, num_z, BLOCK_Z):
        offs_z = z0 + tl.arange(0, BLOCK_Z)
        zmask = offs_z < num_z
        idx = tl.load(idx_base + offs_z, mask=zmask, other=-1)
        valid = idx >= 0
        krow = n * num_k + tl.where(valid, idx, 0)
        keys = tl.load(k_ptr + krow[:, None] * channels + offs_c[None, :], mask=valid[:, None] & cmask[None, :], other=0.0)
        logit = tl.sum(keys.to(tl.float32) * q[None, :], axis=1) * scale
        logit = tl.where(valid, logit, float("-inf"))
        tl.store(w_base + offs_z, logit, mask=zmask)
        m = tl.maximum(m, tl.max(logit, axis=0))

    m_safe = tl.where(m == float("-inf"), 0.0, m)
    denom = tl.full([], 0.0, tl.float32)
    for z0 in range(0, num_z, BLOCK_Z):
        offs_z = z0 + tl.arange(0, BLOCK_Z)
        logit = tl.load(w_base + offs_z, mask=offs_z < num_z, other=float("-inf"))
        denom += tl.sum(tl.exp(logit - m_safe), axis=0)
    inv = tl.where(denom > 0.0, 1.0 / denom, 0.0)

    acc = tl.zeros([BLOCK_CV], dtype=tl.float32)
    for z0 in range(0, num_z, BLOCK_Z):
        offs_z = z0 + tl.arange(0, BLOCK_Z)
        zmask = offs_z < num_z
        logit = tl.load(w_base + offs_z, mask=zmask, other=float("-inf"))
        prob = tl.exp(logit - m_safe) * inv
        tl.store(w_base + offs_z, prob, mask=zmask)
        idx = tl.load(idx_base + offs_z, mask=zmask, other=-1)
        valid = idx >= 0
        vrow = n * num_k + tl.where(valid, idx, 0)
        vals = tl.load(v_ptr + vrow[:, None] * channels_v + offs_cv[None, :], mask=valid[:, None] & cvmask[None, :], other=0.0)
        acc += tl.sum(prob[:, None] * vals.to(tl.float32), axis=0)
    tl.store(out_ptr + row * channels_v + offs_cv, acc, mask=cvmask)


def indexed_attention_triton(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, index: torch.Tensor, scale: float, block_z: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as :func:`vidseg_common.ops.sparse_st_attn_indexed.indexed_attention_forward`.

    Args:
        query: ``(N, Q, C)``; key: ``(N, K, C)``; value: ``(N, K, Cv)``.
        index: ``(Ni, Q, Z)`` int64, ``Ni`` dividing ``N`` (row ``n`` uses table ``n // (N / Ni)``), ``-1`` = empty.
        scale: multiplies the dot products.

    Returns:
        ``out (N, Q, Cv)`` and ``weights (N, Q, Z)`` in the input dtype (computed in float32).
    """
    n, num_q, channels = query.shape
    num_k, channels_v = key.shape[1], value.shape[2]
    num_z = index.shape[-1]
    query, key, value, index = (x.contiguous() for x in (query, key, value, index.to(torch.int64)))
    out = torch.empty(n, num_q, channels_v, device=query.device, dtype=torch.float32)
    weights = torch.empty(n, num_q, num_z, device=query.device, dtype=torch.float32)
    if n * num_q and num_z:
        _indexed_attn_fwd_kernel[(num_q, n)](
            query, key, value, index, out, weights,
            num_q, num_k, num_z, channels, channels_v, n // index.shape[0], float(scale),
            BLOCK_Z=block_z, BLOCK_C=triton.next_power_of_2(channels), BLOCK_CV=triton.next_power_of_2(channels_v),
        )
    else:
        out.zero_()
    return out.to(query.dtype), weights.to(query.dtype)
