"""``SSTVOSModule``: training and whole-video evaluation of SSTVOS with the vidseg engine.

Batches come from ``VOSDataModule`` with ``protocol: cfbi``: training clips ``frames (B, 2 + K, 3, H, W)`` =
reference, previous and ``K`` current frames with ``masks (B, 2 + K, H, W)``; evaluation batches are whole
videos (batch 1). Recipe (``reference/vos.md`` §1.9, released config defaults; the paper gives none):

- loss: CFBI's cross-entropy over ``{bg, objects}`` at full resolution with hard-pixel mining, the mean of the
  top ``k = (r·0.15 + (1 − r))·HW`` pixel losses per sample, ``r = min(1, step / hard_mining_steps)``
  (``BootstrappedCE`` with ``start_warm = 0``, ``end_warm = hard_mining_steps``; default half the run),
  averaged over the current frames;
- sequential training: from ``sequential_start`` (fraction of the run, config ``START_SEQ_TRAINING_STEPS =
  TOTAL/2``) the previous-frame labels of current frames are the model's own predictions [inferred];
- SGD momentum 0.9, lr 0.01, weight decay 1.5e-4, poly 0.9 with 1000 warm-up steps, gradient clipping 5
  (YAML), ``bn_mode: frozen`` on the backbone (``FREEZE_BN = True``);
- validation / test: frame-by-frame inference over whole videos (τ-frame buffer, first-frame ground truth,
  late objects inserted at their first annotation) scored with ``JandF`` (``val/jf``, ``val/j``, ``val/f``)
  or, with ``eval_metric: youtube_vos``, ``YouTubeVOSScore`` (``val/g``);
- predict: DAVIS-layout palette PNGs ``<predict_dir>/<video>/<frame>.png`` (written atomically).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from vidseg_common.data.formats.davis import write_vos_masks
from vidseg_common.data.formats.png import VOID_ID
from vidseg_common.engine.module import VidSegModule
from vidseg_common.errors import ConfigError, DataError
from vidseg_common.metrics.jandf import JandF
from vidseg_common.metrics.ytvos import YouTubeVOSScore
from vidseg_common.models.backbone import TimmBackbone
from vidseg_common.models.losses import BootstrappedCE
from vidseg_sstvos.decoder import CollaborativeEnsembler
from vidseg_sstvos.encoder import AttentionPattern, SSTEncoder
from vidseg_sstvos.model import FrameEmbedding, SSTVOSNet
from vidseg_sstvos.norm import NormKind


class SSTVOSModule(VidSegModule):
    """SSTVOS (Local / Strided / LocalStrided / Grid attention, Table 6).

    Args:
        backbone: timm name (paper: ``resnet101``).
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        backbone_output_stride: 32, 16 (DeepLabV3+ as in CFBI) or 8.
        backbone_out_indices: timm feature indices (must include the stride-4 map).
        embed_features: backbone keys fused into the frame embedding.
        attention_stride: stride of the embedding the attention runs on ([unknown] in the paper; default 8).
        embed_dim: ``C`` (Table 1: 128).
        num_layers: ``L`` encoder layers.
        num_heads: attention heads (config: 8).
        attention: ``grid``, ``local``, ``strided`` or ``local_strided``.
        kernel_size: local window (``None``: odd ``⌊√w⌋``).
        attention_step: strided step (``None``: ``round(√w)``).
        causal_attention: mask attention to later buffer frames (the affinity is always causal).
        ffn_dim: FFN hidden width (128 gives Table 1's 0.3 M encoder parameters at C = 128, L = 3).
        norm: ``frn`` (FRN + TLU, released config) or ``layernorm``.
        positional_encoding: ``none`` or ``sinusoidal`` (Table 4).
        pe_temperature: sinusoid frequency base.
        history: ``τ`` (Table 5).
        use_reference: prepend the reference frame(s) to the buffer.
        pre_dim, stage_channels, stage_depths, stage_strides, aspp_channels, aspp_dilations, decoder_channels:
            collaborative-ensembler widths (see :class:`~vidseg_sstvos.decoder.CollaborativeEnsembler`).
        hard_mining_top_p: final fraction of hardest pixels (CFBI: 0.15).
        hard_mining_steps: steps until that fraction is reached (``None``: half the run).
        sequential_start: fraction of the run after which previous labels are the model's predictions
            (``1.0``: never).
        eval_metric: ``davis`` (J&F) or ``youtube_vos`` (G proxy).
        predict_dir: where ``predict`` writes PNGs (default ``<default_root_dir>/predictions``).
        **kwargs: optimizer / scheduler / bn_mode / bn_scope of :class:`VidSegModule`.
    """

    def __init__(
        self,
        backbone: str = "resnet101",
        pretrained: bool | str = False,
        backbone_output_stride: int = 16,
        backbone_out_indices: Sequence[int] = (1, 2, 3, 4),
        embed_features: Sequence[str] = ("f8", "f16", "f16_res5"),
        attention_stride: int = 8,
        embed_dim: int = 128,
        num_layers: int = 2,
        num_heads: int = 8,
        attention: AttentionPattern = "local",
        kernel_size: int | None = None,
        attention_step: int | None = None,
        causal_attention: bool = False,
        ffn_dim: int = 128,
        norm: NormKind = "frn",
        positional_encoding: Literal["none", "sinusoidal"] = "sinusoidal",
        pe_temperature: float = 10000.0,
        history: int = 3,
        use_reference: bool = True,
        pre_dim: int = 64,
        stage_channels: Sequence[int] = (256, 512, 512),
        stage_depths: Sequence[int] = (2, 3, 3),
        stage_strides: Sequence[int] = (1, 2, 2),
        aspp_channels: int = 256,
        aspp_dilations: Sequence[int] = (6, 12, 18),
        decoder_channels: int = 128,
        hard_mining_top_p: float = 0.15,
        hard_mining_steps: int | None = None,
        sequential_start: float = 0.5,
        eval_metric: Literal["davis", "youtube_vos"] = "davis",
        predict_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 < hard_mining_top_p <= 1.0:
            raise ConfigError(f"model.hard_mining_top_p must lie in (0, 1], got {hard_mining_top_p}")
        if not 0.0 <= sequential_start <= 1.0:
            raise ConfigError(f"model.sequential_start must lie in [0, 1], got {sequential_start}")
        if eval_metric not in ("davis", "youtube_vos"):
            raise ConfigError(f"model.eval_metric must be 'davis' or 'youtube_vos', got {eval_metric!r}")
        self.backbone = TimmBackbone(backbone, tuple(backbone_out_indices), pretrained, backbone_output_stride)
        self.embedding = FrameEmbedding(self.backbone, embed_dim, tuple(embed_features), attention_stride)
        self.encoder = SSTEncoder(embed_dim, num_layers, num_heads, attention, kernel_size, attention_step, causal_attention,
                                  ffn_dim, norm, positional_encoding, pe_temperature)
        self.decoder = CollaborativeEnsembler(embed_dim, self.encoder.affinity_channels, self.embedding.low_level_channels,
                                              pre_dim, tuple(stage_channels), tuple(stage_depths), tuple(stage_strides),
                                              aspp_channels, tuple(aspp_dilations), decoder_channels)
        if history < 1:
            raise ConfigError(f"model.history (τ) must be >= 1, got {history}")
        self.history, self.use_reference = history, use_reference
        self.hard_mining_top_p, self.hard_mining_steps = hard_mining_top_p, hard_mining_steps
        self.sequential_start, self.eval_metric, self.predict_dir = sequential_start, eval_metric, predict_dir
        self.val_score = JandF() if eval_metric == "davis" else YouTubeVOSScore()

    @property
    def net(self) -> SSTVOSNet:
        """The pure ``nn.Module`` network (shares this module's parameters)."""
        return SSTVOSNet(self.backbone, self.embedding, self.encoder, self.decoder, self.history, self.use_reference)

    def forward(self, frames: torch.Tensor, masks: torch.Tensor, num_objects: int | None = None) -> torch.Tensor:
        """Whole-video inference: ``frames (B, T, 3, H, W)``, ``masks (B, T, H, W)`` (frame 0 read) → ids ``(B, T, H, W)``."""
        return self.net.infer_video(frames, masks, num_objects=num_objects)

    # ------------------------------------------------------------------ training
    def _total_steps(self) -> int:
        trainer = self._trainer
        return max(1, int(trainer.estimated_stepping_batches)) if trainer is not None else 1

    def loss(self, logits: Sequence[torch.Tensor], masks: torch.Tensor, step: int) -> torch.Tensor:
        """Hard-pixel-mined CE averaged over the current frames (``logits[i]`` ↔ ``masks[:, 2 + i]``)."""
        mining = self.hard_mining_steps if self.hard_mining_steps is not None else max(1, self._total_steps() // 2)
        criterion = BootstrappedCE(start_warm=0, end_warm=max(1, mining), top_p=self.hard_mining_top_p, ignore_index=VOID_ID)
        losses = [criterion(logit, masks[:, 2 + i], step) for i, logit in enumerate(logits)]
        return torch.stack(losses).mean()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        frames, masks = batch["frames"], batch["masks"]
        if frames.shape[1] < 3:
            raise DataError(f"SSTVOS needs the cfbi protocol (reference + previous + current); got clips of {frames.shape[1]} frames")
        step = int(self.global_step)
        sequential = step >= self.sequential_start * self._total_steps() and self.sequential_start < 1.0
        logits = self.net.forward_clip(frames, masks, batch["num_objects"], use_predictions=sequential)
        loss = self.loss(logits, masks, step)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=frames.shape[0])
        return loss

    # ------------------------------------------------------------------ evaluation
    def _annotated(self, meta: dict[str, Any], num_frames: int) -> list[bool]:
        """Frames whose ground truth is an input: frame 0 and each object's first annotated frame."""
        starts = {0, *(int(v) for v in (meta.get("first_frame") or {}).values())}
        return [i in starts for i in range(num_frames)]

    def _predict_video(self, batch: dict[str, Any]) -> torch.Tensor:
        frames, masks, meta = batch["frames"], batch["masks"], batch["meta"][0]
        if frames.shape[0] != 1:
            raise DataError(f"SSTVOS evaluates whole videos with batch size 1, got {frames.shape[0]}")
        annotated = self._annotated(meta, frames.shape[1])
        pred = self.net.infer_video(frames, masks, annotated, int(batch["num_objects"][0]))[0]
        height, width = (int(v) for v in meta["size"])
        return pred[:, :height, :width]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        pred = self._predict_video(batch)
        meta = batch["meta"][0]
        target = batch["masks"][0, :, : pred.shape[1], : pred.shape[2]]
        if self.eval_metric == "davis":
            self.val_score.update(pred.cpu(), target.cpu(), meta["video"])
        else:
            annotated = torch.as_tensor(meta.get("annotated", [True] * pred.shape[0]))
            self.val_score.update(pred.cpu(), target.cpu(), meta["video"], annotated=annotated)
        return {"pred": pred}

    def on_validation_epoch_end(self) -> None:
        result = self.val_score.compute()
        if self.eval_metric == "davis":
            names = {"val/jf": "J&F-Mean", "val/j": "J-Mean", "val/f": "F-Mean"}
        else:
            names = {"val/g": "G_proxy"}
        for key, column in names.items():
            self.log(key, result[column].float().nan_to_num(0.0), sync_dist=False)
        self.val_score.reset()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self.on_validation_epoch_end()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[str]:
        """Write ``<predict_dir>/<video>/<frame>.png`` palette PNGs (DAVIS layout) at the original size.

        Returns:
            The written paths.
        """
        pred = self._predict_video(batch).to(torch.uint8).cpu().numpy()
        meta = batch["meta"][0]
        root = Path(self.predict_dir) if self.predict_dir else Path(self.trainer.default_root_dir) / "predictions"
        return write_vos_masks(root, meta["video"], list(meta["frames"]), pred)

    def render_overlay(self, batch: dict[str, Any], outputs: dict[str, torch.Tensor]) -> np.ndarray:
        """Last frame of the video with its predicted objects (DAVIS palette, id numbers drawn, via
        :func:`vidseg_common.viz.vos_prediction_overlay`): ``(H, W, 3) uint8``."""
        from vidseg_common.viz import vos_prediction_overlay

        return vos_prediction_overlay(batch["frames"][0, -1], outputs["pred"][-1])

    # ------------------------------------------------------------------ benchmarking
    def example_inputs(self, batch_size: int, num_frames: int, height: int, width: int) -> tuple[Any, ...]:
        """A random video and a first-frame mask with two objects: ``(frames, masks)``."""
        frames = torch.rand(batch_size, num_frames, 3, height, width, device=self.device)
        masks = torch.zeros(batch_size, num_frames, height, width, dtype=torch.long, device=self.device)
        masks[:, 0, : height // 2, : width // 2] = 1
        masks[:, 0, height // 2 :, width // 2 :] = 2
        return frames, masks

    def benchmark_forward(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Frame-by-frame inference over the clip (what the paper's fps measures)."""
        return self.net.infer_video(frames, masks)
