"""``DefVisTRModule``: Lightning wrapper of Deformable VisTR / VisTR (training, whole-video AP, results JSON).

Recipe (vis.md §2.5, §2.7): AdamW, lr 1e-4, backbone 1e-5 (``backbone_lr_mult 0.1``), weight decay 1e-4,
``sampling_offsets`` and ``reference_points`` at lr × 0.1 (the paper's rule), gradient clipping 0.1 (the
trainer's ``gradient_clip_val``), frozen BN and frozen stem + res2 (DETR backbone); the step schedule
(50 epochs, ×0.1 at 40) is in the experiment YAMLs. These are the defaults when ``model.optimizer`` is
not given.

Validation scores whole videos with :class:`~vidseg_common.metrics.vis.VideoAP` after
:func:`~vidseg_defvistr.inference.infer_video` (clips of the trained length, documented stitching), at
the evaluation resolution of the DataModule. ``predict`` writes a YouTube-VIS results JSON with masks at the
original video size to ``results_path`` (default ``<trainer.default_root_dir>/results.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidseg_common.data.formats.youtube_vis import write_youtube_vis_results
from vidseg_common.engine.module import VidSegModule
from vidseg_common.errors import ConfigError
from vidseg_common.metrics.vis import VideoAP
from vidseg_defvistr.criterion import SetCriterion
from vidseg_defvistr.inference import infer_video, postprocess
from vidseg_defvistr.matcher import InstanceSequenceMatcher
from vidseg_defvistr.model import DeformableVisTR

DEFAULT_OPTIMIZER: dict[str, Any] = {
    "name": "adamw", "lr": 1e-4, "weight_decay": 1e-4, "backbone_lr_mult": 0.1,
    "lr_mults": {"sampling_offsets": 0.1, "reference_points": 0.1},
}
LOGGED_STATS = {"AP": "val/ap", "AP50": "val/ap50", "AP75": "val/ap75", "AR1": "val/ar1", "AR10": "val/ar10"}


def content_size(size: tuple[int, int], short_side: int | None, max_size: int | None) -> tuple[int, int]:
    """``(h, w)`` of a frame of original ``size`` after ``ClipAugment``'s evaluation resize (before padding)."""
    h, w = size
    scale = 1.0 if short_side is None else short_side / min(h, w)
    if max_size is not None and max(h, w) * scale > max_size:
        scale = max_size / max(h, w)
    return max(round(h * scale), 1), max(round(w * scale), 1)


