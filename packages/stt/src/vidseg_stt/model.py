"""STT networks: PSPNet-style encoder → Sparse Temporal Transformer → FCN decoder (TDNet's split, docs/reference/vss.md §2.2).

* **Encoder** (shared by all frames): a timm ResNet dilated to output stride 8 (``TimmBackbone``) followed by
  the Pyramid Pooling Module (bins 1, 2, 3, 6; each 1×1 conv ``C → C/4`` + BN + ReLU, bilinear upsampling with
  ``align_corners=True``), concatenated with its input: ``d_t = 2C`` (PSP18: 512 + 4·128 = 1024).
* **STT** between encoder and decoder (:class:`~vidseg_stt.stt.SparseTemporalTransformer`); ``use_stt=False``
  gives the per-frame baseline (the same image model without temporal context).
* **Decoder**: TDNet's ``FCNHead``: 3×3 conv ``d_t → d_t/4`` + BN + ReLU + Dropout2d(0.1) + 1×1 classifier,
  then bilinear upsampling to the input size.

Deviation: TDNet's ResNets use the Encoding-style multi-grid dilations (4, 8, 16) in layer4 and a 3-conv
``deep_base`` stem for R50/R101; timm's ``output_stride=8`` dilates layer3/layer4 by 2/4 with the standard stem.
Inference can run as a stream (:meth:`STTNet.stream_step`): each frame is encoded once and its keys/values
cached for the next ``T`` frames (the paper's balanced latency).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidseg_common.errors import DataError
from vidseg_common.models.backbone import TimmBackbone
from vidseg_stt.stt import SparseTemporalTransformer


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling: ``(B, C, h, w)`` → ``(B, C + len(bins)·C/reduction, h, w)``.

    Args:
        in_channels: ``C``.
        bins: adaptive pooling output sizes.
        reduction: each branch has ``C / reduction`` channels (4 bins × C/4 doubles the width).
    """

    def __init__(self, in_channels: int, bins: Sequence[int] = (1, 2, 3, 6), reduction: int = 4) -> None:
        super().__init__()
        branch = in_channels // reduction
        self.branches = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(size), nn.Conv2d(in_channels, branch, 1, bias=False),
                          nn.BatchNorm2d(branch), nn.ReLU(inplace=True))
            for size in bins
        )
        self.out_channels = in_channels + branch * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(branch(x), size=size, mode="bilinear", align_corners=True) for branch in self.branches]
        return torch.cat([x, *pooled], dim=1)


class PSPEncoder(nn.Module):
    """Dilated ResNet (output stride 8) + pyramid pooling: frames ``(N, 3, H, W)`` → ``f8 (N, d_t, H/8, W/8)``.

    Args:
        backbone: timm model name (``resnet18``, ``resnet50``, ``resnet101``).
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        output_stride: 8 (PSPNet/TDNet) or 16.
        ppm_bins: pyramid pooling bins.
    """

    def __init__(self, backbone: str = "resnet18", pretrained: bool | str = False, output_stride: int = 8,
                 ppm_bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.body = TimmBackbone(backbone, out_indices=(4,), pretrained=pretrained, output_stride=output_stride)
        self.ppm = PyramidPooling(self.body.channels[-1], ppm_bins)
        self.out_channels = self.ppm.out_channels
        self.stride = self.body.strides[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.ppm(next(iter(self.body(images).values())))


class FCNDecoder(nn.Module):
    """TDNet ``FCNHead``: ``(N, d_t, h, w)`` → logits ``(N, K, h, w)``.

    Args:
        in_channels: ``d_t``.
        num_classes: ``K``.
        channel_down: the 3×3 conv has ``d_t / channel_down`` outputs.
        dropout: Dropout2d before the classifier.
    """

    def __init__(self, in_channels: int, num_classes: int, channel_down: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        mid = in_channels // channel_down
        self.block = nn.Sequential(nn.Conv2d(in_channels, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid),
                                   nn.ReLU(inplace=True), nn.Dropout2d(dropout))
        self.classifier = nn.Conv2d(mid, num_classes, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.block(features))


StreamCache = list[tuple[torch.Tensor, torch.Tensor]]
"""Keys/values ``(B, d, h, w)`` of the last ``T`` frames, oldest first."""


class STTNet(nn.Module):
    """Encoder → (STT) → decoder on the last frame of a clip.

    Args:
        encoder: frames → ``(N, d_t, h, w)`` (:class:`PSPEncoder` or ``bisenet.BiSeNetEncoder``).
        decoder: ``(N, d_t, h, w)`` → logits (:class:`FCNDecoder` or ``bisenet.BiSeNetDecoder``).
        stt: the temporal module, or ``None`` for the per-frame baseline.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, stt: SparseTemporalTransformer | None = None) -> None:
        super().__init__()
        self.encoder, self.decoder, self.stt = encoder, decoder, stt

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Clip inference / training.

        Args:
            frames: ``(B, T'+1, 3, H, W)``, previous frames first, the annotated frame last (``T' ≤ T``). All
                frames go through the shared encoder with gradients (the paper optimises on all of them).

        Returns:
            logits ``(B, K, H, W)`` of the last frame.
        """
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise DataError(f"STTNet: expected frames (B, T+1, 3, H, W), got {tuple(frames.shape)}")
        b, n = frames.shape[:2]
        if self.stt is None:
            return self._decode(self.encoder(frames[:, -1]), frames.shape[-2:])
        feats_f8 = self.encoder(frames.flatten(0, 1))
        feats_f8 = feats_f8.reshape(b, n, *feats_f8.shape[1:])
        if n > 1:
            key, value = self.stt.memory(feats_f8[:, :-1].flatten(0, 1))
            key, value = key.reshape(b, n - 1, *key.shape[1:]), value.reshape(b, n - 1, *value.shape[1:])
        else:
            empty = feats_f8.new_zeros(b, 0, self.stt.dim, *feats_f8.shape[-2:])
            key, value = empty, empty
        return self._decode(self.stt(feats_f8[:, -1], key, value), frames.shape[-2:])

    @torch.no_grad()
    def stream_step(self, frame: torch.Tensor, cache: StreamCache) -> torch.Tensor:
        """Streaming inference: encode one frame, attend to the cached previous frames, update the cache.

        Args:
            frame: ``(B, 3, H, W)`` the next frame.
            cache: keys/values of up to ``T`` previous frames (start with ``[]``); updated in place.

        Returns:
            logits ``(B, K, H, W)``.
        """
        feat_f8 = self.encoder(frame)
        if self.stt is None:
            return self._decode(feat_f8, frame.shape[-2:])
        key, value = self.stt.memory(feat_f8)
        if cache:
            keys = torch.stack([k for k, _ in cache], dim=1)
            values = torch.stack([v for _, v in cache], dim=1)
        else:
            keys = values = feat_f8.new_zeros(feat_f8.shape[0], 0, self.stt.dim, *feat_f8.shape[-2:])
        fused = self.stt(feat_f8, keys, values)
        cache.append((key, value))
        del cache[: max(0, len(cache) - self.stt.num_key_frames)]
        return self._decode(fused, frame.shape[-2:])

    def _decode(self, features: torch.Tensor, size: torch.Size) -> torch.Tensor:
        return F.interpolate(self.decoder(features), size=tuple(size), mode="bilinear", align_corners=False)
