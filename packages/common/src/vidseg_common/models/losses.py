"""Segmentation losses shared by several papers.

- :func:`dice_loss`: ``1 − (2Σpg + 1)/(Σp + Σg + 1)`` per instance (VisTR, SeqFormer, XMem); the sigmoid
  focal loss is torchvision's ``sigmoid_focal_loss`` (use it directly).
- :class:`BootstrappedCE`: STCN's bootstrapped cross-entropy (SpVOS): plain CE until ``start_warm``,
  then the mean of the top-p hardest pixels with p decaying linearly from 1 to ``top_p`` at ``end_warm``
  (docs/reference/vos.md §2.3).
- :class:`OhemCrossEntropy`: TDNet's OHEM CE (STT): keep pixels whose CE exceeds ``−ln(thresh)``, or
  the ``n_min`` hardest if fewer (docs/reference/vss.md §2.3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Per-instance dice loss.

    Args:
        logits: ``(N, ...)`` mask logits, flattened per instance.
        targets: ``(N, ...)`` binary masks of the same shape.
    Returns:
        ``(N,)`` losses; callers sum and normalise by their instance count.
    """
    probs = logits.sigmoid().flatten(1)
    targets = targets.flatten(1).to(probs.dtype)
    numerator = 2 * (probs * targets).sum(1) + smooth
    denominator = probs.sum(1) + targets.sum(1) + smooth
    return 1 - numerator / denominator


def bootstrap_fraction(iteration: int, start_warm: int, end_warm: int, top_p: float) -> float:
    """Fraction of hardest pixels kept at ``iteration`` (1.0 before ``start_warm``, ``top_p`` after ``end_warm``)."""
    if iteration < start_warm:
        return 1.0
    if iteration > end_warm:
        return top_p
    return top_p + (1 - top_p) * (end_warm - iteration) / (end_warm - start_warm)


class BootstrappedCE(nn.Module):
    """STCN's bootstrapped cross-entropy.

    Args:
        start_warm: iteration where bootstrapping starts (STCN: 20k).
        end_warm: iteration where the kept fraction reaches ``top_p`` (STCN: 70k).
        top_p: final fraction of hardest pixels (0.15).
        ignore_index: label ignored in the loss.
    """

    def __init__(self, start_warm: int = 20_000, end_warm: int = 70_000, top_p: float = 0.15, ignore_index: int = 255):
        super().__init__()
        if not 0 < top_p <= 1 or end_warm <= start_warm:
            raise ValueError("BootstrappedCE needs 0 < top_p ≤ 1 and end_warm > start_warm")
        self.start_warm, self.end_warm, self.top_p, self.ignore_index = start_warm, end_warm, top_p, ignore_index

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, iteration: int) -> torch.Tensor:
        """``logits (B, K, H, W)``, ``labels (B, H, W)`` → scalar; top-p taken per sample over its pixels."""
        fraction = bootstrap_fraction(iteration, self.start_warm, self.end_warm, self.top_p)
        pixel_loss = F.cross_entropy(logits, labels, ignore_index=self.ignore_index, reduction="none").flatten(1)
        if fraction >= 1.0:
            valid = (labels != self.ignore_index).flatten(1)
            return pixel_loss.sum() / valid.sum().clamp(min=1)
        keep = max(1, int(pixel_loss.shape[1] * fraction))
        return pixel_loss.topk(keep, dim=1, sorted=False).values.mean()


class OhemCrossEntropy(nn.Module):
    """Online hard example mining cross-entropy (TDNet ``OhemCELoss2D``).

    Args:
        thresh: probability threshold; pixels with CE > ``−ln(thresh)`` are hard (0.7).
        n_min: minimum number of pixels kept per batch (TDNet: batch·H·W/16).
        ignore_index: label ignored in the loss (TDNet used 250; our datasets use 255).
    """

    def __init__(self, thresh: float = 0.7, n_min: int = 100_000, ignore_index: int = 255) -> None:
        super().__init__()
        if not 0 < thresh < 1 or n_min < 1:
            raise ValueError("OhemCrossEntropy needs 0 < thresh < 1 and n_min ≥ 1")
        self.loss_thresh = -math.log(thresh)
        self.n_min, self.ignore_index = n_min, ignore_index

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``logits (B, K, H, W)``, ``labels (B, H, W)`` → scalar mean over the kept pixels."""
        pixel_loss = F.cross_entropy(logits, labels, ignore_index=self.ignore_index, reduction="none").flatten()
        valid = labels.flatten() != self.ignore_index
        pixel_loss = pixel_loss[valid]
        if pixel_loss.numel() == 0:
            return logits.sum() * 0.0
        hard = pixel_loss[pixel_loss > self.loss_thresh]
        if hard.numel() < self.n_min:
            hard = pixel_loss.topk(min(self.n_min, pixel_loss.numel())).values
        return hard.mean()