class DefVisTRModule(VidSegModule):
    """Deformable VisTR (``attention: deformable``) or VisTR (``attention: dense``).

    The BN policy (``bn_scope: backbone``) is applied to ``self.model``, whose only BatchNorms are the
    backbone's (the heads use GroupNorm/LayerNorm); the backbone lr group matches ``model.backbone.*``.

    Args:
        num_classes: class logits before no-object (dataset ids must be < num_classes; YTVIS-19: 41).
        num_frames: clip length T (paper 36).
        num_instances: instance slots per frame N (paper 10).
        backbone: timm backbone name.
        pretrained: backbone weights (``False``, ``True`` or a local file).
        frozen_backbone: backbone parameter patterns to freeze (DETR: stem and res2).
        hidden_dim: C (384).
        n_heads: M (8).
        num_encoder_layers: 6.
        num_decoder_layers: 6.
        dim_feedforward: 2048.
        dropout: 0.1.
        attention: ``deformable`` or ``dense``.
        n_points: K (32).
        dilation: DC5 backbone (res5 dilated: transformer features at stride 16), DETR/VisTR's ``--dilation``.
        eos_coef: no-object CE weight (0.1).
        cost_class: matcher class weight (1).
        cost_bbox: matcher L1 weight (5).
        cost_iou: matcher IoU weight (2).
        weight_ce: 1.
        weight_bbox: 5.
        weight_giou: 2.
        weight_mask: 1.
        weight_dice: 1.
        mask_threshold: inference mask threshold (0.5).
        results_path: predict output JSON (default ``<default_root_dir>/results.json``).
    """

    backbone_attr = "model"

    def __init__(
        self,
        num_classes: int = 41,
        num_frames: int = 36,
        num_instances: int = 10,
        backbone: str = "resnet50",
        pretrained: bool | str = False,
        frozen_backbone: list[str] | None = None,
        hidden_dim: int = 384,
        n_heads: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        attention: str = "deformable",
        n_points: int = 32,
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
        mask_threshold: float = 0.5,
        overlay_max_instances: int = 5,
        results_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("optimizer") is None:
            kwargs["optimizer"] = dict(DEFAULT_OPTIMIZER)
        super().__init__(**kwargs)
        if attention not in ("dense", "deformable"):
            raise ConfigError(f"model.attention must be 'dense' or 'deformable', got {attention!r}")
        if hidden_dim % 6 or hidden_dim % n_heads:
            raise ConfigError(f"model.hidden_dim={hidden_dim} must be divisible by 6 and by n_heads={n_heads}")
        if min(num_classes, num_frames, num_instances) < 1:
            raise ConfigError("model.num_classes, num_frames and num_instances must be ≥ 1")
        frozen = ["^conv1", "^bn1", "^layer1"] if frozen_backbone is None else frozen_backbone
        self.model = DeformableVisTR(
            num_classes, num_frames, num_instances, backbone, pretrained, frozen, hidden_dim, n_heads,
            num_encoder_layers, num_decoder_layers, dim_feedforward, dropout, attention, n_points,  # type: ignore[arg-type]
            dilation=dilation,
        )
        matcher = InstanceSequenceMatcher(num_frames, cost_class, cost_bbox, cost_iou)
        self.criterion = SetCriterion(num_classes, matcher, eos_coef, weight_ce, weight_bbox, weight_giou,
                                      weight_mask, weight_dice)
        self.mask_threshold, self.results_path = mask_threshold, results_path
        self.overlay_max_instances = overlay_max_instances
        # An output location, not a model property: kept out of checkpoints so that ``predict --ckpt_path``
        # takes the value given on the command line instead of the one saved at training time.
        self.hparams.pop("results_path", None)
        self.val_ap = VideoAP()
        self._predictions: list[dict[str, Any]] = []

    def forward(self, frames: Tensor) -> dict[str, Any]:
        """``frames (B, T, 3, H, W)`` → model outputs (see :class:`DeformableVisTR`)."""
        return self.model(frames)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        outputs = self.model(batch["frames"])
        losses = self.criterion(outputs, batch["targets"])
        bs = batch["frames"].shape[0]
        self.log("train/loss", losses["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=bs)
        for key in ("loss_ce", "loss_bbox", "loss_giou", "loss_mask", "loss_dice"):
            if key in losses:
                self.log(f"train/{key}", losses[key], on_step=True, on_epoch=False, batch_size=bs)
        return losses["loss"]

    def _infer(self, frames: Tensor) -> dict[str, Tensor]:
        """One video ``(1, L, 3, H, W)`` → per-slot ``masks (R, L, H, W)``, ``scores``, ``labels`` at input size."""
        if frames.shape[0] != 1:
            raise ConfigError("evaluation runs on whole videos with batch size 1")
        probs, mask_logits = infer_video(self.model, frames[0], self.model.num_frames, self.model.num_instances)
        return postprocess(probs, mask_logits, tuple(frames.shape[-2:]), self.mask_threshold)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        preds = self._infer(batch["frames"])
        target = batch["targets"][0]
        self.val_ap.update(preds, target, video_id=int(batch["meta"][0]["video_id"]))
        return preds

    def render_overlay(self, batch: dict[str, Any], outputs: dict[str, Tensor]) -> np.ndarray | None:
        """First frame of the video with the ``overlay_max_instances`` best-scoring predicted sequences:
        ``(H, W, 3) uint8``, one colour per slot, "slot class score" captions."""
        from vidseg_common.viz import vis_prediction_overlay

        return vis_prediction_overlay(batch["frames"][0, 0], outputs["masks"][:, 0], outputs["scores"],
                                      outputs["labels"], self.overlay_max_instances)

    def on_validation_epoch_end(self) -> None:
        stats = self.val_ap.compute()
        for name, key in LOGGED_STATS.items():
            self.log(key, stats[name].float(), sync_dist=False)
        self.val_ap.reset()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        preds = self._infer(batch["frames"])
        meta = batch["meta"][0]
        orig = tuple(int(s) for s in meta["size"])
        augment = getattr(getattr(self.trainer, "datamodule", None), "eval_augment", {}) or {}
        h, w = content_size(orig, augment.get("short_side"), augment.get("max_size"))
        masks = preds["masks"][:, :, :h, :w].float()
        if masks.numel():
            masks = F.interpolate(masks, size=orig, mode="nearest")
        results = []
        for i in range(masks.shape[0]):
            frames = masks[i].bool().cpu().numpy()
            results.append({
                "video_id": int(meta["video_id"]), "category_id": int(preds["labels"][i]),
                "score": float(preds["scores"][i]),
                "masks": [m if m.any() else None for m in frames.astype(np.bool_)],
            })
        self._predictions.extend(results)
        return results

    def on_predict_epoch_end(self) -> None:
        path = Path(self.results_path) if self.results_path else Path(self.trainer.default_root_dir) / "results.json"
        write_youtube_vis_results(path, self._predictions)
        self._predictions = []

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
