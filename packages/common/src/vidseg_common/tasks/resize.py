"""Undo the evaluation transform: network-input maps back to the original video size.

The batch ``meta`` says what :meth:`~vidseg_common.data.transforms.ClipAugment.apply` did: ``size`` (original
``(H0, W0)``), ``resized_size`` (content ``(h, w)`` after the resize, before the bottom/right padding) and
``padded_size`` (the network input ``(H, W)``). Maps are cropped to the content and, when the frames were
resized, interpolated to the original size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def meta_sizes(meta: Mapping[str, Any], input_size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(resized_size, original_size)`` of one item's ``meta`` (``resized_size`` defaults to the un-padded input)."""
    original = (int(meta["size"][0]), int(meta["size"][1]))
    resized = meta.get("resized_size")
    if resized is None:
        resized = (min(original[0], input_size[0]), min(original[1], input_size[1]))
    return (int(resized[0]), int(resized[1])), original


def ids_to_original(ids: Tensor, resized: tuple[int, int], original: tuple[int, int]) -> Tensor:
    """Label maps ``(..., H, W)`` (ids, classes, boolean masks) → ``(..., H0, W0)``: crop, then nearest neighbour."""
    out = ids[..., : resized[0], : resized[1]]
    if tuple(resized) == tuple(original) or out.numel() == 0:
        return out if out.numel() else out.new_zeros((*out.shape[:-2], *original))
    lead = out.shape[:-2]
    flat = out.reshape(-1, 1, *resized).float()
    return F.interpolate(flat, size=original, mode="nearest").reshape(*lead, *original).to(ids.dtype)


def logits_to_original(logits: Tensor, input_size: tuple[int, int], resized: tuple[int, int],
                       original: tuple[int, int]) -> Tensor:
    """Score maps ``(N, C, h, w)`` aligned with the padded input (any stride) → ``(N, C, H0, W0)``.

    Bilinear up-sampling to the input size (skipped when already there), crop to the content, bilinear to the
    original size when the frames were resized (as SeqFormer's and VisTR's ``inference.py``).
    """
    if logits.shape[0] == 0:
        return logits.new_zeros((0, logits.shape[1], *original))
    x = logits
    if tuple(x.shape[-2:]) != tuple(input_size):
        x = F.interpolate(x, size=tuple(input_size), mode="bilinear", align_corners=False)
    x = x[..., : resized[0], : resized[1]]
    if tuple(resized) != tuple(original):
        x = F.interpolate(x, size=tuple(original), mode="bilinear", align_corners=False)
    return x


def masks_to_original(mask_logits: Tensor, input_size: tuple[int, int], resized: tuple[int, int],
                      original: tuple[int, int], threshold: float = 0.5) -> Tensor:
    """Mask logits ``(N, T, h, w)`` → boolean masks ``(N, T, H0, W0)`` (``sigmoid > threshold``)."""
    if mask_logits.shape[0] == 0:
        return torch.zeros((0, mask_logits.shape[1], *original), dtype=torch.bool, device=mask_logits.device)
    return logits_to_original(mask_logits, input_size, resized, original).sigmoid() > threshold
