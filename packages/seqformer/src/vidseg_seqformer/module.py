"""``SeqFormerModule``: SeqFormer training on :class:`~vidseg_common.tasks.vis.VISModule` (which owns evaluation).

Recipe defaults (docs/reference/vis.md §3.7): AdamW, lr 2e-4, weight decay 1e-4, backbone and ``sampling_offsets`` /
``reference_points`` at ×0.1, frozen BatchNorm; gradient clipping and the lr drops are in the experiment YAML.
Inference runs each video in one pass (batch 1, any length) and keeps the top ``top_k`` (query, class) pairs
(:mod:`.inference`).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from vidseg_common.errors import ConfigError
from vidseg_common.tasks.instances import VideoInstances
from vidseg_common.tasks.resize import masks_to_original
from vidseg_common.tasks.vis import VISModule
from vidseg_seqformer.criterion import SetCriterion
from vidseg_seqformer.inference import NULL_SCORE, select_topk
from vidseg_seqformer.matcher import SequenceMatcher
from vidseg_seqformer.model import RESNET_FROZEN, SeqFormer
from vidseg_seqformer.weights import RULES

PAPER_OPTIMIZER: dict[str, Any] = {
    "name": "adamw", "lr": 2e-4, "weight_decay": 1e-4, "backbone_lr_mult": 0.1,
    "lr_mults": {"sampling_offsets": 0.1, "reference_points": 0.1},
}


class SeqFormerModule(VISModule):
    """SeqFormer as a LightningModule.

    Args:
        backbone: timm backbone name; pretrained: ``False``, ``True`` (timm download) or a local weights file.
        frozen_backbone: regular expressions of frozen backbone parameters (ResNet: stem + layer1).
        num_classes: class logits K; category id = logit index (YouTube-VIS 42).
        num_queries: Q (300); hidden_dim: width d_model (256); ffn_dim: FFN width d_ffn (1024); dropout: 0.1.
        num_encoder_layers, num_decoder_layers: 6, 6; num_heads: 8; encoder_points, decoder_points: K (4, 4).
        num_feature_levels: feature levels (4).
        aggregation: ``weighted`` (paper) / ``sum`` / ``average`` temporal aggregation (Table 5).
        cost_class, cost_bbox, cost_giou: matcher weights (2, 5, 2).
        weight_ce, weight_bbox, weight_giou, weight_mask, weight_dice: loss weights (2, 5, 2, 2, 5).
        top_k: (query, class) pairs kept per video at inference (10).
        decompose: query decomposition into per-frame box queries (``False``: the Table 3 ablation).
        backbone_out_indices: timm feature indices of the stride 8/16/32 maps (ResNet ``[2, 3, 4]``, Swin ``[1, 2, 3]``).
        backbone_timm_kwargs: extra ``timm.create_model`` options (Swin: ``{dynamic_img_size: true}``).
        **kwargs: :class:`~vidseg_common.tasks.vis.VISModule` options (mask_threshold, optimizer, bn_mode, …).
    """

    weight_rules = RULES  # released SeqFormer / Deformable DETR checkpoints (vidseg_seqformer.weights)
    backbone_attr = "model"
    """BatchNorm policy target: SeqFormer's only BatchNorms are in its backbone (the rest uses GN/LN)."""

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool | str = False,
        frozen_backbone: list[str] | None = None,
        num_classes: int = 42,
        num_queries: int = 300,
        hidden_dim: int = 256,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        num_heads: int = 8,
        encoder_points: int = 4,
        decoder_points: int = 4,
        num_feature_levels: int = 4,
        aggregation: Literal["weighted", "sum", "average"] = "weighted",
        cost_class: float = 2.0,
        cost_bbox: float = 5.0,
        cost_giou: float = 2.0,
        weight_ce: float = 2.0,
        weight_bbox: float = 5.0,
        weight_giou: float = 2.0,
        weight_mask: float = 2.0,
        weight_dice: float = 5.0,
        top_k: int = 10,
        decompose: bool = True,
        backbone_out_indices: list[int] | None = None,
        backbone_timm_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("optimizer", dict(PAPER_OPTIMIZER))
        kwargs.setdefault("bn_mode", "frozen")
        super().__init__(**kwargs)
        if num_classes < 2 or num_queries < 1 or top_k < 1 or num_decoder_layers < 1:
            raise ConfigError(f"model: need num_classes ≥ 2, num_queries ≥ 1, top_k ≥ 1, num_decoder_layers ≥ 1 "
                              f"(got {num_classes}, {num_queries}, {top_k}, {num_decoder_layers})")
        if hidden_dim % 32 != 0:
            raise ConfigError(f"model.hidden_dim={hidden_dim} must be a multiple of 32 (GroupNorm(32, hidden_dim))")
        try:
            self.model = SeqFormer(
                backbone, pretrained, tuple(RESNET_FROZEN if frozen_backbone is None else frozen_backbone),
                num_classes, num_queries, hidden_dim, ffn_dim, dropout, num_encoder_layers, num_decoder_layers, num_heads,
                encoder_points, decoder_points, num_feature_levels, aggregation,
                backbone_indices=tuple(backbone_out_indices) if backbone_out_indices is not None else (2, 3, 4),
                decompose=decompose, backbone_timm_kwargs=backbone_timm_kwargs,
            )
        except ValueError as err:
            raise ConfigError(f"model: {err}") from err
        matcher = SequenceMatcher(cost_class, cost_bbox, cost_giou)
        self.criterion = SetCriterion(matcher, num_classes, weight_ce, weight_bbox, weight_giou, weight_mask, weight_dice)
        self.top_k = top_k

    def forward(self, frames: Tensor) -> dict[str, object]:
        """``frames (B, T, 3, H, W)`` → the network's output dict (see :class:`SeqFormer`)."""
        return self.model(frames)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        outputs = self.model(batch["frames"])
        losses = self.criterion(outputs, batch["targets"],
                                lambda layer, b, q: self.model.predict_masks(outputs, layer, b, q))
        return self.log_losses(losses, batch["frames"].shape[0])

    def infer(self, batch: dict[str, Any]) -> VideoInstances:
        """Top-``k`` (query, class) pairs of the last decoder layer; their masks at the original size, non-empty only."""
        input_size, resized, original = self.sizes(batch)
        outputs = self.model(batch["frames"])
        scores, query_idx, labels = select_topk(outputs["pred_logits"][-1][0], self.top_k)  # type: ignore[index]
        logits = self.model.predict_masks(outputs, -1, torch.zeros_like(query_idx), query_idx)
        masks = masks_to_original(logits, input_size, resized, original, self.mask_threshold)
        keep = masks.flatten(1).any(1)
        valid = (scores[keep] >= NULL_SCORE)[:, None].expand(-1, masks.shape[1])
        return VideoInstances(masks=masks[keep], labels=labels[keep], scores=scores[keep], valid=valid)
