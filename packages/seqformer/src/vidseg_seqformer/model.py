"""The SeqFormer network (docs/reference/vis.md §3.1): backbone → deformable encoder → query-decomposition decoder →
class / box / dynamic mask heads.

Shapes (R50, T frames of H×W): backbone C3–C5 (strides 8/16/32) plus C6 = 3×3 stride-2 conv on C5, each
projected by ``input_proj`` (conv + GroupNorm(32, 256)); per-frame 2-D sine encoding (Deformable DETR's
−0.5 offset) + ``level_embed``; memory ``(B·T, S, 256)``; outputs per decoder layer: class logits
``(B, Q, K)`` from the instance queries, boxes ``(B, T, Q, 4)`` from the box queries, mask logits
``(N, T, H/4, W/4)`` for any chosen set of queries (the matched ones in training, all at inference).

Differences to the released code, none of which changes the computation: the ``bbox_embed`` MLPs are
owned once by the decoder (the code also registers them on the model, so its ``state_dict`` stores them
twice), and the encoder's deformable attention has no ``output_proj_box`` (the code's shared
``MSDeformAttn`` class creates one in every encoder layer, where it is never used). Both are why the paper's
49.3 M (``state_dict`` numel) is ours plus those two terms; see ``tests/seqformer/test_params.py``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidseg_common.models.backbone import TimmBackbone
from vidseg_common.models.mlp import MLP
from vidseg_common.models.position_encoding import PositionEmbeddingSine2D
from vidseg_common.ops.ms_deform_attn_module import MSDeformAttn
from vidseg_seqformer.decoder import Aggregation, QueryDecompositionDecoder, QueryDecompositionLayer
from vidseg_seqformer.encoder import DeformableEncoder, DeformableEncoderLayer
from vidseg_seqformer.mask_head import DynamicMaskHead, MaskBranch

RESNET_FROZEN = ("^conv1", "^bn1", "^layer1")
"""Deformable DETR trains only layer2–4 of a ResNet."""


class SeqFormer(nn.Module):
    """SeqFormer.

    Args:
        backbone: timm model name (``resnet50``, ``resnet101``, ``resnet18`` for CPU experiments…).
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        backbone_frozen: regular expressions of frozen backbone parameters.
        num_classes: class logits K; a category id is its logit index (YouTube-VIS: 42, ids 1..40 used).
        num_queries: Q (300).
        d_model: transformer width C (256).
        d_ffn: FFN hidden width (1024).
        dropout: transformer dropout (0.1).
        enc_layers: encoder depth (6).
        dec_layers: decoder depth (6).
        n_heads: attention heads (8).
        enc_points: encoder sampling points per head and level (4).
        dec_points: decoder sampling points per head and level (4).
        num_feature_levels: L (4 = C3–C5 + C6); at least 3 (the mask branch uses strides 8/16/32).
        aggregation: temporal aggregation of the instance query: ``weighted`` / ``sum`` / ``average``.
        mask_channels: mask-branch output channels (8).
        rel_coord: relative coordinates as dynamic-head input.
        prior_prob: initial foreground probability of the class head (0.01).
        backbone_indices: timm feature indices of the stride 8/16/32 maps (ResNet ``(2, 3, 4)``, Swin ``(1, 2, 3)``).
        decompose: query decomposition into per-frame box queries (``False``: Table 3 ablation, see the decoder).
        backbone_timm_kwargs: extra ``timm.create_model`` options; Swin needs ``{"dynamic_img_size": True}`` for
            SeqFormer's multi-scale clips (timm builds Swin for one input size otherwise).
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool | str = False,
        backbone_frozen: Sequence[str] = RESNET_FROZEN,
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
        aggregation: Aggregation = "weighted",
        mask_channels: int = 8,
        rel_coord: bool = True,
        prior_prob: float = 0.01,
        backbone_indices: Sequence[int] = (2, 3, 4),
        decompose: bool = True,
        backbone_timm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if num_feature_levels < 3:
            raise ValueError(f"num_feature_levels must be ≥ 3 (mask branch uses strides 8/16/32), got {num_feature_levels}")
        self.num_queries, self.num_levels, self.d_model = num_queries, num_feature_levels, d_model
        self.backbone = TimmBackbone(backbone, out_indices=tuple(backbone_indices), pretrained=pretrained,
                                     frozen=backbone_frozen, timm_kwargs=backbone_timm_kwargs)
        if self.backbone.names != ["f8", "f16", "f32"]:
            raise ValueError(f"backbone_indices (model.backbone_out_indices) {tuple(backbone_indices)} of {backbone} "
                             f"give {self.backbone.names}, need the stride 8/16/32 maps f8, f16, f32")
        in_channels = [self.backbone.out_channels[k] for k in ("f8", "f16", "f32")]
        projections = [nn.Sequential(nn.Conv2d(c, d_model, 1), nn.GroupNorm(32, d_model)) for c in in_channels]
        extra_in = in_channels[-1]
        for _ in range(num_feature_levels - 3):
            projections.append(nn.Sequential(nn.Conv2d(extra_in, d_model, 3, stride=2, padding=1), nn.GroupNorm(32, d_model)))
            extra_in = d_model
        self.input_proj = nn.ModuleList(projections)
        self.position = PositionEmbeddingSine2D(d_model // 2, normalize=True, center_offset=0.5)
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, d_model))
        self.query_embed = nn.Embedding(num_queries, 2 * d_model)
        self.reference_points = nn.Linear(d_model, 2)
        self.encoder = DeformableEncoder(
            DeformableEncoderLayer(d_model, d_ffn, dropout, num_feature_levels, n_heads, enc_points), enc_layers
        )
        box_head = MLP(d_model, d_model, 4, 3)
        nn.init.zeros_(box_head.layers[-1].weight)
        nn.init.zeros_(box_head.layers[-1].bias)
        bbox_embeds = nn.ModuleList(_copy(box_head) for _ in range(dec_layers))
        with torch.no_grad():
            bbox_embeds[0].layers[-1].bias[2:] = -2.0  # Deformable DETR: only the first clone (docs/reference/vis.md §1.6)
        self.decoder = QueryDecompositionDecoder(
            QueryDecompositionLayer(d_model, d_ffn, dropout, num_feature_levels, n_heads, dec_points, aggregation),
            dec_layers, bbox_embeds, decompose,
        )
        class_head = nn.Linear(d_model, num_classes)
        nn.init.constant_(class_head.bias, -math.log((1 - prior_prob) / prior_prob))
        self.class_embed = nn.ModuleList(_copy(class_head) for _ in range(dec_layers))
        self.mask_branch = MaskBranch(d_model, d_model // 4, mask_channels)
        self.mask_head = DynamicMaskHead(d_model, mask_channels, rel_coord=rel_coord)
        self._reset_transformer()

    def _reset_transformer(self) -> None:
        """``DeformableTransformer._reset_parameters`` + ``input_proj`` init of Deformable DETR."""
        for module in (self.encoder.layers, self.decoder.layers):
            for param in module.parameters():
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)
            for sub in module.modules():
                if isinstance(sub, MSDeformAttn):
                    sub.reset_parameters()
        nn.init.xavier_uniform_(self.reference_points.weight, gain=1.0)
        nn.init.zeros_(self.reference_points.bias)
        nn.init.normal_(self.level_embed)
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)

    # ------------------------------------------------------------------ features
    def _levels(self, images: Tensor) -> list[Tensor]:
        feats = self.backbone(images)
        c3_c5 = [feats["f8"], feats["f16"], feats["f32"]]
        levels = [proj(f) for proj, f in zip(self.input_proj, c3_c5)]
        x = c3_c5[-1]
        for proj in self.input_proj[3:]:
            x = proj(x)
            levels.append(x)
        return levels

    def forward(self, frames: Tensor, padding_mask: Tensor | None = None) -> dict[str, object]:
        """Run the network on clips.

        Args:
            frames: ``(B, T, 3, H, W)`` normalised frames (H, W multiples of 32).
            padding_mask: ``(B, H, W)`` bool, True on padding (shared by the frames of a clip); ``None``: none.

        Returns:
            ``pred_logits`` / ``pred_boxes`` / ``instance`` / ``references``: per-layer lists of ``(B, Q, K)``,
            ``(B, T, Q, 4)`` (normalised cxcywh), ``(B, Q, C)``, ``(B, T, Q, 2|4)``; ``mask_features``
            ``(B, T, 8, H/8, W/8)``; ``image_size`` ``(H, W)``; ``content_size`` ``(B, 2)`` the un-padded
            ``(h, w)`` of each clip (boxes and reference points are normalised to it, as in Deformable DETR).
        """
        b, t, _, h, w = frames.shape
        levels = self._levels(frames.flatten(0, 1))  # [(B·T, C, H_l, W_l)]
        if padding_mask is None:
            padding_mask = torch.zeros(b, h, w, dtype=torch.bool, device=frames.device)
        pad = padding_mask.repeat_interleave(t, 0)  # (B·T, H, W)
        srcs, poss, masks, shapes = [], [], [], []
        for lvl, src in enumerate(levels):
            mask = F.interpolate(pad[:, None].float(), size=src.shape[-2:])[:, 0].bool()
            pos = self.position(mask) + self.level_embed[lvl].view(1, -1, 1, 1)
            shapes.append((src.shape[-2], src.shape[-1]))
            srcs.append(src.flatten(2).transpose(1, 2))
            poss.append(pos.flatten(2).transpose(1, 2))
            masks.append(mask)
        valid_ratios = torch.stack([_valid_ratio(m) for m in masks], 1)  # (B·T, L, 2)
        flat_mask = torch.cat([m.flatten(1) for m in masks], 1)
        flat_mask = flat_mask if flat_mask.any() else None
        memory = self.encoder(torch.cat(srcs, 1), torch.cat(poss, 1), shapes, valid_ratios, flat_mask)

        # a copy, not a view of the weight: no-grad views of parameters break torch's ModuleTracker (FLOP counting)
        query_pos, tgt = self.query_embed.weight.repeat(b, 1, 1).split(self.d_model, -1)
        reference = self.reference_points(query_pos).sigmoid()[:, None].expand(b, t, -1, -1)
        flat_shapes = [v for hw in shapes for v in hw]
        dec = self.decoder(tgt, query_pos, reference, memory, flat_shapes, valid_ratios.view(b, t, -1, 2), flat_mask)

        maps, start = [], 0
        for hl, wl in shapes[:3]:
            maps.append(memory[:, start : start + hl * wl].transpose(1, 2).reshape(b * t, -1, hl, wl))
            start += hl * wl
        mask_features = self.mask_branch(*maps)
        return {
            "pred_logits": [head(x) for head, x in zip(self.class_embed, dec["instance"])],
            "pred_boxes": dec["boxes"],
            "instance": dec["instance"],
            "references": dec["references"],
            "mask_features": mask_features.view(b, t, *mask_features.shape[1:]),
            "image_size": (h, w),
            "content_size": torch.stack([(~padding_mask[:, :, 0]).sum(1), (~padding_mask[:, 0, :]).sum(1)], 1),
        }

    def predict_masks(self, outputs: dict[str, object], layer: int, batch_idx: Tensor, query_idx: Tensor) -> Tensor:
        """Mask logits of chosen queries at one decoder layer.

        Args:
            outputs: the dict of :meth:`forward`.
            layer: decoder layer index (−1 = last).
            batch_idx: ``(N,)`` clip index of each query.
            query_idx: ``(N,)`` query index.

        Returns:
            ``(N, T, H/4, W/4)`` logits.
        """
        embeddings = outputs["instance"][layer][batch_idx, query_idx]  # type: ignore[index]
        refs = outputs["references"][layer]  # type: ignore[index]
        centres = refs[batch_idx, :, query_idx, :2]  # (N, T, 2)
        features = outputs["mask_features"][batch_idx]  # type: ignore[index]
        sizes = outputs["content_size"][batch_idx]  # type: ignore[index]  # (N, 2): pixels of the normalised centres
        return self.mask_head(embeddings, centres, features, sizes)


def _copy(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module)


def _valid_ratio(mask: Tensor) -> Tensor:
    """``(N, H, W)`` padding mask → ``(N, 2)`` ``(w, h)`` valid fractions (Deformable DETR ``get_valid_ratio``)."""
    _, h, w = mask.shape
    valid_h = (~mask[:, :, 0]).sum(1)
    valid_w = (~mask[:, 0, :]).sum(1)
    return torch.stack([valid_w.float() / w, valid_h.float() / h], -1)
