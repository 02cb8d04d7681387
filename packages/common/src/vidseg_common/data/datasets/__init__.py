"""Clip datasets (VOS, VIS, VSS) and the collate function of the docs/architecture.md batch contract."""

from __future__ import annotations

from typing import Any

import torch

from vidseg_common.data.datasets.vis import VISClipDataset
from vidseg_common.data.datasets.vos import VOSClipDataset
from vidseg_common.data.datasets.vss import VSSClipDataset

__all__ = ["VISClipDataset", "VOSClipDataset", "VSSClipDataset", "collate_clips"]

_STACKED = ("frames", "masks", "num_objects", "label")


def collate_clips(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack ``frames``/``masks``/``num_objects``/``label`` along a new batch dim; ``target`` → ``targets`` list; ``meta`` list.

    ``frames (B, T, 3, H, W)``; clips of one batch must share T, H and W (fixed-size training crops, or
    batch size 1 in evaluation).
    """
    out: dict[str, Any] = {}
    for key in _STACKED:
        if key in batch[0]:
            out[key] = torch.stack([item[key] for item in batch])
    if "target" in batch[0]:
        out["targets"] = [item["target"] for item in batch]
    out["meta"] = [item["meta"] for item in batch]
    return out
