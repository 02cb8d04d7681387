"""SeqFormer's video inference post-processing (``inference.py``; docs/reference/vis.md §3.8).

The whole video goes through the network in one pass. The top ``k`` (10) of all ``Q × K`` sigmoid scores are
kept (query, class) pairs, so one query can appear with several classes. Each selected query's stride-4
mask logits are bilinearly up-sampled to the network input, cropped to the un-padded content, up-sampled to
the original video size and thresholded at 0.5 (sigmoid,
:func:`~vidseg_common.tasks.resize.masks_to_original`); a selection with an empty mask in every frame is
dropped, and one scored below :data:`NULL_SCORE` is written with ``null`` segmentations.
"""

from __future__ import annotations

import torch
from torch import Tensor

NULL_SCORE = 1e-3
"""Selections scored below this are written with ``null`` segmentations in every frame (``inference.py``)."""


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
