"""``STTModule``: STT (and its per-frame baseline) on :class:`~vidseg_common.tasks.vss.VSSModule` (evaluation).

Batches: ``frames (B, T+1, 3, H, W)`` (annotated frame last), ``label (B, H, W)`` (255 = void). Loss: TDNet's OHEM
CE on the annotated frame (thresh 0.7, ``n_min = B·H·W/16``; TDNet's auxiliary and distillation terms are not in
STT). Evaluation (docs/reference/vss.md §3) adds ``<stage>/loss`` and, through
:class:`~vidseg_stt.video_eval.VideoEvaluation`, the corrupted / clean mIoU split and TC of streamed predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch import Callback
from torch import nn

from vidseg_common.errors import ConfigError, DataError
from vidseg_common.models.losses import OhemCrossEntropy
from vidseg_common.tasks.vss import VSSModule
from vidseg_stt.bisenet import BiSeNetDecoder, BiSeNetEncoder
from vidseg_stt.model import FCNDecoder, PSPEncoder, StreamCache, STTNet
from vidseg_stt.stt import SparseTemporalTransformer
from vidseg_stt.video_eval import VideoEvaluation


class STTModule(VSSModule):
    """STT-PSP / STT-BiSe (``use_stt: true``) or the per-frame image model (``use_stt: false``).

    Args:
        encoder: ``psp`` (PSPNet split, :class:`PSPEncoder` + :class:`FCNDecoder`) or ``bisenet`` (BiSeNet split,
            :mod:`vidseg_stt.bisenet`; ``output_stride``, ``ppm_bins`` and ``decoder_*`` then do not apply).
        backbone: timm ResNet of the encoder (``resnet18`` = PSP18/BiSe18, ``resnet34`` = BiSe34, ``resnet101`` = PSP101);
            pretrained: ``False``, ``True`` (timm download) or a local weights file.
        output_stride: encoder output stride (8, PSPNet/TDNet); ppm_bins: pyramid pooling bins.
        decoder_channel_down: the decoder's 3×3 conv has ``d_t / decoder_channel_down`` channels; decoder_dropout.
        use_stt: insert the Sparse Temporal Transformer (``false``: per-frame baseline); reduction, num_heads, ffn_dim,
            stt_dropout, nsm_radius, top_ratio, key_start, key_end, key_expansion, num_key_frames, full_attention,
            stt_zero_init: its options (:class:`~vidseg_stt.stt.SparseTemporalTransformer`; Tables 3–4).
        ohem_thresh: OHEM probability threshold; ohem_min_fraction: kept pixel fraction at least (TDNet: 1/16).
        tc_flow: flow backend of TC (``dis``, ``gt``) or ``None`` to skip TC; tc_mode: ``etc`` (ETC's ``eval_tc.py``)
            or ``clean``; tc_max_videos: TC on the first val videos only (``None``: all).
        **kwargs: :class:`~vidseg_common.tasks.vss.VSSModule` options (num_classes, ignore_index, optimizer, …).
    """

    def __init__(
        self,
        encoder: str = "psp",
        backbone: str = "resnet18",
        pretrained: bool | str = False,
        output_stride: int = 8,
        ppm_bins: Sequence[int] = (1, 2, 3, 6),
        decoder_channel_down: int = 4,
        decoder_dropout: float = 0.1,
        use_stt: bool = True,
        reduction: int = 4,
        num_heads: int = 8,
        ffn_dim: int | None = None,
        stt_dropout: float = 0.1,
        nsm_radius: int = 5,
        top_ratio: float = 0.5,
        key_start: int = 1,
        key_end: int = 5,
        key_expansion: int = 1,
        num_key_frames: int = 7,
        full_attention: bool = False,
        stt_zero_init: bool = True,
        ohem_thresh: float = 0.7,
        ohem_min_fraction: float = 1 / 16,
        tc_flow: str | None = "dis",
        tc_mode: str = "etc",
        tc_max_videos: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 < ohem_min_fraction <= 1.0 or encoder not in ("psp", "bisenet") or tc_flow not in (None, "dis", "gt") \
                or tc_mode not in ("etc", "clean"):
            raise ConfigError(f"model: need 0 < ohem_min_fraction ≤ 1, encoder psp|bisenet, tc_flow dis|gt|null and tc_mode "
                              f"etc|clean, got {ohem_min_fraction}, {encoder!r}, {tc_flow!r}, {tc_mode!r}")
        psp = encoder == "psp"
        self.backbone: nn.Module = (PSPEncoder(backbone, pretrained, output_stride, ppm_bins) if psp
                                    else BiSeNetEncoder(backbone, pretrained))
        self.stt = SparseTemporalTransformer(
            self.backbone.out_channels, reduction, num_heads, ffn_dim, stt_dropout, nsm_radius, top_ratio, key_start,
            key_end, key_expansion, num_key_frames, full_attention, stt_zero_init) if use_stt else None
        self.decoder: nn.Module = (
            FCNDecoder(self.backbone.out_channels, self.num_classes, decoder_channel_down, decoder_dropout) if psp
            else BiSeNetDecoder(self.backbone.out_channels, self.num_classes))
        self.ohem_thresh, self.ohem_min_fraction = ohem_thresh, ohem_min_fraction
        self.memory_frames = num_key_frames if use_stt else 0  # frames the streaming cache holds
        self.tc_flow, self.tc_mode, self.tc_max_videos = tc_flow, tc_mode, tc_max_videos

    @property
    def net(self) -> STTNet:
        """The pure ``nn.Module`` network (shares this module's parameters)."""
        return STTNet(self.backbone, self.decoder, self.stt)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames (B, T'+1, 3, H, W)`` → logits ``(B, K, H, W)`` of the last frame."""
        return self.net(frames)

    def stream_step(self, frame: torch.Tensor, cache: StreamCache) -> torch.Tensor:
        """One frame ``(B, 3, H, W)`` of streaming inference → logits ``(B, K, H, W)`` (see ``STTNet.stream_step``)."""
        return self.net.stream_step(frame, cache)

    def loss(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """OHEM CE of ``logits (B, K, H, W)`` against ``label (B, H, W)``."""
        if logits.shape[-2:] != label.shape[-2:]:
            raise DataError(f"label size {tuple(label.shape[-2:])} differs from the frames' {tuple(logits.shape[-2:])}")
        return OhemCrossEntropy(self.ohem_thresh, max(1, int(label.numel() * self.ohem_min_fraction)),
                                self.ignore_index)(logits, label)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch["frames"])
        return self.log_losses({"loss": self.loss(logits, batch["label"])}, logits.shape[0])

    def infer(self, batch: dict[str, Any]) -> torch.Tensor:
        return self(batch["frames"])  # logits of the annotated (last) frames

    def evaluate(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        outputs = super().evaluate(batch)
        loss = self.loss(outputs.pop("logits"), batch["label"])
        self.log(f"{self.stage}/loss", loss, on_epoch=True, batch_size=outputs["pred"].shape[0], sync_dist=True)
        return outputs

    def configure_callbacks(self) -> list[Callback]:
        """:class:`~vidseg_stt.video_eval.VideoEvaluation`: corrupted / clean mIoU and TC over whole val videos."""
        return [VideoEvaluation(self.tc_flow, self.num_classes, self.ignore_index, self.tc_mode, self.tc_max_videos)]
