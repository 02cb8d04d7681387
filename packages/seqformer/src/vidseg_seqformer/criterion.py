"""SeqFormer's set criterion (``SetCriterion`` in ``models/seqformer.py``; docs/reference/vis.md §3.5).

Every decoder layer is matched on its own and gets the same losses, weighted by ``ce 2, bbox 5, giou 2,
mask 2, dice 5`` (the original's ``loss_ce``… ``weight_dict``). Returned keys follow the shared contract
(:mod:`vidseg_common.models.set_criterion`): ``loss/<term>`` for the last layer, ``loss/<term>/aux<i>`` for
layer ``i`` < last (the original's suffix ``_i``), every value weighted, and the total ``loss``. All terms are
normalised by ``num_boxes``, the number of ground-truth **instances** in the batch (averaged over DDP ranks,
at least 1):

* ``ce``: sigmoid focal loss (α 0.25, γ 2) over the K one-hot columns of all queries, summed;
* ``bbox``: L1 over the 4T coordinates of a matched pair, divided by T;
* ``giou``: ``1 − GIoU`` per frame, summed and divided by T (absent frames keep their zero target box,
  clamped to 1e-6, as in the code);
* ``mask``: sigmoid focal loss averaged over the T·H/4·W/4 pixels of an instance;
* ``dice``: dice over the **whole T·H·W volume** of an instance (the code; the paper text says per-frame
  average). Ground-truth masks (padded to a multiple of 32) are sub-sampled ``[..., 2::4, 2::4]`` to stride 4;
  masks are computed only for matched queries (the ``mask_fn`` callback).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_convert, generalized_box_iou, sigmoid_focal_loss

from vidseg_common.errors import DataError
from vidseg_common.models.losses import dice_loss
from vidseg_common.models.set_criterion import TOTAL, loss_key, num_target_boxes
from vidseg_seqformer.matcher import ABSENT_BOX_MIN, SequenceMatcher

MaskFn = Callable[[int, Tensor, Tensor], Tensor]
"""``(layer, batch_idx, query_idx) → (N, T, H/4, W/4)`` mask logits of the chosen queries."""


class SetCriterion(nn.Module):
    """Matched losses of all decoder layers.

    Args:
        matcher: the Hungarian matcher.
        num_classes: class logits K (labels must be < K).
        weight_ce: weight of the class loss (2).
        weight_bbox: weight of the L1 box loss (5).
        weight_giou: weight of the GIoU loss (2).
        weight_mask: weight of the focal mask loss (2).
        weight_dice: weight of the dice loss (5).
        focal_alpha: α of both focal losses (0.25).
        focal_gamma: γ of both focal losses (2).
        mask_stride: stride of the predicted masks (4).
    """

    def __init__(
        self, matcher: SequenceMatcher, num_classes: int, weight_ce: float = 2.0, weight_bbox: float = 5.0,
        weight_giou: float = 2.0, weight_mask: float = 2.0, weight_dice: float = 5.0, focal_alpha: float = 0.25,
        focal_gamma: float = 2.0, mask_stride: int = 4,
    ) -> None:
        super().__init__()
        self.matcher, self.num_classes = matcher, num_classes
        self.weights = {"ce": weight_ce, "bbox": weight_bbox, "giou": weight_giou, "mask": weight_mask,
                        "dice": weight_dice}
        self.focal_alpha, self.focal_gamma, self.mask_stride = focal_alpha, focal_gamma, mask_stride

    def layer_losses(
        self, logits: Tensor, boxes: Tensor, targets: list[dict[str, Tensor]], mask_fn: MaskFn, layer: int,
        num_boxes: float,
    ) -> dict[str, Tensor]:
        """Unweighted losses ``ce``, ``bbox``, ``giou``, ``mask``, ``dice`` of one decoder layer: ``logits (B, Q, K)``,
        ``boxes (B, T, Q, 4)``."""
        indices = self.matcher(logits, boxes, targets)
        batch_idx = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(indices)])
        query_idx = torch.cat([q for q, _ in indices])
        labels = torch.cat([t["labels"][g] for t, (_, g) in zip(targets, indices)])
        onehot = torch.zeros_like(logits)
        onehot[batch_idx, query_idx, labels] = 1.0
        loss_ce = sigmoid_focal_loss(logits, onehot, self.focal_alpha, self.focal_gamma, reduction="sum") / num_boxes

        src = boxes[batch_idx, :, query_idx]  # (N, T, 4)
        tgt = torch.cat([t["boxes"][g] for t, (_, g) in zip(targets, indices)]).to(src.dtype).clamp(min=ABSENT_BOX_MIN)
        num_frames = boxes.shape[1]
        loss_bbox = F.l1_loss(src, tgt, reduction="sum") / num_frames / num_boxes
        giou = generalized_box_iou(box_convert(src.flatten(0, 1), "cxcywh", "xyxy"),
                                   box_convert(tgt.flatten(0, 1), "cxcywh", "xyxy")).diagonal()
        loss_giou = (1 - giou).sum() / num_frames / num_boxes

        pred_masks = mask_fn(layer, batch_idx, query_idx)  # (N, T, h, w)
        start = self.mask_stride // 2
        gt_masks = torch.cat([t["masks"][g] for t, (_, g) in zip(targets, indices)])
        gt_masks = gt_masks[..., start :: self.mask_stride, start :: self.mask_stride].to(pred_masks.dtype)
        if gt_masks.shape[-2:] != pred_masks.shape[-2:]:
            raise DataError(
                f"target masks at stride {self.mask_stride} are {tuple(gt_masks.shape[-2:])} but predictions are "
                f"{tuple(pred_masks.shape[-2:])}: pad frames and masks to a multiple of 32 (data.pad_divisor)"
            )
        if pred_masks.shape[0]:
            focal = sigmoid_focal_loss(pred_masks.flatten(1), gt_masks.flatten(1), self.focal_alpha, self.focal_gamma)
            loss_mask = focal.mean(1).sum() / num_boxes
            loss_dice = dice_loss(pred_masks.flatten(1), gt_masks.flatten(1)).sum() / num_boxes
        else:
            loss_mask = loss_dice = pred_masks.sum() * 0.0
        return {"ce": loss_ce, "bbox": loss_bbox, "giou": loss_giou, "mask": loss_mask, "dice": loss_dice}

    def forward(self, outputs: dict[str, object], targets: list[dict[str, Tensor]], mask_fn: MaskFn) -> dict[str, Tensor]:
        """Weighted losses under the shared contract (:mod:`vidseg_common.models.set_criterion`).

        Args:
            outputs: the model's dict (``pred_logits`` and ``pred_boxes`` per layer).
            targets: per clip ``labels (N,)``, ``boxes (N, T, 4)``, ``masks (N, T, H, W)``.
            mask_fn: computes mask logits of matched queries.

        Returns:
            ``loss/<term>/aux<i>`` of layers ``i`` < last, then ``loss/<term>`` of the last layer (terms ``ce``,
            ``bbox``, ``giou``, ``mask``, ``dice``), each ``weight * term``, and ``loss``: Python's ``sum`` of
            those entries in this order.
        """
        logits_all: list[Tensor] = outputs["pred_logits"]  # type: ignore[assignment]
        boxes_all: list[Tensor] = outputs["pred_boxes"]  # type: ignore[assignment]
        for t in targets:
            if t["labels"].numel() and int(t["labels"].max()) >= self.num_classes:
                raise DataError(f"category id {int(t['labels'].max())} ≥ num_classes={self.num_classes}: raise model.num_classes")
        num_boxes = num_target_boxes(targets, logits_all[-1].device)
        last = len(logits_all) - 1
        losses: dict[str, Tensor] = {}
        for layer, (logits, boxes) in enumerate(zip(logits_all, boxes_all)):
            aux = None if layer == last else layer
            for term, value in self.layer_losses(logits, boxes, targets, mask_fn, layer, num_boxes).items():
                losses[loss_key(term, aux)] = self.weights[term] * value
        losses[TOTAL] = sum(losses.values())  # first layer first: the summation order of the original code
        return losses
