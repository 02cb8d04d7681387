"""``SeqFormerModule``: training, whole-video evaluation (``val/ap`` by ``VideoAP``) and results-JSON prediction.

Recipe defaults (reference/vis.md §3.7): AdamW, lr 2e-4, weight decay 1e-4, backbone and
``sampling_offsets`` / ``reference_points`` at ×0.1, frozen BatchNorm; gradient clipping 0.1 and the lr
drops are set in the experiment YAML (``trainer.gradient_clip_val``, ``model.scheduler``).

Evaluation runs each video in one pass (batch 1, any length), keeps the top ``top_k`` (query, class) pairs
and scores masks at the **original video size**: predictions are cropped to the un-padded resized frame and
up-sampled bilinearly (as ``inference.py``); the DataModule gives ground truth at the network input size,
so it is cropped the same way and resized back with nearest neighbour (exact when frames are not resized,
as in ``experiments/seqformer/synthetic.yaml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidseg_common.data.formats.youtube_vis import write_youtube_vis_results
from vidseg_common.engine.module import VidSegModule
from vidseg_common.errors import ConfigError
from vidseg_common.metrics.vis import VideoAP
from vidseg_seqformer.criterion import SetCriterion
from vidseg_seqformer.inference import masks_to_original, resized_size, select_topk
from vidseg_seqformer.matcher import SequenceMatcher
from vidseg_seqformer.model import RESNET_FROZEN, SeqFormer

PAPER_OPTIMIZER: dict[str, Any] = {
    "name": "adamw", "lr": 2e-4, "weight_decay": 1e-4, "backbone_lr_mult": 0.1,
    "lr_mults": {"sampling_offsets": 0.1, "reference_points": 0.1},
}


class SeqFormerModule(VidSegModule):
    """SeqFormer as a LightningModule.

    Args:
        backbone: timm backbone name.
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        backbone_frozen: regular expressions of frozen backbone parameters (ResNet: stem + layer1).
        num_classes: class logits K; category id = logit index (YouTube-VIS 42).
        num_queries: Q (300).
        d_model: transformer width (256).
        d_ffn: FFN width (1024).
        dropout: transformer dropout (0.1).
        enc_layers: encoder layers (6).
        dec_layers: decoder layers (6).
        n_heads: attention heads (8).
        enc_points: encoder sampling points K (4).
        dec_points: decoder sampling points K (4).
        num_feature_levels: feature levels (4).
        aggregation: ``weighted`` (paper) / ``sum`` / ``average`` temporal aggregation (Table 5).
        cost_class: matcher class weight (2).
        cost_bbox: matcher L2 box weight (5).
        cost_giou: matcher GIoU weight (2).
        weight_ce: class loss weight (2).
        weight_bbox: L1 box loss weight (5).
        weight_giou: GIoU loss weight (2).
        weight_mask: focal mask loss weight (2).
        weight_dice: dice loss weight (5).
        top_k: (query, class) pairs kept per video at inference (10).
        mask_threshold: probability threshold of the masks (0.5).
        overlay_max_instances: best-scoring predictions drawn in the validation overlay images.
        decompose: query decomposition into per-frame box queries (``False``: the Table 3 ablation).
        backbone_indices: timm feature indices of the stride 8/16/32 maps (ResNet ``[2, 3, 4]``, Swin ``[1, 2, 3]``).
        backbone_timm_kwargs: extra ``timm.create_model`` options (Swin: ``{dynamic_img_size: true}``).
        results_json: where ``predict`` writes the YouTube-VIS results (default ``<root_dir>/results.json``).
        **kwargs: :class:`VidSegModule` options (optimizer, scheduler, bn_mode, bn_scope).
    """

    backbone_attr = "model"
    """BatchNorm policy target: SeqFormer's only BatchNorms are in its backbone (the rest uses GN/LN)."""

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool | str = False,
        backbone_frozen: list[str] | None = None,
        num_classes: int = 42,
        num_queries: int = 300,
        d_model: int = 256,
        d_ffn: int = 1024,
        dropout: float = 0.1,
        enc_layers: int = 6,
        dec_layers: int = 6,
        n_heads: int = 8,
        enc_points: int = 4,
        dec_points: int = 4,
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
        mask_threshold: float = 0.5,
        overlay_max_instances: int = 5,
        decompose: bool = True,
        backbone_indices: list[int] | None = None,
        backbone_timm_kwargs: dict[str, Any] | None = None,
        results_json: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("optimizer", dict(PAPER_OPTIMIZER))
        kwargs.setdefault("bn_mode", "frozen")
        super().__init__(**kwargs)
        if num_classes < 2 or num_queries < 1 or top_k < 1 or dec_layers < 1:
            raise ConfigError(
                f"model: need num_classes ≥ 2, num_queries ≥ 1, top_k ≥ 1, dec_layers ≥ 1 "
                f"(got {num_classes}, {num_queries}, {top_k}, {dec_layers})"
            )
        if d_model % 32 != 0:
            raise ConfigError(f"model.d_model={d_model} must be a multiple of 32 (GroupNorm(32, d_model))")
        try:
            self.model = SeqFormer(
                backbone, pretrained, tuple(RESNET_FROZEN if backbone_frozen is None else backbone_frozen),
                num_classes, num_queries, d_model, d_ffn, dropout, enc_layers, dec_layers, n_heads, enc_points,
                dec_points, num_feature_levels, aggregation,
                backbone_indices=tuple(backbone_indices) if backbone_indices is not None else (2, 3, 4),
                decompose=decompose,
                backbone_timm_kwargs=backbone_timm_kwargs,
            )
        except ValueError as err:
            raise ConfigError(f"model: {err}") from err
        matcher = SequenceMatcher(cost_class, cost_bbox, cost_giou)
        self.criterion = SetCriterion(matcher, num_classes, weight_ce, weight_bbox, weight_giou, weight_mask, weight_dice)
        self.top_k, self.mask_threshold, self.results_json = top_k, mask_threshold, results_json
        self.overlay_max_instances = overlay_max_instances
        # an output path is not a property of the trained model: keep it out of the checkpoint, otherwise
        # LightningCLI's ``--ckpt_path`` would restore the training run's value over ``--model.results_json``
        self.hparams.pop("results_json", None)
        self.val_ap = VideoAP()
        self._predictions: list[dict[str, Any]] = []

    def forward(self, frames: Tensor) -> dict[str, object]:
        """``frames (B, T, 3, H, W)`` → the network's output dict (see :class:`SeqFormer`)."""
        return self.model(frames)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        outputs = self.model(batch["frames"])
        losses = self.criterion(outputs, batch["targets"],
                                lambda layer, b, q: self.model.predict_masks(outputs, layer, b, q))
        size = batch["frames"].shape[0]
        self.log("train/loss", losses["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        for name in ("loss_ce", "loss_bbox", "loss_giou", "loss_mask", "loss_dice"):
            self.log(f"train/{name}", losses[name], on_step=False, on_epoch=True, batch_size=size)
        return losses["loss"]

    # ------------------------------------------------------------------ inference
    def _content_size(self, original: tuple[int, int], input_size: tuple[int, int]) -> tuple[int, int]:
        augment = getattr(getattr(self._trainer, "datamodule", None), "eval_augment", None) if self._trainer else None
        if augment is None:
            return min(original[0], input_size[0]), min(original[1], input_size[1])
        return resized_size(original, augment.get("short_side"), augment.get("max_size"))

    @torch.no_grad()
    def infer_video(self, frames: Tensor, original_size: tuple[int, int]) -> dict[str, Tensor]:
        """One video ``frames (1, T, 3, H, W)`` → ``masks (k, T, H0, W0) bool``, ``scores (k,)``, ``labels (k,)``."""
        if frames.shape[0] != 1:
            raise ConfigError(f"SeqFormer inference takes one whole video per batch, got batch size {frames.shape[0]}")
        outputs = self.model(frames)
        scores, query_idx, labels = select_topk(outputs["pred_logits"][-1][0], self.top_k)  # type: ignore[index]
        logits = self.model.predict_masks(outputs, -1, torch.zeros_like(query_idx), query_idx)
        input_size = tuple(frames.shape[-2:])
        masks = masks_to_original(logits, input_size, self._content_size(original_size, input_size), original_size,
                                  self.mask_threshold)
        keep = masks.flatten(1).any(1)
        return {"masks": masks[keep], "scores": scores[keep], "labels": labels[keep]}

    def _ground_truth(self, target: dict[str, Tensor], input_size: tuple[int, int], original: tuple[int, int]) -> dict[str, Tensor]:
        content = self._content_size(original, input_size)
        masks = target["masks"][..., : content[0], : content[1]]
        if tuple(content) != tuple(original) and masks.shape[0]:
            masks = F.interpolate(masks.float(), size=original, mode="nearest") > 0.5
        return {"masks": masks.bool(), "labels": target["labels"], "valid": masks.flatten(2).any(2)}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        meta = batch["meta"][0]
        original = (int(meta["size"][0]), int(meta["size"][1]))
        preds = self.infer_video(batch["frames"], original)
        target = self._ground_truth(batch["targets"][0], tuple(batch["frames"].shape[-2:]), original)
        self.val_ap.update(preds, target, video_id=int(meta["video_id"]))
        return preds

    def render_overlay(self, batch: dict[str, Any], outputs: dict[str, Tensor]) -> np.ndarray:
        """First frame of the video (its resized content, without padding) with the ``overlay_max_instances``
        best-scoring predictions: ``(H, W, 3) uint8``."""
        from vidseg_common.viz import vis_prediction_overlay

        meta = batch["meta"][0]
        frames = batch["frames"]
        h, w = self._content_size((int(meta["size"][0]), int(meta["size"][1])), tuple(frames.shape[-2:]))
        return vis_prediction_overlay(frames[0, 0, :, :h, :w], outputs["masks"][:, 0], outputs["scores"],
                                      outputs["labels"], self.overlay_max_instances)

    def on_validation_epoch_end(self) -> None:
        stats = self.val_ap.compute()
        for name in ("AP", "AP50", "AP75", "AR1", "AR10"):
            self.log(f"val/{name.lower()}", stats[name].float(), sync_dist=False)
        self.val_ap.reset()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        return self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self.on_validation_epoch_end()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        meta = batch["meta"][0]
        preds = self.infer_video(batch["frames"], (int(meta["size"][0]), int(meta["size"][1])))
        items = []
        for masks, score, label in zip(preds["masks"].cpu().numpy(), preds["scores"].tolist(), preds["labels"].tolist()):
            frames: list[np.ndarray | None] = [None] * len(masks) if score < 1e-3 else list(masks)
            items.append({"video_id": int(meta["video_id"]), "category_id": int(label), "score": score, "masks": frames})
        self._predictions.extend(items)
        return items

    def on_predict_epoch_end(self) -> None:
        root = Path(self.trainer.default_root_dir) if self._trainer is not None else Path.cwd()
        path = Path(self.results_json) if self.results_json else root / "results.json"
        if self.trainer.world_size > 1:
            path = path.with_name(f"{path.stem}.rank{self.global_rank}{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_youtube_vis_results(path, self._predictions)
        self._predictions = []
