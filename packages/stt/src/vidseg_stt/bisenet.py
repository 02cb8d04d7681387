"""BiSeNet18/34 split into an encoder and a decoder for STT-BiSe (STT Table 1; docs/reference/vss.md §2.5).

TDNet's "BiSeNet*" was never released (TDNet#6), so this is the standard BiSeNet (Yu et al., ECCV'18), our
choice recorded in docs/reference/vss.md §2.5:

* **Spatial path**: three conv–BN–ReLU blocks of stride 2 (7×7, 3×3, 3×3; 64 channels) and a 1×1 conv to
  ``spatial_channels`` → ``f8``.
* **Context path**: a timm ResNet18/34 (output stride 32). Attention refinement modules (ARM: 3×3 conv–BN–ReLU,
  then a channel gate from global pooling → 1×1 conv → BN → sigmoid) on ``f16`` and ``f32``; the global-context
  vector (pooled ``f32``, 1×1 conv–BN–ReLU) is added to the ``f32`` ARM output; each level is upsampled
  (nearest) and refined by a 3×3 conv–BN–ReLU, the ``f32`` branch being added to the ``f16`` ARM output → ``f8``.
* **Feature fusion module** (FFM): concat(spatial, context) → 1×1 conv–BN–ReLU to ``fused_channels``, then a
  squeeze-excitation gate (pool → 1×1 → ReLU → 1×1 → sigmoid, reduction 4) applied as ``x + x·gate``.

**Encoder** = spatial path + context path + FFM: frames ``(N, 3, H, W)`` → ``f8 (N, 256, H/8, W/8)``; this is
where STT sits. **Decoder** = BiSeNet's output head: 3×3 conv–BN–ReLU (256) + 1×1 classifier (then the
network upsamples to the input size). The two auxiliary heads on the context path are training losses of
BiSeNet, not part of STT's description, and are not built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidseg_common.models.backbone import TimmBackbone


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """``Conv(k, stride, padding k//2, no bias) → BN → ReLU``."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class SpatialPath(nn.Module):
    """Three stride-2 convs: ``(N, 3, H, W)`` → ``(N, out_channels, H/8, W/8)``."""

    def __init__(self, out_channels: int = 128, width: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(conv_bn_relu(3, width, 7, 2), conv_bn_relu(width, width, 3, 2),
                                    conv_bn_relu(width, width, 3, 2), conv_bn_relu(width, out_channels, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


class AttentionRefinement(nn.Module):
    """ARM: ``x = ConvBNReLU(x)``; ``x · sigmoid(BN(Conv1×1(avgpool(x))))``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, out_channels, 3)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(out_channels, out_channels, 1, bias=False),
                                  nn.BatchNorm2d(out_channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x * self.gate(x)


class ContextPath(nn.Module):
    """ResNet (stride 32) + ARMs + global context: ``(N, 3, H, W)`` → ``(N, channels, H/8, W/8)``.

    Args:
        backbone: timm ResNet name (``resnet18`` / ``resnet34``).
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        channels: width of the ARM / refinement convs (BiSeNet: 128).
    """

    def __init__(self, backbone: str = "resnet18", pretrained: bool | str = False, channels: int = 128) -> None:
        super().__init__()
        self.body = TimmBackbone(backbone, out_indices=(3, 4), pretrained=pretrained)
        c16, c32 = self.body.channels
        self.arm16 = AttentionRefinement(c16, channels)
        self.arm32 = AttentionRefinement(c32, channels)
        self.global_context = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(c32, channels, 1))
        self.refine32 = conv_bn_relu(channels, channels, 3)
        self.refine16 = conv_bn_relu(channels, channels, 3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.body(images)
        f16, f32 = feats["f16"], feats["f32"]
        x32 = self.arm32(f32) + self.global_context(f32)  # broadcast of the (N, C, 1, 1) context
        up16_f16 = self.refine32(F.interpolate(x32, size=f16.shape[-2:], mode="nearest"))
        x16 = self.arm16(f16) + up16_f16
        size8 = (images.shape[-2] + 7) // 8, (images.shape[-1] + 7) // 8
        return self.refine16(F.interpolate(x16, size=size8, mode="nearest"))


class FeatureFusion(nn.Module):
    """FFM: ``x = ConvBNReLU1×1(cat(a, b))``; ``x + x · SE(x)``."""

    def __init__(self, in_channels: int = 256, out_channels: int = 256, reduction: int = 4) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, out_channels, 1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(out_channels, out_channels // reduction, 1),
                                  nn.ReLU(inplace=True), nn.Conv2d(out_channels // reduction, out_channels, 1),
                                  nn.Sigmoid())

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.conv(torch.cat([spatial, context], dim=1))
        return x + x * self.gate(x)


class BiSeNetEncoder(nn.Module):
    """Spatial path + context path + FFM: frames ``(N, 3, H, W)`` → ``f8 (N, fused_channels, ⌈H/8⌉, ⌈W/8⌉)``.

    Args:
        backbone: ``resnet18`` (BiSe18) or ``resnet34`` (BiSe34).
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        spatial_channels: spatial-path output width (128).
        context_channels: context-path width (128).
        fused_channels: FFM output width = ``d_t`` of STT (256).
    """

    def __init__(self, backbone: str = "resnet18", pretrained: bool | str = False, spatial_channels: int = 128,
                 context_channels: int = 128, fused_channels: int = 256) -> None:
        super().__init__()
        self.spatial = SpatialPath(spatial_channels)
        self.context = ContextPath(backbone, pretrained, context_channels)
        self.fusion = FeatureFusion(spatial_channels + context_channels, fused_channels)
        self.out_channels, self.stride = fused_channels, 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        spatial_f8 = self.spatial(images)
        context_f8 = self.context(images)
        if spatial_f8.shape[-2:] != context_f8.shape[-2:]:
            context_f8 = F.interpolate(context_f8, size=spatial_f8.shape[-2:], mode="nearest")
        return self.fusion(spatial_f8, context_f8)


class BiSeNetDecoder(nn.Module):
    """BiSeNet output head: ``(N, d_t, h, w)`` → logits ``(N, K, h, w)`` (3×3 conv–BN–ReLU + 1×1)."""

    def __init__(self, in_channels: int, num_classes: int, mid_channels: int = 256) -> None:
        super().__init__()
        self.block = conv_bn_relu(in_channels, mid_channels, 3)
        self.classifier = nn.Conv2d(mid_channels, num_classes, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.block(features))
