"""SeqFormer's Hungarian matcher between queries and whole instance sequences (docs/reference/vis.md §3.4).

Cost of query q against instance n of a clip::

    C = w_class · (pos − neg)[q, label_n]          focal-style class cost (α 0.25, γ 2) on sigmoid probs
      + w_bbox  · ‖box_q − box_n‖₂                 Euclidean distance of the concatenated 4T vectors
      + w_giou  · (−mean_t GIoU(box_q,t, box_n,t))

As in the code, ``torch.cdist`` uses its default p=2 (Deformable DETR uses p=1) and frames where the
instance is absent keep their zero target box (clamped to 1e-6) in both box costs: no valid-frame masking.
There is no mask cost. Solved per clip with :func:`vidseg_common.models.matcher.hungarian_match`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import box_convert, generalized_box_iou

from vidseg_common.models.matcher import hungarian_match

ABSENT_BOX_MIN = 1e-6
"""Target boxes are clamped to this (``target['boxes'].clamp(1e-6)`` in the code), so absent frames are valid boxes."""


def focal_class_cost(probs: Tensor, labels: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """``(Q, K)`` sigmoid probabilities, ``(N,)`` labels → ``(Q, N)`` class cost ``pos − neg``."""
    neg = (1 - alpha) * probs.pow(gamma) * -(1 - probs + 1e-8).log()
    pos = alpha * (1 - probs).pow(gamma) * -(probs + 1e-8).log()
    return pos[:, labels] - neg[:, labels]


def sequence_giou(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over frames of the pairwise GIoU.

    Args:
        pred: ``(Q, T, 4)`` cxcywh.
        target: ``(N, T, 4)`` cxcywh.

    Returns:
        ``(Q, N)``.
    """
    p = box_convert(pred, "cxcywh", "xyxy").transpose(0, 1)  # (T, Q, 4)
    g = box_convert(target, "cxcywh", "xyxy").transpose(0, 1)
    return torch.stack([generalized_box_iou(p[t], g[t]) for t in range(p.shape[0])]).mean(0)


class SequenceMatcher(nn.Module):
    """Per-clip Hungarian assignment of queries to instance sequences.

    Args:
        cost_class: weight of the focal class cost (2).
        cost_bbox: weight of the L2 box cost (5).
        cost_giou: weight of the GIoU cost (2).
        focal_alpha: α of the class cost.
        focal_gamma: γ of the class cost.
    """

    def __init__(
        self, cost_class: float = 2.0, cost_bbox: float = 5.0, cost_giou: float = 2.0, focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
    ) -> None:
        super().__init__()
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou
        self.focal_alpha, self.focal_gamma = focal_alpha, focal_gamma

    def cost_matrix(self, logits: Tensor, boxes: Tensor, labels: Tensor, target_boxes: Tensor) -> Tensor:
        """Cost of one clip.

        Args:
            logits: ``(Q, K)``.
            boxes: ``(Q, T, 4)`` predicted cxcywh.
            labels: ``(N,)``.
            target_boxes: ``(N, T, 4)`` cxcywh (zeros where absent).

        Returns:
            ``(Q, N)``.
        """
        target_boxes = target_boxes.clamp(min=ABSENT_BOX_MIN)
        c_class = focal_class_cost(logits.sigmoid(), labels, self.focal_alpha, self.focal_gamma)
        c_bbox = torch.cdist(boxes.flatten(1), target_boxes.flatten(1).to(boxes.dtype), p=2)
        c_giou = -sequence_giou(boxes, target_boxes.to(boxes.dtype))
        return self.cost_class * c_class + self.cost_bbox * c_bbox + self.cost_giou * c_giou

    @torch.no_grad()
    def forward(self, logits: Tensor, boxes: Tensor, targets: list[dict[str, Tensor]]) -> list[tuple[Tensor, Tensor]]:
        """Match a batch.

        Args:
            logits: ``(B, Q, K)``.
            boxes: ``(B, T, Q, 4)`` (the model's layout, frames before queries).
            targets: per clip ``labels (N,)`` and ``boxes (N, T, 4)``.

        Returns:
            per clip ``(query_idx, target_idx)`` int64 tensors.
        """
        out = []
        for b, target in enumerate(targets):
            if target["labels"].numel() == 0:
                empty = torch.empty(0, dtype=torch.long, device=logits.device)
                out.append((empty, empty.clone()))
                continue
            cost = self.cost_matrix(logits[b].float(), boxes[b].transpose(0, 1).float(), target["labels"], target["boxes"])
            out.append(hungarian_match(cost))
        return out
