"""VisTR set criterion (docs/reference/vis.md §2.3): class CE, box L1 + GIoU, mask focal + dice on matched valid frames.

- classification: softmax cross-entropy over ``K+1`` classes, no-object weight ``eos_coef`` (0.1), every
  query not matched on a valid frame is no-object (torch's weighted mean, as DETR);
- ``num_boxes = Σ_videos G·T`` (all instance-frames, absent ones included), all-reduced over processes and
  clamped ≥ 1 — VisTR's normaliser;
- boxes: ``Σ |b̂ − b| / num_boxes`` and ``Σ (1 − GIoU) / num_boxes`` over matched valid frames
  (torchvision's ``generalized_box_iou_loss``; its eps is 1e-7 where VisTR adds 1e-6);
- masks (last decoder layer only): stride-4 logits bilinearly upsampled to the target size, sigmoid focal
  loss (α 0.25, γ 2) averaged over pixels then summed, and dice ``1 − (2Σpg+1)/(Σp+Σg+1)`` summed, both
  ``/ num_boxes``. No try/except fallback: a shape mismatch raises;
- auxiliary decoder layers get class + box losses, each with its own matching (DETR);
- weights ``ce 1, bbox 5, giou 2, mask 1, dice 1``.

Returned losses follow the shared contract (:mod:`vidseg_common.models.set_criterion`), all weighted:
``loss/ce``, ``loss/bbox``, ``loss/giou``, ``loss/mask``, ``loss/dice`` (the masks only when the model predicts
them) of the last decoder layer, ``loss/ce/aux<l>``, ``loss/bbox/aux<l>``, ``loss/giou/aux<l>`` of auxiliary
layer ``l``, and the total ``loss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_convert, generalized_box_iou_loss, sigmoid_focal_loss

from vidseg_common.errors import DataError
from vidseg_common.models.losses import dice_loss
from vidseg_common.models.set_criterion import TOTAL, loss_key, num_target_boxes
from vidseg_defvistr.matcher import InstanceSequenceMatcher

Match = tuple[Tensor, Tensor, Tensor]


class SetCriterion(nn.Module):
    """VisTR losses.

    Args:
        num_classes: K (class logits before no-object).
        matcher: the instance-sequence matcher.
        eos_coef: CE weight of the no-object class (0.1).
        weight_ce: 1.
        weight_bbox: 5.
        weight_giou: 2.
        weight_mask: focal mask loss weight (1).
        weight_dice: 1.
        focal_alpha: 0.25.
        focal_gamma: 2.
    """

    def __init__(
        self,
        num_classes: int,
        matcher: InstanceSequenceMatcher,
        eos_coef: float = 0.1,
        weight_ce: float = 1.0,
        weight_bbox: float = 5.0,
        weight_giou: float = 2.0,
        weight_mask: float = 1.0,
        weight_dice: float = 1.0,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
    ) -> None:
        super().__init__()
        self.num_classes, self.matcher = num_classes, matcher
        self.weights = {"ce": weight_ce, "bbox": weight_bbox, "giou": weight_giou, "mask": weight_mask,
                        "dice": weight_dice}
        self.focal_alpha, self.focal_gamma = focal_alpha, focal_gamma
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight, persistent=False)

    def loss_labels(self, logits: Tensor, targets: list[dict[str, Tensor]], matches: list[Match]) -> Tensor:
        """Cross-entropy of ``logits (B, Q, K+1)``; unmatched queries are no-object (class K)."""
        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.long, device=logits.device)
        for b, (pred_idx, tgt_idx, _) in enumerate(matches):
            target_classes[b, pred_idx] = targets[b]["labels"][tgt_idx].to(logits.device)
        return F.cross_entropy(logits.transpose(1, 2), target_classes, self.empty_weight)

    def loss_boxes(self, boxes: Tensor, targets: list[dict[str, Tensor]], matches: list[Match], num_boxes: float) -> tuple[Tensor, Tensor]:
        """L1 and GIoU losses of matched valid frames; ``boxes (B, Q, 4)`` cxcywh."""
        src = torch.cat([boxes[b, m[0]] for b, m in enumerate(matches)])
        tgt = torch.cat([targets[b]["boxes"][m[1], m[2]].to(boxes) for b, m in enumerate(matches)])
        if src.numel() == 0:
            zero = boxes.sum() * 0.0
            return zero, zero
        l1 = F.l1_loss(src, tgt, reduction="sum") / num_boxes
        giou = generalized_box_iou_loss(
            box_convert(src, "cxcywh", "xyxy"), box_convert(tgt, "cxcywh", "xyxy"), reduction="sum"
        ) / num_boxes
        return l1, giou

    def loss_masks(self, masks: Tensor, targets: list[dict[str, Tensor]], matches: list[Match], num_boxes: float) -> tuple[Tensor, Tensor]:
        """Focal + dice of matched valid frames; ``masks (B, Q, H/4, W/4)`` logits, targets ``(G, T, H, W)``."""
        src = torch.cat([masks[b, m[0]] for b, m in enumerate(matches)])  # (M, h, w)
        if src.shape[0] == 0:
            zero = masks.sum() * 0.0
            return zero, zero
        tgt = torch.cat([targets[b]["masks"][m[1], m[2]] for b, m in enumerate(matches)]).to(src.dtype)
        src = F.interpolate(src[:, None], size=tgt.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        focal = sigmoid_focal_loss(src.flatten(1), tgt.flatten(1), self.focal_alpha, self.focal_gamma, reduction="none")
        return focal.mean(1).sum() / num_boxes, dice_loss(src, tgt).sum() / num_boxes

    def forward(self, outputs: dict, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Weighted losses under the shared contract (:mod:`vidseg_common.models.set_criterion`).

        Args:
            outputs: ``pred_logits (B, Q, K+1)``, ``pred_boxes (B, Q, 4)``, optional ``pred_masks
                (B, Q, H/4, W/4)`` and ``aux_outputs`` (per auxiliary layer ``pred_logits``, ``pred_boxes``).
            targets: per clip ``labels (G,)``, ``boxes (G, T, 4)``, ``valid (G, T)``, ``masks (G, T, H, W)``.

        Returns:
            ``loss/<term>`` (``ce``, ``bbox``, ``giou``, then ``mask``, ``dice`` if predicted) of the last layer,
            ``loss/<term>/aux<l>`` (``ce``, ``bbox``, ``giou``) of auxiliary layer ``l``, each multiplied by its
            weight, and ``loss``: ``torch.stack`` of those entries in this order, summed.
        """
        for target in targets:
            labels = target["labels"]
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise DataError(f"target labels {labels.tolist()} outside [0, {self.num_classes}): raise num_classes")
        num_boxes = num_target_boxes(targets, outputs["pred_logits"].device, per_frame=True)
        matches = self.matcher(outputs, targets)
        losses: dict[str, Tensor] = {"ce": self.loss_labels(outputs["pred_logits"], targets, matches)}
        losses["bbox"], losses["giou"] = self.loss_boxes(outputs["pred_boxes"], targets, matches, num_boxes)
        if "pred_masks" in outputs:
            losses["mask"], losses["dice"] = self.loss_masks(outputs["pred_masks"], targets, matches, num_boxes)
        weighted = {loss_key(term): v * self.weights[term] for term, v in losses.items()}
        for level, aux in enumerate(outputs.get("aux_outputs", [])):
            aux_matches = self.matcher(aux, targets)
            weighted[loss_key("ce", level)] = self.weights["ce"] * self.loss_labels(aux["pred_logits"], targets, aux_matches)
            l1, giou = self.loss_boxes(aux["pred_boxes"], targets, aux_matches, num_boxes)
            weighted[loss_key("bbox", level)] = self.weights["bbox"] * l1
            weighted[loss_key("giou", level)] = self.weights["giou"] * giou
        weighted[TOTAL] = torch.stack(list(weighted.values())).sum()
        return weighted
