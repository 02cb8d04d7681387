"""Hungarian matching on a cost matrix (scipy's ``linear_sum_assignment``) with input checks.

Each paper's matcher (VisTR's instance-sequence costs, SeqFormer's focal/L1/GIoU costs) builds its own
cost matrix in its package; this is the shared, checked solver step.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment


def hungarian_match(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum-cost one-to-one assignment.

    Args:
        cost: ``(num_predictions, num_targets)`` finite costs (any device; solved on CPU in float64).
    Returns:
        ``(pred_idx, target_idx)`` int64 tensors of length ``min(num_predictions, num_targets)``, sorted by
        ``pred_idx``, on ``cost``'s device.
    Raises:
        ValueError: if ``cost`` is not 2-D or holds NaN/Inf (a silent wrong match is worse than an error).
    """
    if cost.ndim != 2:
        raise ValueError(f"cost must be (num_predictions, num_targets), got shape {tuple(cost.shape)}")
    if cost.numel() == 0:
        empty = torch.empty(0, dtype=torch.long, device=cost.device)
        return empty, empty.clone()
    values = cost.detach().to("cpu", torch.float64)
    if not torch.isfinite(values).all():
        raise ValueError("cost matrix holds NaN or Inf values; check the predicted boxes/logits")
    rows, cols = linear_sum_assignment(values.numpy())
    return (
        torch.as_tensor(rows, dtype=torch.long, device=cost.device),
        torch.as_tensor(cols, dtype=torch.long, device=cost.device),
    )
