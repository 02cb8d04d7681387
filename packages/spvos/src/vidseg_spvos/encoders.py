"""STCN's query (key) encoder and memory (value) encoder on :class:`TimmBackbone` (docs/reference/vos.md §2.2).

* :class:`KeyEncoder`: ResNet-50 stem + layer1–3 → ``f4 (256)``, ``f8 (512)``, ``f16 (1024)``, then the key
  projection ``f16 → C_k`` (``key_proj``) and the query value ``f16 → C_v`` (``key_comp``).
* :class:`ValueEncoder`: ResNet-18 stem + layer1–3 on ``[RGB, this object's mask, other objects' masks]``
  (5 channels) → ``(256, /16)``, fused with the key encoder's ``f16`` by :class:`FeatureFusionBlock` → ``C_v``.
  Its convolutions carry a bias, as STCN's ``model/mod_resnet.py`` ResNet (``nn.Conv2d`` defaults; the biases start
  at zero) — ``stcn.pth`` holds trained values for them, and SpVOS's "Params" column (Tables I–III, 207.78 MiB
  non-sparse) counts them. The query encoder is torchvision's ResNet-50 in STCN: no conv biases.

The 5-channel stem: the backbone is built with 3 input channels (so ImageNet weights load unchanged) and its
``conv1`` is widened here, keeping the RGB filters and initialising the two mask channels orthogonally, as
STCN's ``mod_resnet.load_weights_sequential`` does (its comment says zeros; the code is orthogonal).
"""

from __future__ import annotations

import torch
from torch import nn

from vidseg_common.models.backbone import TimmBackbone
from vidseg_spvos.blocks import FeatureFusionBlock, KeyProjection


def widen_first_conv(conv: nn.Conv2d, extra_channels: int) -> nn.Conv2d:
    """A copy of ``conv`` with ``extra_channels`` more input channels (RGB weights kept, extras orthogonal)."""
    wide = nn.Conv2d(conv.in_channels + extra_channels, conv.out_channels, conv.kernel_size, conv.stride,
                     conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                     device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        extra = torch.empty(conv.out_channels, extra_channels, *conv.kernel_size, device=conv.weight.device,
                            dtype=conv.weight.dtype)
        nn.init.orthogonal_(extra)
        wide.weight.copy_(torch.cat([conv.weight, extra], dim=1))
        if conv.bias is not None:
            wide.bias.copy_(conv.bias)
    return wide


def with_conv_bias(module: nn.Module) -> None:
    """Give every bias-free ``nn.Conv2d`` inside ``module`` a zero bias (in place, weights kept)."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Conv2d and child.bias is None:
            conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                             child.dilation, child.groups, True, child.padding_mode,
                             device=child.weight.device, dtype=child.weight.dtype)
            with torch.no_grad():
                conv.weight.copy_(child.weight)
                conv.bias.zero_()
            setattr(module, name, conv)
        else:
            with_conv_bias(child)


class KeyEncoder(nn.Module):
    """Query encoder: ResNet to layer3 + key projection + query value.

    Args:
        backbone: timm ResNet name (STCN/SpVOS: ``resnet50``; ``resnet18`` for small CPU runs).
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        key_dim: ``C_k`` (64).
        value_dim: ``C_v`` (512).

    Shapes:
        ``frames (N, 3, H, W)`` → dict ``f4 (N, C4, H/4, W/4)``, ``f8``, ``f16``, ``k16 (N, C_k, H/16, W/16)``,
        ``v16 (N, C_v, H/16, W/16)`` (STCN's ``qv16`` / ``f16_thin``).
    """

    def __init__(self, backbone: str = "resnet50", pretrained: bool | str = False, key_dim: int = 64,
                 value_dim: int = 512) -> None:
        super().__init__()
        self.backbone = TimmBackbone(backbone, out_indices=(1, 2, 3), pretrained=pretrained)
        channels = self.backbone.out_channels
        self.key_proj = KeyProjection(channels["f16"], key_dim)
        self.key_comp = nn.Conv2d(channels["f16"], value_dim, 3, padding=1)

    @property
    def out_channels(self) -> dict[str, int]:
        return self.backbone.out_channels

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.backbone(frames)
        feats["k16"] = self.key_proj(feats["f16"])
        feats["v16"] = self.key_comp(feats["f16"])
        return feats


class ValueEncoder(nn.Module):
    """Memory encoder: 5-channel ResNet (convolutions with bias, STCN's ``mod_resnet``) to layer3 + feature fusion
    with the key encoder's ``f16``.

    Args:
        key_f16_channels: channels of the key encoder's ``f16`` (1024 for ResNet-50).
        backbone: timm ResNet name (``resnet18``).
        pretrained: as :class:`KeyEncoder`.
        value_dim: ``C_v`` (512).

    Shapes:
        ``frames (N, 3, H, W)``, ``masks (N, 1, H, W)``, ``others (N, 1, H, W)``, ``key_f16 (N, C, H/16, W/16)``
        → ``(N, C_v, H/16, W/16)``.
    """

    def __init__(self, key_f16_channels: int, backbone: str = "resnet18", pretrained: bool | str = False,
                 value_dim: int = 512) -> None:
        super().__init__()
        self.backbone = TimmBackbone(backbone, out_indices=(3,), pretrained=pretrained)
        self.backbone.body.conv1 = widen_first_conv(self.backbone.body.conv1, 2)
        with_conv_bias(self.backbone.body)
        self.fuser = FeatureFusionBlock(self.backbone.channels[-1] + key_f16_channels, value_dim)

    def forward(self, frames: torch.Tensor, masks: torch.Tensor, others: torch.Tensor,
                key_f16: torch.Tensor) -> torch.Tensor:
        x = self.backbone(torch.cat([frames, masks, others], dim=1))["f16"]
        return self.fuser(x, key_f16)
