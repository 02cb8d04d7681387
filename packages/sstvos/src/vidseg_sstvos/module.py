"""``SSTVOSModule``: SSTVOS training on :class:`~vidseg_common.tasks.vos.VOSModule` (which owns evaluation).

Training clips (``VOSDataModule``, ``protocol: cfbi``): ``frames (B, 2 + K, 3, H, W)`` = reference, previous and
``K`` current frames with ``masks (B, 2 + K, H, W)``. Recipe (docs/reference/vos.md §1.9, the released config; the
paper gives none): CFBI's hard-pixel-mined CE (= bootstrapped CE: mean of the top ``p·HW`` pixel losses, ``p`` going
1 → ``boot_top_p`` from step ``boot_start`` to ``boot_end``) averaged over the current frames; from ``sequential_start``
of the run the previous-frame labels are the model's own predictions [inferred]; SGD, poly, clipping, frozen BN: YAML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from vidseg_common.data.formats.png import VOID_ID
from vidseg_common.errors import ConfigError, DataError
from vidseg_common.models.backbone import TimmBackbone
from vidseg_common.models.losses import BootstrappedCE
from vidseg_common.tasks.vos import VOSModule
from vidseg_sstvos.decoder import CollaborativeEnsembler
from vidseg_sstvos.encoder import AttentionPattern, SSTEncoder
from vidseg_sstvos.model import FrameEmbedding, SSTVOSNet
from vidseg_sstvos.norm import NormKind


class SSTVOSModule(VOSModule):
    """SSTVOS (Local / Strided / LocalStrided / Grid attention, Table 6).

    Args:
        backbone, pretrained, backbone_output_stride, backbone_out_indices: the timm backbone (paper: ResNet-101,
            stride 16 as CFBI's DeepLabV3+; the indices must include the stride-4 map).
        embed_features: backbone maps fused into the frame embedding; attention_stride: its stride (default 8).
        hidden_dim: ``C`` (Table 1: 128); num_encoder_layers: ``L``; num_heads: attention heads (config: 8).
        attention: ``grid``, ``local``, ``strided`` or ``local_strided``; kernel_size: local window (``None``: odd
            ``⌊√w⌋``); attention_step: strided step (``None``: ``round(√w)``); causal_attention: mask later frames.
        ffn_dim: FFN width (128: Table 1's 0.3 M encoder parameters); norm: ``frn`` (FRN + TLU) or ``layernorm``.
        positional_encoding: ``none`` or ``sinusoidal`` (Table 4); pe_temperature: sinusoid frequency base.
        history: ``τ`` (Table 5); use_reference: prepend the reference frame(s) to the buffer.
        pre_dim … decoder_channels: collaborative-ensembler widths (:class:`~vidseg_sstvos.decoder.CollaborativeEnsembler`).
        boot_start, boot_end, boot_top_p: hard-pixel mining from step boot_start (0) to boot_end (``None``: half the
            run), keeping boot_top_p (CFBI 0.15); sequential_start: fraction of the run before own predictions are used.
        **kwargs: :class:`~vidseg_common.tasks.vos.VOSModule` options (eval_metric, optimizer, scheduler, …).
    """

    def __init__(
        self,
        backbone: str = "resnet101",
        pretrained: bool | str = False,
        backbone_output_stride: int = 16,
        backbone_out_indices: Sequence[int] = (1, 2, 3, 4),
        embed_features: Sequence[str] = ("f8", "f16", "f16_res5"),
        attention_stride: int = 8,
        hidden_dim: int = 128,
        num_encoder_layers: int = 2,
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
        boot_start: int = 0,
        boot_end: int | None = None,
        boot_top_p: float = 0.15,
        sequential_start: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 < boot_top_p <= 1.0 or boot_start < 0 or not 0.0 <= sequential_start <= 1.0 or history < 1:
            raise ConfigError("model: need 0 < boot_top_p ≤ 1, boot_start ≥ 0, 0 ≤ sequential_start ≤ 1, history (τ) ≥ 1; "
                              f"got {boot_top_p}, {boot_start}, {sequential_start}, {history}")
        self.backbone = TimmBackbone(backbone, tuple(backbone_out_indices), pretrained, backbone_output_stride)
        self.embedding = FrameEmbedding(self.backbone, hidden_dim, tuple(embed_features), attention_stride)
        self.encoder = SSTEncoder(hidden_dim, num_encoder_layers, num_heads, attention, kernel_size, attention_step,
                                  causal_attention, ffn_dim, norm, positional_encoding, pe_temperature)
        self.decoder = CollaborativeEnsembler(hidden_dim, self.encoder.affinity_channels, self.embedding.low_level_channels,
                                              pre_dim, tuple(stage_channels), tuple(stage_depths), tuple(stage_strides),
                                              aspp_channels, tuple(aspp_dilations), decoder_channels)
        self.history, self.use_reference = history, use_reference
        self.boot_start, self.boot_end, self.boot_top_p = boot_start, boot_end, boot_top_p
        self.sequential_start = sequential_start

    @property
    def net(self) -> SSTVOSNet:
        """The pure ``nn.Module`` network (shares this module's parameters)."""
        return SSTVOSNet(self.backbone, self.embedding, self.encoder, self.decoder, self.history, self.use_reference)

    def forward(self, frames: torch.Tensor, masks: torch.Tensor, num_objects: int | None = None) -> torch.Tensor:
        """Whole-video inference: ``frames (B, T, 3, H, W)``, ``masks (B, T, H, W)`` (frame 0 read) → ids ``(B, T, H, W)``."""
        return self.net.infer_video(frames, masks, num_objects=num_objects)

    def loss(self, logits: Sequence[torch.Tensor], masks: torch.Tensor, step: int) -> torch.Tensor:
        """Hard-pixel-mined CE averaged over the current frames (``logits[i]`` ↔ ``masks[:, 2 + i]``)."""
        end = self.boot_end if self.boot_end is not None else max(1, self.total_steps // 2)
        criterion = BootstrappedCE(self.boot_start, max(self.boot_start + 1, end), self.boot_top_p, ignore_index=VOID_ID)
        return torch.stack([criterion(logit, masks[:, 2 + i], step) for i, logit in enumerate(logits)]).mean()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        frames, masks = batch["frames"], batch["masks"]
        if frames.shape[1] < 3:
            raise DataError(f"SSTVOS needs the cfbi protocol (reference + previous + current); got clips of {frames.shape[1]} frames")
        step = int(self.global_step)
        sequential = step >= self.sequential_start * self.total_steps and self.sequential_start < 1.0
        loss = self.loss(self.net.forward_clip(frames, masks, batch["num_objects"], use_predictions=sequential), masks, step)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=frames.shape[0])
        return loss

    def infer(self, batch: dict[str, Any]) -> torch.Tensor:
        """Frame-by-frame inference (τ-frame buffer; ground truth read at frame 0 and each object's first frame)."""
        meta, num_frames = batch["meta"][0], batch["frames"].shape[1]
        starts = {0, *(int(v) for v in (meta.get("first_frame") or {}).values())}
        annotated = [i in starts for i in range(num_frames)]
        return self.net.infer_video(batch["frames"], batch["masks"], annotated, int(batch["num_objects"][0]))[0]

    def benchmark_forward(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Frame-by-frame inference over the clip (what the paper's fps measures)."""
        return self.net.infer_video(frames, masks)
