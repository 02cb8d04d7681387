"""STCN memory read (L2 affinity, optional top-k) and STM's soft aggregation of objects.

SpVOS Eq. (2) prints ``S = (−‖k_Q‖² + k_Qᵀk_M)/√C_k``, which is wrong (docs/reference/vos.md §2.10: the query-norm term is
constant along the softmax axis, the memory-norm term is not, the factor 2 is missing); we implement STCN's
negative squared L2 distance up to the query-norm constant, ``S = (2·k_Mᵀk_Q − ‖k_M‖²)/√C_k``.
"""

from __future__ import annotations

import math

import torch


def l2_affinity(mem_keys: torch.Tensor, query_keys: torch.Tensor, top_k: int | None = None) -> torch.Tensor:
    """Softmax over memory positions of the L2 similarity.

    Args:
        mem_keys: ``(B, C_k, T, H, W)`` keys of the memory frames.
        query_keys: ``(B, C_k, H, W)`` keys of the query frame.
        top_k: keep only the ``k`` largest similarities per query position before the softmax (STCN
            inference: 20; never used in training, STCN#53). ``None``: dense softmax.

    Returns:
        ``(B, T·H·W, H·W)`` weights, summing to 1 over the memory axis.
    """
    key_dim = mem_keys.shape[1]
    mk = mem_keys.flatten(2)
    qk = query_keys.flatten(2)
    sim = (2 * mk.transpose(1, 2) @ qk - mk.pow(2).sum(1).unsqueeze(2)) / math.sqrt(key_dim)
    if top_k is not None and top_k < sim.shape[1]:
        values, indices = sim.topk(top_k, dim=1)
        weights = torch.softmax(values, dim=1)
        return torch.zeros_like(sim).scatter_(1, indices, weights)
    return torch.softmax(sim, dim=1)


def readout(affinity: torch.Tensor, mem_values: torch.Tensor, query_value: torch.Tensor) -> torch.Tensor:
    """Memory readout concatenated with the query value.

    Args:
        affinity: ``(B, T·H·W, H·W)`` from :func:`l2_affinity`.
        mem_values: ``(B, K, C_v, T, H, W)`` values of ``K`` objects.
        query_value: ``(B, C_v, H, W)``.

    Returns:
        ``(B, K, 2·C_v, H, W)``.
    """
    bsz, num_obj, c_v, t, h, w = mem_values.shape
    mem = mem_values.reshape(bsz, num_obj * c_v, t * h * w) @ affinity
    mem = mem.view(bsz, num_obj, c_v, *query_value.shape[-2:])
    return torch.cat([mem, query_value[:, None].expand(-1, num_obj, -1, -1, -1)], dim=2)


def aggregate(prob: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Soft aggregation (STM): ``p_bg = Π(1 − p_o)``, clamp, logit ``log(p/(1 − p))``.

    Args:
        prob: ``(B, K, H, W)`` per-object foreground probabilities.

    Returns:
        ``(B, K + 1, H, W)`` logits over {background, objects} (apply softmax for probabilities).
    """
    full = torch.cat([torch.prod(1 - prob, dim=1, keepdim=True), prob], dim=1).clamp(eps, 1 - eps)
    return torch.log(full / (1 - full))
