"""Mask branch and CondInst-style dynamic mask head of SeqFormer (docs/reference/vis.md §3.3).

* :class:`MaskBranch` (the code's ``MaskHeadSmallConv(256, None, 256)``), per frame on the encoder memory:
  ``relu(lay3(f32))`` → + nearest-upsampled into ``f16`` → ``relu(lay4)`` → + into ``f8`` → ``relu(conv)``
  (the code calls it ``dcn`` but it is a plain 3×3 conv) → ``relu(lay1)`` → ``relu(lay2)``: ``(8, H/8, W/8)``.
* :class:`DynamicMaskHead`: per instance, three 1×1 convs 10→8→8→1 (ReLU between) whose 169 weights come
  from ``controller = MLP(C, C, 169, 3)`` applied to the instance embedding. Input: relative coordinates
  ``ref_centre_px − location_px`` **in pixels** (not normalised, unlike CondInst), location ``(8x+4, 8y+4)``,
  concatenated with the 8 branch channels. The stride-8 logits go to stride 4 with ``aligned_bilinear``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidseg_common.models.mlp import MLP


def aligned_bilinear(x: Tensor, factor: int) -> Tensor:
    """CondInst's up-sampling that keeps pixel centres aligned: ``(N, C, H, W)`` → ``(N, C, fH, fW)``.

    Replicate-pad one row/column at the bottom/right, resize to ``(fH+1, fW+1)`` with ``align_corners=True``,
    shift by ``factor // 2`` (replicate) and crop.
    """
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    x = F.pad(x, (0, 1, 0, 1), mode="replicate")
    x = F.interpolate(x, size=(factor * h + 1, factor * w + 1), mode="bilinear", align_corners=True)
    x = F.pad(x, (factor // 2, 0, factor // 2, 0), mode="replicate")
    return x[..., : factor * h, : factor * w]


class MaskBranch(nn.Module):
    """FPN-like fusion of the encoder's stride 8/16/32 maps into ``out_channels`` mask features at stride 8.

    Args:
        d_model: channels of the memory maps.
        hidden: channels after ``lay1`` (the code: ``d_model // 4``).
        out_channels: mask feature channels (8).
    """

    def __init__(self, d_model: int = 256, hidden: int = 64, out_channels: int = 8) -> None:
        super().__init__()
        self.lay3 = nn.Conv2d(d_model, d_model, 3, padding=1)
        self.lay4 = nn.Conv2d(d_model, d_model, 3, padding=1)
        self.fuse = nn.Conv2d(d_model, d_model, 3, padding=1)
        self.lay1 = nn.Conv2d(d_model, hidden, 3, padding=1)
        self.lay2 = nn.Conv2d(hidden, out_channels, 3, padding=1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=1)
                nn.init.constant_(module.bias, 0)

    def forward(self, f8: Tensor, f16: Tensor, f32: Tensor) -> Tensor:
        """``f8 (N, C, H/8, W/8)``, ``f16``, ``f32`` → ``(N, out_channels, H/8, W/8)``."""
        x = F.relu(self.lay3(f32))
        x = f16 + F.interpolate(x, size=f16.shape[-2:], mode="nearest")
        x = F.relu(self.lay4(x))
        x = f8 + F.interpolate(x, size=f8.shape[-2:], mode="nearest")
        x = F.relu(self.fuse(x))
        x = F.relu(self.lay1(x))
        return F.relu(self.lay2(x))


class DynamicMaskHead(nn.Module):
    """Instance-conditioned 1×1 conv head.

    Args:
        d_model: instance embedding width.
        in_channels: mask branch channels (8).
        channels: width of the dynamic convs (8).
        num_layers: dynamic conv layers (3).
        rel_coord: prepend the 2 relative-coordinate channels (``--rel_coord``).
        feature_stride: stride of the mask branch (8).
        out_stride: stride of the output logits (4).
    """

    def __init__(
        self, d_model: int = 256, in_channels: int = 8, channels: int = 8, num_layers: int = 3, rel_coord: bool = True,
        feature_stride: int = 8, out_stride: int = 4,
    ) -> None:
        super().__init__()
        self.rel_coord, self.feature_stride, self.out_stride = rel_coord, feature_stride, out_stride
        first = in_channels + (2 if rel_coord else 0)
        dims_in = [first] + [channels] * (num_layers - 1)
        dims_out = [channels] * (num_layers - 1) + [1]
        self.weight_sizes = [i * o for i, o in zip(dims_in, dims_out)]
        self.bias_sizes = list(dims_out)
        self.dims = list(zip(dims_in, dims_out))
        self.num_gen_params = sum(self.weight_sizes) + sum(self.bias_sizes)
        self.controller = MLP(d_model, d_model, self.num_gen_params, 3)
        for layer in self.controller.layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, embeddings: Tensor, centres: Tensor, features: Tensor, image_size: Sequence[int] | Tensor
                ) -> Tensor:
        """Mask logits of a set of instances.

        Args:
            embeddings: ``(N, C)`` instance embeddings (one row per instance).
            centres: ``(N, T, 2)`` reference centres ``(x, y)`` in ``[0, 1]`` per frame.
            features: ``(N_img, T, in_channels, h, w)`` mask-branch output at ``feature_stride`` for the image
                each instance belongs to, already gathered: ``N_img == N``.
            image_size: ``(H, W)`` in pixels that the normalised centres refer to (relative coordinates are in
                pixels): the input size, or per instance ``(N, 2)`` the un-padded content size of its clip (the
                released code scales by the targets' ``size``, the image before padding).

        Returns:
            ``(N, T, h·f, w·f)`` logits at ``out_stride`` with ``f = feature_stride / out_stride``.
        """
        n, t, _, h, w = features.shape
        f = self.feature_stride // self.out_stride
        if n == 0:
            return features.new_zeros((0, t, h * f, w * f))
        x = features
        if self.rel_coord:
            stride = self.feature_stride
            ys = torch.arange(h, device=x.device, dtype=x.dtype) * stride + stride // 2
            xs = torch.arange(w, device=x.device, dtype=x.dtype) * stride + stride // 2
            loc_y, loc_x = torch.meshgrid(ys, xs, indexing="ij")
            if isinstance(image_size, Tensor):
                scale = image_size.to(device=x.device, dtype=x.dtype).flip(-1)[:, None, :]  # (N, 1, 2) as (W, H)
            else:
                scale = torch.tensor([image_size[1], image_size[0]], dtype=x.dtype, device=x.device)
            centre_px = centres.to(x.dtype) * scale  # (N, T, 2)
            rel_x = centre_px[..., 0, None, None] - loc_x
            rel_y = centre_px[..., 1, None, None] - loc_y
            x = torch.cat([torch.stack([rel_x, rel_y], 2), x], 2)  # (N, T, 2 + C_in, h, w)
        params = self.controller(embeddings)  # (N, P)
        chunks = torch.split(params, self.weight_sizes + self.bias_sizes, dim=1)
        weights, biases = chunks[: len(self.dims)], chunks[len(self.dims):]
        # grouped 1×1 convs: groups = instances, frames as the batch
        x = x.permute(1, 0, 2, 3, 4).reshape(t, -1, h, w)  # (T, N·C_in, h, w)
        for i, ((c_in, c_out), weight, bias) in enumerate(zip(self.dims, weights, biases)):
            x = F.conv2d(x, weight.reshape(n * c_out, c_in, 1, 1), bias.reshape(-1), groups=n)
            if i < len(self.dims) - 1:
                x = F.relu(x)
        logits = x.reshape(t, n, h, w).permute(1, 0, 2, 3)  # (N, T, h, w)
        return aligned_bilinear(logits, f)
