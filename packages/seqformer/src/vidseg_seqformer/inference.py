"""SeqFormer's video inference post-processing (``inference.py``; reference/vis.md §3.8).

The whole video goes through the network in one pass. The top ``k`` (10) of all ``Q × K`` sigmoid scores are
kept (query, class) pairs, so one query can appear with several classes. Each selected query's stride-4
mask logits are bilinearly up-sampled to the network input, cropped to the un-padded content, up-sampled to
the original video size and thresholded at 0.5 (sigmoid); a selection with an empty mask in every frame
is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def select_topk(logits: Tensor, k: int = 10) -> tuple[Tensor, Tensor, Tensor]:
    """Top-``k`` (query, class) pairs of one video.

    Args:
        logits: ``(Q, K)`` class logits.
        k: number of pairs.

    Returns:
        ``scores (k,)``, ``query_idx (k,)``, ``labels (k,)`` (sorted by score, descending).
    """
    probs = logits.sigmoid().flatten()
    scores, flat = probs.topk(min(k, probs.numel()))
    num_classes = logits.shape[1]
    return scores, torch.div(flat, num_classes, rounding_mode="floor"), flat % num_classes


def masks_to_original(
    mask_logits: Tensor, input_size: Sequence[int], content_size: Sequence[int], original_size: Sequence[int],
    threshold: float = 0.5,
) -> Tensor:
    """Stride-4 logits → boolean masks at the original video size.

    Args:
        mask_logits: ``(N, T, h, w)`` logits.
        input_size: ``(H, W)`` of the (padded) network input.
        content_size: ``(H', W')`` of the resized frames before padding.
        original_size: ``(H0, W0)`` of the video.
        threshold: probability threshold.

    Returns:
        ``(N, T, H0, W0)`` bool.
    """
    if mask_logits.shape[0] == 0:
        return torch.zeros((0, mask_logits.shape[1], *original_size), dtype=torch.bool, device=mask_logits.device)
    x = F.interpolate(mask_logits, size=tuple(input_size), mode="bilinear", align_corners=False)
    x = x[..., : content_size[0], : content_size[1]]
    if tuple(content_size) != tuple(original_size):
        x = F.interpolate(x, size=tuple(original_size), mode="bilinear", align_corners=False)
    return x.sigmoid() > threshold


def resized_size(original_size: Sequence[int], short_side: int | None, max_size: int | None) -> tuple[int, int]:
    """``(H', W')`` that the evaluation transform resizes ``original_size`` to (``ClipAugment`` rule)."""
    h, w = int(original_size[0]), int(original_size[1])
    scale = 1.0 if short_side is None else short_side / min(h, w)
    if max_size is not None and max(h, w) * scale > max_size:
        scale = max_size / max(h, w)
    return max(round(h * scale), 1), max(round(w * scale), 1)
