"""The loss contract of the set-prediction (DETR-style) criteria of the VIS papers, and their shared normaliser.

Contract (Deformable VisTR's and SeqFormer's ``SetCriterion.forward``): a ``dict[str, Tensor]`` of scalar
losses, every entry already **weighted** by the paper's loss weight:

- ``loss/<term>``: a term of the final decoder layer, ``<term>`` one of :data:`TERMS` (``ce``, ``bbox``,
  ``giou``, ``mask``, ``dice``), those the paper has;
- ``loss/<term>/aux<l>``: the same term of auxiliary decoder layer ``l`` (0-based, first layer first);
- ``loss``: the total that is optimised, the sum of all other entries (each criterion keeps its own order of
  summation, documented there).

Modules log every entry as ``train/<key>``. :func:`loss_key` builds the keys, :func:`check_loss_dict` checks
a dict against the contract, :func:`num_target_boxes` is the DDP-averaged box count that normalises the terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import torch
import torch.distributed as dist
from torch import Tensor

TOTAL = "loss"
"""Key of the optimised total."""

TERMS = ("ce", "bbox", "giou", "mask", "dice")
"""Loss terms of the VIS set criteria: classification, box L1, box GIoU, mask focal/BCE, mask dice."""

LOSS_KEY = re.compile(r"loss(?:/(?P<term>[a-z0-9_]+)(?:/aux(?P<aux>\d+))?)?")
"""Full-match pattern of every key of the contract."""


def loss_key(term: str, aux: int | None = None) -> str:
    """``loss/<term>`` for the final decoder layer, ``loss/<term>/aux<aux>`` for auxiliary layer ``aux``."""
    return f"{TOTAL}/{term}" if aux is None else f"{TOTAL}/{term}/aux{aux}"


def check_loss_dict(losses: Mapping[str, Tensor], terms: Iterable[str] = TERMS) -> None:
    """Raise ``ValueError`` unless ``losses`` follows the contract (keys only; values are not summed here).

    Args:
        losses: a criterion's output.
        terms: the allowed ``<term>`` names.
    """
    allowed = set(terms)
    if TOTAL not in losses:
        raise ValueError(f"no total {TOTAL!r} among the losses {sorted(losses)}")
    for key, value in losses.items():
        match = LOSS_KEY.fullmatch(key)
        if match is None or (match["term"] is not None and match["term"] not in allowed):
            raise ValueError(f"loss key {key!r} is not 'loss', 'loss/<term>' or 'loss/<term>/aux<l>' "
                             f"with <term> in {sorted(allowed)}")
        if value.dim() != 0:
            raise ValueError(f"loss {key!r} is not a scalar: shape {tuple(value.shape)}")


def num_target_boxes(targets: Iterable[Mapping[str, Tensor]], device: torch.device, per_frame: bool = False) -> float:
    """Number of ground-truth boxes normalising the losses, averaged over DDP processes and at least 1.

    Args:
        targets: per clip ``labels (G,)`` and, for ``per_frame``, ``valid (G, T)``.
        device: where the count is all-reduced (the loss device; NCCL needs CUDA).
        per_frame: count instance-frames ``G·T`` (``valid.numel()``, absent frames included; VisTR) instead
            of instances ``G`` (SeqFormer).

    Returns:
        ``max(Σ_processes count / world_size, 1)`` as a Python float.
    """
    count = sum(t["valid"].numel() if per_frame else len(t["labels"]) for t in targets)
    total = torch.tensor(float(count), device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(total)
        total = total / dist.get_world_size()
    return max(float(total), 1.0)
