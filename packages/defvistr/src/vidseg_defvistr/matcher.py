"""VisTR instance-sequence Hungarian matcher (docs/reference/vis.md §2.2), with VisTR's valid-frame bug fixed.

Per video, the ``Q = T·N`` frame-major predictions are regrouped into N instance sequences of length T and
compared with the G target sequences:

- ``cost_class[i, g] = −mean_t softmax(p)[i, t, c_{g,t}]`` where ``c_{g,t}`` is the instance's category on
  frames where it is present and class 0 on absent frames (VisTR's targets carry label 0 there; YouTube-VIS
  ids start at 1, so 0 is never a real category);
- ``cost_bbox[i, g] = mean_{t, coord} |b̂ − b|`` over all T frames, absent frames having the zero box;
- ``cost_iou[i, g] = −mean_t IoU(b̂, b)``: plain IoU (not GIoU) with +1e-6 smoothing of both terms;
- ``C = w_class·class + w_bbox·bbox + w_iou·iou`` (1 / 5 / 2), solved with scipy (``hungarian_match``).

Matched pairs are expanded to frame level **only over the target's valid frames**, taking the valid mask of
the assigned target ``tgt_i[j]`` (VisTR indexed it with the assignment index ``j``: the bug DefVIS fixed).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import box_convert

from vidseg_common.errors import DataError
from vidseg_common.models.matcher import hungarian_match


def pairwise_sequence_iou(pred_xyxy: Tensor, tgt_xyxy: Tensor, eps: float = 1e-6) -> Tensor:
    """Mean over frames of the plain IoU, ``(N, T, 4)`` × ``(G, T, 4)`` → ``(N, G)`` (VisTR ``multi_iou``)."""
    p = pred_xyxy[:, None]
    g = tgt_xyxy[None]
    lt = torch.maximum(p[..., :2], g[..., :2])
    rb = torch.minimum(p[..., 2:], g[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_p = (p[..., 2:] - p[..., :2]).clamp(min=0).prod(-1)
    area_g = (g[..., 2:] - g[..., :2]).clamp(min=0).prod(-1)
    iou = (inter + eps) / (area_p + area_g - inter + eps)
    return iou.mean(-1)


class InstanceSequenceMatcher(nn.Module):
    """Match N predicted instance sequences to G target sequences per video.

    Args:
        num_frames: T (queries are ``T·N`` frame-major).
        cost_class: weight of the class cost (VisTR 1).
        cost_bbox: weight of the L1 box cost (5).
        cost_iou: weight of the IoU cost (2).
    """

    def __init__(self, num_frames: int, cost_class: float = 1.0, cost_bbox: float = 5.0, cost_iou: float = 2.0) -> None:
        super().__init__()
        if cost_class == 0 and cost_bbox == 0 and cost_iou == 0:
            raise ValueError("InstanceSequenceMatcher: all cost weights are 0")
        self.num_frames, self.cost_class, self.cost_bbox, self.cost_iou = num_frames, cost_class, cost_bbox, cost_iou

    def cost_matrix(self, logits: Tensor, boxes: Tensor, labels: Tensor, tgt_boxes: Tensor, valid: Tensor) -> Tensor:
        """``C (N, G)`` of one video (module docstring); ``logits (T·N, K+1)``, ``boxes (T·N, 4)``, ``labels (G,)``,
        ``tgt_boxes (G, T, 4)``, ``valid (G, T)``."""
        t = self.num_frames
        n = logits.shape[0] // t
        g = labels.numel()
        prob = logits.float().softmax(-1).view(t, n, -1).transpose(0, 1)  # (N, T, K+1)
        frame_labels = torch.where(valid, labels[:, None], torch.zeros_like(labels)[:, None])  # (G, T)
        index = frame_labels.T[None].expand(n, t, g)  # (N, T, G)
        cost_class = -prob.gather(2, index).mean(1)  # (N, G)
        out_boxes = boxes.float().view(t, n, 4).transpose(0, 1)  # (N, T, 4)
        tgt_boxes = tgt_boxes.float() * valid[..., None]  # zero box on absent frames
        cost_bbox = (out_boxes[:, None] - tgt_boxes[None]).abs().mean((-1, -2))
        cost_iou = -pairwise_sequence_iou(box_convert(out_boxes, "cxcywh", "xyxy"), box_convert(tgt_boxes, "cxcywh", "xyxy"))
        cost = self.cost_class * cost_class + self.cost_bbox * cost_bbox + self.cost_iou * cost_iou
        return cost

    @torch.no_grad()
    def match_video(self, logits: Tensor, boxes: Tensor, target: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Match one video.

        Args:
            logits: ``(Q, K+1)`` frame-major class logits.
            boxes: ``(Q, 4)`` predicted cxcywh boxes in [0, 1].
            target: ``labels (G,)``, ``boxes (G, T, 4)`` cxcywh, ``valid (G, T)`` bool.

        Returns:
            ``(pred_idx, tgt_idx, frame_idx)``, each ``(M,)`` long: prediction ``pred_idx = t·N + i`` is
            supervised by target instance ``tgt_idx`` on frame ``frame_idx = t``; only valid frames appear.

        Raises:
            DataError: the video has more target instances than the model has instance slots.
        """
        t = self.num_frames
        q = logits.shape[0]
        if q % t != 0:
            raise ValueError(f"{q} queries are not a multiple of num_frames={t}")
        n = q // t
        labels, valid = target["labels"], target["valid"].bool()
        g = labels.numel()
        if g > n:
            raise DataError(f"a clip has {g} target instances but the model has only {n} instance slots (num_instances)")
        if valid.shape != (g, t):
            raise DataError(f"target valid has shape {tuple(valid.shape)}, expected ({g}, {t})")
        empty = torch.empty(0, dtype=torch.long, device=logits.device)
        if g == 0:
            return empty, empty.clone(), empty.clone()
        cost = self.cost_matrix(logits, boxes, labels, target["boxes"], valid)
        out_i, tgt_i = hungarian_match(cost)
        pred_idx, tgt_idx, frame_idx = [], [], []
        for i, j in zip(out_i.tolist(), tgt_i.tolist()):
            frames = valid[j].nonzero().flatten()  # the fix: valid frames of the assigned target tgt_i[j]
            pred_idx.append(frames * n + i)
            tgt_idx.append(torch.full_like(frames, j))
            frame_idx.append(frames)
        return torch.cat(pred_idx), torch.cat(tgt_idx), torch.cat(frame_idx)

    def forward(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Match every video of the batch: ``outputs`` holds ``pred_logits (B, Q, K+1)``, ``pred_boxes (B, Q, 4)``."""
        return [
            self.match_video(outputs["pred_logits"][b], outputs["pred_boxes"][b], target)
            for b, target in enumerate(targets)
        ]
