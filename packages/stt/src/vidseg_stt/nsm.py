"""Neighbour Similarity Matrix (NSM) query selection of STT (Sec. 3.2, Eqs. 1–4; ``docs/reference/vss.md`` §1.2).

For every position ``q`` of the query map and its ``n_b = (2r+1)²`` neighbours ``Qⁿ`` (centre included):

* ``p_sim = softmax(Qⁿ · qᵀ)`` over the raw dot products (Eq. 1, no temperature);
* ``D_KL = KL(p_u ‖ p_sim)`` with ``p_u`` uniform (Eq. 2). The paper prints ``Σ p_u log(p_sim / p_u)``, which
  is ``−KL ≤ 0``, while the text says "large ⇒ complex"; we implement the non-negative KL
  ``Σ p_u (log p_u − log p_sim) = logsumexp(s) − mean(s) − log n_b`` (docs/reference/vss.md §1.2 choice);
* ``D_cos = mean_i (1 − cos(Qⁿ_i, q))`` (Eq. 3);
* ``D_NSM = D_KL + D_cos`` (Eq. 4); the top ``ratio`` of positions by ``D_NSM`` are the queries.

Borders use replicate padding (zero padding would give ``cos = 0/0``, docs/reference/vss.md §1.4). The neighbourhood is
visited one shift at a time (running logsumexp), so memory stays ``O(B·h·w)`` instead of ``O(B·h·w·n_b·C)``.
Selection is not differentiable and needs no gradient: scores are computed under ``no_grad``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidseg_common.errors import ConfigError, DataError


@torch.no_grad()
def nsm_scores(features: torch.Tensor, radius: int, eps: float = 1e-8) -> torch.Tensor:
    """``D_NSM`` of every position.

    Args:
        features: ``(B, C, h, w)`` query feature map.
        radius: neighbourhood radius ``r`` (``n_b = (2r+1)²``).
        eps: norm floor of the cosine.

    Returns:
        ``(B, h, w)`` float32 scores, larger = more complex region.
    """
    if features.dim() != 4:
        raise DataError(f"nsm_scores: expected features (B, C, h, w), got {tuple(features.shape)}")
    if radius < 0:
        raise ConfigError(f"nsm_scores: radius must be >= 0, got {radius}")
    x = features.float()
    _, _, h, w = x.shape
    norm = x.norm(dim=1, keepdim=True)
    unit = x / norm.clamp_min(eps)
    pad = (radius, radius, radius, radius)
    unit_padded = F.pad(unit, pad, mode="replicate") if radius else unit
    norm_padded = (F.pad(norm, pad, mode="replicate") if radius else norm)[:, 0]
    centre_norm = norm[:, 0]
    run_max = torch.full_like(centre_norm, -math.inf)
    run_sum_exp = torch.zeros_like(centre_norm)
    sum_logits = torch.zeros_like(centre_norm)
    sum_cos = torch.zeros_like(centre_norm)
    size = 2 * radius + 1
    for dy in range(size):
        for dx in range(size):
            # one C-wide reduction per shift: cos, and the dot product as cos · |n| · |q|
            cos = (unit_padded[:, :, dy:dy + h, dx:dx + w] * unit).sum(1)
            logits = cos * norm_padded[:, dy:dy + h, dx:dx + w] * centre_norm
            new_max = torch.maximum(run_max, logits)
            run_sum_exp = run_sum_exp * torch.exp(run_max - new_max) + torch.exp(logits - new_max)
            run_max = new_max
            sum_logits += logits
            sum_cos += cos
    n_b = size * size
    kl = run_max + torch.log(run_sum_exp) - sum_logits / n_b - math.log(n_b)
    return kl.clamp_min(0.0) + (1.0 - sum_cos / n_b)


def select_top(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Flat positions ``u·w + v`` of the top ``ratio`` of positions, sorted ascending.

    Args:
        scores: ``(B, h, w)`` NSM scores.
        ratio: kept fraction in ``[0, 1]`` (STT: 0.5); ``round(ratio·h·w)`` positions are kept.

    Returns:
        ``(B, Q)`` int64.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"query top ratio must lie in [0, 1], got {ratio}")
    flat = scores.flatten(1)
    keep = round(ratio * flat.shape[1])
    index = flat.topk(keep, dim=1, sorted=False).indices
    return index.sort(dim=1).values
