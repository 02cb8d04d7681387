"""``DefVisTRModule``: Deformable VisTR / VisTR training on :class:`~vidseg_common.tasks.vis.VISModule` (evaluation).

Recipe (docs/reference/vis.md §2.5, §2.7): AdamW, lr 1e-4, backbone 1e-5 (``backbone_lr_mult 0.1``), wd 1e-4,
``sampling_offsets`` and ``reference_points`` at lr × 0.1 (the paper's rule), gradient clipping 0.1 (the trainer's
``gradient_clip_val``), frozen BN and frozen stem + res2 (DETR backbone); the step schedule (50 epochs, ×0.1 at 40)
is in the experiment YAMLs (defaults when ``model.optimizer`` is not given). Inference: :mod:`.inference`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vidseg_common.errors import ConfigError
from vidseg_common.tasks.instances import VideoInstances
from vidseg_common.tasks.vis import VISModule
from vidseg_defvistr.criterion import SetCriterion
from vidseg_defvistr.inference import infer_video, postprocess
from vidseg_defvistr.matcher import InstanceSequenceMatcher
from vidseg_defvistr.model import DeformableVisTR
from vidseg_defvistr.weights import RULES

DEFAULT_OPTIMIZER: dict[str, Any] = {
    "name": "adamw", "lr": 1e-4, "weight_decay": 1e-4, "backbone_lr_mult": 0.1,
    "lr_mults": {"sampling_offsets": 0.1, "reference_points": 0.1},
}


class DefVisTRModule(VISModule):
    """Deformable VisTR (``attention: deformable``) or VisTR (``attention: dense``).

    The BN policy (``bn_scope: backbone``) is applied to ``self.model``, whose only BatchNorms are the
    backbone's (the heads use GroupNorm/LayerNorm); the backbone lr group matches ``model.backbone.*``.

    Args:
        num_classes: class logits before no-object (dataset ids must be < num_classes; YTVIS-19: 41).
        num_frames: clip length T (paper 36); num_instances: instance slots per frame N (paper 10).
        backbone: timm backbone name; pretrained: backbone weights (``False``, ``True`` or a local file).
        frozen_backbone: backbone parameter patterns to freeze (DETR: stem and res2).
        hidden_dim: C (384); num_heads: M (8); num_encoder_layers, num_decoder_layers: 6, 6.
        ffn_dim: 2048; dropout: 0.1; attention: ``deformable`` or ``dense``; num_points: K (32).
        dilation: DC5 backbone (res5 dilated: transformer features at stride 16), DETR/VisTR's ``--dilation``.
        eos_coef: no-object CE weight (0.1); cost_class, cost_bbox, cost_iou: matcher weights (1, 5, 2).
        weight_ce, weight_bbox, weight_giou, weight_mask, weight_dice: loss weights (1, 5, 2, 1, 1).
        **kwargs: :class:`~vidseg_common.tasks.vis.VISModule` options (mask_threshold, optimizer, bn_mode, …).
    """

    backbone_attr = "model"
    weight_rules = RULES  # released VisTR checkpoints (vistr_r50/r101.pth) → attention: dense; see weights.py

    def __init__(
        self,
        num_classes: int = 41,
        num_frames: int = 36,
        num_instances: int = 10,
        backbone: str = "resnet50",
        pretrained: bool | str = False,
        frozen_backbone: list[str] | None = None,
        hidden_dim: int = 384,
        num_heads: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
        attention: str = "deformable",
        num_points: int = 32,
        dilation: bool = False,
        eos_coef: float = 0.1,
        cost_class: float = 1.0,
        cost_bbox: float = 5.0,
        cost_iou: float = 2.0,
        weight_ce: float = 1.0,
        weight_bbox: float = 5.0,
        weight_giou: float = 2.0,
        weight_mask: float = 1.0,
        weight_dice: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("optimizer") is None:
            kwargs["optimizer"] = dict(DEFAULT_OPTIMIZER)
        super().__init__(**kwargs)
        if attention not in ("dense", "deformable"):
            raise ConfigError(f"model.attention must be 'dense' or 'deformable', got {attention!r}")
        if hidden_dim % 6 or hidden_dim % num_heads:
            raise ConfigError(f"model.hidden_dim={hidden_dim} must be divisible by 6 and by num_heads={num_heads}")
        if min(num_classes, num_frames, num_instances) < 1:
            raise ConfigError("model.num_classes, num_frames and num_instances must be ≥ 1")
        frozen = ["^conv1", "^bn1", "^layer1"] if frozen_backbone is None else frozen_backbone
        self.model = DeformableVisTR(
            num_classes, num_frames, num_instances, backbone, pretrained, frozen, hidden_dim, num_heads,
            num_encoder_layers, num_decoder_layers, ffn_dim, dropout, attention, num_points,  # type: ignore[arg-type]
            dilation=dilation,
        )
        matcher = InstanceSequenceMatcher(num_frames, cost_class, cost_bbox, cost_iou)
        self.criterion = SetCriterion(num_classes, matcher, eos_coef, weight_ce, weight_bbox, weight_giou,
                                      weight_mask, weight_dice)

    def forward(self, frames: Tensor) -> dict[str, Any]:
        """``frames (B, T, 3, H, W)`` → model outputs (see :class:`DeformableVisTR`)."""
        return self.model(frames)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        losses = self.criterion(self.model(batch["frames"]), batch["targets"])
        return self.log_losses(losses, batch["frames"].shape[0])

    def infer(self, batch: dict[str, Any]) -> VideoInstances:
        """Clips of the trained length, stitched (:func:`~vidseg_defvistr.inference.infer_video`), then VisTR's
        per-slot post-processing at the original video size."""
        input_size, resized, original = self.sizes(batch)
        probs, mask_logits = infer_video(self.model, batch["frames"][0], self.model.num_frames, self.model.num_instances)
        return postprocess(probs, mask_logits, input_size, self.mask_threshold, resized_size=resized,
                           original_size=original)

    def example_inputs(self, batch_size: int, num_frames: int, height: int, width: int) -> tuple[Any, ...]:
        """Benchmark inputs ``(B, T, 3, H, W)``; T must be the model's clip length (its queries are laid out for it).

        Raises:
            ConfigError: ``num_frames`` differs from ``model.num_frames`` (fps would be computed for the wrong T),
                or H, W are not multiples of 32.
        """
        if num_frames != self.model.num_frames:
            raise ConfigError(
                f"benchmark --num_frames {num_frames}: this model runs clips of model.num_frames="
                f"{self.model.num_frames} frames; pass --num_frames {self.model.num_frames}"
            )
        if height % 32 or width % 32:
            raise ConfigError(f"benchmark --height/--width must be multiples of 32 (stride of f32), got {height}×{width}")
        return (torch.rand(batch_size, num_frames, 3, height, width, device=self.device),)
